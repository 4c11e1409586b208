r"""How many configurations one compiled call runs: from a memory budget, a lane block, devices.

A chunk runs :math:`D` devices :math:`\times` :math:`k` blocks :math:`\times` :math:`B` lanes.
Each device vmaps ``train`` over :math:`B` lanes (a *lane block*) and loops (``lax.map``) over
its :math:`k` blocks, so its working memory is one block's intermediates, and its output is

.. math::  M_{\mathrm{dev}} = k\,B\,m, \qquad m = \textstyle\sum_{\ell} \mathrm{size}(\ell)\,
           \mathrm{itemsize}(\ell)                                                       \tag{1}

where :math:`m` sums the bytes of ``train``'s output leaves (final params, strided history,
metrics) for one configuration, read from ``jax.eval_shape`` without running anything. Given a
per-device budget :math:`M`, the number of blocks per device is

.. math::  k = \max\!\Big(1, \Big\lfloor \frac{M}{2 B m} \Big\rfloor\Big)              \tag{2}

(the factor 2 leaves room for the output buffer of the block being written while the stacked
outputs exist), and a chunk holds :math:`D k B` configurations. A grid larger than that runs in
several chunks of the same shape (the last one padded), compiled once, so a sweep larger than
device memory still finishes, one chunk at a time. An explicit ``chunk_size`` is honoured
exactly (see :func:`plan`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np

DEFAULT_CPU_BUDGET = 512 * 2**20  # bytes per device when the device does not report its memory
MAX_LANE_BLOCK = 128


def output_bytes(shapes) -> int:
    """``m`` of eq. (1): bytes of one configuration's outputs, from ``jax.eval_shape`` leaves."""
    return int(
        sum(math.prod(s.shape) * np.dtype(s.dtype).itemsize for s in jax.tree.leaves(shapes))
    )


def default_lane_block(size: int) -> int:
    """The smallest power of two >= ``size``, at most 128: wide enough to vectorize, small
    enough that a tiny grid is not padded much."""
    return int(min(MAX_LANE_BLOCK, 1 << max(0, (int(size) - 1).bit_length())))


def device_budget(device) -> int:
    """Bytes a chunk may use on ``device``: a quarter of its memory limit when it reports one
    (GPU, TPU), else 512 MiB (CPU)."""
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory stats raise various errors
        stats = {}
    limit = stats.get("bytes_limit")
    return int(limit) // 4 if limit else DEFAULT_CPU_BUDGET


class Plan(NamedTuple):
    """How a sweep is cut: ``chunk = devices * blocks * lane_block`` configurations per call."""

    lane_block: int  # B of eq. (1)
    devices: int  # D
    blocks: int  # k, blocks per device per chunk
    chunk: int  # D k B


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _lane_block_for(chunk_size: int, n_devices: int, size: int) -> int:
    """The default lane block when ``chunk_size`` is given: the largest power of two that is at
    most :func:`default_lane_block` and divides the per-device share of ``chunk_size``."""
    share = chunk_size // n_devices
    b = default_lane_block(size)
    while share % b:
        b //= 2
    return b


def plan(
    *,
    size: int,
    n_devices: int,
    per_config_bytes: int,
    lane_block: int | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> Plan:
    """The chunk layout, from eq. (2) or from ``chunk_size``.

    The ``chunk_size`` rule: a chunk is exactly ``chunk_size`` configurations (the last one
    padded), unless the whole grid fits in fewer, so ``chunk_size`` must be a multiple of
    ``devices * lane_block``; when ``lane_block`` is not given it is chosen to make it one (the
    largest power of two up to the default that divides ``chunk_size / devices``). Anything else
    is a ``ValueError`` naming the valid choices, never a silent rounding.
    """
    if lane_block is not None:
        lane_block = _positive_int("lane_block", lane_block)
    if memory_budget is not None and (isinstance(memory_budget, bool) or not memory_budget > 0):
        raise ValueError(f"memory_budget must be > 0 bytes; got {memory_budget!r}")
    if chunk_size is None:
        b = default_lane_block(size) if lane_block is None else lane_block
        budget = memory_budget if memory_budget is not None else device_budget(jax.devices()[0])
        k = int(budget) // max(1, 2 * b * per_config_bytes)  # (2)
    else:
        chunk_size = _positive_int("chunk_size", chunk_size)
        if chunk_size % n_devices:
            raise ValueError(
                f"chunk_size must be a multiple of the {n_devices} devices (every device runs "
                f"the same number of configurations); got {chunk_size}"
            )
        b = _lane_block_for(chunk_size, n_devices, size) if lane_block is None else lane_block
        per_pass = n_devices * b
        if chunk_size % per_pass:
            lower, upper = (
                max(per_pass, chunk_size - chunk_size % per_pass),
                -(-chunk_size // per_pass) * per_pass,
            )
            raise ValueError(
                f"chunk_size must be a multiple of devices x lane_block = {n_devices} x {b} = "
                f"{per_pass}; got {chunk_size}: pass chunk_size={lower} or {upper}, or a "
                f"lane_block dividing {chunk_size // n_devices}"
            )
        k = chunk_size // per_pass
    need = max(1, -(-size // (n_devices * b)))  # blocks per device for the whole grid at once
    k = int(min(max(1, k), need))
    return Plan(lane_block=b, devices=n_devices, blocks=k, chunk=n_devices * k * b)


def row_ranges(size: int, done: list[tuple[int, int]], chunk: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` ranges still to run: the gaps between the ``done`` ranges (sorted,
    disjoint), each cut into pieces of at most ``chunk`` rows."""
    out, at = [], 0
    for start, stop in [*done, (size, size)]:
        for s in range(at, start, chunk):
            out.append((s, min(s + chunk, start)))
        at = max(at, stop)
    return out
