r"""Discretized logistic mixture NLL (seed 004, part b) in the seed's parametrization, in log space.

Notation of seed 004: K components with means :math:`\mu_i`, scales :math:`s_i > 0` and weights
:math:`\pi_i` (parameters ``{"mu": (K,), "s": (K,), "pi": (K,)}``, :math:`\pi` on the simplex),
integer data :math:`x_1, \dots, x_N` on the bins :math:`\{0, \dots, d-1\}`, the sigmoid
:math:`\sigma(z) = 1/(1+e^{-z})`, and (seed 004, "Forme générale du gradient")

.. math::  \alpha_i(x) = \frac{x + \tfrac12 - \mu_i}{s_i}, \qquad
           \beta_i(x) = \frac{x - \tfrac12 - \mu_i}{s_i}, \qquad
           \alpha_i - \beta_i = \delta_i := 1/s_i                                        \tag{1}

Model and loss (seed 004, "Rappel du modèle", "Loss Function"):

.. math::  p_\theta(x) = \textstyle\sum_i \pi_i\,[\sigma(\alpha_i(x)) - \sigma(\beta_i(x))]  \tag{2}
.. math::  L = -\tfrac{1}{N} \textstyle\sum_n \log p_\theta(x_n)                           \tag{3}

The seed's hand gradients (seed 004, "Dérivées partielles"), with
:math:`\sigma' = \sigma(1-\sigma)`:

.. math::  \frac{\partial L}{\partial \mu_i} = \frac{1}{N}\sum_n \frac{\pi_i}{s_i\,p_\theta(x_n)}
           [\sigma'(\alpha_i) - \sigma'(\beta_i)], \quad
           \frac{\partial L}{\partial s_i} = \frac{1}{N}\sum_n \frac{\pi_i}{s_i\,p_\theta(x_n)}
           [\alpha_i\sigma'(\alpha_i) - \beta_i\sigma'(\beta_i)], \quad
           \frac{\partial L}{\partial \pi_i} = -\frac{1}{N}\sum_n
           \frac{\sigma(\alpha_i) - \sigma(\beta_i)}{p_\theta(x_n)}  \tag{4}

All three are correct, with :math:`\pi` an unconstrained vector (``jax.grad`` agrees). The
seed's "general form" is not: plugged into it, :math:`\pi_i` ("les dérivées partielles sont 1")
gives :math:`\pi_i[\sigma'(\alpha_i) - \sigma'(\beta_i)]` instead of
:math:`\sigma(\alpha_i) - \sigma(\beta_i)`. Coded as written, (2)-(4) break far from the data:
:math:`\sigma(\alpha) - \sigma(\beta)` underflows to 0 (or cancels to 0 when both are near 1),
so :math:`\log p = -\infty` and (4) is :math:`0/0`. In log space instead,

.. math::  \sigma(\alpha) - \sigma(\beta) = \sigma(\alpha)\sigma(-\beta)(1 - e^{-\delta})  \tag{5}
.. math::  \ell_i(x) := \log[\sigma(\alpha_i) - \sigma(\beta_i)]
           = \log\sigma(\alpha_i) + \log\sigma(-\beta_i) + \log(1 - e^{-\delta_i})  \tag{6}

with :math:`\log\sigma(z) = -\operatorname{softplus}(-z)` and
:math:`\log(1 - e^{-\delta})` by ``log1mexp`` (Mächler 2012); every term is finite for finite
:math:`\alpha, \beta` and :math:`s > 0`. The mixture is a log-sum-exp, and its softmax the
responsibilities:

.. math::  \log p_\theta(x) = \operatorname{LSE}_i\,(\log \pi_i + \ell_i(x)), \qquad
           r_i(x) = \exp(\log \pi_i + \ell_i(x) - \log p_\theta(x))                         \tag{7}

Differentiating (6) (:math:`d\log\sigma(z)/dz = \sigma(-z)`,
:math:`d\log(1 - e^{-\delta})/d\delta = 1/(e^\delta - 1)`) and using
:math:`\partial_\mu \alpha = \partial_\mu \beta = -1/s`,
:math:`\partial_s \alpha = -\alpha/s`, :math:`\partial_s \beta = -\beta/s`:

.. math::  \frac{\partial \ell}{\partial \mu} = -\frac{u - w}{s}, \quad
           \frac{\partial \ell}{\partial s} = -\frac{\alpha u - \beta w + c}{s}, \qquad
           u = \sigma(-\alpha),\; w = \sigma(\beta),\; c = \frac{\delta}{e^\delta - 1}  \tag{8}

(the two :math:`1/(e^\delta-1)` terms cancel in the :math:`\mu` derivative, so nothing large is
subtracted). Then :math:`\partial L / \partial \theta = -\frac1N \sum_n \sum_i r_{in}\,
\partial \ell_{in} / \partial \theta` gives the stable form of (4):

.. math::  \frac{\partial L}{\partial \mu_i} = \frac{1}{N s_i}\sum_n r_{in}(u_{in} - w_{in}), \quad
           \frac{\partial L}{\partial s_i} = \frac{1}{N s_i}\sum_n r_{in}
           (\alpha_{in}u_{in} - \beta_{in}w_{in} + c_i), \quad
           \frac{\partial L}{\partial \pi_i} = -\frac1N \sum_n e^{\ell_{in} - \log p_{\theta}(x_n)}
           \tag{9}

(9) equals (4) term by term: :math:`\pi_i e^{\ell_i}/p = r_i` and
:math:`\sigma'(\alpha) - \sigma'(\beta) = (\sigma(\alpha) - \sigma(\beta))(u - w)`.
A weight exactly 0 is allowed (:math:`\log \pi_i = -\infty`, :math:`r_i = 0`); (9) then gives the
right finite :math:`\partial L/\partial \pi_i` (the loss is linear in :math:`\pi_i`), while
``jax.grad`` of this log-space loss returns NaN there (:math:`0 \cdot \infty` through
:math:`\log 0`): compare at :math:`\pi_i > 0`.

PixelCNN++ edge bins (Salimans et al. 2017, eq. 2): the first bin takes all mass below
:math:`\tfrac12`, the last all mass above :math:`d - \tfrac32`:

.. math::  \ell_i(0) = \log\sigma(\alpha_i(0)), \qquad \ell_i(d-1) = \log\sigma(-\beta_i(d-1)),
           \qquad \textstyle\sum_{x=0}^{d-1} e^{\ell_i(x)} = 1  \tag{10}

so (8) holds with :math:`w = c = 0` at :math:`x = 0` and :math:`u = c = 0` at :math:`x = d-1`.
Without edge bins the sum telescopes to :math:`\sigma(\alpha_i(d-1)) - \sigma(\beta_i(0)) < 1`:
(2) is not a normalized distribution on the bins. The stable parametrization
(:math:`\log s`, logits for :math:`\pi`, eqs. (11)-(12)) is ``logistic_mixture_stable.py``.
The step-by-step derivation is ``papers/seeds/logistic_mixture.md``.

References:
  Seed 004 (``shared/seeds/004_*.txt``), part (b).
  Salimans, Karpathy, Chen, Kingma, "PixelCNN++", ICLR 2017, eq. (2).
  Mächler, "Accurately computing log(1 - exp(-|a|))", CRAN Rmpfr vignette, 2012.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from gradlab import _validate as v
from gradlab.derivations._derivation import Derivation, Params
from gradlab.derivations.softmax_nll import check_data

_LOG_HALF = -math.log(2.0)


def log1mexp(z: jax.Array) -> jax.Array:
    """``log(1 - exp(z))`` for ``z < 0``, accurate at both ends (Mächler 2012).

    Each branch gets a safe input where it is not selected, so ``jax.grad`` never multiplies a
    zero cotangent by the other branch's infinite derivative (``log1p(-1)`` at ``z ~ 0``).
    """
    near0 = z > _LOG_HALF
    z_near = jnp.where(near0, z, _LOG_HALF)
    z_far = jnp.where(near0, 2.0 * _LOG_HALF, z)
    return jnp.where(near0, jnp.log(-jnp.expm1(z_near)), jnp.log1p(-jnp.exp(z_far)))


# ---- validation ---------------------------------------------------------------------------------


def check_support_size(d: ArrayLike, *, edge: bool) -> int | None:
    """``d`` must be an integer scalar (>= 2 with edge bins); its value, or None when traced."""
    if np.ndim(d) != 0:
        raise ValueError(f"d (the number of bins) must be a scalar; got shape {v.shape_of(d)}")
    v.check_integer("d (the number of bins)", d)
    low = 2 if edge else 1
    if not v.is_concrete(d):
        v.check_at_least("d (the number of bins)", d, low)
        return None
    count = int(np.asarray(d))
    if count < low:
        raise ValueError(f"d (the number of bins) must be >= {low}; got {count}")
    return count


def check_components(params: Params, names: tuple[str, ...]) -> int:
    """Keys exactly ``names``, each leaf a finite floating ``(K,)`` vector of one dtype; K."""
    if not hasattr(params, "keys") or set(params.keys()) != set(names):
        got = sorted(params.keys()) if hasattr(params, "keys") else type(params).__name__
        raise ValueError(f"params must be a dict with keys {sorted(names)}; got {got}")
    first = f'params["{names[0]}"]'
    v.check_ndim(first, params[names[0]], 1)
    k = params[names[0]].shape[0]
    if k < 1:
        raise ValueError(f"{first} must hold at least one component; got shape (0,)")
    for name in names:
        leaf = f'params["{name}"]'
        v.check_shape(leaf, params[name], (k,))
        v.check_floating(leaf, params[name])
        if jnp.result_type(params[name]) != jnp.result_type(params[names[0]]):
            raise TypeError(
                f"{leaf} has dtype {jnp.result_type(params[name])} but {first} has dtype "
                f"{jnp.result_type(params[names[0]])}; all parameters must share one dtype"
            )
        v.check_finite(leaf, params[name])
    return k


def _check(params, x, d, edge: bool) -> None:
    check_components(params, ("mu", "s", "pi"))
    v.check_positive('params["s"]', params["s"])
    v.check_simplex('params["pi"]', params["pi"])
    size = check_support_size(d, edge=edge)
    check_data("x", x, d if size is None else size)  # a traced d is checked traced


# ---- the log-space core, shared with logistic_mixture_stable ------------------------------------


def _edges(x, d):
    """``(N, 1)`` masks of the first and the last bin, compared in jax's widest integer dtype
    (so uint8 data with an int32 ``d`` works under strict promotion, and ``d = 300`` does not
    wrap around in uint8)."""
    wide = jax.dtypes.canonicalize_dtype(jnp.int64)
    return (x == 0)[:, None], (x.astype(wide) == jnp.asarray(d).astype(wide) - 1)[:, None]


def log_bins(
    mu: jax.Array, s: jax.Array, x: jax.Array, d: ArrayLike, *, edge: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(alpha, beta, ell)``, each ``(N, K)``: eq. (1) and the log bin masses of eq. (6)/(10)."""
    xf = x.astype(mu.dtype)[:, None]
    alpha = (xf + 0.5 - mu[None, :]) / s[None, :]  # (1)
    beta = (xf - 0.5 - mu[None, :]) / s[None, :]  # (1)
    log_sig_a = jax.nn.log_sigmoid(alpha)
    log_sig_nb = jax.nn.log_sigmoid(-beta)
    ell = log_sig_a + log_sig_nb + log1mexp(-1.0 / s)[None, :]  # (6)
    if edge:
        first, last = _edges(x, d)
        ell = jnp.where(first, log_sig_a, jnp.where(last, log_sig_nb, ell))  # (10)
    return alpha, beta, ell


def mixture_terms(
    mu: jax.Array, s: jax.Array, log_pi: jax.Array, x: jax.Array, d: ArrayLike, *, edge: bool
) -> tuple[jax.Array, ...]:
    """Everything (7)-(9) need: ``log p (N,)``, ``ell``, ``r``, and the two sums of eq. (9).

    Returns ``(log_p, ell, r, g_mu, g_s)`` with ``g_mu = (1/N) sum_n r (u - w)`` and
    ``g_s = (1/N) sum_n r (alpha u - beta w + c)``, so ``dL/dmu = g_mu / s`` and
    ``dL/ds = g_s / s`` by eq. (9).
    """
    n = x.shape[0]
    alpha, beta, ell = log_bins(mu, s, x, d, edge=edge)
    joint = log_pi[None, :] + ell
    log_p = jax.nn.logsumexp(joint, axis=1)  # (7)
    r = jnp.exp(joint - log_p[:, None])  # (7)
    delta = 1.0 / s
    u = jax.nn.sigmoid(-alpha)  # (8)
    w = jax.nn.sigmoid(beta)  # (8)
    c = jnp.broadcast_to((delta / jnp.expm1(delta))[None, :], ell.shape)  # (8)
    if edge:
        first, last = _edges(x, d)
        u = jnp.where(last, 0.0, u)  # (10)
        w = jnp.where(first, 0.0, w)
        c = jnp.where(first | last, 0.0, c)
    g_mu = jnp.sum(r * (u - w), axis=0) / n  # (9)
    g_s = jnp.sum(r * (alpha * u - beta * w + c), axis=0) / n  # (9)
    return log_p, ell, r, g_mu, g_s


# ---- the seed's parametrization {"mu", "s", "pi"} -----------------------------------------------


def logistic_mixture_log_prob(
    params: Params, x: jax.Array, d: ArrayLike, *, edge: bool = False
) -> jax.Array:
    """``log p(x_n)`` for every observation, ``(N,)``: eq. (7) (with eq. (10) when ``edge``).

    With ``x = arange(d)`` its exponentials sum to 1 with ``edge=True`` and to less than 1
    without, eq. (10).
    """
    _check(params, x, d, edge)
    _, _, ell = log_bins(params["mu"], params["s"], x, d, edge=edge)
    return jax.nn.logsumexp(jnp.log(params["pi"])[None, :] + ell, axis=1)  # (7)


def _nll(params, x, d, edge):
    return -jnp.mean(logistic_mixture_log_prob(params, x, d, edge=edge))  # (3)


def _grad(params, x, d, edge):
    _check(params, x, d, edge)
    mu, s = params["mu"], params["s"]
    log_p, ell, _, g_mu, g_s = mixture_terms(mu, s, jnp.log(params["pi"]), x, d, edge=edge)
    g_pi = -jnp.mean(jnp.exp(ell - log_p[:, None]), axis=0)  # (9)
    return {"mu": g_mu / s, "s": g_s / s, "pi": g_pi}  # (9)


def logistic_mixture_nll(params: Params, x: jax.Array, d: ArrayLike) -> jax.Array:
    """``L = -(1/N) sum_n log p(x_n)``, eqs. (2)-(3), evaluated in log space by eqs. (6)-(7).

    Args:
      params: ``{"mu": (K,), "s": (K,), "pi": (K,)}``; ``s > 0`` and ``pi`` on the simplex are
        checked when concrete.
      x: integer observations ``(N,)`` in ``{0, ..., d-1}``.
      d: the number of bins, an integer scalar (an array, so it can be ``vmap``-ed).

    Returns:
      The scalar mean negative log-likelihood; finite for any finite parameters with ``s > 0``.
    """
    return _nll(params, x, d, False)


def logistic_mixture_nll_grad(params: Params, x: jax.Array, d: ArrayLike) -> Params:
    """Seed 004's gradients, eq. (4), evaluated stably as eq. (9) (``pi`` unconstrained)."""
    return _grad(params, x, d, False)


def logistic_mixture_edge_nll(params: Params, x: jax.Array, d: ArrayLike) -> jax.Array:
    """Eq. (3) with the PixelCNN++ edge bins of eq. (10): the bins sum to one."""
    return _nll(params, x, d, True)


def logistic_mixture_edge_nll_grad(params: Params, x: jax.Array, d: ArrayLike) -> Params:
    """Eq. (9) with the edge-bin terms of eq. (10)."""
    return _grad(params, x, d, True)


def draw_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """Random ``(mu, s, logit_pi, x, d)`` for ``shape = (n, k, d)``, shared with the stable
    parametrization's ``make_args``."""
    n, k, d = shape
    km, ks, kp, kx = jax.random.split(key, 4)
    mu = jax.random.uniform(km, (k,), dtype, 0.0, d - 1.0)
    s = (0.5 + d / (4.0 * k)) * jnp.exp(jax.random.uniform(ks, (k,), dtype, -0.5, 0.5))
    logit_pi = jax.random.normal(kp, (k,), dtype)
    x = jax.random.randint(kx, (n,), 0, d, dtype=jnp.int32).at[0].set(0).at[1].set(d - 1)
    return mu, s, logit_pi, x, jnp.asarray(d, jnp.int32)


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, x, d)`` with ``shape = (N, K, d)``: N observations, K components, d bins.

    ``mu`` uniform on ``[0, d-1]``, ``s`` around ``0.5 + d/(4K)``, ``pi = softmax(normal)``,
    ``x`` uniform on the bins with ``x[0] = 0`` and ``x[1] = d - 1`` (both edge bins observed).
    """
    mu, s, logit_pi, x, d = draw_args(key, shape, dtype)
    return {"mu": mu, "s": s, "pi": jax.nn.softmax(logit_pi)}, x, d


SHAPES = ((24, 3, 10), (150, 5, 40))

SEED = Derivation(
    name="logistic_mixture",
    loss=logistic_mixture_nll,
    grad=logistic_mixture_nll_grad,
    make_args=make_args,
    shapes=SHAPES,
    seed="004",
    note="papers/seeds/logistic_mixture.md",
    summary="discretized logistic mixture NLL, seed parametrization {mu, s, pi}",
)

SEED_EDGE = Derivation(
    name="logistic_mixture_edge",
    loss=logistic_mixture_edge_nll,
    grad=logistic_mixture_edge_nll_grad,
    make_args=make_args,
    shapes=SHAPES,
    seed="004",
    note="papers/seeds/logistic_mixture.md",
    summary="discretized logistic mixture NLL, PixelCNN++ edge bins, {mu, s, pi}",
)
