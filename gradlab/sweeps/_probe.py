"""The probe: trace one lane of ``train`` (never run it) and check what it returns.

Everything a sweep can refuse is refused here, before any configuration runs: a ``train`` that
returns Python or NumPy values, a PRNG key or complex numbers in a table column, closes over a
leaked tracer, needs a concrete hyperparameter, or whose columns clash with grid names. The
trace also gives the output shapes (for the chunk plan and the checkpoint's file checks) and the
program's :class:`~gradlab.sweeps._fingerprint.Fingerprint`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradlab._validate import path_name
from gradlab.sweeps import _fingerprint as fp
from gradlab.sweeps._grid import Grid
from gradlab.sweeps._result import columns_from_outputs


def config_key(hparams: Mapping[str, Any], index) -> jax.Array:
    """The key of configuration ``index``, eq. (1) of ``_run``: from ``hparams["seed"]`` when
    present, else ``fold_in(key(0), index)``."""
    if "seed" in hparams:
        return jax.random.key(hparams["seed"])
    return jax.random.fold_in(jax.random.key(0), index)


def lane_fn(train: Callable) -> Callable:
    """``lane(hparams, index) = train(hparams, config_key(hparams, index))``."""

    def lane(hparams, index):
        return train(hparams, config_key(hparams, index))

    return lane


class Probe(NamedTuple):
    """What tracing one lane tells: output shapes and the program's two digests."""

    shapes: Any  # pytree of jax.ShapeDtypeStruct, one configuration's outputs
    program: str  # sha256 of the jaxpr text
    constants: str  # sha256 of every closed-over array


_LEAK = (
    "train closes over a tracer leaked from another jax transformation (e.g. an array "
    "captured inside a jitted function); train must be a pure function of (hparams, key) "
    "and concrete arrays"
)


def _check_leaf_types(out: Any) -> None:
    if not jax.tree.leaves(out):
        raise TypeError("train returned no arrays; it must return a pytree of jax arrays")
    for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]:
        where = path_name("", path) or "the output"
        if not isinstance(leaf, jax.Array | jax.core.Tracer):
            raise TypeError(
                f"train returned a {type(leaf).__name__} ({leaf!r:.60}) at {where}, not a jax "
                "array computed from (hparams, key): a Python or NumPy value is fixed when train "
                "is traced, so it cannot differ between configurations (is train pure? use "
                "jnp operations, not float(), .item() or numpy, on its inputs)"
            )
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise TypeError(
                f"train returned a PRNG key at {where}; a sweep stores arrays of numbers: "
                "return jax.random.key_data(key) instead"
            )


def _trace(train: Callable, grid: Grid, precision: str):
    hp = {k: jax.ShapeDtypeStruct((), a.dtype) for k, a in grid.compute_values().items()}
    idx = jax.ShapeDtypeStruct((), jnp.int32)
    lane = lane_fn(train)

    def probe(hp, idx):
        out = lane(hp, idx)
        _check_leaf_types(out)
        return out

    try:
        with jax.default_matmul_precision(precision):
            return jax.make_jaxpr(probe, return_shape=True)(hp, idx)
    except jax.errors.UnexpectedTracerError as err:
        raise ValueError(_LEAK) from err
    except (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerIntegerConversionError,
        jax.errors.TracerArrayConversionError,
    ) as err:
        raise ValueError(
            "train needs the concrete value of a hyperparameter (or the key) while tracing: "
            "an output shape, a Python if, int(), float() or numpy on it. Every configuration "
            "of a sweep runs in one vmapped program, so output shapes and Python control flow "
            "must not depend on grid values; close over such a value instead (one sweep per "
            f"value) or use jnp.where / lax.cond. Grid names: {list(grid.names)}"
        ) from err


def _check_columns(shapes: Any, grid: Grid, precision: str) -> None:
    """The table columns ``train``'s outputs give: no clash with grid names, and real numbers
    (a table is written as CSV and JSON, which hold no complex numbers)."""
    fake = jax.tree.map(lambda s: np.zeros((1, *s.shape), s.dtype), shapes)
    cols = columns_from_outputs(fake, 1, precision)
    clash = set(cols) & (set(grid.names) | {"index"})
    if clash:
        raise ValueError(
            f"train's output columns {sorted(clash)} clash with grid names; rename one of them"
        )
    for name, col in cols.items():
        real = col.dtype == np.bool_ or jnp.issubdtype(col.dtype, jnp.integer)
        if not (real or jnp.issubdtype(col.dtype, jnp.floating) or col.dtype.kind == "U"):
            raise TypeError(
                f"train's output {name!r} is {col.dtype}, a table column must hold real numbers "
                "(CSV and JSON have no complex type): return jnp.real / jnp.imag / jnp.abs of it"
            )


def probe(train: Callable, grid: Grid, precision: str) -> Probe:
    """Trace one lane, check it (see the module docstring), and digest its program."""
    closed, shapes = _trace(train, grid, precision)
    if any(isinstance(c, jax.core.Tracer) for c in closed.consts):
        raise ValueError(_LEAK)
    _check_columns(shapes, grid, precision)
    program = fp.sha256_text(fp.program_text(closed))
    return Probe(shapes, program, fp.constants_digest(closed))


def fingerprint(
    p: Probe, grid: Grid, precision: str, lane_block: int, device: Any
) -> fp.Fingerprint:
    """The sweep's :class:`~gradlab.sweeps._fingerprint.Fingerprint`."""
    return fp.Fingerprint(
        program=p.program,
        constants=p.constants,
        grid=grid.fingerprint(),
        outputs=fp.outputs_digest(p.shapes),
        precision=precision,
        lane_block=int(lane_block),
        versions=fp.versions(device),
        size=grid.size,
    )
