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

Stages. ``sweep`` is four functions a reader can test alone: ``_probe.probe`` traces one lane
and refuses a bad ``train`` before anything runs; ``_chunks.plan`` cuts the grid into chunks;
:func:`run_chunks` runs the rows a checkpoint does not hold yet, saving each chunk as it comes
back; :func:`assemble` stacks the chunks into a :class:`SweepResult`.

Compilation cache. A chunk program is compiled once per (``train``, traced program, closed-over
data, mesh, lane block, precision) and reused by later sweeps (a resume, a CLI override, a test).
Keying on the traced program and the data, not only on ``train``'s identity, means a ``train``
that reads a global or closes over an array that was since changed is recompiled, never served
the old program's results.

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

import contextlib
import functools
import logging
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

from gradlab.sweeps import _chunks
from gradlab.sweeps._checkpoint import Checkpoint, Chunk
from gradlab.sweeps._grid import Grid, make_grid
from gradlab.sweeps._probe import Probe, config_key, fingerprint, lane_fn, probe
from gradlab.sweeps._progress import Progress, ProgressInfo, block_callback
from gradlab.sweeps._result import SweepResult, columns_from_outputs
from gradlab.train import PRECISIONS

__all__ = ["SweepInterrupted", "assemble", "config_key", "run_chunks", "sweep"]

log = logging.getLogger("gradlab.sweeps")

# Host calls per device per chunk for the progress bar, at most. Each costs a thread hand-off,
# measured at 13-20 ms on the 2-core machine at load 11 (a few microseconds when idle): one call
# per block (16 per chunk) slowed a 0.5 s sweep by 58%, four calls by 10%, two by 2%.
MAX_REPORTS = 4


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: says how many rows are safe on disk and how to resume.

    A ``KeyboardInterrupt`` (so it stops a script as Ctrl-C does), raised without JAX's frames.
    """

    def __init__(self, saved: int, total: int, folder: str | None):
        self.saved, self.total, self.folder = saved, total, folder
        if folder is None:
            text = (
                f"sweep interrupted with {total} rows to compute and no checkpoint, so nothing "
                "was saved; pass checkpoint=DIR (CLI: --checkpoint) to make a sweep resumable"
            )
        else:
            text = f"{saved} rows saved in {folder}; rerun the same command to resume"
        super().__init__(text)


@functools.lru_cache(maxsize=32)
def _chunk_program(
    train: Callable,
    program: tuple[str, str],
    mesh: Mesh,
    lane_block: int,
    precision: str,
    report_every: int,
) -> Callable:
    """The compiled chunk program, eq. (2), cached on ``train`` *and* its traced ``program``
    (jaxpr and closed-over data digests, see the module docstring). With ``report_every`` > 0,
    every ``report_every``-th block of a device calls the host when done (``_progress``), after
    its outputs exist."""
    del program  # part of the cache key only
    axes = tuple(mesh.axis_names)
    lane = lane_fn(train)
    if lane_block == 1:  # no vmap at all: the lane is the lone program, jit(train)

        def block(hp, idx):
            out = lane(jax.tree.map(lambda a: a[0], hp), idx[0])
            return jax.tree.map(lambda a: a[None], out)

    else:
        block = jax.vmap(lane)  # B lanes at once, (2)

    def report(dependency):
        jax.debug.callback(block_callback, dependency, report_every)

    def one_block(args):
        hp, idx, j = args
        out = block(hp, idx)
        if report_every:  # depends on the outputs: runs once the block is computed
            due = (j + 1) % report_every == 0
            lax.cond(due, report, lambda d: None, jax.tree.leaves(out)[0].reshape(-1)[:1])
        return out

    def per_device(hp, idx):  # hp leaves (k, B): this device's blocks
        blocks = jnp.arange(idx.shape[0], dtype=jnp.int32)
        return lax.map(one_block, (hp, idx, blocks))  # one block at a time, (2)

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


def run_chunks(
    train: Callable,
    grid: Grid,
    pr: Probe,
    plan: _chunks.Plan,
    *,
    mesh: Mesh,
    precision: str,
    done: list[Chunk],
    on_chunk: Callable[[Chunk], None],
    bar: Progress | None = None,
) -> list[Chunk]:
    """Run every row not in ``done``, in chunks of ``plan.chunk`` rows (the last padded with the
    grid's last row), calling ``on_chunk`` on each as it comes back; returns the new chunks.
    ``bar`` receives block-by-block progress when it wants it."""
    ranges = _chunks.row_ranges(grid.size, [(c.start, c.stop) for c in done], plan.chunk)
    if not ranges:
        return []
    shown = bar if bar is not None and bar.wants_blocks else None
    every = -(-plan.blocks // MAX_REPORTS) if shown is not None else 0
    key = (pr.program, pr.constants)
    run = _chunk_program(train, key, mesh, plan.lane_block, precision, every)
    with shown if shown is not None else contextlib.nullcontext():
        return _run_ranges(run, grid, plan, mesh, ranges, on_chunk, shown)


def _run_ranges(run, grid, plan, mesh, ranges, on_chunk, bar) -> list[Chunk]:
    sharding = NamedSharding(mesh, P(tuple(mesh.axis_names)))
    values = grid.compute_values()
    index = np.arange(grid.size, dtype=np.int32)
    b, new = plan.lane_block, []
    for start, stop in ranges:
        if bar is not None:
            bar.begin_chunk(stop - start)
        take = np.minimum(np.arange(start, start + plan.chunk), grid.size - 1)
        hp = {k: _global(v[take].reshape(-1, b), sharding) for k, v in values.items()}
        out = _to_host(run(hp, _global(index[take].reshape(-1, b), sharding)))
        leaves = [
            np.asarray(a).reshape(plan.chunk, *np.shape(a)[2:])[: stop - start]
            for a in jax.tree.leaves(out)
        ]
        chunk = Chunk(start, stop, leaves)
        on_chunk(chunk)
        new.append(chunk)
    return new


def assemble(
    grid: Grid, pr: Probe, chunks: list[Chunk], plan: _chunks.Plan, precision: str, resumed: int
) -> SweepResult:
    """The :class:`SweepResult` of ``chunks``, which must cover rows ``0:grid.size`` once."""
    chunks = sorted(chunks, key=lambda c: c.start)
    treedef = jax.tree.structure(pr.shapes)
    n_leaves = treedef.num_leaves  # type: ignore[attr-defined]  # jaxlib ships PyTreeDef without stubs
    stacked = [np.concatenate([c.leaves[i] for c in chunks]) for i in range(n_leaves)]
    outputs = jax.tree.unflatten(treedef, stacked)
    return SweepResult(
        grid=grid,
        outputs=outputs,
        columns=columns_from_outputs(outputs, grid.size, precision),
        precision=precision,
        lane_block=plan.lane_block,
        devices=plan.devices,
        meta={
            "chunk_size": plan.chunk,
            "processes": jax.process_count(),
            "resumed_rows": resumed,
        },
    )


def _validate(train, grid, combine, mesh, precision, progress, resume) -> tuple[Grid, Mesh]:
    if not callable(train):
        raise TypeError(f"train must be callable as train(hparams, key); got {train!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be a bool or a callable(ProgressInfo); got {progress!r}")
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False; got {resume!r}")
    g = make_grid(grid, combine)
    if "seed" in g.names and not np.issubdtype(g.values["seed"].dtype, np.integer):
        raise TypeError(f"grid['seed'] must hold integers; got dtype {g.values['seed'].dtype}")
    if mesh is None:
        mesh = Mesh(np.array(jax.devices()), ("config",))
    elif not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh; got {type(mesh).__name__}")
    return g, mesh


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
    resume: bool = True,
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
      chunk_size: configurations per compiled call, exactly (the last chunk padded); a multiple
        of ``devices x lane_block`` (when ``lane_block`` is not given it is chosen to divide
        it; see ``_chunks.plan``); default from ``memory_budget``.
      memory_budget: bytes of outputs a device may hold per chunk; default a quarter of the
        device's memory (512 MiB on CPU). See ``_chunks`` eq. (2).
      checkpoint: a folder; after every chunk its rows are written there atomically, and a
        rerun of the same sweep resumes where it stopped. The folder is locked while the sweep
        runs, and a rerun whose ``train`` code, closed-over data, grid, output shapes,
        precision, lane block or jax version differ is refused, naming what changed (see
        ``_checkpoint``).
      resume: ``False`` deletes the checkpoint files in ``checkpoint`` and starts fresh.
      progress: ``True`` for a throttled bar on stderr, ``False`` for none, or a callable
        receiving a :class:`ProgressInfo` after every chunk.
      precision: matmul precision, ``"highest"`` (default, full float32) or an opt-in such as
        ``"tensorfloat32"``; recorded in every row.

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError, TypeError: a bad grid (or a value the compute dtype cannot hold), or a
        ``train`` that returns Python/NumPy values, complex columns, closes over a leaked tracer
        or whose output shapes depend on grid values -- all before any configuration runs.
      CheckpointError: (a ``ValueError``) the folder holds another sweep, is in use, is not
        writable, or holds a corrupt file (named, with how to recover) -- also before any
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
    g, mesh = _validate(train, grid, combine, mesh, precision, progress, resume)
    pr = probe(train, g, precision)  # every check before any run
    plan = _chunks.plan(
        size=g.size,
        n_devices=int(mesh.devices.size),
        per_config_bytes=_chunks.output_bytes(pr.shapes),
        lane_block=lane_block,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
    )
    log.info(
        "sweep: %d configurations over %s, chunks of %d (%d devices x %d blocks x %d lanes), "
        "precision %s",
        g.size,
        list(g.names),
        plan.chunk,
        plan.devices,
        plan.blocks,
        plan.lane_block,
        precision,
    )
    if checkpoint is None:
        return _sweep_in_memory(train, g, pr, plan, mesh, precision, progress)
    ckpt = Checkpoint(
        checkpoint,
        fingerprint=fingerprint(pr, g, precision, plan.lane_block, mesh.devices.flat[0]),
        leaf_shapes=[(s.shape, s.dtype) for s in jax.tree.leaves(pr.shapes)],
        writer=jax.process_index() == 0,
        resume=resume,
    )
    return _sweep_checkpointed(train, g, pr, plan, mesh, precision, progress, ckpt)


def _sweep_checkpointed(train, g, pr, plan, mesh, precision, progress, ckpt) -> SweepResult:
    """Hold ``ckpt`` (locked, checked), run the rows it lacks, saving each chunk."""
    with ckpt:
        done = list(ckpt.chunks)
        resumed = sum(c.rows for c in done)
        if ckpt.read_only_reason is not None and resumed < g.size:
            raise ckpt.not_writable(g.size - resumed)
        bar = _bar(progress, g.size, done, plan)
        if done:
            bar.resuming(len(done), len(done) + bar.n_chunks, resumed, str(ckpt.path))

        def save(c: Chunk) -> None:
            ckpt.save(c)
            bar.update(c.rows)

        try:
            new = run_chunks(
                train,
                g,
                pr,
                plan,
                mesh=mesh,
                precision=precision,
                done=done,
                on_chunk=save,
                bar=bar,
            )
        except KeyboardInterrupt:
            saved = sum(c.rows for c in ckpt.chunks)
            raise SweepInterrupted(saved, g.size, str(ckpt.path)) from None
    return assemble(g, pr, done + new, plan, precision, resumed)


def _bar(progress, total: int, done: list[Chunk], plan: _chunks.Plan) -> Progress:
    n_chunks = len(_chunks.row_ranges(total, [(c.start, c.stop) for c in done], plan.chunk))
    resumed = sum(c.rows for c in done)
    return Progress(
        progress, total=total, start=resumed, n_chunks=n_chunks, lane_block=plan.lane_block
    )


def _sweep_in_memory(train, g, pr, plan, mesh, precision, progress) -> SweepResult:
    bar = _bar(progress, g.size, [], plan)
    try:
        new = run_chunks(
            train,
            g,
            pr,
            plan,
            mesh=mesh,
            precision=precision,
            done=[],
            on_chunk=lambda c: bar.update(c.rows),
            bar=bar,
        )
    except KeyboardInterrupt:
        raise SweepInterrupted(0, g.size, None) from None
    return assemble(g, pr, new, plan, precision, 0)
