"""JAX's persistent compilation cache for gradlab's command line: compile once per machine.

A cold ``gradlab check`` (``make run``) spends almost all its time compiling; with the cache on,
the next call loads the compiled programs from disk. The CLI turns it on at start-up; library
users opt in by calling :func:`enable_compile_cache` themselves (a library should not write to
the user's home behind their back).

Where: ``$GRADLAB_COMPILE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradlab/jax``, else
``~/.cache/gradlab/jax``. Opt out with ``GRADLAB_NO_COMPILE_CACHE=1``. A cache directory the user
already gave JAX (``jax_compilation_cache_dir`` / ``JAX_COMPILATION_CACHE_DIR``) is kept.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

__all__ = ["DIR_ENV", "OPT_OUT_ENV", "default_cache_dir", "enable_compile_cache"]

OPT_OUT_ENV = "GRADLAB_NO_COMPILE_CACHE"
DIR_ENV = "GRADLAB_COMPILE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$GRADLAB_COMPILE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradlab/jax``, else
    ``~/.cache/gradlab/jax``."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gradlab" / "jax"


def _opted_out() -> bool:
    return os.environ.get(OPT_OUT_ENV, "").strip().lower() not in ("", "0", "false", "no")


def enable_compile_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache, caching every program however fast it compiled.

    Call before the first compilation (JAX reads the setting once). gradlab's many small programs
    compile in well under JAX's default one-second threshold, so the threshold is set to zero.

    Args:
      directory: where compiled programs are kept (default :func:`default_cache_dir`).

    Returns:
      The cache directory in use, or ``None`` when ``GRADLAB_NO_COMPILE_CACHE`` is set or the
      directory cannot be created (then a warning says why and how to choose another).
    """
    if _opted_out():
        return None
    configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]  # a dynamic flag
    if configured:
        return Path(configured)
    path = Path(directory).expanduser() if directory is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(
            f"gradlab: compilation cache off, cannot create {path} ({err}); set {DIR_ENV} to a "
            f"writable folder, or {OPT_OUT_ENV}=1 to silence this",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
