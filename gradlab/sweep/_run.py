r"""``sweep``: ``train`` over a grid as one compiled, sharded, chunked, resumable computation.

For a grid :math:`G` (eq. (1) of ``_grid``) and a pure ``train(hparams, key) -> pytree``, the
sweep computes, with no Python loop over configurations,

.. math::  \mathrm{out}_i = \mathrm{train}(G_i, \kappa_i), \qquad
           \kappa_i = \begin{cases} \mathtt{key}(G_i[\text{"seed"}]) & \text{"seed" in } G \\
           \mathtt{fold\_in}(\mathtt{key}(0), i) & \text{otherwise} \end{cases}            \tag{1}

Layout of a chunk. The configurations are cut into *lane blocks* of :math:`B` lanes
(``lane_block``); each device runs ``vmap(train)`` over one block at a time, looping
(``lax.map``) over its :math:`k` blocks, under ``shard_map`` over a 1-D mesh of all devices:

.. math::  \text{chunk} = \underbrace{D}_{\text{devices, shard\_map}} \times
           \underbrace{k}_{\text{lax.map}} \times \underbrace{B}_{\text{vmap}}               \tag{2}

Why blocks (bitwise reproducibility). ``vmap`` turns a matrix-vector product into a matrix
product over lanes, and XLA:CPU's matrix product sums in an order that depends on the number of
lanes (its cache blocking): measured, a lane of a 64-lane ``vmap`` differs in the last bits from
the same configuration in a 32-lane one, and from ``jax.jit(train)`` alone. With a fixed block
:math:`B`, every lane is computed by the same per-block program whatever its position, its
neighbours, its chunk, the chunk size, the number of devices or processes: a lane equals the same
configuration run alone (a sweep of that one configuration with the same ``lane_block``) bit for
bit, and with ``lane_block=1`` (no vectorization) it equals ``jax.jit(train)(hparams, key)`` bit
for bit. ``shard_map`` (not ``jit``'s automatic partitioner) guarantees each device runs exactly
that program on its own lanes, with no cross-device reduction.

Precision. The whole sweep is traced under ``jax.default_matmul_precision(precision)``:
``"highest"`` (the default) is full float32 on every backend; ``"tensorfloat32"`` (or
``"default"``) lets GPUs use TF32 tensor cores, faster and about 1e-3 relative per product.
Every row records the precision it ran under.

Several hosts (GPU clusters, TPU pods). The same call works after
``jax.distributed.initialize()`` on every process (SLURM, Open MPI and TPU pods fill the arguments
in; otherwise pass ``coordinator_address``, ``num_processes``, ``process_id``): ``jax.devices()``
is then the global device list, the mesh spans every host, each process feeds its own devices'
rows (``jax.make_array_from_callback``), and the chunk's outputs are gathered to every process
(``multihost_utils.process_allgather``), so every process returns the full table. Run the same
script on every host (``srun python sweep.py``; on a TPU pod ``gcloud ... tpu-vm ssh --worker=all
--command="python sweep.py"``); only process 0 writes the checkpoint, which should sit on a shared
file system for a resume to see it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gradlab.sweep import _chunks
from gradlab.sweep._checkpoint import Checkpoint
from gradlab.sweep._grid import Grid, make_grid
from gradlab.sweep._progress import Progress, ProgressInfo
from gradlab.sweep._result import SweepResult, columns_from_outputs
from gradlab.train import PRECISIONS


def config_key(hparams: Mapping[str, Any], index) -> jax.Array:
    """The key of configuration ``index``, eq. (1): from ``hparams["seed"]`` when present."""
    if "seed" in hparams:
        return jax.random.key(hparams["seed"])
    return jax.random.fold_in(jax.random.key(0), index)


def _lane(train: Callable) -> Callable:
    def lane(hparams, index):
        return train(hparams, config_key(hparams, index))  # (1)

    return lane


def _check_outputs(out: Any) -> None:
    leaves = jax.tree.leaves(out)
    if not leaves:
        raise TypeError("train returned no arrays; it must return a pytree of jax arrays")
    for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]:
        if not isinstance(leaf, jax.Array | jax.core.Tracer):
            where = jax.tree_util.keystr(path) or "the output"
            raise TypeError(
                f"train returned a {type(leaf).__name__} ({leaf!r:.60}) at {where}, not a jax "
                "array computed from (hparams, key): a Python or NumPy value is fixed when train "
                "is traced, so it cannot differ between configurations (is train pure? use "
                "jnp operations, not float(), .item() or numpy, on its inputs)"
            )


_LEAK = (
    "train closes over a tracer leaked from another jax transformation (e.g. an array "
    "captured inside a jitted function); train must be a pure function of (hparams, key) "
    "and concrete arrays"
)


def _abstract_outputs(train: Callable, grid: Grid, precision: str) -> Any:
    """The output shapes of one lane, traced, never run: catches an impure or shape-varying
    ``train`` before any configuration runs."""
    hp = {k: jax.ShapeDtypeStruct((), grid.values[k].dtype) for k in grid.names}
    idx = jax.ShapeDtypeStruct((), jnp.int32)
    lane = _lane(train)

    def probe(hp, idx):
        out = lane(hp, idx)
        _check_outputs(out)
        return out

    try:
        with jax.default_matmul_precision(precision):
            jaxpr, shapes = jax.make_jaxpr(probe, return_shape=True)(hp, idx)
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
    if any(isinstance(c, jax.core.Tracer) for c in jaxpr.consts):
        raise ValueError(_LEAK)
    return shapes


def _fingerprint(grid: Grid, shapes: Any, precision: str, lane_block: int) -> str:
    h = hashlib.sha256(grid.fingerprint().encode())
    h.update(str(jax.tree.structure(shapes)).encode())
    for s in jax.tree.leaves(shapes):
        h.update(f"{s.shape}{np.dtype(s.dtype).str}".encode())
    h.update(f"{precision}|{lane_block}".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _make_chunk_fn(train: Callable, mesh: Mesh, lane_block: int, precision: str) -> Callable:
    """The compiled chunk program, cached so that sweeps of the same ``train`` (a resumed one, a
    CLI override, a test) reuse its compilation."""
    axes = tuple(mesh.axis_names)
    lane = _lane(train)
    if lane_block == 1:  # no vmap at all: the lane is the lone program, jit(train)

        def block(hp, idx):
            out = lane(jax.tree.map(lambda a: a[0], hp), idx[0])
            return jax.tree.map(lambda a: a[None], out)

    else:
        block = jax.vmap(lane)  # B lanes at once, (2)

    def per_device(hp, idx):  # hp leaves (k, B): this device's blocks
        return lax.map(lambda a: block(*a), (hp, idx))  # one block at a time, (2)

    # check_vma=False: the lanes never communicate, and a scan whose initial carry is a constant
    # (params0) but whose carry becomes per-lane must not be rejected as "varying".
    sharded = jax.shard_map(
        per_device, mesh=mesh, in_specs=P(axes), out_specs=P(axes), check_vma=False
    )
    jitted = jax.jit(sharded)

    def run(hp, idx):
        with jax.default_matmul_precision(precision):
            return jitted(hp, idx)

    return run


def _global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from the full host copy every process holds (multi-process safe)."""
    return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])


def _to_host(tree: Any) -> Any:
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def sweep(
    train: Callable[[dict, jax.Array], Any],
    grid: Mapping | Grid,
    *,
    combine: str = "product",
    mesh: Mesh | None = None,
    lane_block: int | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool | Callable[[ProgressInfo], object] = True,
    precision: str = "highest",
) -> SweepResult:
    r"""Run ``train`` on every configuration of ``grid`` as ``jit(vmap(train))``, eqs. (1)-(2).

    Args:
      train: a pure ``train(hparams, key) -> pytree``; ``hparams`` maps each grid name to a
        scalar array, ``key`` is the configuration's key, eq. (1). Usually a ``gradlab.fit``
        call, whose ``FitResult`` gives each row its final metrics, ``diverged`` and
        ``steps_taken``; any other pytree gives each row its scalar leaves.
      grid: name -> 1-D values (``{"lr": jnp.logspace(-4, 0, 64), "seed": range(8)}``), or a
        ``Grid`` from :func:`make_grid`. A ``"seed"`` name (integers) seeds each key.
      combine: ``"product"`` (default, every combination) or ``"zip"``.
      mesh: a ``jax.sharding.Mesh`` to shard configurations over (all its axes); default a
        1-D mesh over ``jax.devices()`` (every device of every process).
      lane_block: configurations vectorized together, :math:`B` of eq. (2); default the next
        power of two of the grid size, at most 128. 1 reproduces ``jax.jit(train)`` bitwise.
      chunk_size: configurations per compiled call (rounded up to whole blocks on every
        device); default from ``memory_budget``.
      memory_budget: bytes of outputs a device may hold per chunk; default a quarter of the
        device's memory (512 MiB on CPU). See ``_chunks`` eq. (2).
      checkpoint: a folder; after every chunk its rows are written there atomically, and a
        rerun of the same sweep resumes where it stopped (a different sweep raises).
      progress: ``True`` for a throttled bar on stderr, ``False`` for none, or a callable
        receiving a :class:`ProgressInfo` after every chunk.
      precision: matmul precision, ``"highest"`` (default, full float32) or an opt-in such as
        ``"tensorfloat32"``; recorded in every row.

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError, TypeError: a bad grid, or a ``train`` that returns Python/NumPy values, closes
        over a leaked tracer or whose output shapes depend on grid values -- all before any
        configuration runs.

    Examples:
      >>> import jax, jax.numpy as jnp, gradlab
      >>> X = jnp.ones((8, 2)); y = jnp.ones(8)
      >>> def train(hp, key):
      ...     def step(w, _):
      ...         r = X @ w - y
      ...         return w - hp["lr"] * (2 / 8) * (r @ X), r @ r / 8
      ...     w, losses = jax.lax.scan(step, jnp.zeros(2), None, length=20)
      ...     return {"loss": losses[-1], "w": w}
      >>> res = gradlab.sweep(train, {"lr": [0.01, 0.1]}, progress=False)
      >>> round(res.best("loss")["lr"], 6)
      0.1
    """
    if not callable(train):
        raise TypeError(f"train must be callable as train(hparams, key); got {train!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    g = make_grid(grid, combine)
    if "seed" in g.names and g.values["seed"].dtype.kind not in "iu":
        raise TypeError(f"grid['seed'] must hold integers; got dtype {g.values['seed'].dtype}")
    if mesh is None:
        mesh = Mesh(np.array(jax.devices()), ("config",))
    elif not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh; got {type(mesh).__name__}")
    n_dev = int(mesh.devices.size)
    if lane_block is None:
        lane_block = _chunks.default_lane_block(g.size)
    if int(lane_block) != lane_block or lane_block < 1:
        raise ValueError(f"lane_block must be a positive integer; got {lane_block!r}")
    lane_block = int(lane_block)
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if memory_budget is not None and memory_budget <= 0:
        raise ValueError(f"memory_budget must be > 0 bytes; got {memory_budget!r}")

    shapes = _abstract_outputs(train, g, precision)  # every check before any run
    fake = jax.tree.map(lambda s: np.zeros((1, *s.shape), s.dtype), shapes)
    clash = set(columns_from_outputs(fake, 1, precision)) & (set(g.names) | {"index"})
    if clash:
        raise ValueError(
            f"train's output columns {sorted(clash)} clash with grid names; rename one of them"
        )
    k = _chunks.blocks_per_device(
        size=g.size,
        n_devices=n_dev,
        lane_block=lane_block,
        per_config_bytes=_chunks.output_bytes(shapes),
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
    chunk = n_dev * k * lane_block
    leaves_def = jax.tree.structure(shapes)
    n_leaves = leaves_def.num_leaves

    ckpt, done, parts = None, 0, []
    if checkpoint is not None:
        ckpt = Checkpoint(
            checkpoint,
            fingerprint=_fingerprint(g, shapes, precision, lane_block),
            size=g.size,
            writer=jax.process_index() == 0,
        )
        done, parts = ckpt.load(n_leaves)

    starts = list(range(done, g.size, chunk))
    bar = Progress(progress, total=g.size, start=done, n_chunks=len(starts))
    if starts:
        run = _make_chunk_fn(train, mesh, lane_block, precision)
        sharding = NamedSharding(mesh, P(tuple(mesh.axis_names)))
        index = np.arange(g.size, dtype=np.int32)
        for s in starts:
            stop = min(s + chunk, g.size)
            take = np.minimum(np.arange(s, s + chunk), g.size - 1)  # pad with the last row
            hp = {
                name: _global(g.values[name][take].reshape(-1, lane_block), sharding)
                for name in g.names
            }
            idx = _global(index[take].reshape(-1, lane_block), sharding)
            out = _to_host(run(hp, idx))
            leaves = [
                np.asarray(a).reshape(chunk, *np.shape(a)[2:])[: stop - s]
                for a in jax.tree.leaves(out)
            ]
            if ckpt is not None:
                ckpt.save(s, leaves)
            parts.append(leaves)
            bar.update(stop)

    stacked = [np.concatenate([p[i] for p in parts]) for i in range(n_leaves)]
    outputs = jax.tree.unflatten(leaves_def, stacked)
    columns = columns_from_outputs(outputs, g.size, precision)
    return SweepResult(
        grid=g,
        outputs=outputs,
        columns=columns,
        precision=precision,
        lane_block=lane_block,
        devices=n_dev,
        meta={"chunk_size": chunk, "processes": jax.process_count()},
    )
