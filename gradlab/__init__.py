"""gradlab: hand-derived gradients proven against ``jax.grad``, trained and swept at accelerator speed.

The public surface. Layers, each using only those above it:
derivations -> check -> optim -> train -> sweep -> plot -> cli.
"""

from gradlab import derivations
from gradlab.derivations import REGISTRY, Derivation

__version__ = "0.1.0"

__all__ = [
    "REGISTRY",
    "Derivation",
    "derivations",
]
