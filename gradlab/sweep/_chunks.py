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
device memory still finishes, one chunk at a time.
"""

from __future__ import annotations

import math

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


def blocks_per_device(
    *,
    size: int,
    n_devices: int,
    lane_block: int,
    per_config_bytes: int,
    chunk_size: int | None,
    memory_budget: int | None,
) -> int:
    """``k`` of eq. (2), or from an explicit ``chunk_size`` (rounded up to whole blocks on every
    device); never more blocks than the grid needs."""
    per_pass = n_devices * lane_block
    need = max(1, -(-size // per_pass))  # blocks per device for the whole grid in one chunk
    if chunk_size is not None:
        k = -(-int(chunk_size) // per_pass)
    else:
        budget = memory_budget if memory_budget is not None else device_budget(jax.devices()[0])
        k = int(budget) // max(1, 2 * lane_block * per_config_bytes)  # (2)
    return int(min(max(1, k), need))
