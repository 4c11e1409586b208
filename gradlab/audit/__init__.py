"""gradlab.audit: check the derivations inside a notebook or script as written.

``audit(path)`` runs the document's code cells in order in a fresh namespace (the user's own
code, as running the notebook would), finds its loss/gradient pairs by names, signatures and
``# gradlab: grad of NAME`` markers, builds their arguments from the notebook's own data (or a
small random draw, said so), and checks each with the three witnesses of
:func:`gradlab.check_grad`; a numpy loss is traced with numpy rebound to jax.numpy, and when that
cannot work (in-place writes, ``np.random``), the hand gradient is judged against finite
differences alone, labelled as such. ``annotate`` writes a copy of a notebook with a verdict
after each checked gradient.
"""

from gradlab.audit._annotate import annotate
from gradlab.audit._audit import AuditReport, audit, audit_target
from gradlab.audit._document import AuditError, load
from gradlab.audit._judge import PairResult, Verdict, Witnesses
from gradlab.audit._numpy_check import check_numpy

__all__ = [
    "AuditError",
    "AuditReport",
    "PairResult",
    "Verdict",
    "Witnesses",
    "annotate",
    "audit",
    "audit_target",
    "check_numpy",
    "load",
]
