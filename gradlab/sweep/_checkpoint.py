"""Resumable sweeps: after each chunk its rows go to disk atomically, with a manifest.

Layout of a checkpoint folder::

    manifest.json               {"fingerprint", "size", "done", "chunks": [{file, start, stop}]}
    rows_00000000_00000128.npz  leaf_0, leaf_1, ...: the chunk's stacked outputs, rows start:stop

Every file is written to a temporary name in the same folder, flushed to disk, then moved into
place with ``os.replace`` (atomic on POSIX and Windows), the chunk file before the manifest that
names it. A process killed at any instant leaves either the old manifest or the new one, each
naming only complete chunk files, so a rerun of the same command resumes at row ``done`` with no
lost or repeated rows. Since a lane's result does not depend on which chunk it ran in (see
``sweep``), the resumed table equals an uninterrupted run's, bit for bit.

The fingerprint hashes the grid (names, dtypes, values, combine mode), the structure, shapes and
dtypes of ``train``'s outputs, the precision and the lane block; resuming a different sweep into
the same folder raises instead of mixing tables. (It cannot hash ``train``'s code: changing the
training function but not its output shapes is the user's responsibility.)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Checkpoint:
    """A checkpoint folder for one sweep, identified by ``fingerprint``."""

    def __init__(self, path: str | os.PathLike, *, fingerprint: str, size: int, writer: bool):
        self.path = Path(path)
        self.fingerprint, self.size, self.writer = fingerprint, int(size), writer
        self.chunks: list[dict] = []
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"checkpoint must be a folder; {str(self.path)!r} is a file")

    def load(self, n_leaves: int) -> tuple[int, list[list[np.ndarray]]]:
        """``(done, chunks)``: rows already finished and, per chunk, its leaves (in order)."""
        manifest = self.path / MANIFEST
        if not manifest.exists():
            return 0, []
        meta = json.loads(manifest.read_text())
        if meta.get("fingerprint") != self.fingerprint or meta.get("size") != self.size:
            raise ValueError(
                f"checkpoint {str(self.path)!r} belongs to a different sweep (its grid, output "
                "shapes, precision or lane block differ from this one); resume the original "
                "sweep, or give a new checkpoint folder"
            )
        out, stop = [], 0
        for c in meta["chunks"]:
            if c["start"] != stop:
                raise ValueError(f"checkpoint {str(self.path)!r} has a gap at row {stop}")
            with np.load(self.path / c["file"]) as z:
                leaves = [z[f"leaf_{i}"] for i in range(n_leaves)]
            if any(a.shape[0] != c["stop"] - c["start"] for a in leaves):
                raise ValueError(f"checkpoint file {c['file']!r} does not hold its rows")
            out.append(leaves)
            stop = c["stop"]
        if stop != meta["done"]:
            raise ValueError(f"checkpoint {str(self.path)!r} manifest is inconsistent")
        self.chunks = list(meta["chunks"])
        return stop, out

    def save(self, start: int, leaves: list[np.ndarray]) -> None:
        """Append rows ``start:start + len`` (atomically: chunk file, then manifest)."""
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        stop = start + int(leaves[0].shape[0])
        name = f"rows_{start:08d}_{stop:08d}.npz"
        arrays = {f"leaf_{i}": np.asarray(a) for i, a in enumerate(leaves)}
        _atomic_write(self.path / name, lambda f: np.savez(f, **arrays))
        self.chunks.append({"file": name, "start": start, "stop": stop})
        meta = {
            "fingerprint": self.fingerprint,
            "size": self.size,
            "done": stop,
            "chunks": self.chunks,
        }
        data = json.dumps(meta, indent=1).encode()
        _atomic_write(self.path / MANIFEST, lambda f: f.write(data))
