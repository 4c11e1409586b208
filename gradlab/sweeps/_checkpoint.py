"""Resumable sweeps: each chunk's rows go to disk atomically, in a file that knows its sweep.

Layout of a checkpoint folder::

    .lock                       held while a sweep runs (``_lock``): one sweep per folder
    manifest.json               {"format": 2, "fingerprint": {program, constants, grid, ...}}
    rows_00000000_00000128.npz  leaf_0, leaf_1, ...: rows 0:128; "sweep": the fingerprint's
                                digest; "rows": [0, 128]

The manifest is written once, when the sweep starts; it records the parts of the
:class:`~gradlab.sweeps._fingerprint.Fingerprint` so that a rerun with another ``train``, other
closed-over data, another grid, precision, lane block or jax version is refused with a message
naming what changed (``resume=False`` starts fresh). Every chunk file carries the digest and its
row range and is checked on load against both the manifest and its own name, so a file from
another sweep, a swapped or renamed file, a truncated or bit-flipped one (the zip CRC) is named
with how to recover: delete it and rerun; its rows are recomputed and every other file is kept.
The manifest names no files, so nothing outside the folder is ever read.

Every file is written to a temporary name in the folder, flushed to disk (``fsync``), then moved
into place with ``os.replace`` (atomic on POSIX and Windows). The folder itself is not synced:
after a power cut the last renames may be undone, which loses those chunks (they are recomputed)
but never leaves a partial file under a final name; a sync per rename cost a measured 9 ms. A
process killed at any instant leaves only complete chunk files and at most a ``.*.tmp`` file,
which the next run (holding the lock) deletes.
Since a lane's result does not depend on which chunk it ran in (see ``_run``), a resumed table
equals an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from gradlab.sweeps._fingerprint import Fingerprint
from gradlab.sweeps._lock import LOCK, FolderLock, LockedError

MANIFEST = "manifest.json"
FORMAT = 2
_CHUNK = re.compile(r"rows_(\d{8})_(\d{8})\.npz")
_FRESH = "pass resume=False (CLI: --fresh) to start fresh in this folder, or give another folder"
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used as asked; the message says how to recover."""


class Chunk(NamedTuple):
    """Rows ``start:stop`` of a sweep: one array per output leaf, leading axis ``stop - start``."""

    start: int
    stop: int
    leaves: list[np.ndarray]

    @property
    def rows(self) -> int:
        """``stop - start``: how many sweep rows the chunk holds."""
        return self.stop - self.start


def chunk_name(start: int, stop: int) -> str:
    return f"rows_{start:08d}_{stop:08d}.npz"


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


def _corrupt(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint file {str(path)!r} {what}; delete that file and rerun the same sweep: its "
        "rows are recomputed and every other chunk is kept"
    )


class Checkpoint:
    """The checkpoint folder of one sweep: ``with Checkpoint(...) as ck: ck.chunks ...``.

    Args:
      path: the folder (created if missing).
      fingerprint: the sweep's :class:`Fingerprint`.
      leaf_shapes: ``[(shape, dtype)]`` of one configuration's output leaves, to check files.
      writer: whether this process writes (process 0 of a multi-process sweep).
      resume: ``False`` deletes the folder's checkpoint files (only those) and starts fresh.
    """

    def __init__(self, path, *, fingerprint: Fingerprint, leaf_shapes, writer: bool, resume: bool):
        self.path = Path(path)
        self.fingerprint, self.leaf_shapes = fingerprint, list(leaf_shapes)
        self.writer, self.resume = writer, resume
        self.chunks: list[Chunk] = []
        self.read_only_reason: str | None = None
        self._lock = FolderLock(self.path)
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"checkpoint must be a folder; {str(self.path)!r} is a file")

    # -- opening --------------------------------------------------------------------------------

    def __enter__(self) -> Checkpoint:
        if self.writer:
            self._take_folder()
        try:
            if self.writer and self.read_only_reason is None:
                self._clean(fresh=not self.resume)
            self._check_manifest()
            self.chunks = [] if not self.resume else self._load_chunks()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def _take_folder(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except LockedError as err:
            raise CheckpointError(str(err)) from None
        except OSError as err:
            if err.errno not in _UNWRITABLE:
                raise
            self.read_only_reason = f"{type(err).__name__}: {err.strerror}"
            if not self.resume:
                raise self.not_writable(self.fingerprint.size) from None

    def not_writable(self, missing: int) -> CheckpointError:
        return CheckpointError(
            f"checkpoint folder {str(self.path)!r} is not writable ({self.read_only_reason}): "
            f"the {missing} rows still to compute could not be saved; make it writable or give "
            "another folder. Nothing was computed."
        )

    def _clean(self, fresh: bool) -> None:
        """Delete stale temporary files (we hold the lock: no writer is running); with
        ``fresh``, the manifest and chunk files too (never anything else)."""
        for p in self.path.iterdir():
            ours = p.name.startswith(".") and p.name.endswith(".tmp")
            if fresh:
                ours = ours or p.name == MANIFEST or _CHUNK.fullmatch(p.name) is not None
            if ours and p.name != LOCK and (p.is_file() or p.is_symlink()):
                p.unlink()

    def _check_manifest(self) -> None:
        manifest = self.path / MANIFEST
        if not manifest.exists():
            if self.writer and self.read_only_reason is None:
                doc = {"format": FORMAT, "fingerprint": self.fingerprint.to_json()}
                data = json.dumps(doc, indent=1).encode()
                _atomic_write(manifest, lambda f: f.write(data))
            return
        recorded = self._read_manifest(manifest)
        if recorded != self.fingerprint:
            changed = "; ".join(self.fingerprint.changes(recorded))
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} holds the rows of a different sweep: since it was "
                f"written, {changed} changed, so its rows would be stale. {_FRESH}"
            )

    def _read_manifest(self, manifest: Path) -> Fingerprint:
        recover = (
            "delete it and rerun the same sweep: the chunk files that belong to this sweep are "
            "kept (each carries its sweep's fingerprint)"
        )
        try:
            doc = json.loads(manifest.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise CheckpointError(
                f"checkpoint manifest {str(manifest)!r} is corrupt (not JSON: {err}); {recover}"
            ) from None
        if isinstance(doc, dict) and "chunks" in doc and "format" not in doc:
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} was written by an older gradlab, whose "
                f"checkpoints did not record train's code or data; its rows may be stale. {_FRESH}"
            )
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or set(doc)
            != {
                "format",
                "fingerprint",
            }
        ):
            raise CheckpointError(
                f"checkpoint manifest {str(manifest)!r} is corrupt (expected an object with "
                f'"format": {FORMAT} and "fingerprint"; got {str(doc)[:80]}); {recover}'
            )
        try:
            return Fingerprint.from_json(doc["fingerprint"])
        except ValueError as err:
            raise CheckpointError(
                f"checkpoint manifest {str(manifest)!r} is corrupt ({err}); {recover}"
            ) from None

    # -- chunks ---------------------------------------------------------------------------------

    def _load_chunks(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        if not self.path.is_dir():  # a folder that could not be created (read-only parent)
            return chunks
        for p in sorted(self.path.iterdir()):
            m = _CHUNK.fullmatch(p.name)
            if m is not None:
                chunks.append(self._load_chunk(p, int(m.group(1)), int(m.group(2))))
        chunks.sort(key=lambda c: c.start)
        for a, b in zip(chunks, chunks[1:], strict=False):
            if b.start < a.stop:
                raise _corrupt(
                    self.path / chunk_name(b.start, b.stop),
                    f"overlaps {chunk_name(a.start, a.stop)} (rows {b.start}:{a.stop} twice)",
                )
        return chunks

    def _load_chunk(self, p: Path, start: int, stop: int) -> Chunk:
        if p.is_symlink() or not p.is_file():
            raise _corrupt(p, "is not a regular file (a checkpoint holds only its own files)")
        n = len(self.leaf_shapes)
        try:
            # our own handle: np.load leaks the one it opens when the zip is unreadable
            with open(p, "rb") as f, np.load(f, allow_pickle=False) as z:
                sweep = str(z["sweep"])
                rows = [int(r) for r in z["rows"]]
                leaves = [z[f"leaf_{i}"] for i in range(n)]
                extra = set(z.files) - {"sweep", "rows", *(f"leaf_{i}" for i in range(n))}
        except Exception as err:  # noqa: BLE001 - zip, npy and key errors: all mean corrupt
            raise _corrupt(p, f"is corrupt ({type(err).__name__}: {err})") from None
        if sweep != self.fingerprint.digest:
            raise _corrupt(p, "belongs to a different sweep (its fingerprint differs)")
        if rows != [start, stop]:
            raise _corrupt(
                p,
                f"holds rows {rows[0]}:{rows[-1]}, not the {start}:{stop} of its "
                "name (swapped or renamed)",
            )
        if not 0 <= start < stop <= self.fingerprint.size or extra:
            raise _corrupt(p, f"is not a chunk of this {self.fingerprint.size}-row sweep")
        for i, (leaf, (shape, dtype)) in enumerate(zip(leaves, self.leaf_shapes, strict=True)):
            if leaf.shape != (stop - start, *shape) or leaf.dtype != dtype:
                raise _corrupt(
                    p,
                    f"is corrupt (leaf_{i} is {leaf.dtype}{list(leaf.shape)}, expected "
                    f"{np.dtype(dtype)}{[stop - start, *shape]})",
                )
        return Chunk(start, stop, leaves)

    def save(self, chunk: Chunk) -> None:
        """Write rows ``chunk.start:chunk.stop`` atomically, with the sweep's digest."""
        if not self.writer:
            return
        arrays: dict[str, Any] = {f"leaf_{i}": np.asarray(a) for i, a in enumerate(chunk.leaves)}
        arrays["sweep"] = np.asarray(self.fingerprint.digest)
        arrays["rows"] = np.asarray([chunk.start, chunk.stop], np.int64)
        path = self.path / chunk_name(chunk.start, chunk.stop)
        _atomic_write(path, lambda f: np.savez(f, **arrays))
        self.chunks.append(chunk)
