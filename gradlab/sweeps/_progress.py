"""A sweep's progress: within a chunk (per lane block) and per chunk, throttled, on stderr.

Sources. After each chunk has come back (and been saved), ``sweep`` calls
:meth:`Progress.update`. Within a chunk, when the bar is shown, the compiled chunk program calls
the host after every few lane blocks of each device (``jax.debug.callback`` in the ``lax.map``
over blocks, outside the vmapped lanes; at most ``_run.MAX_REPORTS`` calls per device per chunk,
a bounded rate), so a sweep that is one long chunk still moves its bar;
:meth:`Progress.block_done` counts them. The
lanes' arithmetic is untouched (a test checks bitwise equality with the bar on and off); the
callback's cost is measured in ``benchmarks/bench_sweep.py``.

Rendering. ``progress=True``: ``tqdm`` when it is installed (``pip install gradlab[progress]``)
and stderr is a terminal (opened when the first chunk starts and closed when the last ends, so
a fully resumed sweep draws no bar and the resume line never lands inside one); otherwise a
built-in bar, redrawn in place on a terminal and, in logs
and CI (not a terminal), written as one line per update at most every ``log_interval`` seconds,
plus the last. ``progress=False``: nothing on stderr (the ``gradlab.sweeps`` logger still gets
the plan and the resume at INFO, each chunk at DEBUG). ``progress`` may also be a callable,
called with a :class:`ProgressInfo` after every chunk, once its rows are saved (for a notebook
widget, a logger, or a test that stops the process at a chunk boundary).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, TextIO

import jax

log = logging.getLogger("gradlab.sweeps")

_ACTIVE: list[Progress] = []  # the bar of the sweep whose chunk is running (a stack)


def block_callback(_dependency, blocks) -> None:
    """Host side of the chunk program's ``jax.debug.callback``: ``blocks`` more blocks done."""
    if _ACTIVE:
        _ACTIVE[-1].block_done(int(blocks))


class ProgressInfo(NamedTuple):
    """Where a sweep stands after a chunk."""

    done: int  # configurations finished (resumed ones included)
    total: int  # configurations in the grid
    chunk: int  # chunks finished in this call
    n_chunks: int  # chunks this call runs
    elapsed: float  # seconds since this call started running chunks


def _tqdm_class():
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        return None
    return tqdm


class Progress:
    """``sweep [#####.....] done/total configs, chunk c/C, elapsed, eta``, see the module
    docstring; ``with progress:`` makes it receive the chunk program's block callbacks."""

    def __init__(
        self,
        progress: bool | Callable[[ProgressInfo], object],
        *,
        total: int,
        start: int,
        n_chunks: int,
        lane_block: int = 1,
        stream: TextIO | None = None,
        min_interval: float = 0.5,
        log_interval: float = 10.0,
        width: int = 30,
    ):
        if not (isinstance(progress, bool) or callable(progress)):
            raise TypeError(
                f"progress must be a bool or a callable(ProgressInfo); got {progress!r}"
            )
        self.progress = progress
        self.total, self.start, self.n_chunks = total, start, n_chunks
        self.done, self.lane_block = start, lane_block
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval, self.log_interval, self.width = min_interval, log_interval, width
        self.t0 = time.perf_counter()
        self._last = -float("inf")
        self._chunk = 0
        self._blocks, self._chunk_rows = 0, 0
        self._lock = threading.Lock()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._tqdm = None  # drawn only while chunks run (``with``), closed when they stop

    @property
    def wants_blocks(self) -> bool:
        """Whether the chunk program should call back after each block (the bar is shown)."""
        return self.progress is True

    def __enter__(self) -> Progress:
        tqdm = _tqdm_class() if self.progress is True and self._tty else None
        if tqdm is not None:  # opened here, not in __init__: nothing is drawn when no chunk runs
            self._tqdm = tqdm(
                total=self.total, initial=self.done, unit="config", desc="sweep",
                file=self.stream, mininterval=self.min_interval,
            )  # fmt: skip
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.remove(self)
        if self._tqdm is not None:
            self._tqdm.close()  # ends the bar's line, also on an interrupt
            self._tqdm = None

    def begin_chunk(self, rows: int) -> None:
        """A chunk of ``rows`` configurations starts: its block count restarts."""
        with self._lock:
            self._blocks, self._chunk_rows = 0, rows

    def block_done(self, blocks: int = 1) -> None:
        """``blocks`` lane blocks finished on some device (each process counts its own)."""
        with self._lock:
            self._blocks += blocks
            ran = self._blocks * self.lane_block * jax.process_count()
            self._render(self.done + min(ran, self._chunk_rows), self._chunk + 1, last=False)

    def resuming(self, chunks_done: int, chunks: int, rows: int, folder: str) -> None:
        """Say that a checkpoint already holds ``chunks_done`` of ``chunks`` chunks: on the
        ``gradlab.sweeps`` logger, and on the stream when the bar is shown."""
        text = (
            f"resuming: {chunks_done} of {chunks} chunks done "
            f"({rows} of {self.total} rows, from {folder})"
        )
        log.info(text)
        if self.progress is True:
            self.stream.write(f"sweep: {text}\n")
            self.stream.flush()

    def update(self, rows: int) -> None:
        """Count a finished (and saved) chunk of ``rows`` configurations."""
        with self._lock:
            self._chunk += 1
            self.done += rows
            self._blocks = 0
            info = self.info(self.done, self._chunk)
            log.debug("sweep: chunk %d/%d, %d/%d rows", self._chunk, self.n_chunks, self.done,
                      self.total)  # fmt: skip
            if callable(self.progress):
                self.progress(info)
            elif self.progress:
                self._render(self.done, self._chunk, last=self._chunk == self.n_chunks)

    def info(self, done: int, chunk: int) -> ProgressInfo:
        return ProgressInfo(done, self.total, chunk, self.n_chunks, time.perf_counter() - self.t0)

    def _render(self, done: int, chunk: int, last: bool) -> None:
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(f"chunk {chunk}/{self.n_chunks}", refresh=False)
            self._tqdm.update(done - self._tqdm.n)
            return
        now = time.perf_counter()
        interval = self.min_interval if self._tty else self.log_interval
        if not last and now - self._last < interval:
            return
        self._last = now
        line = self.line(self.info(done, chunk))
        if self._tty:
            self.stream.write("\r" + line + ("\n" if last else ""))
        else:
            self.stream.write(line + "\n")
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
