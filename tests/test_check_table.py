"""One text-table formatter (issue 15): the check report and ``gradlab check`` pad columns the
same way, through ``gradlab.check._table.format_table``."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from gradlab import check_grad
from gradlab.check._table import format_table
from gradlab.cli import check as cli_check


def test_columns_are_as_wide_as_their_widest_cell_with_an_optional_rule():
    rows = [("a", "bb"), ("ccc", "d")]
    assert format_table(rows) == ["a    bb", "ccc  d"]
    assert format_table(rows, indent="> ", rule=True) == ["> a    bb", "> ---  --", "> ccc  d"]
    assert format_table([]) == []


def test_a_ragged_row_is_refused_not_shifted():
    with pytest.raises(ValueError, match="row 1 has 1 cells but the header has 2"):
        format_table([("a", "b"), ("c",)])


def test_the_report_and_the_cli_tables_are_drawn_by_it(monkeypatch):
    from gradlab.check import _render

    drawn = []

    def recording(rows, **kwargs):
        drawn.append(format_table(rows, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(_render, "format_table", recording)
    text = str(check_grad(lambda w: jnp.sum(w**3), lambda w: 3 * w**2, jnp.arange(3.0)))
    assert drawn and "\n".join(drawn[0]) in text
    assert drawn[0][0].split()[:2] == ["leaf", "shape"]
    head = ("derivation", "shape", "hand~autodiff rel err", "fd agrees", "kinks", "hessian/hvp",
            "verdict")  # fmt: skip
    row = ("mse", "3", "1.0e-16", "3/3", "0", "-", "ok")
    assert cli_check._table([row]) == "\n".join(format_table([head, row], rule=True))
