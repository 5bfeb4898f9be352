"""The grammar file and Lark's LALR parser over it, built once per process: the language's definition,
used to parse every spec with a syntax error (netdsl/fastparse.py reads the others) and to word its
messages."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark

_HERE = Path(__file__).resolve().parent
GRAMMAR_PATHS = (
    _HERE / "grammar" / "netdsl.lark",  # inside an installed wheel
    _HERE.parent / "grammar" / "netdsl.lark",  # in a checkout (and an editable install)
)


def grammar_path() -> Path:
    """The grammar file, from a wheel or a checkout."""
    for path in GRAMMAR_PATHS:
        if path.exists():
            return path
    raise FileNotFoundError(f"netdsl.lark not found in {', '.join(map(str, GRAMMAR_PATHS))}")


@functools.cache
def parser() -> Lark:
    """The LALR parser, built once per process (and cached on disk by Lark between processes)."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=True,
    )
