"""Every registered derivation. Adding one is a module under ``derivations/`` and one line here."""

from __future__ import annotations

from gradlab.derivations import (
    elastic_net,
    entropy,
    l1,
    l2,
    logistic_mixture,
    logistic_mixture_stable,
    logistic_regression,
    mse,
    softmax_nll,
)
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
        softmax_nll.SOFTMAX_NLL,
        logistic_mixture.SEED,
        logistic_mixture.SEED_EDGE,
        logistic_mixture_stable.STABLE,
        logistic_mixture_stable.STABLE_EDGE,
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
