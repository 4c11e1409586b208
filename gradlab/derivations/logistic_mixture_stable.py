r"""Discretized logistic mixture NLL in the stable parametrization (log-scales, weight logits).

Seed 004 optimizes :math:`s` and :math:`\pi` directly, so a gradient step can make a scale
negative or leave the simplex, and its loss then is NaN. Unconstrained parameters
``{"mu": (K,), "log_s": (K,), "logit_pi": (K,)}`` avoid both:

.. math::  s_i = e^{\lambda_i}, \qquad \log \pi_i = \eta_i - \operatorname{LSE}(\eta), \qquad
           \pi = \operatorname{softmax}(\eta)  \tag{11}

with :math:`\lambda` = ``log_s`` and :math:`\eta` = ``logit_pi``. The loss is eq. (3) of
``logistic_mixture.py``, evaluated in log space by its eqs. (6)-(7) (and (10) for the edge bins).
The chain rule through (11), with :math:`\partial s_i/\partial\lambda_i = s_i` and
:math:`\partial \log\pi_i / \partial \eta_j = [i = j] - \pi_j`, turns the seed-parametrization
gradient (9) into

.. math::  \frac{\partial L}{\partial \mu_i} = \frac{1}{N s_i}\sum_n r_{in}(u_{in} - w_{in}), \quad
           \frac{\partial L}{\partial \lambda_i} = s_i \frac{\partial L}{\partial s_i}
           = \frac1N \sum_n r_{in}(\alpha_{in}u_{in} - \beta_{in}w_{in} + c_i), \quad
           \frac{\partial L}{\partial \eta_j} = \pi_j - \frac1N \sum_n r_{jn}  \tag{12}

(:math:`r`, :math:`u`, :math:`w`, :math:`c` as in eqs. (7)-(8); the last uses
:math:`\sum_i r_{in} = 1`). Every quantity in (12) is a responsibility, a sigmoid or a bounded
ratio: no division by :math:`p_\theta(x)`, so a component far from every observation contributes
:math:`r \approx 0` and finite :math:`u, w`, never :math:`0/0`. (12) shows the two classic
fixed points: :math:`\partial L/\partial \eta = 0` iff every weight equals its mean
responsibility (the EM update for :math:`\pi`).

The step-by-step derivation is ``papers/seeds/logistic_mixture.md``.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> from gradlab.derivations import logistic_mixture_stable as m
  >>> params = {"mu": jnp.array([2.0, 1e4]), "log_s": jnp.array([0.0, -20.0]),
  ...           "logit_pi": jnp.array([0.0, 30.0])}
  >>> x, d = jnp.array([0, 3, 4]), jnp.array(5)
  >>> bool(jnp.isfinite(m.logistic_mixture_stable_nll(params, x, d)))
  True

References:
  Salimans, Karpathy, Chen, Kingma, "PixelCNN++", ICLR 2017 (log-scales, edge bins).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradlab.derivations import logistic_mixture as _seed
from gradlab.derivations._derivation import Derivation, Params
from gradlab.derivations.softmax_nll import check_data

NAMES = ("mu", "log_s", "logit_pi")


def _check(params, x, d, edge: bool) -> None:
    _seed.check_components(params, NAMES)
    size = _seed.check_support_size(d, edge=edge)
    check_data("x", x, d if size is None else size)  # a traced d is checked traced


def to_seed(params: Params) -> Params:
    """``{"mu", "log_s", "logit_pi"}`` -> ``{"mu", "s", "pi"}`` by eq. (11)."""
    return {
        "mu": params["mu"],
        "s": jnp.exp(params["log_s"]),
        "pi": jax.nn.softmax(params["logit_pi"]),
    }


def to_stable(params: Params) -> Params:
    """``{"mu", "s", "pi"}`` -> ``{"mu", "log_s", "logit_pi"}``, inverting eq. (11) (logits up to
    an additive constant: this picks ``logit_pi = log pi``)."""
    return {"mu": params["mu"], "log_s": jnp.log(params["s"]), "logit_pi": jnp.log(params["pi"])}


def logistic_mixture_stable_log_prob(
    params: Params, x: jax.Array, d: ArrayLike, *, edge: bool = False
) -> jax.Array:
    """``log p(x_n)`` for every observation, ``(N,)``: eqs. (7), (11) (and (10) when ``edge``)."""
    _check(params, x, d, edge)
    s = jnp.exp(params["log_s"])  # (11)
    log_pi = jax.nn.log_softmax(params["logit_pi"])  # (11)
    _, _, ell = _seed.log_bins(params["mu"], s, x, d, edge=edge)
    return jax.nn.logsumexp(log_pi[None, :] + ell, axis=1)  # (7)


def _nll(params, x, d, edge):
    return -jnp.mean(logistic_mixture_stable_log_prob(params, x, d, edge=edge))  # (3)


def _grad(params, x, d, edge):
    _check(params, x, d, edge)
    s = jnp.exp(params["log_s"])  # (11)
    log_pi = jax.nn.log_softmax(params["logit_pi"])  # (11)
    _, _, r, g_mu, g_s = _seed.mixture_terms(params["mu"], s, log_pi, x, d, edge=edge)
    return {  # (12)
        "mu": g_mu / s,
        "log_s": g_s,
        "logit_pi": jnp.exp(log_pi) - jnp.mean(r, axis=0),
    }


def logistic_mixture_stable_nll(params: Params, x: jax.Array, d: ArrayLike) -> jax.Array:
    """Eq. (3) with ``s = exp(log_s)``, ``pi = softmax(logit_pi)`` (eq. (11)), in log space.

    Args:
      params: ``{"mu": (K,), "log_s": (K,), "logit_pi": (K,)}``, any finite values.
      x: integer observations ``(N,)`` in ``{0, ..., d-1}``.
      d: the number of bins, an integer scalar (an array, so it can be ``vmap``-ed).

    Returns:
      The scalar mean negative log-likelihood, finite for any finite parameters.
    """
    return _nll(params, x, d, False)


def logistic_mixture_stable_nll_grad(params: Params, x: jax.Array, d: ArrayLike) -> Params:
    """The chain-rule gradient of eq. (12)."""
    return _grad(params, x, d, False)


def logistic_mixture_stable_edge_nll(params: Params, x: jax.Array, d: ArrayLike) -> jax.Array:
    """Eq. (3) with the PixelCNN++ edge bins of eq. (10), stable parametrization (11)."""
    return _nll(params, x, d, True)


def logistic_mixture_stable_edge_nll_grad(params: Params, x: jax.Array, d: ArrayLike) -> Params:
    """Eq. (12) with the edge-bin terms of eq. (10)."""
    return _grad(params, x, d, True)


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, x, d)`` with ``shape = (N, K, d)``, the same draw as the seed module's."""
    mu, s, logit_pi, x, d = _seed.draw_args(key, shape, dtype)
    return {"mu": mu, "log_s": jnp.log(s), "logit_pi": logit_pi}, x, d


SHAPES = _seed.SHAPES

STABLE = Derivation(
    name="logistic_mixture_stable",
    loss=logistic_mixture_stable_nll,
    grad=logistic_mixture_stable_nll_grad,
    make_args=make_args,
    shapes=SHAPES,
    seed="004",
    note="papers/seeds/logistic_mixture.md",
    summary="discretized logistic mixture NLL, {mu, log_s, logit_pi}",
)

STABLE_EDGE = Derivation(
    name="logistic_mixture_stable_edge",
    loss=logistic_mixture_stable_edge_nll,
    grad=logistic_mixture_stable_edge_nll_grad,
    make_args=make_args,
    shapes=SHAPES,
    seed="004",
    note="papers/seeds/logistic_mixture.md",
    summary="PixelCNN++ discretized logistic mixture NLL (edge bins), {mu, log_s, logit_pi}",
)
