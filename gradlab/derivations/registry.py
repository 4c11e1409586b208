"""Every registered derivation. Adding one is a module under ``derivations/`` and one line here."""

from __future__ import annotations

from gradlab.derivations import elastic_net, entropy, l1, l2, logistic_regression, mse
from gradlab.derivations._derivation import Derivation

REGISTRY: dict[str, Derivation] = {
    d.name: d
    for d in (
        mse.MEAN,
        mse.HALF_MEAN,
        l1.L1,
        l2.HALF,
        l2.FULL,
        elastic_net.ELASTIC_NET,
        entropy.ENTROPY,
        entropy.MIRAGE,
        entropy.MIRAGE_MAXENT,
        logistic_regression.LOGISTIC_REGRESSION,
    )
}


def get(name: str) -> Derivation:
    """The derivation registered as ``name``; a ``KeyError`` lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no derivation named {name!r}; registered: {', '.join(sorted(REGISTRY))}"
        ) from None
