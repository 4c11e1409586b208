"""Docstrings as terminal help: reST markup (````x````, ``:math:`...```, ``::``) to plain text."""

from __future__ import annotations

import argparse
import re

_ROLE = re.compile(r":[a-z]+:`([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``")
_LATEX = {r"\dots": "...", r"\ldots": "...", r"\cdot": "*", r"\times": "x", r"\le": "<="}


def plain(text: str | None) -> str | None:
    """``text`` without reST markup: roles and literals keep their content, ``::`` becomes ``:``.

    Examples:
      >>> plain("``--set`` takes ``logspace(a,b,n)`` (:math:`10^a \\\\dots 10^b`). Usage::")
      '--set takes logspace(a,b,n) (10^a ... 10^b). Usage:'
    """
    if text is None:
        return None
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    for tex, word in _LATEX.items():
        text = text.replace(tex, word)
    text = re.sub(r"(?<=\S)::$", ":", text, flags=re.MULTILINE)
    return re.sub(r"^(\s*)::$", "", text, flags=re.MULTILINE).replace("`", "")


def plain_parser(parser: argparse.ArgumentParser) -> None:
    """Make a (sub)parser's description and argument help plain text, keeping its line breaks."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = plain(parser.description)
    for action in parser._actions:  # argparse has no public accessor for them
        if isinstance(action.help, str):
            action.help = plain(action.help)
