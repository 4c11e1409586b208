"""Hand-derived losses, gradients and Hessians, one module per derivation, each beside its math.

``REGISTRY`` maps a name to a :class:`Derivation`; tests, the checker's CLI and the benchmarks
iterate over it.
"""

from gradlab.derivations._derivation import Derivation
from gradlab.derivations.registry import REGISTRY, get

__all__ = ["REGISTRY", "Derivation", "get"]
