"""An exclusive lock on a checkpoint folder, so two sweeps never write into one folder.

The lock is the file ``.lock`` in the folder, holding ``pid N on HOST``:

* POSIX: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on it. The kernel releases the lock when the holder
  exits in any way (``SIGKILL`` included), so a lock can never outlive its process; a second
  sweep, in another process or the same one, fails at once instead of waiting.
* elsewhere (no ``fcntl``): the file is created with ``O_CREAT | O_EXCL`` and removed on release;
  a file left by a process that no longer runs on this host (its pid is gone) is stale and is
  taken over.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]  # the module is absent on Windows

LOCK = ".lock"


class LockedError(ValueError):
    """Another sweep holds the checkpoint folder."""


def _holder_text() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _pid_alive(text: str) -> bool:
    """False only when ``text`` names a process on this host that no longer runs."""
    parts = text.split()
    if len(parts) != 4 or parts[0] != "pid" or parts[2] != "on" or not parts[1].isdigit():
        return True  # unreadable: never assume stale
    if parts[3] != socket.gethostname():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """``with FolderLock(folder):`` holds the folder's lock; ``LockedError`` names the holder."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK
        self._fd: int | None = None

    def _busy(self) -> LockedError:
        return LockedError(
            f"checkpoint folder {str(self.path.parent)!r} is in use by another sweep "
            f"({_read(self.path)}); wait for it to finish, or give another folder"
        )

    def acquire(self) -> FolderLock:
        if fcntl is None:
            return self._acquire_exclusive(retry=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise self._busy() from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, _holder_text().encode())
        self._fd = fd
        return self

    def _acquire_exclusive(self, retry: bool) -> FolderLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if retry and not _pid_alive(_read(self.path)):
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                return self._acquire_exclusive(retry=False)
            raise self._busy() from None
        os.write(fd, _holder_text().encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is None:
            os.close(fd)
            self.path.unlink(missing_ok=True)
        else:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
