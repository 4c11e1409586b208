"""gradlab.hypergrad: d(validation loss)/d(hyperparameters), unrolled and implicit, checked.

* :func:`unrolled`: reverse mode through :func:`gradlab.fit`, checkpointed in blocks of
  :math:`\\lceil\\sqrt T\\rceil` steps (memory :math:`O(\\sqrt T)`).
* :func:`implicit`: the implicit function theorem at the inner optimum (Hessian-vector products,
  CG/GMRES; the lasso on its support), refusing when the inner solve is not converged enough.
* :func:`check_hypergrad`: implicit, unrolled and finite differences in hyperparameter space
  side by side; a :class:`HypergradReport` says which is off and why (:class:`Finding`).
* :func:`refine`: from a grid's best cell down the hypergradient in log space. (Hypergradients
  over a grid as one ``jit(vmap)`` are :func:`gradlab.sweeps.hypergrad_sweep`: the sweep layer
  uses hypergrad, never the reverse.)
"""

from gradlab.hypergrad._check import Unroll, check_hypergrad
from gradlab.hypergrad._findings import Finding, HypergradRefused, Witness
from gradlab.hypergrad._finite_diff import FDResult, hypergrad_fd
from gradlab.hypergrad._implicit import ImplicitResult, implicit, implicit_at
from gradlab.hypergrad._problem import InnerProblem
from gradlab.hypergrad._refine import RefineResult, refine
from gradlab.hypergrad._report import HypergradReport, Verdict, WitnessValue
from gradlab.hypergrad._solvers import fit_solver, newton_solver
from gradlab.hypergrad._unrolled import UnrolledResult, default_block, unrolled

__all__ = [
    "FDResult",
    "Finding",
    "HypergradRefused",
    "HypergradReport",
    "ImplicitResult",
    "InnerProblem",
    "RefineResult",
    "Unroll",
    "UnrolledResult",
    "Verdict",
    "Witness",
    "WitnessValue",
    "check_hypergrad",
    "default_block",
    "fit_solver",
    "hypergrad_fd",
    "implicit",
    "implicit_at",
    "newton_solver",
    "refine",
    "unrolled",
]
