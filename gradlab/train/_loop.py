r"""The traced body of :func:`gradlab.fit`: one step, one record, the scan and the verdicts.

Equation numbers are those of :mod:`gradlab.train._fit`. The step function reads and writes a
named :class:`~gradlab.train._carry.Carry`; the scan carries its packed form, and packing
happens only at the scan boundary (:func:`_scan_steps`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gradlab import _validate as v
from gradlab.optim import learning_rates
from gradlab.train import _batching
from gradlab.train._carry import Carry, Packing, all_finite
from gradlab.train._types import FitConfig, FitResult, default_divergence_bound, rose_above_start

PyTree = Any
Metrics = tuple[tuple[str, Callable[[PyTree], jax.Array]], ...]

AT_START = " (in params0 or data)"
AT_END = " (at the final params: training left the loss's domain)"


class Spec(NamedTuple):
    """What a compiled loop is specialized on: static and hashable (the jit cache key)."""

    loss: Callable[..., jax.Array]
    grad: Callable[..., PyTree] | None
    optimizer: optax.GradientTransformation
    metrics: Metrics
    cfg: FitConfig


class Problem(NamedTuple):
    """Everything a step reads besides the carry: the spec and the traced inputs."""

    spec: Spec
    data: tuple
    key: jax.Array | None
    tol: jax.Array | None
    bound: jax.Array
    frozen: jax.Array  # bool: invalid input, the run never moves


def _value_and_grad(spec: Spec, params: PyTree, data: tuple) -> tuple[jax.Array, PyTree]:
    if spec.grad is None:
        return jax.value_and_grad(spec.loss)(params, *data)
    return spec.loss(params, *data), spec.grad(params, *data)


def _gradient(spec: Spec, params: PyTree, data: tuple) -> PyTree:
    return jax.grad(spec.loss)(params, *data) if spec.grad is None else spec.grad(params, *data)


def step(pb: Problem, s: Carry) -> tuple[Carry, jax.Array]:
    """One optimizer step, eqs. (1)-(4): the proposal and whether to accept it.

    Returns ``(proposal, accept)``: the proposal's ``params``, ``opt_state``, ``grad`` and
    ``loss`` are the step's new values, to be kept only where ``accept`` (the freeze (3),
    applied to the packed carry by :meth:`Packing.select`); its counters are final.
    """
    spec, cfg = pb.spec, pb.spec.cfg
    active = ~(s.stopped | s.diverged | pb.frozen)
    batched = cfg.batch_size is not None
    if cfg.batch_size is not None:
        assert pb.key is not None and cfg.n is not None  # set with batch_size (make_problem)
        idx = _batching.sampler(cfg.sampling)(pb.key, s.step, cfg.n, cfg.batch_size)
        g = _gradient(spec, s.params, _batching.take(pb.data, idx))  # (1) on B_t
    else:
        g = s.grad  # (1), carried from the previous step's value_and_grad
    updates, opt_state = spec.optimizer.update(g, s.opt_state, s.params)
    params = optax.apply_updates(s.params, updates)  # (1)
    if batched:
        new_loss, new_grad = spec.loss(params, *pb.data), None
    else:
        new_loss, new_grad = _value_and_grad(spec, params, pb.data)
    bad = (
        ~jnp.isfinite(new_loss)
        | (new_loss > pb.bound)
        | ~all_finite(params)
        | ~all_finite(new_grad)
    )  # (2)
    accept = active & ~bad
    stall, stopped = s.stall, s.stopped
    if cfg.patience is not None:
        assert pb.tol is not None  # set with patience (make_problem)
        small = (s.loss - new_loss) < pb.tol  # (4)
        stall = jnp.where(accept, jnp.where(small, stall + 1, 0), stall)
        stopped = stopped | (accept & (stall >= cfg.patience))
    proposal = Carry(
        params=params,
        opt_state=opt_state,
        grad=new_grad,
        loss=new_loss,
        step=s.step + 1,
        stall=stall,
        taken=s.taken + accept.astype(jnp.int32),
        stopped=stopped,
        diverged=s.diverged | (active & bad),  # (3)
    )
    return proposal, accept


def record(pb: Problem, s: Carry) -> dict[str, jax.Array]:
    """The history entry at ``s``, eq. (5)."""
    batched = pb.spec.cfg.batch_size is not None
    g = _gradient(pb.spec, s.params, pb.data) if batched else s.grad
    hist = {"loss": s.loss, "grad_norm": optax.tree.norm(g)}  # (5)
    for name, fn in pb.spec.metrics:
        hist[name] = fn(s.params)
    return hist


def _scan_steps(pb: Problem, packing: Packing, carry0: Carry) -> tuple[Carry, dict]:
    """``steps`` steps, a record every ``record_every``; the carry packed across the scan."""
    cfg = pb.spec.cfg

    def one(packed, _):  # the scan boundary: unpack, step by name, pack, freeze (3)
        proposal, accept = step(pb, packing.unpack(packed))
        return packing.select(accept, packing.pack(proposal), packed), None

    def block(packed, _):
        if cfg.record_every == 1:
            packed, _ = one(packed, None)
        else:
            packed, _ = lax.scan(one, packed, None, length=cfg.record_every, unroll=cfg.unroll)
        return packed, record(pb, packing.unpack(packed))

    n_records = cfg.steps // cfg.record_every
    unroll = cfg.unroll if cfg.record_every == 1 else 1
    packed, history = lax.scan(block, packing.pack(carry0), None, length=n_records, unroll=unroll)
    return packing.unpack(packed), history


def _learning_rate_checks(optimizer: optax.GradientTransformation, state: PyTree) -> list:
    """``(message, failed)`` for every learning rate the optimizer exposes (traced rule of
    ``gradlab.optim._learning_rate``: > 0, a schedule's step-0 value >= 0)."""
    out = []
    for lr in learning_rates(optimizer, state):
        value = jnp.asarray(lr.value)
        if lr.scheduled:
            out.append((f"the optimizer's scheduled {lr.name} must be >= 0", ~jnp.all(value >= 0)))
        else:
            out.append((f"the optimizer's {lr.name} must be > 0", ~jnp.all(value > 0)))
    return out


def _loss_checks(spec: Spec, params: PyTree, data: tuple, where: str) -> list:
    """The value checks ``loss(params, *data)`` makes, traced, their messages suffixed."""
    with v.collect_checks() as failures:
        spec.loss(params, *data)
    return [(m + where, failed) for m, failed in failures]


def run(
    spec: Spec,
    params0: PyTree,
    data: tuple,
    key: jax.Array | None,
    tol: jax.Array | None,
    bound: jax.Array | None,
) -> FitResult:
    """The whole loop, a pure function of its arrays (``spec`` static)."""
    cfg = spec.cfg
    if cfg.batch_size is None:
        loss0, g0 = _value_and_grad(spec, params0, data)
    else:
        loss0, g0 = spec.loss(params0, *data), None
    bound = default_divergence_bound(loss0) if bound is None else jnp.asarray(bound, loss0.dtype)
    opt_state0 = spec.optimizer.init(params0)
    start = _loss_checks(spec, params0, data, AT_START)
    start += _learning_rate_checks(spec.optimizer, opt_state0)
    frozen = v.first_failure(start).bad
    ok0 = jnp.isfinite(loss0) & all_finite(params0) & all_finite(g0)
    zero = jnp.zeros((), jnp.int32)
    carry0 = Carry(
        params0, opt_state0, g0, loss0, zero, zero, zero, jnp.array(False), ~ok0 & ~frozen
    )
    pb = Problem(spec, data, key, tol, bound, frozen)
    last, history = _scan_steps(pb, Packing(params0, opt_state0, g0), carry0)
    verdict = v.first_failure(start + _loss_checks(spec, last.params, data, AT_END))
    diverged = last.diverged | (rose_above_start(last.loss, loss0) & ~frozen)
    return FitResult(
        params=last.params,
        history=history,
        history_steps=cfg.record_every
        * jnp.arange(1, history["loss"].shape[0] + 1, dtype=jnp.int32),
        loss=last.loss,
        diverged=diverged,
        stopped_early=last.stopped & ~diverged,
        steps_taken=last.taken,
        opt_state=last.opt_state,
        invalid=verdict.bad,
        invalid_reason=verdict.reason,
        checks=verdict.messages,
    )
