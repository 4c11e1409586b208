"""A throttled progress bar over chunks, on stderr, driven from the host between compiled calls.

It never enters the vmapped body: ``sweep`` calls :meth:`Progress.update` after each chunk has
come back, so it costs nothing inside ``jit`` and works the same on every backend. ``progress``
may also be a callable, called after every chunk with a :class:`ProgressInfo` (for a notebook
widget, a logger, or a test that stops the process after chunk ``k``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import NamedTuple, TextIO

log = logging.getLogger("gradlab.sweep")


class ProgressInfo(NamedTuple):
    """Where a sweep stands after a chunk."""

    done: int  # configurations finished (resumed ones included)
    total: int  # configurations in the grid
    chunk: int  # chunks finished in this call
    n_chunks: int  # chunks this call runs
    elapsed: float  # seconds since this call started running chunks


class Progress:
    """Prints ``[#####.....] done/total configs, chunk c/C, elapsed, eta`` at most every
    ``min_interval`` seconds (and always for the last chunk)."""

    def __init__(
        self,
        progress: bool | Callable[[ProgressInfo], object],
        *,
        total: int,
        start: int,
        n_chunks: int,
        stream: TextIO | None = None,
        min_interval: float = 0.5,
        width: int = 30,
    ):
        if not (isinstance(progress, bool) or callable(progress)):
            raise TypeError(
                f"progress must be a bool or a callable(ProgressInfo); got {progress!r}"
            )
        self.progress = progress
        self.total, self.start, self.n_chunks = total, start, n_chunks
        self.done = start
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval, self.width = min_interval, width
        self.t0 = time.perf_counter()
        self._last = -float("inf")
        self._chunk = 0

    def resuming(self, chunks_done: int, chunks: int, rows: int, folder: str) -> None:
        """Say that a checkpoint already holds ``chunks_done`` of ``chunks`` chunks: on the
        ``gradlab.sweep`` logger, and on the stream when the bar is shown."""
        text = (
            f"resuming: {chunks_done} of {chunks} chunks done "
            f"({rows} of {self.total} rows, from {folder})"
        )
        log.info(text)
        if self.progress is True:
            self.stream.write(f"sweep: {text}\n")
            self.stream.flush()

    def update(self, rows: int) -> None:
        """Count a finished chunk of ``rows`` configurations."""
        self._chunk += 1
        self.done += rows
        done = self.done
        now = time.perf_counter()
        info = ProgressInfo(done, self.total, self._chunk, self.n_chunks, now - self.t0)
        log.debug("sweep: chunk %d/%d, %d/%d rows", info.chunk, info.n_chunks, done, self.total)
        if callable(self.progress):
            self.progress(info)
            return
        if not self.progress:
            return
        last = self._chunk == self.n_chunks
        if not last and now - self._last < self.min_interval:
            return
        self._last = now
        self.stream.write("\r" + self.line(info) + ("\n" if last else ""))
        self.stream.flush()

    def line(self, info: ProgressInfo) -> str:
        frac = info.done / max(1, info.total)
        fill = int(round(self.width * frac))
        ran = info.done - self.start
        rate = ran / info.elapsed if info.elapsed > 0 else float("nan")
        eta = (info.total - info.done) / rate if ran > 0 else float("nan")
        return (
            f"sweep [{'#' * fill}{'.' * (self.width - fill)}] {info.done}/{info.total} configs, "
            f"chunk {info.chunk}/{info.n_chunks}, {info.elapsed:.1f}s elapsed, eta {eta:.1f}s"
        )
