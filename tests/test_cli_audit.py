"""``gradlab audit``: table, exit statuses, ``--json``, ``--only``, ``--annotate``, unreadable
notebooks (small documents, a few cells each)."""

from __future__ import annotations

import json

import nbformat
import pytest

from gradlab.cli import main

GOOD = """
import numpy as np
X = np.arange(12.0).reshape(4, 3) / 10
y = np.array([0.5, -1.0, 2.0, 0.0])
theta = np.array([0.1, -0.2, 0.3])

def cost(theta, X, y):
    return 0.5 * np.mean((X @ theta - y) ** 2)

def cost_gradient(theta, X, y):
    return X.T @ (X @ theta - y) / len(y)
"""

BAD_MODEL = """
class Quad:
    def __init__(self):
        self.w = np.array([1.0, -2.0])

    def loss(self):
        return np.sum(self.w ** 2) + np.sum(self.w)

    def grad(self):
        return 2 * self.w  # forgot the + 1
"""


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a derivation")]
    nb.cells += [nbformat.v4.new_code_cell(c.strip()) for c in cells]
    nbformat.write(nb, str(path))
    return path


def test_good_notebook_exits_zero_and_prints_one_table(tmp_path, capsys):
    nb = _notebook(tmp_path / "good.ipynb", GOOD)
    assert main(["audit", str(nb)]) == 0
    out = capsys.readouterr().out
    assert "1 pair(s) checked" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("cost_gradient"))
    assert row.split()[1] == "cost" and row.split()[-2:] == ["ok", "-"]


def test_wrong_pair_exits_one_json_and_annotated_copy(tmp_path, capsys):
    nb = _notebook(tmp_path / "mixed.ipynb", GOOD, "import numpy as np\n" + BAD_MODEL)
    out_json, out_nb = tmp_path / "r.json", tmp_path / "annotated.ipynb"
    rc = main(["audit", str(nb), "--json", str(out_json), "--annotate", str(out_nb)])
    assert rc == 1
    data = json.loads(out_json.read_text())
    verdicts = {p["gradient"]: p["verdict"] for p in data["pairs"]}
    assert verdicts == {"cost_gradient": "ok", "Quad.grad": "WRONG"}
    annotated = nbformat.read(str(out_nb), as_version=4)
    assert annotated.cells[0].metadata["gradlab-audit"] == {"summary": True}
    assert "2 loss/gradient pair(s) checked, 1 wrong" in annotated.cells[0].source
    notes = [c for c in annotated.cells[1:] if c.metadata.get("gradlab-audit")]
    assert [c.metadata["gradlab-audit"]["gradient"] for c in notes] == [
        "cost_gradient",
        "Quad.grad",
    ]
    # each verdict sits right after the cell that defines its gradient
    for c in notes:
        before = annotated.cells[annotated.cells.index(c) - 1]
        assert c.metadata["gradlab-audit"]["gradient"].split(".")[-1] in before.source
    assert "worst element: ['w']" in notes[1].source
    # annotating the annotated copy replaces the verdicts, never stacks them
    again = tmp_path / "again.ipynb"
    assert main(["audit", str(out_nb), "--annotate", str(again)]) == 1
    assert (
        sum(bool(c.metadata.get("gradlab-audit")) for c in nbformat.read(str(again), 4).cells) == 3
    )
    capsys.readouterr()


def test_only_routes_one_gradient_and_names_unknown_ones(tmp_path, capsys):
    nb = _notebook(tmp_path / "mixed.ipynb", GOOD, "import numpy as np\n" + BAD_MODEL)
    assert main(["audit", str(nb), "--only", "cost_gradient", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["gradient"] for p in data["pairs"]] == ["cost_gradient"]
    assert main(["audit", str(nb), "--only", "Nope.grad"]) == 0
    assert "--only Nope.grad: no such gradient found (found: Quad.grad, cost_gradient)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("text", ["{not json", '{"cells": 3}'])
def test_unreadable_notebook_is_one_line_and_the_next_document_is_audited(tmp_path, capsys, text):
    broken = tmp_path / "broken.ipynb"
    broken.write_text(text)
    good = _notebook(tmp_path / "good.ipynb", GOOD)
    assert main(["audit", str(broken), str(good)]) == 2
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line]
    assert len(err) == 1 and "broken.ipynb: not a readable notebook" in err[0]
    assert "1 pair(s) checked" in captured.out


def test_failing_cell_is_reported_and_the_rest_runs(tmp_path, capsys):
    nb = _notebook(tmp_path / "f.ipynb", "import numpy as np", "1 / 0", GOOD)
    assert main(["audit", str(nb)]) == 0
    out = capsys.readouterr().out
    assert "cell 2: failed: line 1: ZeroDivisionError: division by zero" in out
    assert "1 pair(s) checked" in out


def test_annotate_refuses_a_script(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text(GOOD)
    assert main(["audit", str(script), "--annotate", str(tmp_path / "o.ipynb")]) == 2
    assert "--annotate needs a notebook" in capsys.readouterr().err


def test_audit_target_names_one_gradient_as_nb_colon_name(tmp_path):
    from gradlab.audit import AuditError, Verdict, audit_target

    nb = _notebook(tmp_path / "m.ipynb", GOOD, "import numpy as np\n" + BAD_MODEL)
    report = audit_target(f"{nb}:Quad.grad")
    assert [(p.name, p.verdict) for p in report.pairs] == [("Quad.grad", Verdict.WRONG)]
    with pytest.raises(AuditError, match="expected NOTEBOOK.ipynb:GRADIENT"):
        audit_target(str(nb))
