r"""One pure training loop: ``lax.scan`` over steps, any optax optimizer, hand or autodiff gradient.

The loop replaces the seeds' Python loops (seed 002's ``batch_gd``/``minibatch_gd``, seed 001's
``LinearModel.step``) by a pure function of arrays, so ``jax.jit(jax.vmap(train))`` over learning
rates, regularization strengths and seeds just works. With :math:`L(\theta; D)` the loss on data
:math:`D`, :math:`B_t \subseteq D` the batch of step :math:`t` (all of :math:`D` when
``batch_size`` is ``None``) and ``(update, s)`` the optax optimizer and its state, step :math:`t`
proposes

.. math::  g_t = \nabla_\theta L(\theta_t; B_t), \quad (u_t, s'_{t}) = \mathrm{update}(g_t, s_t,
           \theta_t), \quad \theta'_{t} = \theta_t + u_t                                  \tag{1}

and measures the full-data loss :math:`\ell'_t = L(\theta'_t; D)` (seed 002 tracks the full loss
in ``minibatch_gd`` too). The proposal is *bad* when

.. math::  \neg\,\mathrm{finite}(\ell'_t) \;\lor\; \ell'_t > \beta \;\lor\;
           \neg\,\mathrm{finite}(\theta'_t, \nabla L(\theta'_t; D)), \qquad
           \beta = 10^6 \max(|L(\theta_0; D)|, 1) \text{ by default}                       \tag{2}

A run is *active* until it diverges or stops early. An active run with a good proposal accepts
it; otherwise the run keeps :math:`(\theta_t, s_t, \ell_t)` (``jnp.where`` masking, per run):

.. math::  \theta_{t+1} = \begin{cases}\theta'_t & \text{active and not bad}\\
           \theta_t & \text{otherwise}\end{cases}, \qquad
           \mathrm{diverged} \mathrel{|}= \text{active and bad}                           \tag{3}

so a diverging run is frozen at its last finite parameters, is flagged, and never spreads NaN
into the rest of a vmapped batch. A run whose loss *ends* above its start (by more than
:math:`\sqrt{\epsilon}\max(|L_0|, 1)`) is diverged too, whether it ran all its steps below the
bound or met the early-stopping rule (4) on a rising loss: it did not train, and it is never
reported as merely stopped. Early stopping (seed 002's assignment: "stop if improvement
< 1e-6 for 10 consecutive iterations") counts accepted steps whose improvement is below ``tol``:

.. math::  c_{t+1} = \begin{cases} c_t + 1 & \ell_t - \ell_{t+1} < \mathrm{tol} \\ 0 &
           \text{otherwise}\end{cases}, \qquad \mathrm{stopped} \mathrel{|}= c_{t+1} \ge
           \mathrm{patience}                                                              \tag{4}

Every ``record_every`` steps the history stores, for :math:`r = 1..R`, :math:`R =` ``steps //
record_every``, at :math:`\theta_{rk}` (:math:`k =` ``record_every``, parameters *after* the
step, as the seed's ``history.append`` after the update):

.. math::  h_r = \big(L(\theta_{rk}; D),\; \lVert\nabla L(\theta_{rk}; D)\rVert_2,\;
           m(\theta_{rk}) \text{ for each user metric } m\big)                            \tag{5}

Cost. In full-batch mode the loss and gradient of (2) at :math:`\theta'_t` are one
``value_and_grad`` call whose gradient is carried into the next step's (1): one forward and one
backward pass per step, and (5) reads the carry (no recomputation). A hand ``grad`` costs its own
call plus the loss, whose shared subexpressions (the residual) XLA computes once. In mini-batch
mode a step costs a batch gradient and a full-data loss (2); the full-data gradient norm of (5)
is computed at record points only. The freeze (3) is one select per carried buffer
(``_carry.Packing``). Per step on seed 002 (n=80, d=2) the loop costs about a microsecond of
CPU at the default ``unroll=2`` (``benchmarks/bench_fit.py``).

Under ``vmap``. ``lax.scan`` runs all ``steps`` for every run: a run that stopped early or
diverged is masked, not skipped, so a vmapped batch costs as much as its longest run (the whole
``steps``), and a lone run costs ``steps`` steps too: early stopping here saves nothing in
time, it fixes the result at the stopping point, and ``steps_taken`` says where that was.
Lanes are independent: nothing in the loop mixes them, and a lane's result is bitwise the same
at any position beside any neighbours. It is bitwise the lone run's when XLA lowers the loss the
same batched and unbatched (elementwise ops and reductions, ``optax.sgd``); with matmuls XLA:CPU
picks another kernel for the batched product (gemm for gemv, another summation order), and in
float64 its vectorized ``pow``/``sqrt`` (adam) round unlike the scalar ones, so such lanes
match the lone run to a few ulp per step.

Hyperparameters and optimizers. Sweep values enter as arrays: the learning rate through the
optimizer (``optax.sgd(lr)`` built inside the vmapped function), a regularization strength by
closing the loss over it. With a proximal optimizer (``gradlab.optim.ista``/``fista``) pass the
smooth part as ``loss``; the history and the divergence and early-stopping tests then see the
smooth part, so record the full objective as a metric. ``FitResult.opt_state`` holds the final
state (FISTA's iterate is ``gradlab.optim.fista_iterate(result.opt_state)``).

Learning rates. A non-positive learning rate is an error when it can be read and is concrete,
and a flagged run when it is traced: readable are those of ``gradlab.optim.with_learning_rate``
and gradlab's own optimizers (attribute ``learning_rate``) and of ``optax.inject_hyperparams``
states (a schedule must be >= 0 at step 0). A float closed over by ``optax.sgd(lr)`` cannot be
read; a negative one then shows as a diverged run (its loss ends above its start).

Value checks under ``jit``. The loss's own value checks (``gradlab._validate``: finiteness, a
simplex, positivity, data in the support) cannot raise on traced values, so the loop runs them
traced, on ``params0`` and ``data`` before the first step and on the final parameters after the
last (two extra traced calls of the loss, of which XLA keeps only the checks; no per-step cost).
A failure sets ``FitResult.invalid`` with the failed check in ``invalid_reason`` (an index into
the static ``checks`` messages; ``FitResult.reasons()`` gives the text); a run whose inputs
fail never moves (``steps_taken == 0``). Called eagerly, ``fit`` raises
``gradlab._validate.InvalidValueError`` instead of returning such a result.

Compilation. One compiled loop serves every call with the same ``loss``, ``grad``, optimizer and
metric objects, static configuration and input shapes and dtypes (a module-level ``jax.jit``
keyed on them): repeated eager calls reuse it (``benchmarks/bench_fit.py``: about 1 ms against
0.45 s when every call compiled). A new optimizer object (``optax.sgd(0.1)`` written inside a
loop) or a new lambda compiles again; build them once, or jit the caller.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import optax
from jax.extend.core import get_opaque_trace_state

from gradlab import _validate as v
from gradlab.train import _checks as c
from gradlab.train import _loop
from gradlab.train._types import EarlyStop, FitConfig, FitResult

PyTree = Any

# One compiled loop per (loss, grad, optimizer, metrics, config) and input shapes: repeated
# eager calls with the same objects reuse it (a fresh jax.jit per call recompiled every time).
_run = jax.jit(_loop.run, static_argnums=0)
_EAGER = get_opaque_trace_state()  # the trace state of a call outside any jit/vmap/grad


def fit(
    loss: Callable[..., jax.Array],
    params0: PyTree,
    data: tuple,
    optimizer: optax.GradientTransformation,
    steps: int,
    *,
    grad: Callable[..., PyTree] | None = None,
    key: jax.Array | None = None,
    batch_size: int | None = None,
    sampling: str = "without_replacement",
    record_every: int = 1,
    metrics: dict[str, Callable[[PyTree], jax.Array]] | None = None,
    early_stop: EarlyStop | None = None,
    divergence_bound: float | jax.Array | None = None,
    precision: str = "highest",
    unroll: int = 2,
) -> FitResult:
    r"""Train ``params0`` on ``loss`` with ``optimizer`` for ``steps`` steps, eqs. (1)-(5).

    Args:
      loss: ``loss(params, *data) -> scalar``, e.g. ``gradlab.derivations.mse.mse_mean``.
        Hyperparameters enter by closure, as arrays so they can be vmapped:
        ``functools.partial(ridge, lam=lam)`` or ``lambda p, X, y: mse(p, X, y) + lam * pen(p)``
        with ``lam`` a traced value inside the vmapped function.
      params0: initial parameter pytree (floating leaves).
      data: tuple of arrays sharing their leading axis ``n`` (rows are examples; mini-batches
        slice it). ``()`` for a loss without data.
      optimizer: any optax ``GradientTransformation``; its learning rate may be a traced array
        (``optax.sgd(lr)`` inside a vmapped function).
      steps: number of optimizer steps (static).
      grad: hand gradient with the signature of ``loss`` returning a ``params``-shaped pytree;
        ``None`` uses ``jax.grad(loss)``.
      key: PRNG key for mini-batch sampling; required when ``batch_size`` is set, ignored
        otherwise.
      batch_size: rows per step (static); ``None`` trains on all of ``data`` every step.
      sampling: ``"without_replacement"`` (seed 002: distinct indices per step, key
        ``fold_in(key, step)``) or ``"epochs"`` (a permutation per epoch, batches in order, the
        last ``n mod batch_size`` rows of each permutation dropped); see ``_batching``.
      record_every: history stride (static); must divide ``steps``.
      metrics: ``{"name": fn(params) -> scalar}`` recorded with the history.
      early_stop: ``EarlyStop(tol, patience)``, eq. (4), or ``None``.
      divergence_bound: :math:`\beta` of eq. (2); ``None`` is ``1e6 * max(|L(params0)|, 1)``
        (``gradlab.train.default_divergence_bound``), ``float("inf")`` freezes only on
        non-finite losses (a loss ending above its start is still diverged). The initial loss
        is only checked for finiteness: a run that starts at a non-finite loss (or gradient)
        is flagged diverged with ``steps_taken == 0``, keeps ``params0``, and its history
        repeats that loss.
      precision: matmul precision the loop is traced under (static): ``"highest"`` (full
        float32 on GPU/TPU, the default), ``"tensorfloat32"``/``"default"`` to opt in to TF32.
      unroll: ``lax.scan`` unroll factor of the step loop (static). The default 2 halves the
        loop's own overhead, which dominates tiny models (seed 002: 1.4 us/step at 1, 0.85 at 2,
        for about 25% more compile time); 1 compiles fastest, 4 is faster still on tiny models.

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError, TypeError: at call time, before anything is compiled, for data of
        inconsistent leading axes, ``params0`` that ``loss`` (or ``grad``) cannot take, a hand
        ``grad`` whose leaves differ from ``params0``'s in structure, shape or dtype, a
        concrete readable non-positive learning rate (see Learning rates above),
        ``batch_size > n``, a missing ``key``, ``steps <= 0``, ``record_every`` not dividing
        ``steps``.
      gradlab._validate.InvalidValueError: (a ``ValueError``) after an eager run whose value
        checks failed, naming the check, where (inputs or final parameters) and, for inputs,
        the first offending entry. Under ``jit``/``vmap`` the run is flagged instead.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, gradlab
      >>> from gradlab.derivations.mse import mse_mean, mse_mean_grad
      >>> X = jnp.linspace(0.0, 1.0, 8)[:, None]; y = 1.0 + 2.0 * X[:, 0]
      >>> p0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
      >>> res = gradlab.fit(mse_mean, p0, (X, y), optax.sgd(0.5), 2000, grad=mse_mean_grad)
      >>> bool(jnp.allclose(res.params["w"], 2.0))
      True
      >>> train = jax.jit(jax.vmap(lambda lr: gradlab.fit(mse_mean, p0, (X, y),
      ...                                                 optax.sgd(lr), 100)))
      >>> train(jnp.array([0.01, 0.1, 10.0])).diverged.tolist()
      [False, False, True]
    """
    spec = _spec(
        loss,
        params0,
        data,
        optimizer,
        steps,
        grad,
        key,
        batch_size,
        sampling,
        record_every,
        metrics,
        early_stop,
        divergence_bound,
        unroll,
    )
    precision = c.check_precision(precision)
    tol = None if early_stop is None else early_stop.tol
    key = key if spec.cfg.batch_size is not None else None
    with jax.default_matmul_precision(precision):
        out = _compiled(spec)(params0, tuple(data), key, tol, divergence_bound)
    out = dataclasses.replace(out, precision=precision)
    if v.is_concrete(out.invalid) and bool(out.invalid):
        _raise_invalid(out, loss, params0, data)
    return out


def _spec(
    loss: Callable[..., jax.Array],
    params0: PyTree,
    data: tuple,
    optimizer: optax.GradientTransformation,
    steps: int,
    grad: Callable[..., PyTree] | None,
    key: jax.Array | None,
    batch_size: int | None,
    sampling: str,
    record_every: int,
    metrics: dict[str, Callable[[PyTree], jax.Array]] | None,
    early_stop: EarlyStop | None,
    divergence_bound: float | jax.Array | None,
    unroll: int,
) -> _loop.Spec:
    """Check every argument from shapes (nothing compiled) and build the loop's static spec."""
    steps = v.static_int("steps", steps, low=1)
    record_every = v.static_int("record_every", record_every, low=1)
    if steps % record_every:
        raise ValueError(
            f"record_every must divide steps (the history has a fixed length); got steps={steps}, "
            f"record_every={record_every}"
        )
    unroll = v.static_int("unroll", unroll, low=1)
    data, n = c.check_data(data)
    c.check_params(params0)
    c.check_loss(loss, params0, data)
    if grad is not None:
        c.check_grad(grad, params0, data)
    metric_fns = c.check_metrics(metrics)
    for name, fn in metric_fns:
        c.check_loss(fn, params0, (), what=f"metrics[{name!r}]")
    batch_size = c.check_batching(batch_size, sampling, key, n)
    c.check_early_stop(early_stop)
    c.check_bound(divergence_bound)
    c.check_optimizer(optimizer, params0)
    cfg = FitConfig(
        steps=steps,
        record_every=record_every,
        batch_size=batch_size,
        sampling=sampling,
        patience=None if early_stop is None else int(early_stop.patience),
        unroll=unroll,
        n=n,
    )
    return _loop.Spec(loss, grad, optimizer, metric_fns, cfg)


def _compiled(spec: _loop.Spec) -> Callable[..., FitResult]:
    """The shared cached loop for an eager call; a fresh ``jax.jit`` under the caller's own
    trace (the caller's jit caches the whole program, and a shared cache would keep that trace's
    closures alive) or for a spec that cannot be hashed (a callable without ``__hash__``)."""
    try:
        hash(spec)
    except TypeError:
        return jax.jit(functools.partial(_loop.run, spec))
    if get_opaque_trace_state() != _EAGER:
        return jax.jit(functools.partial(_loop.run, spec))
    return functools.partial(_run, spec)


def _raise_invalid(out: FitResult, loss: Callable, params0: PyTree, data: tuple) -> None:
    """Raise the named error of an eager run that failed a value check. A check on concrete
    ``params0``/``data`` is re-run eagerly for its detail (the first offending index)."""
    reason = out.reasons().item()
    detail = None
    if reason.endswith(_loop.AT_START):
        try:
            loss(params0, *data)
        except ValueError as e:
            detail = e
    suffix = "" if detail is None else f": {detail}"
    raise v.InvalidValueError(f"fit: {reason}{suffix}") from detail
