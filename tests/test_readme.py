"""README.md runs as pasted: its ``python`` blocks, in order, in one namespace, in a fresh
interpreter with JAX's defaults (x64 off, as a new user has it), and print what it shows.

Fences (the first word is the language GitHub highlights; the rest is for this test):

* ```` ```python ```` runs; ```` ```python norun ```` is shown only (say why next to it);
* ```` ```text output ```` right after a python block is what it prints, line for line;
  ```` ```text output abridged ```` is a selection of the printed lines, in order. A ``...`` in a
  shown line matches any text there (doctest's ELLIPSIS).
"""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\S*)[ \t]*([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARK = "<<<gradlab-readme-block {}>>>"


class Block(NamedTuple):
    line: int
    code: str
    expected: str | None
    abridged: bool


def readme_blocks(text: str) -> list[Block]:
    """The runnable python blocks, each with the output block that follows it (if any)."""
    blocks: list[Block] = []
    for m in FENCE.finditer(text):
        lang, flags, body = m.group(1), m.group(2).split(), m.group(3)
        line = text.count("\n", 0, m.start()) + 1
        if lang == "python" and "norun" not in flags:
            blocks.append(Block(line, body, None, False))
        elif lang == "text" and "output" in flags:
            assert blocks, f"README.md:{line}: an output block with no python block before it"
            last = blocks[-1]
            assert last.expected is None, f"README.md:{line}: a second output block for one block"
            blocks[-1] = last._replace(expected=body, abridged="abridged" in flags)
    return blocks


RUNNER = """
import json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__readme__"}
for i, (line, code) in enumerate(blocks):
    print(MARK.format(i), flush=True)
    exec(compile("\\n" * (line) + code, "README.md", "exec"), namespace)
    sys.stdout.flush()
print(MARK.format(len(blocks)), flush=True)
exec(EPILOGUE, namespace)
""".replace("MARK", repr(MARK))

# After the README: things it claims that its printed output cannot show.
EPILOGUE = """
import json
import numpy as np
t = res.table()                      # the sweep example: the seed axis changes the runs
lr, seed, loss = t["lr"], t["seed"], t["loss"]
groups = [loss[(lr == v) & ~t["diverged"]] for v in np.unique(lr)]
spread = [np.ptp(g) for g in groups if g.size > 1]
print(json.dumps({"seeds_differ": bool(max(spread) > 0), "seeds": sorted(set(seed.tolist()))}))
"""


def _matches(shown: str, got: str) -> bool:
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    return checker.check_output(shown.strip() + "\n", got.strip() + "\n", flags)


def check_output(block: Block, got: str) -> None:
    where = f"README.md:{block.line}"
    if not block.abridged:
        assert _matches(block.expected, got), f"{where} prints\n{got}\nbut shows\n{block.expected}"
        return
    lines = got.splitlines()
    pos = 0
    for shown in (s for s in block.expected.splitlines() if s.strip()):
        while pos < len(lines) and not _matches(shown, lines[pos]):
            pos += 1
        assert pos < len(lines), f"{where}: shown line {shown!r} is not printed (in order):\n{got}"
        pos += 1


def run_readme(tmp_path: Path, text: str) -> tuple[list[str], dict]:
    blocks = readme_blocks(text)
    (tmp_path / "blocks.json").write_text(json.dumps([(b.line - 1, b.code) for b in blocks]))
    (tmp_path / "runner.py").write_text(RUNNER.replace("EPILOGUE", repr(EPILOGUE)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "GRADLAB_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["GRADLAB_NO_COMPILE_CACHE"] = "1"
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "blocks.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    parts = re.split(r"<<<gradlab-readme-block \d+>>>\n", proc.stdout)[1:]
    assert len(parts) == len(blocks) + 1, proc.stdout[-3000:]
    return parts[:-1], json.loads(parts[-1].strip().splitlines()[-1])


def test_readme_blocks_run_in_order_and_print_what_they_show(tmp_path):
    text = (ROOT / "README.md").read_text()
    blocks = readme_blocks(text)
    assert len(blocks) >= 4 and sum(b.expected is not None for b in blocks) >= 2
    outputs, extra = run_readme(tmp_path, text)
    for block, got in zip(blocks, outputs, strict=True):
        if block.expected is not None:
            check_output(block, got)
    assert extra == {"seeds_differ": True, "seeds": [0, 1, 2, 3]}
    assert (tmp_path / "table.csv").is_file()


def test_the_checker_catches_a_wrong_shown_output():
    block = Block(1, "", "a\n...\nc", abridged=False)
    check_output(block, "a\nb b\nc")
    try:
        check_output(block, "a\nb\nd")
    except AssertionError as err:
        assert "README.md:1 prints" in str(err)
    else:
        raise AssertionError("a wrong output passed")
    short = Block(1, "", "x = 1\nz = ...", abridged=True)
    check_output(short, "x = 1\ny = 2\nz = 3")
    try:
        check_output(short, "z = 3\nx = 1")
    except AssertionError as err:
        assert "is not printed (in order)" in str(err)
    else:
        raise AssertionError("lines out of order passed")
    fences = "```python\nprint(1)\n```\n```text output abridged\n1\n```\n```python norun\nx\n```\n"
    assert readme_blocks(fences) == [Block(1, "print(1)\n", "1\n", True)]
