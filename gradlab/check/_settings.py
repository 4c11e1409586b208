"""The call's options, validated once into :class:`Settings` (what every stage reads)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import jax
import numpy as np

from gradlab.check import _compare
from gradlab.check._differences import DEFAULT_FD_MEMORY_BUDGET

MODES = ("full", "fast")
DEFAULT_DIRECTIONS = 4


def seed_words(key) -> tuple[int, ...]:
    """Seed words for numpy's generator from ``None`` (0), an int or a jax PRNG key (typed
    ``jax.random.key`` or raw ``jax.random.PRNGKey``): one meaning of ``key`` in check/."""
    if key is None:
        return (0,)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"key must be a non-negative int or a jax PRNG key; got {key}")
        return (int(key),)
    if isinstance(key, jax.Array):
        is_typed = jax.numpy.issubdtype(key.dtype, jax.dtypes.prng_key)
        data = jax.random.key_data(key) if is_typed else key
        return tuple(int(w) for w in np.asarray(data, np.uint64).ravel())
    raise TypeError(f"key must be None, an int or a jax PRNG key; got {type(key).__name__}")


def _mapping(name: str, m) -> dict | None:
    if m is None:
        return None
    if not isinstance(m, Mapping):
        raise TypeError(f"{name} must be a mapping {{name: callable}}; got {type(m).__name__}")
    for k, f in m.items():
        if not isinstance(k, str) or not callable(f):
            raise TypeError(f"{name} must map names (str) to callables; got {k!r}: {f!r}")
    return dict(m)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The call's options, validated on construction (errors name the argument): what every
    stage after ``Problem`` reads. ``key`` becomes ``seed``, the words of numpy's generator."""

    mode: str = "full"
    rtol: float | None = None
    atol: float | None = None
    key: object = None
    directions: int = DEFAULT_DIRECTIONS
    n_worst: int = 5
    fd_budget: int = DEFAULT_FD_MEMORY_BUDGET
    terms: Mapping[str, Callable] | None = None
    term_grads: Mapping[str, Callable] | None = None
    fd_elements: int | str = "auto"  # the scaled path's sample of differences (``_scale``)
    seed: tuple[int, ...] = dataclasses.field(init=False, default=(0,))

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {self.mode!r}")
        for name, v in (
            ("directions", self.directions),
            ("n_worst", self.n_worst),
            ("fd_memory_budget", self.fd_budget),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        terms, term_grads = _mapping("terms", self.terms), _mapping("term_grads", self.term_grads)
        if term_grads and (not terms or set(term_grads) - set(terms)):
            raise ValueError(
                f"term_grads names {sorted(term_grads)} but terms names {sorted(terms or {})}; "
                "every term gradient needs its term"
            )
        set_ = functools.partial(object.__setattr__, self)
        set_("rtol", _compare.check_tolerance("rtol", self.rtol))
        set_("atol", _compare.check_tolerance("atol", self.atol))
        set_("terms", terms)
        set_("term_grads", term_grads)
        set_("seed", seed_words(self.key))
        fe = self.fd_elements
        is_int = isinstance(fe, (int, np.integer)) and not isinstance(fe, bool)
        if not (fe in ("auto", "all") if isinstance(fe, str) else is_int and fe >= 0):
            raise ValueError(
                "fd_elements must be 'auto', 'all' or an int >= 0 (agreeing elements sampled); "
                f"got {fe!r}"
            )
        set_("fd_elements", fe if isinstance(fe, str) else int(fe))
