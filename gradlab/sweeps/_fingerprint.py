"""What determines a sweep's rows, hashed part by part, so a checkpoint can say what changed.

A lane's result is a pure function of (hyperparameters, key) once these are fixed:

* ``program``: the traced lane program, the text of its jaxpr (every primitive, shape, dtype,
  literal and nested jaxpr; a Python global that ``train`` reads appears there as a literal), with
  memory addresses (``<function f at 0x..>`` in a few primitives' parameters) blanked so the text
  is the same in every process;
* ``constants``: the bytes, dtype and shape of every array the program closes over (``X``, ``y``,
  a lookup table: the data), found in the closed jaxpr and in every nested one;
* ``grid``: the hyperparameter values exactly as given, their dtypes, names and combine mode;
* ``outputs``: the structure, shapes and dtypes of ``train``'s outputs;
* ``precision`` and ``lane_block`` (the lane block fixes the summation order, see ``_run``);
* ``versions``: gradlab, jax and jaxlib (a new XLA may round differently), and the platform and
  kind of device the lanes run on (a GPU rounds differently from a CPU); not the number of
  devices, which a lane's bits do not depend on.

Two sweeps with equal fingerprints compute the same rows bit for bit on the same backend; a
checkpoint records the parts (``Fingerprint.to_json``), so a mismatch names what changed. Not
covered: code that runs outside the trace (a ``jax.pure_callback`` target, a ``jax.jit``-wrapped
helper whose own trace cache is stale): the jaxpr names such a callback but not its body.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# part -> how a message names it when it changed
PARTS = {
    "program": "train's code (its traced program differs)",
    "constants": "the data train closes over (a closed-over array has other values)",
    "grid": "the grid (its names, values, dtypes or combine mode)",
    "outputs": "the structure, shapes or dtypes of train's outputs",
    "precision": "the matmul precision",
    "lane_block": "lane_block (it fixes each lane's summation order)",
    "versions": "the gradlab/jax versions or the device",
    "size": "the number of configurations",
}


@dataclass(frozen=True)
class Fingerprint:
    """The parts of eq. (1)'s inputs that do not vary by row; see the module docstring."""

    program: str
    constants: str
    grid: str
    outputs: str
    precision: str
    lane_block: int
    versions: str
    size: int

    @property
    def digest(self) -> str:
        """SHA-256 of every part: equal iff all parts are equal."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> Fingerprint:
        """The fingerprint recorded in a manifest; ``ValueError`` if ``doc`` is not one."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(doc, dict) or sorted(doc) != sorted(names):
            raise ValueError(
                f"the fingerprint must be an object with keys {names}; got {doc!r:.120}"
            )
        ints = ("lane_block", "size")
        for k in names:
            want = int if k in ints else str
            if type(doc[k]) is not want:
                raise ValueError(f"fingerprint[{k!r}] must be {want.__name__}; got {doc[k]!r:.60}")
        return cls(**doc)

    def changes(self, recorded: Fingerprint) -> list[str]:
        """What differs from ``recorded``, in words (with old -> new for the readable parts)."""
        out = []
        for k, words in PARTS.items():
            old, new = getattr(recorded, k), getattr(self, k)
            if old != new:
                readable = k in ("precision", "lane_block", "versions", "size")
                out.append(f"{words}: {old} -> {new}" if readable else words)
        return out


def versions(device) -> str:
    """``gradlab V, jax V, jaxlib V on PLATFORM (DEVICE KIND)``."""
    import jaxlib

    from gradlab import __version__

    return (
        f"gradlab {__version__}, jax {jax.__version__}, jaxlib {jaxlib.__version__} "
        f"on {device.platform} ({device.device_kind})"
    )


def program_text(closed: jcore.ClosedJaxpr) -> str:
    """The jaxpr's text with memory addresses blanked (the same in every process)."""
    return _ADDRESS.sub(" at 0x?", str(closed))


def _nested(params: dict) -> list:
    found: list[jcore.ClosedJaxpr | jcore.Jaxpr] = []
    for value in params.values():
        items = value if isinstance(value, tuple | list) else (value,)
        found.extend(v for v in items if isinstance(v, jcore.ClosedJaxpr | jcore.Jaxpr))
    return found


def closed_over_arrays(closed: jcore.ClosedJaxpr) -> list:
    """Every constant of ``closed`` and of the jaxprs nested in it (scan bodies, jit calls,
    custom rules), and every non-scalar literal, in a fixed order."""
    out, stack = [], [closed]
    while stack:
        j = stack.pop()
        if isinstance(j, jcore.ClosedJaxpr):
            out.extend(j.consts)
            j = j.jaxpr
        for eqn in j.eqns:
            out.extend(v.val for v in eqn.invars if isinstance(v, jcore.Literal))
            stack.extend(reversed(_nested(eqn.params)))
    return out


def _array_bytes(x) -> tuple[str, bytes]:
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    a = np.asarray(x)
    return f"{a.dtype.str}{a.shape}", np.ascontiguousarray(a).tobytes()


def constants_digest(closed: jcore.ClosedJaxpr) -> str:
    """SHA-256 over the dtype, shape and bytes of :func:`closed_over_arrays`."""
    h = hashlib.sha256()
    for c in closed_over_arrays(closed):
        head, data = _array_bytes(c)
        h.update(head.encode())
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


def outputs_digest(shapes: Any) -> str:
    h = hashlib.sha256(str(jax.tree.structure(shapes)).encode())
    for s in jax.tree.leaves(shapes):
        h.update(f"{s.shape}{np.dtype(s.dtype).str}".encode())
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
