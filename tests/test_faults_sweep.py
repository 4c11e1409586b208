"""Fault injection for checkpointed sweeps: kills, edits, concurrency, tampering, read-only.

Every case ends with the same check: the table a sweep returns has each of the grid's rows once,
computed by the sweep as called now, equal to an uninterrupted run's row for row (no lost,
duplicated, mixed or stale row), or the sweep refuses before computing anything with a message
naming the file or the change and how to recover.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _sweep_cases import Stop, gd_train, linreg_data, reference_sweep_grid, stop_after

from gradlab.sweeps import sweep

WORKER = Path(__file__).with_name("_faults_worker.py")
ROOT = Path(__file__).resolve().parents[1]
X, Y = linreg_data()
TRAIN = gd_train(X, Y)
KW = dict(lane_block=2, chunk_size=4)  # 24 configurations: 6 chunks of 4, as the worker
GRID = reference_sweep_grid()


def _edited_train(X, y, steps: int = 25):
    """``gd_train`` after a "bug fix": the gradient without its factor 2 (same outputs)."""
    n, d = X.shape

    def train(hp, key):
        lr = hp["lr"].astype(X.dtype)
        w0 = 0.1 * jax.random.normal(key, (d,), X.dtype)

        def step(w, _):
            r = X @ w - y
            return w - lr * ((1.0 / n) * (r @ X)), r @ r / n

        w, losses = jax.lax.scan(step, w0, None, length=steps)
        return {"w": w, "loss": losses[-1], "history": {"loss": losses}}

    return train


def _never(info):
    raise AssertionError("a chunk ran, though the sweep should have refused first")


def _partial(ckpt, train=TRAIN, k=2, grid=GRID):
    with pytest.raises(Stop):
        sweep(train, grid, checkpoint=ckpt, progress=stop_after(k), **KW)


@pytest.fixture(scope="module")
def whole():
    return sweep(TRAIN, GRID, progress=False, **KW)


def _same_table(res, ref):
    """No lost, duplicated, mixed or stale row: every row equal, bit for bit, in order."""
    assert res.table()["index"].tolist() == list(range(len(ref)))
    assert res.rows == ref.rows
    for a, b in zip(jax.tree.leaves(res.outputs), jax.tree.leaves(ref.outputs), strict=True):
        np.testing.assert_array_equal(a, b, strict=True)


def _chunk_files(ckpt):
    return sorted(p.name for p in Path(ckpt).glob("rows_*.npz"))


# ---- kills, in a subprocess ----------------------------------------------------------------


def _worker(out, ckpt, mode="run", wait=True):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    args = [sys.executable, str(WORKER), str(out), str(ckpt), mode]
    if not wait:
        return subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)


def test_sigkill_at_chunk_boundaries_and_mid_write(tmp_path, whole):
    ckpt = tmp_path / "ck"
    r = _worker(tmp_path / "a", ckpt, "boundary:2")  # killed right after chunk 2 was saved
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert len(_chunk_files(ckpt)) == 2
    r = _worker(tmp_path / "c", ckpt, "midwrite:3")  # resumes, killed writing its 3rd chunk
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert len(_chunk_files(ckpt)) == 4 and list(ckpt.glob(".rows_00000016_00000020.npz.*.tmp"))
    r = _worker(tmp_path / "d", ckpt)
    assert r.returncode == 0, r.stderr[-2000:]
    z = np.load(tmp_path / "d.npz")
    assert z["ran"].tolist() == [20, 24]  # only the half-written chunk and the last one ran
    assert not list(ckpt.glob("*.tmp")) and len(_chunk_files(ckpt)) == 6
    for i, want in enumerate(jax.tree.leaves(whole.outputs)):
        np.testing.assert_array_equal(z[f"arr_{i}"], want, strict=True)
    whole.to_csv(tmp_path / "whole.csv")
    assert (tmp_path / "d.csv").read_text() == (tmp_path / "whole.csv").read_text()


def test_concurrent_sweeps_one_folder(tmp_path, whole):
    ckpt = tmp_path / "ck"
    holder = _worker(tmp_path / "a", ckpt, "hold:1", wait=False)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "a.ready").exists():
            assert holder.poll() is None, holder.stderr.read()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        other = {"lr": GRID["lr"][::-1], "seed": GRID["seed"]}
        for grid in (GRID, other):  # the same sweep or another: locked out, nothing written
            with pytest.raises(ValueError, match=rf"in use by another sweep \(pid {holder.pid} "):
                sweep(TRAIN, grid, checkpoint=ckpt, progress=_never, **KW)
        with pytest.raises(ValueError, match="in use"):
            sweep(TRAIN, other, checkpoint=ckpt, resume=False, progress=_never, **KW)
        assert _chunk_files(ckpt) == ["rows_00000000_00000004.npz"]
    finally:
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait(timeout=60)
        holder.stderr.close()  # an unclosed pipe is a ResourceWarning (an error here)
    with pytest.raises(ValueError, match="different sweep: since it was written, the grid"):
        sweep(TRAIN, other, checkpoint=ckpt, progress=_never, **KW)
    res = sweep(TRAIN, GRID, checkpoint=ckpt, progress=False, **KW)  # the holder's, resumed
    assert res.meta["resumed_rows"] == 4
    _same_table(res, whole)


def test_lock_without_fcntl_takes_over_only_a_dead_holder(tmp_path, monkeypatch):
    from gradlab.sweeps import _lock

    monkeypatch.setattr(_lock, "fcntl", None)
    host = _lock.socket.gethostname()
    lock_file = tmp_path / _lock.LOCK
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    lock_file.write_text(f"pid {dead} on {host}")  # a killed sweep's lock: stale
    with _lock.FolderLock(tmp_path):
        assert lock_file.read_text() == f"pid {os.getpid()} on {host}"
        with pytest.raises(_lock.LockedError, match=f"pid {os.getpid()}"):
            _lock.FolderLock(tmp_path).acquire()  # a live holder is never taken over
    assert not lock_file.exists()


# ---- what determines the rows changed --------------------------------------------------------


def test_edited_train_is_refused_then_fresh(tmp_path):
    ckpt = tmp_path / "ck"
    _partial(ckpt)
    edited = _edited_train(X, Y)
    with pytest.raises(ValueError, match=r"train's code.*resume=False \(CLI: --fresh\)"):
        sweep(edited, GRID, checkpoint=ckpt, progress=_never, **KW)
    sweep(TRAIN, GRID, checkpoint=ckpt, progress=False, **KW)  # complete the old sweep
    with pytest.raises(ValueError, match="train's code"):  # never the whole stale table
        sweep(edited, GRID, checkpoint=ckpt, progress=_never, **KW)
    res = sweep(edited, GRID, checkpoint=ckpt, resume=False, progress=False, **KW)
    _same_table(res, sweep(edited, GRID, progress=False, **KW))
    assert res.meta["resumed_rows"] == 0


def test_changed_closed_over_data_is_refused(tmp_path):
    ckpt = tmp_path / "ck"
    _partial(ckpt)
    X2, Y2 = linreg_data(seed=1)  # same shapes, other values
    other = gd_train(X2, Y2)
    with pytest.raises(ValueError, match="the data train closes over") as info:
        sweep(other, GRID, checkpoint=ckpt, progress=_never, **KW)
    assert "train's code" not in str(info.value)  # the program is the same: only data changed
    res = sweep(other, GRID, checkpoint=ckpt, resume=False, progress=False, **KW)
    _same_table(res, sweep(other, GRID, progress=False, **KW))


SCALE = 1.0


def _global_train(hp, key):
    return {"loss": SCALE * hp["lr"] + jnp.zeros(())}


def test_a_global_read_by_train_is_part_of_the_program(tmp_path):
    global SCALE
    grid = {"lr": [1.0, 2.0]}
    first = sweep(_global_train, grid, checkpoint=tmp_path / "ck", progress=False)
    assert first.columns["loss"].tolist() == [1.0, 2.0]
    SCALE = 3.0
    try:
        again = sweep(_global_train, grid, progress=False)  # the compiled cache is not stale
        assert again.columns["loss"].tolist() == [3.0, 6.0]
        with pytest.raises(ValueError, match="train's code"):
            sweep(_global_train, grid, checkpoint=tmp_path / "ck", progress=_never)
    finally:
        SCALE = 1.0
    table = np.array([1.0, 2.0])

    def lookup(hp, key):
        return {"loss": hp["lr"] * jnp.asarray(table).sum()}

    assert sweep(lookup, grid, progress=False).columns["loss"].tolist() == [3.0, 6.0]
    table[:] = [5.0, 5.0]  # a closed-over NumPy array changed in place
    assert sweep(lookup, grid, progress=False).columns["loss"].tolist() == [10.0, 20.0]


# ---- tampered files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("complete") / "ck"
    sweep(TRAIN, GRID, checkpoint=ckpt, progress=False, **KW)
    return ckpt


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A complete checkpoint of another sweep (another grid), for files copied across."""
    ckpt = tmp_path_factory.mktemp("foreign") / "ck"
    sweep(
        TRAIN, {"lr": GRID["lr"] * 0.5, "seed": GRID["seed"]}, checkpoint=ckpt, progress=False, **KW
    )
    return ckpt


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_a_byte(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0xFF
    p.write_bytes(bytes(data))


def _rewrite(p, **change):
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(change)
    for k in [k for k, v in change.items() if v is None]:
        del arrays[k]
    with open(p, "wb") as f:
        np.savez(f, **arrays)


C1 = "rows_00000004_00000008.npz"
TAMPER = {
    "truncated": (lambda ck, fo: _truncate(ck / C1), C1, "corrupt"),
    "bit_flipped": (lambda ck, fo: _flip_a_byte(ck / C1), C1, "corrupt"),
    "empty": (lambda ck, fo: (ck / C1).write_bytes(b""), C1, "corrupt"),
    "garbage": (lambda ck, fo: (ck / C1).write_bytes(b"PK\x03\x04 junk"), C1, "corrupt"),
    "leaf_missing": (lambda ck, fo: _rewrite(ck / C1, leaf_0=None), C1, "corrupt"),
    "leaf_dtype": (
        lambda ck, fo: _rewrite(ck / C1, leaf_0=np.zeros((4, 25), np.float64)),
        C1,
        "corrupt.*leaf_0",
    ),
    "swapped": (
        lambda ck, fo: shutil.copy(ck / "rows_00000000_00000004.npz", ck / C1),
        C1,
        r"holds rows 0:4, not the 4:8 of its name",
    ),
    "from_another_sweep": (
        lambda ck, fo: shutil.copy(fo / C1, ck / C1),
        C1,
        "belongs to a different sweep",
    ),
    "overlapping_copy": (
        lambda ck, fo: _rewrite(
            Path(shutil.copy(ck / C1, ck / "rows_00000006_00000010.npz")), rows=np.array([6, 10])
        ),
        "rows_00000006_00000010.npz",
        "overlaps rows_00000004_00000008",
    ),
    "symlink_outside": (
        lambda ck, fo: (ck / C1).unlink() or (ck / C1).symlink_to(fo / C1),
        C1,
        "not a regular file",
    ),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_tampered_chunk_is_named_and_recoverable(case, complete, foreign, tmp_path, whole):
    ckpt = Path(shutil.copytree(complete, tmp_path / "ck", symlinks=True))
    tamper, name, match = TAMPER[case]
    tamper(ckpt, foreign)
    with pytest.raises(ValueError, match=rf"{name}' (is )?{match}.*delete that file and rerun"):
        sweep(TRAIN, GRID, checkpoint=ckpt, progress=_never, **KW)
    (ckpt / name).unlink()  # the recovery the message gives
    res = sweep(TRAIN, GRID, checkpoint=ckpt, progress=False, **KW)
    _same_table(res, whole)


MANIFESTS = {
    "garbage": b"\x00\x01 not json",
    "a_list": b"[]",
    "empty_object": b"{}",
    "old_format_outside": json.dumps(
        {
            "fingerprint": "x",
            "size": 24,
            "done": 4,
            "chunks": [{"file": "../../outside.npz", "start": 0, "stop": 4}],
        }
    ).encode(),
    "fingerprint_types": json.dumps({"format": 2, "fingerprint": {"program": 1}}).encode(),
}


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_corrupt_manifest_is_named_and_chunks_survive(case, complete, tmp_path, whole):
    ckpt = Path(shutil.copytree(complete, tmp_path / "ck"))
    (ckpt / "manifest.json").write_bytes(MANIFESTS[case])
    match = "older gradlab" if case.startswith("old") else r"manifest.json'? is corrupt.*delete"
    with pytest.raises(ValueError, match=match):
        sweep(TRAIN, GRID, checkpoint=ckpt, progress=_never, **KW)
    if case.startswith("old"):
        res = sweep(TRAIN, GRID, checkpoint=ckpt, resume=False, progress=False, **KW)
    else:
        (ckpt / "manifest.json").unlink()
        res = sweep(TRAIN, GRID, checkpoint=ckpt, progress=_never, **KW)  # every chunk kept
        assert res.meta["resumed_rows"] == 24
    _same_table(res, whole)


# ---- read-only folders ---------------------------------------------------------------------------


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only, for root too (root ignores permission bits): writes, creations
    and mkdir inside it raise ``PermissionError``, as the kernel does for a user."""
    folders = []
    real_open, real_mkdir = os.open, os.mkdir

    def inside(path):
        p = Path(os.fspath(path)).absolute()
        return any(p == f or f in p.parents for f in folders)

    def guarded_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if inside(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)

    def make(folder):
        folder = Path(folder).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        folders.append(folder)
        return folder

    yield make
    for f in folders:
        f.chmod(0o755)


def test_read_only_folders_refuse_before_computing(tmp_path, complete, read_only, whole):
    done = Path(shutil.copytree(complete, tmp_path / "done"))
    partial = tmp_path / "partial"
    _partial(partial)
    read_only(done)
    read_only(partial)
    parent = read_only(tmp_path / "parent")
    res = sweep(TRAIN, GRID, checkpoint=done, progress=_never, **KW)  # a finished one reads
    _same_table(res, whole)
    for folder, missing in ((partial, 16), (parent / "new", 24)):
        with pytest.raises(ValueError, match=rf"not writable.*the {missing} rows still to"):
            sweep(TRAIN, GRID, checkpoint=folder, progress=_never, **KW)
    with pytest.raises(ValueError, match="not writable"):
        sweep(TRAIN, GRID, checkpoint=done, resume=False, progress=_never, **KW)
    assert len(_chunk_files(partial)) == 2 and len(_chunk_files(done)) == 6


# ---- Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_says_what_is_saved_and_the_rerun_resumes(tmp_path, whole, capsys):
    ckpt = tmp_path / "ck"

    def interrupt(info):
        if info.chunk == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match=f"8 rows saved in {ckpt}; rerun the same command"):
        sweep(TRAIN, GRID, checkpoint=ckpt, progress=interrupt, **KW)
    res = sweep(TRAIN, GRID, checkpoint=ckpt, progress=True, **KW)
    assert "resuming: 2 of 6 chunks done" in capsys.readouterr().err
    _same_table(res, whole)
    with pytest.raises(KeyboardInterrupt, match="nothing was saved"):
        sweep(TRAIN, GRID, progress=interrupt, **KW)


def test_a_checkpoint_from_other_versions_or_another_device_is_refused(complete, tmp_path):
    ckpt = Path(shutil.copytree(complete, tmp_path / "ck"))
    doc = json.loads((ckpt / "manifest.json").read_text())
    assert doc["fingerprint"]["versions"].endswith(" on cpu (cpu)")
    doc["fingerprint"]["versions"] = "gradlab 0.1.0, jax 0.4.30, jaxlib 0.4.30 on gpu (NVIDIA H200)"
    (ckpt / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"versions or the device: gradlab .* on gpu .* -> .*cpu"):
        sweep(TRAIN, GRID, checkpoint=ckpt, progress=_never, **KW)
