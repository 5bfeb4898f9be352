"""Hypothesis strategies for hostile input: random programs from the grammar, and mutated real specs.

(a) `grammar_programs()`: `hypothesis.extra.lark.from_lark` over netdsl's own Lark grammar. from_lark
    joins terminals with nothing between them (`conv` `10` would come out as `conv10`), so every
    terminal gets an explicit strategy that pads it with spaces; NAME draws mostly from netdsl's
    real vocabulary so that the lowering and the analyzer are reached, not only the parser.
(b) `mutated_specs()`: the specs in specs/ with tokens deleted, duplicated, swapped or replaced,
    random and non-UTF-8 bytes, NULs, CRLF line ends, very long lines, truncation: as bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from netdsl.ir import WORDS
from netdsl.layers.base import Syntax
from netdsl.syntax import grammar_path

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.net"))
SEED_TEXTS = [path.read_bytes() for path in SPECS]


def _vocabulary() -> list[str]:
    """Every word a statement may start with or take, from the layer registry (not a hand list)."""
    words = {*WORDS, "input", "train", "augment", "w", "n", "x"}
    for cls in set(WORDS.values()):
        syntax: Syntax = cls.syntax
        words.update(syntax.flags)
        words.update(syntax.sequence[1] if syntax.sequence else ())
        words.update(f"{prefix}{n}" for prefix in syntax.prefixed for n in (0, 1, 3, 2, 7))
        words.update(syntax.aliases)
    return sorted(words)


VOCABULARY = _vocabulary()

SPECIAL_NUMBERS = ["-1", "0", ".1", "1e-6", "1e400", "-0", "+3", "1000000000000"]
SPECIAL_NUMBERS += ["9" * 19, "9" * 41, "9" * 5000]  # past int64, netdsl's 40 digits, Python's 4,300-digit limit
NUMBERS = st.one_of(
    st.integers(min_value=0, max_value=64).map(str),
    st.sampled_from(SPECIAL_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr).filter(lambda s: "e" not in s or "." in s),
)
SHAPES = st.one_of(
    st.sampled_from(["32x32x3", "8x8x1", "28x28x1", "1x1", "0x4x4", "3x5", "224x224x3", "100000x100000x3"]),
    st.lists(st.integers(0, 40), min_size=2, max_size=5).map(lambda ns: "x".join(map(str, ns))),
    st.lists(st.integers(0, 10**30), min_size=1, max_size=40).map(lambda ns: "8x" + "x".join(map(str, ns))),
)
NAMES = st.one_of(
    st.sampled_from(VOCABULARY),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True),
)


def _padded(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(lambda text: f" {text} ")


def grammar_programs() -> st.SearchStrategy[str]:
    """Programs the grammar accepts (mostly), over real words; about half start with an input line."""
    explicit = {
        "NAME": _padded(NAMES),
        "NUMBER": _padded(NUMBERS),
        "SHAPE": _padded(SHAPES),
        "STRING": _padded(st.from_regex(r'"[^"\n\r]{0,6}"', fullmatch=True)),
        "_NL": st.sampled_from(["\n", "\r\n", "\n\n"]),
    }
    text = grammar_path().read_text(encoding="utf-8")
    # from_lark expands rules at random: arithmetic's self-nesting alternatives make most draws too deep to
    # finish, so the fuzzer keeps one level of it (`a*b`, `a+b`); tests/properties cover nested arithmetic.
    text = text.replace('     | "-" atom            -> negate\n', "").replace('     | "(" sum ")"\n', "")
    text = text.replace('    | sum "+" product   -> plus', '    | value "+" value   -> plus')
    text = text.replace('    | sum "-" product   -> minus', '    | value "-" value   -> minus')
    text = text.replace('        | product "*" atom  -> times', '        | value "*" value  -> times')
    text = text.replace('        | product "/" atom  -> divide', '        | value "/" value  -> divide')
    grammar = Lark(text, parser="lalr")  # uncached: from_lark reads .grammar
    for terminal in grammar.terminals:  # keywords and punctuation: `repeat`, `[`, `=`, ...
        if terminal.pattern.type == "str":
            explicit.setdefault(terminal.name, st.just(f" {terminal.pattern.value} "))
    body = from_lark(grammar, start="start", explicit=explicit)
    return st.tuples(st.sampled_from(["", "input 16x16x3\n", "input 32\n"]), body).map("".join)


_TOKEN = re.compile(rb"[A-Za-z0-9_.\-+]+|\s+|.", re.S)
JUNK = [b"\x00", b"\xff", b"\xc3\x28", b"\xe2\x82", b"\r", b"\t", b"\\", b"[", b"]", b";", b"=", b"<", b'"', b"#"]


@st.composite
def mutated_specs(draw: st.DrawFn) -> bytes:
    """A real spec, damaged by one to four random edits."""
    tokens = _TOKEN.findall(draw(st.sampled_from(SEED_TEXTS)))
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "junk", "bytes", "long", "crlf", "cut"]))
        i = draw(st.integers(0, len(tokens) - 1))
        j = draw(st.integers(0, len(tokens) - 1))
        if edit == "delete":
            del tokens[i]
        elif edit == "duplicate":
            tokens.insert(i, tokens[i])
        elif edit == "swap":
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif edit == "replace":
            tokens[i] = draw(st.one_of(st.sampled_from(VOCABULARY), NUMBERS, SHAPES)).encode()
        elif edit == "junk":
            tokens.insert(i, draw(st.sampled_from(JUNK)))
        elif edit == "bytes":
            tokens.insert(i, draw(st.binary(min_size=1, max_size=8)))
        elif edit == "long":  # a very long line: one token repeated, or a huge comment
            tokens.insert(i, draw(st.sampled_from([tokens[j] + b" ", b"#" + b"x"])) * draw(st.integers(1000, 20000)))
        elif edit == "crlf":
            tokens = [t.replace(b"\n", b"\r\n") for t in tokens]
        else:
            tokens = tokens[:i]
        if not tokens:
            tokens = [b""]
    return b"".join(tokens)
