"""Run a document's code cells in order in one fresh namespace, as running the notebook would.

This executes the user's own code in this process. Each cell gets a wall-clock limit (``SIGALRM``
when auditing from the main thread; elsewhere cells run without one, and the run says so);
plots are switched off (``MPLBACKEND=Agg``, ``plt.show`` a no-op, figures closed after each cell)
and, when not installed, ``IPython.display`` and ``ipywidgets`` are inert stand-ins (display only);
numpy's global generator is seeded so ``np.random.randn`` data is the same on every audit; what
cells print is captured, not shown. A cell that raises or runs out of time is recorded and the
next cell runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib.util
import io
import linecache
import os
import signal
import sys
import threading
import time
import traceback
import types
import warnings

import numpy as np

from gradlab.audit._document import Cell, Document

SEED = 0


class CellStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"


@dataclasses.dataclass(frozen=True)
class CellRun:
    """How one cell ran: status, the one-line error (with its line) and the seconds it took."""

    cell: Cell
    status: CellStatus
    error: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()  # the warnings the cell raised (first line each)

    def line(self) -> str:
        if self.status is CellStatus.OK:
            return f"{self.cell.label}: ok"
        return f"{self.cell.label}: {self.status.value}: {self.error}"


@dataclasses.dataclass(frozen=True)
class Run:
    """The namespace after every cell ran, how each cell ran, and which cell last bound a name."""

    namespace: dict
    cells: tuple[CellRun, ...]
    bound_in: dict  # name -> the last Cell that (re)bound it
    notes: tuple[str, ...] = ()

    def failed(self) -> tuple[CellRun, ...]:
        return tuple(c for c in self.cells if c.status is not CellStatus.OK)


class OutOfTime(BaseException):
    """Raised by :func:`time_limit`; BaseException so the user's ``except Exception`` does not
    eat it."""


def _error_line(err: BaseException, cell: Cell) -> str:
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == cell.filename:
            line = frame.lineno
    text = str(err).strip().splitlines()
    where = f"line {line}: " if line else ""
    return f"{where}{type(err).__name__}: {text[0] if text else ''}"[:200]


@contextlib.contextmanager
def _plots_off():
    """``MPLBACKEND=Agg`` and ``plt.show`` a no-op while the cells run; every figure closed."""
    old_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    patched = None
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        patched = plt.show
        plt.show = lambda *a, **k: None
    except ModuleNotFoundError:
        plt = None
    try:
        yield plt
    finally:
        if plt is not None:
            plt.show = patched
            plt.close("all")
        if old_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old_backend


class _Inert:
    """Stands for a display-only object (a widget, ``display``): every use does nothing."""

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()


class _InertModule(types.ModuleType):
    """A display-only module; as ``IPython`` it says there is no running shell (matplotlib asks)."""

    get_ipython = staticmethod(lambda: None)
    version_info = (8, 0, 0, "")
    __version__ = "8.0.0"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()


DISPLAY_ONLY = ("IPython", "IPython.display", "ipywidgets")


@contextlib.contextmanager
def _display_stubs(notes: list[str]):
    """Stand-ins for IPython.display and ipywidgets when they are not installed (display only)."""
    added = []
    for name in DISPLAY_ONLY:
        try:
            found = importlib.util.find_spec(name.split(".")[0]) is not None
        except (ImportError, ValueError):
            found = False
        if not found and name not in sys.modules:
            sys.modules[name] = _InertModule(name)
            added.append(name)
    if added:
        notes.append(
            f"not installed, replaced by inert stand-ins (display only): {', '.join(added)}"
        )
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`OutOfTime` in this thread after ``seconds`` (SIGALRM; main thread only)."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield False
        return

    def on_alarm(signum, frame):
        raise OutOfTime()

    assert seconds is not None  # usable
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run_cell(cell: Cell, ns: dict, timeout: float | None, plt) -> CellRun:
    source = "\n" * (cell.first_line - 1) + cell.source  # script cells keep the file's lines
    linecache.cache[cell.filename] = (len(source), None, source.splitlines(True), cell.filename)
    t0 = time.perf_counter()
    try:
        code = compile(source, cell.filename, "exec")
    except SyntaxError as err:
        return CellRun(cell, CellStatus.FAILED, f"line {err.lineno}: SyntaxError: {err.msg}")
    out = io.StringIO()
    caught: list = []
    status, error = CellStatus.OK, ""
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            time_limit(timeout),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            warnings.simplefilter("always")
            exec(code, ns)  # noqa: S102 - running the user's notebook is the point
    except OutOfTime:
        status = CellStatus.TIMEOUT
        error = f"did not finish within {timeout:g} s (per-cell timeout); stopped"
    except (Exception, SystemExit, KeyboardInterrupt) as err:  # noqa: BLE001 - keep going
        status, error = CellStatus.FAILED, _error_line(err, cell)
    finally:
        if plt is not None:
            plt.close("all")
    seen = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}"[:120] for w in caught))
    return CellRun(cell, status, error, time.perf_counter() - t0, seen)


@contextlib.contextmanager
def _in_directory(folder):
    """Run where the document lives, as Jupyter does (``data.csv`` and local imports resolve)."""
    old_cwd, folder = os.getcwd(), str(folder)
    sys.path.insert(0, folder)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        if folder in sys.path:
            sys.path.remove(folder)


def run_cells(doc: Document, timeout: float | None = 30.0, seed: int = SEED) -> Run:
    """Execute ``doc``'s cells in order in a fresh namespace; see the module doc.

    The cells run in the document's folder (the working directory and ``sys.path``), as Jupyter
    runs a notebook.

    Args:
      doc: the loaded document.
      timeout: seconds each cell may run (None: no limit).
      seed: numpy's global generator is seeded with it before the first cell.

    Returns:
      A :class:`Run`.
    """
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    notes = [f"numpy's global generator seeded with np.random.seed({seed}) before the first cell"]
    if timeout is not None and threading.current_thread() is not threading.main_thread():
        notes.append("no per-cell timeout: the audit is not running on the main thread")
    runs, bound_in = [], {}
    state = np.random.get_state()  # noqa: NPY002 - notebooks draw from the global generator
    np.random.seed(seed)  # noqa: NPY002
    try:
        with _plots_off() as plt, _display_stubs(notes), _in_directory(doc.path.resolve().parent):
            for cell in doc.cells:
                before = {k: id(v) for k, v in ns.items()}
                runs.append(_run_cell(cell, ns, timeout, plt))
                for k, v in ns.items():
                    if before.get(k) != id(v):
                        bound_in[k] = cell
    finally:
        np.random.set_state(state)  # noqa: NPY002
    for cell in doc.cells:
        if cell.magics:
            notes.append(f"{cell.label}: IPython magic line(s) {list(cell.magics)} skipped")
    return Run(ns, tuple(runs), bound_in, tuple(notes))
