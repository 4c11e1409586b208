r"""The second stage: the hand gradient, ``jax.grad`` and the loss value, raveled, as
:class:`Witnesses`.

Hand. ``hand(*args)`` is traced with ``jax.jit`` when jax can trace it; when tracing raises (a
numpy gradient calls ``np.asarray`` on a tracer, writes into an array, ...) it is called eagerly
on *copies* of the arguments (numpy arrays the hand may write into; the caller's arrays are
never handed over), and ``Witnesses.call`` says so. Nothing is remembered between calls: each
call tries to trace again.

Autodiff. ``jax.value_and_grad(loss, argnums)`` under ``jax.jit``.

When the finite differences are wanted too (the float64 problem), :func:`gather_with_fd` runs
hand, value, autodiff and the differences (``_differences`` eq. (1)-(2)) in one jitted program (one
compile, not three), and falls back to the one-by-one path when that program does not trace.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _differences, _tree
from gradlab.check._problem import Problem


@dataclasses.dataclass(frozen=True)
class HandCall:
    """How the hand gradient was obtained: traced under ``jit``, or eagerly (and why)."""

    traced: bool
    reason: str = ""

    @property
    def how(self) -> str:
        if self.traced:
            return "traced with jax.jit"
        return f"called eagerly on numpy copies (not traceable: {self.reason})"


@dataclasses.dataclass(frozen=True)
class Witnesses:
    """Hand and autodiff gradients raveled to float64 (the order of ``ravel_pytree``), the
    loss value, the value the hand returned with its gradient (``value_and_grad``), the hand's
    leaf dtypes and how it was called."""

    hand: np.ndarray
    autodiff: np.ndarray
    value: float
    hand_value: float | None
    hand_dtypes: tuple[np.dtype, ...]
    call: HandCall


def check_scalar_loss(loss: Callable, args: tuple, name: str = "loss") -> None:
    """Raise a clear error unless ``name(*args)`` is a real scalar."""
    out = jax.eval_shape(loss, *args)
    shape = getattr(out, "shape", None)
    if shape != ():
        raise ValueError(
            f"{name}(*args) must return a scalar (shape ()); got "
            f"{'shape ' + str(shape) if shape is not None else type(out).__name__}"
            + (" -- reduce it (sum or mean) or index the single element" if shape else "")
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{name}(*args) must return a floating scalar; got dtype {out.dtype}")


@functools.lru_cache(maxsize=256)
def value_and_grad_program(loss: Callable, argnums) -> Callable:
    return jax.jit(jax.value_and_grad(loss, argnums))


def autodiff(loss: Callable, args: tuple, argnums, name: str = "loss"):
    """``(value, jax.grad(loss, argnums)(*args))``; a non-scalar loss raises ``ValueError``."""
    try:
        value, grad = value_and_grad_program(loss, argnums)(*args)
    except TypeError:
        check_scalar_loss(loss, args, name)  # raises the clear error when that was the cause
        raise
    if np.shape(value) != ():
        check_scalar_loss(loss, args, name)
    return value, grad


@functools.lru_cache(maxsize=256)
def _jit(fn: Callable) -> Callable:
    return jax.jit(fn)


def first_line(err: BaseException) -> str:
    """``"TypeError: <the message's first line>"``, at most 160 characters (for a report)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:160]


def call_hand(fn: Callable, args: tuple) -> tuple[object, HandCall]:
    """``fn(*args)``, traced under ``jit`` when possible, else eagerly on copies."""
    try:
        return _jit(fn)(*args), HandCall(True)
    except Exception as err:  # noqa: BLE001 - any tracing failure means: call it eagerly
        reason = first_line(err)
    return fn(*_tree.copies(args)), HandCall(False, reason)


@functools.lru_cache(maxsize=256)
def _fused(loss: Callable, hand: Callable, argnums, chunk: int) -> Callable:
    """Hand, value, autodiff and the finite differences in one program."""

    def run(args, h, idx):
        value, ad = jax.value_and_grad(loss, argnums)(*args)
        fd = _differences.fd_values(loss, argnums, chunk, args, h, idx)
        return hand(*args), value, ad, fd

    return jax.jit(run)


def _flat(tree_leaves: list) -> np.ndarray:
    if not tree_leaves:
        return np.zeros(0)
    return np.concatenate([np.asarray(g, np.float64).ravel() for g in tree_leaves])


def hand_part(problem: Problem, raw_hand) -> tuple[np.ndarray, float | None, tuple]:
    """The hand's gradient raveled (tree and shapes checked), its value (``value_and_grad``)
    and its leaf dtypes."""
    hand_tree, hand_value = raw_hand, None
    if problem.value_and_grad:
        if not (isinstance(raw_hand, (tuple, list)) and len(raw_hand) == 2):
            raise ValueError(
                "value_and_grad=True: grad(*args) must return (value, gradient); got "
                f"{type(raw_hand).__name__}"
                + (f" of length {len(raw_hand)}" if isinstance(raw_hand, (tuple, list)) else "")
            )
        hand_value, hand_tree = raw_hand
        if np.shape(hand_value) != ():
            raise ValueError(
                "value_and_grad=True: the value grad(*args) returns must be a scalar; got "
                f"shape {np.shape(hand_value)}"
            )
        hand_value = float(np.asarray(hand_value, np.float64))
    leaves = list(problem.tree_leaves)
    h = _tree.check_grad_tree("grad(*args)", hand_tree, problem.params, problem.argnums, leaves)
    dtypes = tuple(np.dtype(getattr(g, "dtype", np.float64)) for g in h)
    return _flat(h), hand_value, dtypes


def autodiff_part(problem: Problem, ad_tree) -> np.ndarray:
    """``jax.grad``'s tree checked against the parameters, raveled to float64."""
    leaves = list(problem.tree_leaves)
    a = _tree.check_grad_tree("jax.grad(loss)", ad_tree, problem.params, problem.argnums, leaves)
    return _flat(a)


def assemble(problem: Problem, raw_hand, call: HandCall, value, ad_tree) -> Witnesses:
    """Check the trees and shapes of both gradients against the parameters; ravel them."""
    if np.shape(value) != ():
        check_scalar_loss(problem.loss, problem.args)
    hand, hand_value, dtypes = hand_part(problem, raw_hand)
    return Witnesses(hand, autodiff_part(problem, ad_tree), float(value), hand_value, dtypes, call)


def gather(problem: Problem) -> Witnesses:
    """The witnesses of ``problem``, one by one."""
    raw, call = call_hand(problem.hand, problem.args)
    value, ad = autodiff(problem.loss, problem.args, problem.argnums)
    return assemble(problem, raw, call, value, ad)


def gather_with_fd(problem: Problem, fd_budget: int) -> tuple[Witnesses, _differences.FD]:
    """The witnesses and the finite differences (every element) of ``problem``: one fused
    program when everything traces, else one by one."""
    fused = _try_fused(problem, fd_budget)
    if fused is not None:
        return fused
    wit = gather(problem)
    fd = _differences.differences(problem.loss, problem.args, problem.argnums, wit.value, fd_budget)
    return wit, fd


def _try_fused(problem: Problem, budget: int):
    x, _ = problem.ravel()
    h = _differences.steps(x, x.dtype)
    idx = np.arange(x.size, dtype=np.int32)
    chunk = _differences.chunk_size(problem.args, max(1, idx.size), budget)
    try:
        program = _fused(problem.loss, problem.hand, problem.argnums, chunk)
        raw, value, ad, vals = program(problem.args, jnp.asarray(h), idx)
    except Exception:  # noqa: BLE001 - the one-by-one path raises the precise error
        return None
    wit = assemble(problem, raw, HandCall(True), value, ad)
    fd = _differences.FD.from_values(
        np.asarray(vals, np.float64).reshape(-1, 4), h, wit.value, _differences.eps_of(x.dtype)
    )
    return wit, fd
