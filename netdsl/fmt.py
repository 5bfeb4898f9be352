"""`netdsl fmt`: one canonical layout for a spec, comments kept.

The formatter reads the spec with the grammar's own lexer, comments and line breaks included, groups
the tokens into statements and bracketed blocks (`repeat [...]`, `def NAME [...]`, branches
`[a | b]`), and prints them by fixed rules (docs/tools.md): one statement per line, four spaces per
block level, single spaces between arguments, none around `=`, `<` and arithmetic, `, ` in lists,
at most one blank line, full-line and trailing comments where they were. A block written on one
line stays on one line; one written over several lines (or holding a comment) is printed one
statement per line. Argument order is kept: it carries meaning (`relu bn` is not `bn relu`).

The result is checked before it is returned: it must parse to the same statements as the input
(spans aside), so formatting can never change what a spec means.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lark import Token

from netdsl.diagnostics import Source
from netdsl.ir import Span
from netdsl.syntax import parse_surface, parser

INDENT = "    "
MAX_INLINE = 100
"""Characters a one-line block may take; beyond, it is printed one statement per line."""
OPERATORS = frozenset({"+", "-", "*", "/"})
TIGHT = frozenset({"=", "<"})  # `l2=1e-6`, `freeze<142`, `s=1`
COMPARISONS = frozenset({"<", "<=", ">", ">=", "=="})
UNARY_AFTER = frozenset({"(", ",", "=", "<", "[", "|", ";", *OPERATORS, "repeat", "for", "in", "def", "as"})


class FormatError(RuntimeError):
    """The formatted text would not mean what the input means: a bug in the formatter; the file is left alone."""


@dataclass
class Bracket:
    """`[ ... | ... ]`: its branches (one for a block), each a list of items, and whether it spans lines."""

    branches: list[list[Any]]
    multiline: bool
    comment: str | None = None  # a comment right after `[`, on its line


@dataclass
class Statement:
    parts: list[Token | Bracket] = field(default_factory=list)
    comment: str | None = None  # a trailing comment


@dataclass(frozen=True)
class Comment:
    text: str


BLANK = "blank"


class _Reader:
    """Tokens -> nested items (statements, comments, blank lines), bracket by bracket."""

    def __init__(self, text: str) -> None:
        self.tokens = [t for t in parser().lex(text, dont_ignore=True) if not t.type.startswith("__IGNORE")]
        self.position = 0

    def block(self) -> tuple[list[Any], str | None]:
        """Items up to `|`, `]` or the end; also returns which of those ended it."""
        items: list[Any] = []
        current = Statement()
        while self.position < len(self.tokens):
            token = self.tokens[self.position]
            self.position += 1
            if token.type == "COMMENT":
                text = str(token).rstrip()
                if current.parts:
                    current.comment = text
                else:
                    items.append(Comment(text))
            elif token.type == "_NL" or str(token) == ";":
                self._end(items, current)
                current = Statement()
                if token.type == "_NL" and str(token).count("\n") > 1 and items and items[-1] is not BLANK:
                    items.append(BLANK)
            elif str(token) == "[":
                current.parts.append(self.bracket(token))
            elif str(token) in ("|", "]"):
                self._end(items, current)
                return items, str(token)
            else:
                current.parts.append(token)
        self._end(items, current)
        return items, None

    def bracket(self, opening: Token) -> Bracket:
        start = self.position
        comment = None
        if (
            start < len(self.tokens)
            and self.tokens[start].type == "COMMENT"
            and self.tokens[start].line == opening.line
        ):
            comment = str(self.tokens[start]).rstrip()
            self.position += 1
        branches = []
        while True:
            items, ended = self.block()
            branches.append(_trim(items))
            if ended != "|":
                break
        inside = self.tokens[start : self.position]
        multiline = comment is not None or any(t.type in ("_NL", "COMMENT") for t in inside)
        return Bracket(branches, multiline, comment)

    @staticmethod
    def _end(items: list[Any], current: Statement) -> None:
        if current.parts:
            items.append(current)
        elif current.comment:
            items.append(Comment(current.comment))


def _trim(items: list[Any]) -> list[Any]:
    while items and items[0] is BLANK:
        items.pop(0)
    while items and items[-1] is BLANK:
        items.pop()
    return items


def _spaced(previous: str | None, token: str, unary: bool, comparing: bool) -> bool:
    """Whether a space goes between two tokens of one line."""
    if previous is None or previous in ("(", "[") or token in (",", ")", "]"):
        return False
    if comparing and (previous in COMPARISONS or token in COMPARISONS):
        return True  # `assert params < 2M`
    if previous in TIGHT or token in TIGHT:
        return False
    if token in OPERATORS:
        return unary and previous not in OPERATORS
    return previous not in OPERATORS


def _is_unary(parts: list[str], index: int) -> bool:
    """A `-` is unary after the statement's word or after a token that cannot end an operand."""
    return index == 1 or parts[index - 1] in UNARY_AFTER


class _Printer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def block(self, items: list[Any], depth: int) -> None:
        for item in _trim(list(items)):
            if item is BLANK:
                if self.lines and self.lines[-1] != "":
                    self.lines.append("")
            elif isinstance(item, Comment):
                self.lines.append(INDENT * depth + item.text)
            else:
                self.statement(item, depth)

    def statement(self, statement: Statement, depth: int) -> None:
        line = INDENT * depth
        words = [str(p) if isinstance(p, Token) else "[" for p in statement.parts]
        comparing = bool(words) and words[0] == "assert"
        previous: str | None = None
        for index, part in enumerate(statement.parts):
            if isinstance(part, Bracket):
                inline = None if part.multiline else _inline(part)
                line += (" " if previous is not None else "") + ("[" if inline is None else inline)
                if inline is None:
                    line = self.open_block(line, part, depth)
                previous = "]"
                continue
            text = str(part)
            unary = text == "-" and _is_unary(words, index)
            if _spaced(previous, text, unary, comparing):
                line += " "
            line += text
            previous = "(" if unary else text  # nothing between a unary minus and its operand
        self.lines.append(line + (f"  {statement.comment}" if statement.comment else ""))

    def open_block(self, line: str, bracket: Bracket, depth: int) -> str:
        """Print `[`, each branch one level deeper, `|` between them; return the line that starts with `]`."""
        self.lines.append(line + (f"  {bracket.comment}" if bracket.comment else ""))
        for number, branch in enumerate(bracket.branches):
            if number:
                self.lines.append(INDENT * depth + "|")
            self.block(branch, depth + 1)
        return INDENT * depth + "]"


def _inline(bracket: Bracket) -> str | None:
    """`[a; b | c]` on one line, or None when it would be too long."""
    branches = []
    for branch in bracket.branches:
        printer = _Printer()
        printer.block(branch, 0)
        branches.append("; ".join(printer.lines))
    text = "[" + " | ".join(branches) + "]"
    return text if len(text) <= MAX_INLINE and "\n" not in text else None


def _meaning(value: Any) -> Any:
    """A surface statement without its positions: what formatting must keep."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *(
            (f.name, _meaning(getattr(value, f.name))) for f in dataclasses.fields(value)
            if not (f.name in ("span", "end") or f.name.endswith("_span") or f.name.endswith("_spans"))
        ))  # fmt: skip
    if isinstance(value, (list, tuple)):
        return tuple(_meaning(v) for v in value)
    return None if isinstance(value, Span) else value  # positions held in tuples (`for f, n in ...`)


def _statements(text: str, name: str) -> Iterator[Any]:
    return iter(parse_surface(Source(text, name)))


def format_text(text: str, name: str = "<string>") -> str:
    """The canonical layout of a spec's text; NetdslError (the parser's) if it does not parse."""
    before = _meaning(list(_statements(text, name)))  # syntax errors are reported as by `netdsl check`
    items, _ = _Reader(text.replace("\r\n", "\n")).block()
    printer = _Printer()
    printer.block(items, 0)
    formatted = "\n".join(printer.lines).strip("\n") + "\n" if printer.lines else ""
    if _meaning(list(_statements(formatted, name))) != before:
        raise FormatError(f"formatting {name} would change its meaning; it is left unchanged (please report this)")
    return formatted
