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
into the rest of a vmapped batch. Early stopping (seed 002's assignment: "stop if improvement
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
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gradlab.train import _batching, _carry
from gradlab.train import _checks as c

PyTree = Any


@dataclasses.dataclass(frozen=True)
class EarlyStop:
    """Seed 002's early-stopping rule, eq. (4): stop after ``patience`` consecutive accepted
    steps whose full-data loss improvement is below ``tol`` (absolute).

    ``tol`` may be an array (vmapped over); ``patience`` is a Python int.
    """

    tol: float | jax.Array = 1e-6
    patience: int = 10


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns; a pytree (``precision`` is static aux data), so it crosses
    ``jit`` and ``vmap`` (under ``vmap`` every array field gains the leading batch axis).

    Attributes:
      params: final parameters (the last accepted ones for a diverged run; never NaN unless
        ``params0`` was).
      history: ``{"loss", "grad_norm", *metrics}``, each of shape ``(steps // record_every,)``,
        eq. (5), at full data. After a run freezes its entries repeat the frozen values.
      history_steps: ``(steps // record_every,)`` int, the step count each entry was taken at
        (``record_every, 2 record_every, ..., steps``).
      loss: full-data loss at ``params``.
      diverged: bool, the run hit eq. (2) (and froze).
      stopped_early: bool, the run met eq. (4).
      steps_taken: int32, accepted steps (``steps`` for a run that neither diverged nor stopped).
      opt_state: the optimizer state at ``params`` (e.g. for ``gradlab.optim.fista_iterate``,
        whose iterate lives in the state while ``params`` is the extrapolated point).
      precision: the matmul precision the loop was traced under.
    """

    params: PyTree
    history: dict[str, jax.Array]
    history_steps: jax.Array
    loss: jax.Array
    diverged: jax.Array
    stopped_early: jax.Array
    steps_taken: jax.Array
    opt_state: PyTree = None
    precision: str = "highest"


jax.tree_util.register_dataclass(
    FitResult,
    data_fields=[
        "params",
        "history",
        "history_steps",
        "loss",
        "diverged",
        "stopped_early",
        "steps_taken",
        "opt_state",
    ],
    meta_fields=["precision"],
)


class _Config(NamedTuple):
    steps: int
    record_every: int
    batch_size: int | None
    sampling: str
    patience: int | None
    unroll: int
    n: int | None


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
      divergence_bound: :math:`\beta` of eq. (2); ``None`` is ``1e6 * max(|L(params0)|, 1)``,
        ``float("inf")`` flags only non-finite losses. The initial loss is only checked for
        finiteness: a run that starts at a non-finite loss (or gradient) is flagged diverged
        with ``steps_taken == 0``, keeps ``params0``, and its history repeats that loss.
      precision: matmul precision the loop is traced under (static): ``"highest"`` (full
        float32 on GPU/TPU, the default), ``"tensorfloat32"``/``"default"`` to opt in to TF32.
      unroll: ``lax.scan`` unroll factor of the step loop (static). The default 2 halves the
        loop's own overhead, which dominates tiny models (seed 002: 1.4 us/step at 1, 0.85 at 2,
        for about 25% more compile time); 1 compiles fastest, 4 is faster still on tiny models.

    Returns:
      A :class:`FitResult`.

    Raises:
      ValueError, TypeError: at call time, before anything is compiled, for data of
        inconsistent leading axes, ``params0`` that ``loss`` (or ``grad``) cannot take, a
        concrete non-positive learning rate of an ``optax.inject_hyperparams`` optimizer,
        ``batch_size > n``, a missing ``key``, ``steps <= 0``, ``record_every`` not dividing
        ``steps``. A learning rate closed over by ``optax.sgd(lr)`` cannot be read back and is
        not checked.

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
    steps = c.static_int("steps", steps, low=1)
    record_every = c.static_int("record_every", record_every, low=1)
    if steps % record_every:
        raise ValueError(
            f"record_every must divide steps (the history has a fixed length); got steps={steps}, "
            f"record_every={record_every}"
        )
    unroll = c.static_int("unroll", unroll, low=1)
    precision = c.check_precision(precision)
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

    cfg = _Config(
        steps=steps,
        record_every=record_every,
        batch_size=batch_size,
        sampling=sampling,
        patience=None if early_stop is None else int(early_stop.patience),
        unroll=unroll,
        n=n,
    )
    run = functools.partial(_run, loss, grad, optimizer, metric_fns, cfg)
    tol = None if early_stop is None else early_stop.tol
    if batch_size is None:
        key = None
    with jax.default_matmul_precision(precision):
        out = jax.jit(run)(params0, data, key, tol, divergence_bound)
    return dataclasses.replace(out, precision=precision)


def _run(loss, grad, optimizer, metrics, cfg: _Config, params0, data, key, tol, bound):
    grad_fn = jax.grad(loss) if grad is None else grad
    if grad is None:
        value_and_grad = jax.value_and_grad(loss)
    else:

        def value_and_grad(p, *d):
            return loss(p, *d), grad(p, *d)

    batched = cfg.batch_size is not None
    if batched:
        sample = _batching.sampler(cfg.sampling)
        loss0, g0 = loss(params0, *data), None
    else:
        loss0, g0 = value_and_grad(params0, *data)
    bound = (
        1e6 * jnp.maximum(jnp.abs(loss0), 1.0)
        if bound is None
        else jnp.asarray(bound, dtype=loss0.dtype)
    )  # (2)
    ok0 = jnp.isfinite(loss0) & _carry.all_finite(params0) & _carry.all_finite(g0)
    state0 = (params0, optimizer.init(params0), g0)
    packing = _carry.Packing(state0)
    zero = jnp.zeros((), jnp.int32)
    counters0 = jnp.stack([zero, zero, zero, zero, (~ok0).astype(jnp.int32)])

    def unpack(buffers, loss_, counters) -> _carry.Carry:
        params, opt_state, grad_ = packing.unpack(buffers)
        step_, stall, taken, stopped, diverged = (counters[i] for i in range(5))
        return _carry.Carry(
            params, opt_state, loss_, grad_, step_, stall, stopped != 0, diverged != 0, taken
        )

    def step(packed):
        s = unpack(*packed)
        active = ~(s.stopped | s.diverged)
        if batched:
            idx = sample(key, s.step, cfg.n, cfg.batch_size)
            g = grad_fn(s.params, *_batching.take(data, idx))  # (1) on B_t
        else:
            g = s.grad  # (1), carried from the previous step's value_and_grad
        updates, opt_state = optimizer.update(g, s.opt_state, s.params)
        params = optax.apply_updates(s.params, updates)  # (1)
        if batched:
            new_loss, new_grad = loss(params, *data), None
        else:
            new_loss, new_grad = value_and_grad(params, *data)
        bad = (
            ~jnp.isfinite(new_loss)
            | (new_loss > bound)
            | ~_carry.all_finite(params)
            | ~_carry.all_finite(new_grad)
        )  # (2)
        accept = active & ~bad
        stall, stopped = s.stall, s.stopped
        if cfg.patience is not None:
            small = (s.loss - new_loss) < tol  # (4)
            stall = jnp.where(accept, jnp.where(small, stall + 1, 0), stall)
            stopped = stopped | (accept & (stall >= cfg.patience))
        new = packing.pack((params, opt_state, new_grad))
        buffers = tuple(jnp.where(accept, a, b) for a, b in zip(new, packed[0], strict=True))  # (3)
        kept_loss = jnp.where(accept, new_loss, s.loss)
        counters = jnp.stack(
            [
                s.step + 1,
                stall,
                s.taken + accept.astype(jnp.int32),
                stopped.astype(jnp.int32),
                (s.diverged | (active & bad)).astype(jnp.int32),  # (3)
            ]
        )
        return buffers, kept_loss, counters

    def record(packed) -> dict[str, jax.Array]:
        s = unpack(*packed)
        g = grad_fn(s.params, *data) if batched else s.grad
        hist = {"loss": s.loss, "grad_norm": optax.tree.norm(g)}  # (5)
        for name, fn in metrics:
            hist[name] = fn(s.params)
        return hist

    def block(s, _):
        if cfg.record_every == 1:
            s = step(s)
        else:
            s, _ = lax.scan(
                lambda t, _: (step(t), None), s, None, length=cfg.record_every, unroll=cfg.unroll
            )
        return s, record(s)

    n_records = cfg.steps // cfg.record_every
    outer_unroll = cfg.unroll if cfg.record_every == 1 else 1
    packed, history = lax.scan(
        block, (packing.pack(state0), loss0, counters0), None, length=n_records, unroll=outer_unroll
    )
    last = unpack(*packed)
    return FitResult(
        params=last.params,
        history=history,
        history_steps=cfg.record_every * jnp.arange(1, n_records + 1, dtype=jnp.int32),
        loss=last.loss,
        diverged=last.diverged,
        stopped_early=last.stopped,
        steps_taken=last.taken,
        opt_state=last.opt_state,
    )
