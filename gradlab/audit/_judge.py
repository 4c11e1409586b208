"""Check one problem: three witnesses when the rebound loss traces, finite differences otherwise.

1. The rebound loss (numpy as jax.numpy) is traced through ``jax.grad`` on the problem's
   parameters and its value compared with the numpy loss's (to 1e-9 relative): a rebinding that
   changed what the code computes is never trusted.
2. If that works, :func:`gradlab.check_grad` judges the hand gradient (numpy, called eagerly) with
   its three witnesses, kinks and, when the loss is a visible sum, blame over its pieces.
3. If not, the lines jax cannot trace are listed (``_source``) beside the trace error, and the
   hand gradient is judged against finite differences alone (``_fd_only``), labelled as such.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.audit import _fd_blame, _fd_only
from gradlab.audit._clips import clip_notes
from gradlab.audit._problem import Problem, ProblemError, scalar
from gradlab.audit._source import Source
from gradlab.check import check_grad


class Verdict(enum.Enum):
    OK = "ok"
    WRONG = "WRONG"
    FD_OK = "ok (fd only)"
    FD_WRONG = "WRONG (fd only)"
    ERROR = "error"

    @property
    def wrong(self) -> bool:
        return self in (Verdict.WRONG, Verdict.FD_WRONG)


class Witnesses(enum.Enum):
    """Which witnesses judged a pair."""

    THREE = "hand, autodiff, fd"
    FD_ONLY = "hand, fd (" + _fd_only.LABEL + ")"
    NONE = "-"


@dataclasses.dataclass(frozen=True)
class BlamedTerm:
    term: str
    coef: float
    explained: float


@dataclasses.dataclass(frozen=True)
class PairResult:
    """The audit of one pair: verdict, witnesses, worst element, blame, and every note."""

    name: str
    loss: str
    where: str
    cell_index: int
    verdict: Verdict
    witnesses: Witnesses
    max_rel_err: float | None = None
    worst: str = ""
    blame: tuple[BlamedTerm, ...] = ()
    kinks: int = 0
    args: tuple = ()  # ArgSource each: where every argument came from
    notes: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    error: str = ""
    report: Any = None  # GradReport, FdOnlyReport or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gradient": self.name,
            "loss": self.loss,
            "where": self.where,
            "verdict": self.verdict.value,
            "wrong": self.verdict.wrong,
            "witnesses": self.witnesses.value,
            "max_rel_err": self.max_rel_err,
            "worst": self.worst,
            "blame": [dataclasses.asdict(b) for b in self.blame],
            "kinks": self.kinks,
            "args": [a.to_dict() for a in self.args],
            "notes": list(self.notes),
            "untraceable": list(self.findings),
            "error": self.error,
            "report": None if self.report is None else self.report.to_dict(),
        }


def _trace(traced_loss, params: dict, value: float) -> str | None:
    """None when the rebound loss traces, differentiates and equals the numpy loss; else why."""
    p = {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}
    vg = jax.value_and_grad(lambda q: jnp.reshape(traced_loss(q), ()))
    try:
        jax.eval_shape(vg, p)  # abstract, as under jit: Python control flow on values fails here
        traced_value, _ = vg(p)
    except Exception as err:  # noqa: BLE001 - any failure to trace means: fall back
        text = str(err).strip().splitlines()
        return f"{type(err).__name__}: {text[0] if text else ''}"[:200]
    tv = float(traced_value)
    if not np.isclose(tv, value, rtol=1e-9, atol=1e-12 * max(1.0, abs(value))) and not (
        np.isnan(tv) and np.isnan(value)
    ):
        return f"the rebound loss gives {tv!r} but the numpy loss gives {value!r}"
    return None


def _summary(report) -> tuple[float, str, tuple[BlamedTerm, ...], int]:
    d = report.to_dict()
    leaves = d.get("leaves", [])
    rel = max(
        (float(x["max_rel_err"]) for x in leaves if isinstance(x["max_rel_err"], float)),
        default=0.0,
    )
    worst = ""
    bad = [x for x in leaves if not x.get("ok", True)] or leaves
    if bad:
        leaf = max(
            bad, key=lambda x: x["max_rel_err"] if isinstance(x["max_rel_err"], float) else np.inf
        )
        if leaf.get("worst"):
            e = leaf["worst"][0]
            worst = (
                f"{leaf['path']}{e['index']}: hand {_g(e['hand'])}, autodiff {_g(e['autodiff'])}, "
                f"fd {_g(e['fd'])}"
            )
    blame = tuple(
        BlamedTerm(b["term"], float(b["coef"]), float(b["explained"]))
        for b in d.get("blame", [])
        if isinstance(b.get("explained"), float) and b["explained"] >= 1e-6
    )
    return rel, worst, blame, len(d.get("kinks", []))


def _g(x) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def judge(problem: Problem, src: Source) -> PairResult:
    """The :class:`PairResult` of one problem (never raises on the user's code)."""
    c = problem.candidate
    base: dict[str, Any] = dict(
        name=c.name,
        loss=c.loss.qualname,
        where=c.grad.where,
        cell_index=c.grad.cell.index,
        args=tuple(problem.sources),
    )
    notes = [f"found {c.how}", *problem.notes]
    try:
        value, squeezed = scalar(c.loss.qualname, problem.loss(problem.params))
        hand = problem.grad(problem.params)
    except ProblemError as err:
        error = str(err)
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        error = f"{c.name}: {type(err).__name__}: {err}"[:220]
    else:
        error = ""
    if error:
        return PairResult(
            **base, verdict=Verdict.ERROR, witnesses=Witnesses.NONE, error=error, notes=tuple(notes)
        )
    if squeezed:
        notes.append(f"{c.loss.qualname} returns a size-1 array; its one element is the loss")
    notes += clip_notes(src, problem)
    why = _trace(problem.traced_loss, problem.params, value)
    if why is not None and problem.sliced_loss is not None:
        if _trace(problem.sliced_loss, problem.params, value) is None:
            notes.append(
                f"{c.loss.qualname} does not trace whole ({why}); its loss is traced without the "
                "statements only the gradient needs"
            )
            problem = dataclasses.replace(problem, traced_loss=problem.sliced_loss)
            why = None
    if why is None:
        notes.append(f"autodiff: {problem.rebound.describe()}")
        return _three(problem, base, notes)
    notes.append(f"the loss does not trace with numpy rebound to jax.numpy ({why})")
    findings = tuple(str(f) for f in src.untraceable(c.loss))
    return _fd_fallback(problem, hand, base, notes, findings)


def _fd_fallback(problem: Problem, hand, base: dict, notes: list, findings: tuple) -> PairResult:
    """Hand against finite differences only (``_fd_only``), labelled as such."""
    common: dict[str, Any] = dict(
        base, witnesses=Witnesses.FD_ONLY, notes=tuple(notes), findings=findings
    )
    try:
        rep = _fd_only.check(problem.loss, hand, problem.params)
    except Exception as err:  # noqa: BLE001 - a clear one-line error, the audit goes on
        error = f"finite differences failed: {type(err).__name__}: {err}"[:220]
        return PairResult(**common, verdict=Verdict.ERROR, error=error)
    w = rep.worst
    at = "" if w is None else (f"{w.path}{list(w.index)}" if w.path.startswith("[") else w.path)
    worst = "" if w is None else f"{at}: hand {w.hand:.6g}, fd {w.fd:.6g} +- {w.fd_error:.2g}"
    if rep.checked != "every element":
        common["notes"] += (f"checked along {rep.checked} (too many elements for each one)",)
    blamed: tuple[BlamedTerm, ...] = ()
    if not rep.ok and len(problem.terms) >= 2 and rep.checked == "every element":
        try:
            terms = {n: np_term for n, (np_term, _) in problem.terms.items()}
            fits = _fd_blame.blame(terms, hand, problem.params)
            blamed = tuple(BlamedTerm(b.term, b.coef, b.explained) for b in fits)
        except Exception as err:  # noqa: BLE001 - blame is an explanation, never the verdict
            common["notes"] += (f"blame skipped ({type(err).__name__}: {err})"[:160],)
    return PairResult(
        **common,
        verdict=Verdict.FD_OK if rep.ok else Verdict.FD_WRONG,
        max_rel_err=rep.max_rel_err,
        worst=worst,
        blame=blamed,
        kinks=rep.n_kinks,
        report=rep,
    )


def _three(problem: Problem, base: dict, notes: list[str]) -> PairResult:
    names = list(problem.params)

    def loss(p):
        return jnp.reshape(problem.traced_loss(p), ())

    def hand(p):
        q = {k: np.asarray(p[k], np.float64) for k in names}  # raises on tracers: called eagerly
        out = problem.grad(q)
        return {k: np.asarray(out[k], np.float64) for k in names}

    terms = None
    if len(problem.terms) >= 2:
        terms = {
            name: (lambda p, t=tr: jnp.reshape(t(p), ())) for name, (_, tr) in problem.terms.items()
        }
    params = {k: np.asarray(v, np.float64) for k, v in problem.params.items()}
    try:
        with jax.enable_x64(True):
            try:
                report = check_grad(loss, hand, params, terms=terms)
            except ValueError as err:
                if terms is None:
                    raise
                notes.append(f"blame skipped ({str(err).strip().splitlines()[0][:120]})")
                report = check_grad(loss, hand, params)
    except Exception as err:  # noqa: BLE001 - a clear one-line error, the audit goes on
        text = str(err).strip().splitlines()
        return PairResult(
            **base,
            verdict=Verdict.ERROR,
            witnesses=Witnesses.THREE,
            error=f"{base['name']}: {type(err).__name__}: {text[0] if text else ''}"[:220],
            notes=tuple(notes),
        )
    rel, worst, blame, kinks = _summary(report)
    return PairResult(
        **base,
        verdict=Verdict.OK if report.ok else Verdict.WRONG,
        witnesses=Witnesses.THREE,
        max_rel_err=rel,
        worst=worst,
        blame=blame,
        kinks=kinks,
        notes=tuple(notes),
        report=report,
    )
