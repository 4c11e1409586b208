"""Write a copy of an audited notebook with a markdown verdict cell after each checked gradient."""

from __future__ import annotations

import copy
from pathlib import Path

from gradlab.audit._audit import AuditReport
from gradlab.audit._document import AuditError, DocKind
from gradlab.audit._judge import PairResult, Verdict

MARK = "gradlab-audit"


def verdict_markdown(p: PairResult) -> str:
    """The markdown of one pair's verdict: the verdict, the worst element, the blamed terms."""
    icon = {
        Verdict.OK: "✅",
        Verdict.FD_OK: "✅",
        Verdict.WRONG: "❌",
        Verdict.FD_WRONG: "❌",
        Verdict.ERROR: "⚠️",
    }[p.verdict]
    lines = [f"**{icon} gradlab audit: `{p.name}` against `{p.loss}`: {p.verdict.value}**", ""]
    if p.error:
        lines.append(f"- could not check: {p.error}")
    else:
        lines.append(f"- witnesses: {p.witnesses.value}; max relative error {p.max_rel_err:.2e}")
    if p.worst:
        lines.append(f"- worst element: {p.worst}")
    for b in p.blame:
        lines.append(
            f"- blamed term `{b.term}` with coefficient {b.coef:.6g}: its hand gradient is "
            f"{b.coef + 1:.6g} times the true one ({b.explained:.1%} of the error)"
        )
    if p.kinks:
        lines.append(f"- {p.kinks} kink(s) judged by the subdifferential")
    lines += [f"- {n}" for n in p.notes if not n.startswith("found ")]
    lines += [f"- untraceable: {f}" for f in p.findings]
    lines += [f"- argument {a}" for a in p.args]
    return "\n".join(lines)


def summary_markdown(report: AuditReport) -> str:
    """The first cell of an annotated notebook: what ran, what was checked, what was not."""
    failed = report.run.failed()
    n_wrong = sum(p.verdict.wrong for p in report.pairs)
    lines = [
        f"**gradlab audit of `{report.path.name}`**: {len(report.run.cells)} code cell(s) run, "
        f"{len(failed)} failed; {len(report.pairs)} loss/gradient pair(s) checked, "
        f"{n_wrong} wrong. (`gradlab audit` ran this notebook's code; verdicts follow the cells "
        "that define each gradient.)",
        "",
    ]
    lines += [f"- {p.name} against {p.loss}: **{p.verdict.value}**" for p in report.pairs]
    lines += [f"- {c.line()}" for c in failed]
    lines += [f"- error: {e}" for e in report.errors]
    lines += [f"- no gradient to check: {n}" for n in report.nothing]
    return "\n".join(lines)


def annotate(report: AuditReport, out: str | Path) -> Path:
    """Write ``report``'s notebook to ``out`` with a verdict cell after each checked gradient
    and a summary cell first.

    Earlier gradlab verdict cells (metadata ``gradlab-audit``) are replaced, not stacked.

    Raises:
      AuditError: the audited document is a script (nothing to annotate in place).
    """
    import nbformat

    doc = report.document
    if doc.kind is not DocKind.NOTEBOOK:
        raise AuditError(f"{doc.path}: --annotate needs a notebook; this is a script")
    nb = copy.deepcopy(doc.notebook)
    after: dict[int, list[PairResult]] = {}
    for p in report.pairs:
        after.setdefault(p.cell_index, []).append(p)
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get(MARK):
            continue
        cells.append(cell)
        for p in after.get(i, []):
            md = nbformat.v4.new_markdown_cell(verdict_markdown(p))
            md.id = f"gradlab-audit-{i}-{len(cells)}"  # stable: the same audit, the same file
            md.metadata[MARK] = {"gradient": p.name, "verdict": p.verdict.value}
            cells.append(md)
    summary = nbformat.v4.new_markdown_cell(summary_markdown(report))
    summary.id = "gradlab-audit-summary"
    summary.metadata[MARK] = {"summary": True}
    nb.cells = [summary, *cells]
    out = Path(out)
    nbformat.write(nb, str(out))
    return out
