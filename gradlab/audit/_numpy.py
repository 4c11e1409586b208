"""Make a numpy loss traceable by jax: the same code, with ``numpy`` rebound to ``jax.numpy``.

The loss's globals are copied and, in the copy, every name bound to the ``numpy`` module (``np``)
points to a stand-in that answers with ``jax.numpy``'s function of the same name (falling back to
numpy's for constants and dtypes); ``math`` likewise; ``float(x)`` passes a traced value through
instead of demanding a concrete number. Every function and class the cells defined is recompiled
against the copy, so ``loss`` calling ``entropy`` from the same namespace traces too. ``np.random``
cannot be rebound (a random draw inside a loss has no derivative): it raises ``Untraceable``.
Nothing of the user's namespace is modified.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import math
import types
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np


class Untraceable(TypeError):
    """Raised by the stand-in for what has no jax.numpy equivalent (``np.random``)."""


class _Alias(types.ModuleType):
    """``np`` (or ``math``) answering with jax.numpy where jax.numpy has the name."""

    def __init__(self, original: types.ModuleType):
        super().__init__(original.__name__)
        self._original = original

    def __getattr__(self, name: str):
        if name == "random":
            raise Untraceable(
                f"{self._original.__name__}.random inside the loss: a random draw has no "
                "derivative and cannot be traced"
            )
        if hasattr(jnp, name):
            return getattr(jnp, name)
        return getattr(self._original, name)


def _float(x=0.0):
    if isinstance(x, jax.core.Tracer):
        return x
    return builtins.float(x)


TWINS = {
    "numpy": "jax.numpy",
    "scipy.special": "jax.scipy.special",
    "scipy.stats": "jax.scipy.stats",
}


def jax_twin(v) -> tuple[object, str] | None:
    """``(jax function, its name)`` for a numpy or scipy.special function imported by name
    (``from numpy.linalg import norm``, ``from scipy.special import expit``); else None."""
    name = getattr(v, "__name__", "")
    if isinstance(v, np.ufunc) and getattr(v, "__module__", None) is None:
        mod = "scipy.special"  # scipy's ufuncs (expit, xlogy) carry no module
    elif _is_numpy_function(v) or _is_scipy_function(v):
        mod = v.__module__
    else:
        return None
    for src, dst in TWINS.items():
        if mod == src or mod.startswith(src + "."):
            sub = [x for x in mod[len(src) :].split(".") if x and not x.startswith("_")]
            for k in range(len(sub), -1, -1):  # jax.numpy.linalg, then jax.numpy
                candidate = ".".join([dst, *sub[:k]])
                try:
                    target = importlib.import_module(candidate)
                except ImportError:
                    continue
                if hasattr(target, name):
                    return getattr(target, name), f"{candidate}.{name}"
    return None


def _is_scipy_function(v) -> bool:
    try:
        mod = getattr(v, "__module__", None) or ""
    except Exception:  # noqa: BLE001 - proxies may raise anything
        return False
    return isinstance(mod, str) and mod.startswith("scipy.") and callable(v)


def _is_numpy_function(v) -> bool:
    try:
        mod = getattr(v, "__module__", None) or ""
    except Exception:  # noqa: BLE001 - proxies may raise anything
        return False
    if not isinstance(mod, str):
        return False
    return (mod == "numpy" or mod.startswith("numpy.")) and callable(v)


@contextlib.contextmanager
def numpy_rules() -> Iterator[None]:
    """Trace rebound numpy code as numpy would run it, whatever the caller's jax config.

    float64 on; numpy's broadcasting (``(n, 1) + (1,)`` is legal numpy, which
    ``jax_numpy_rank_promotion="raise"`` refuses) and numpy's implicit dtype promotion
    (``int * float`` is legal numpy, which ``jax_numpy_dtype_promotion="strict"`` refuses).
    """
    with (
        jax.enable_x64(True),
        jax.numpy_rank_promotion("allow"),
        jax.numpy_dtype_promotion("standard"),
    ):
        yield


class Rebound:
    """A copy of a namespace with numpy rebound to jax.numpy, and its recompiled functions."""

    def __init__(self, namespace: dict, cell_files: set[str]):
        self.globals: dict = dict(namespace)
        self.aliases: list[str] = []
        self._cell_files = cell_files
        self._classes: dict[type, type] = {}
        for name, value in namespace.items():
            if not isinstance(name, str) or name.startswith("__"):
                continue
            if value is np:
                self.globals[name] = _Alias(np)
                self.aliases.append(f"{name} -> jax.numpy")
            elif value is math:
                self.globals[name] = _Alias(math)
                self.aliases.append(f"{name} -> jax.numpy (math)")
            elif (twin := jax_twin(value)) is not None:
                self.globals[name] = twin[0]
                self.aliases.append(f"{name} -> {twin[1]}")
            elif value is getattr(np, "linalg", None):
                self.globals[name] = jnp.linalg
                self.aliases.append(f"{name} -> jax.numpy.linalg")
        self.globals["float"] = _float
        self.skipped: list[str] = []
        for name, value in namespace.items():
            try:
                if isinstance(value, types.FunctionType) and self._ours(value):
                    self.globals[name] = self.function(value)
                elif isinstance(value, type) and self._ours_class(value):
                    self.globals[name] = self.cls(value)
            except Exception as err:  # noqa: BLE001 - a class that refuses subclassing stays as is
                self.skipped.append(f"{name} ({type(err).__name__})")

    def describe(self) -> str:
        skipped = f"; not recompiled: {', '.join(self.skipped)}" if self.skipped else ""
        return (
            "numpy rebound to jax.numpy in the loss's globals ("
            + ", ".join(self.aliases or ["no numpy name found"])
            + f"; float() passes traced values through{skipped})"
        )

    def _ours(self, fn) -> bool:
        return getattr(getattr(fn, "__code__", None), "co_filename", "") in self._cell_files

    def _ours_class(self, cls: type) -> bool:
        return any(isinstance(v, types.FunctionType) and self._ours(v) for v in vars(cls).values())

    def function(self, fn: types.FunctionType) -> types.FunctionType:
        """``fn`` recompiled against the rebound globals (same code, defaults and closure)."""
        if not self._ours(fn):
            return fn
        out = types.FunctionType(
            fn.__code__, self.globals, fn.__name__, fn.__defaults__, fn.__closure__
        )
        out.__kwdefaults__ = fn.__kwdefaults__
        out.__qualname__ = fn.__qualname__
        return out

    def cls(self, cls: type) -> type:
        """A subclass of ``cls`` whose methods are recompiled against the rebound globals."""
        if cls not in self._classes:
            body: dict[str, object] = {
                k: self.function(v)
                for k, v in vars(cls).items()
                if isinstance(v, types.FunctionType)
            }
            body["__module__"] = cls.__module__
            self._classes[cls] = type(cls.__name__, (cls,), body)
        return self._classes[cls]

    def instance(self, obj):
        """``obj`` seen through its rebound class (call on a copy: this changes its class)."""
        cls = type(obj)
        if self._ours_class(cls):
            obj.__class__ = self.cls(cls)
        return obj
