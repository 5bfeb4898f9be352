"""`netdsl fmt`: one canonical layout for a spec, comments kept.

The formatter reads the spec with the grammar's own lexer, comments and line breaks included, groups
the tokens into statements and bracketed blocks (`repeat [...]`, `def NAME [...]`, branches
`[a | b]`), and prints them by fixed rules (docs/tools.md): the lines a user wrote are kept (statements
joined by `;` on one line stay together, as gofmt keeps line breaks), four spaces per block level,
single spaces between arguments, none around `=`, `<` and arithmetic, `, ` in lists, `[ a; b | c ]`
spaced, at most one blank line, full-line and trailing comments where they were. A bracket takes one
of three shapes, chosen by how it was written: on one line; hanging (its first statement on the line of
`[`, later lines aligned after `[ `, `|` under `[`, `]` closing the last line); or a block (`[` ends its
line, the inside one level deeper, `|` and `]` on lines of their own). Argument order is kept: it
carries meaning (`relu bn` is not `bn relu`).

The result is checked before it is returned: it must parse to the same statements as the input
(spans aside), so formatting can never change what a spec means.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from lark import Token

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Argument, Expr, Span
from netdsl.nesting import too_deep
from netdsl.syntax import parse_surface, parser

INDENT = "    "
MAX_INLINE = 100
"""Characters a one-line bracket may take; beyond, it is printed as a block."""
OPERATORS = frozenset({"+", "-", "*", "/"})
TIGHT = frozenset({"=", "<"})  # `l2=1e-6`, `freeze<142`, `s=1`
COMPARISONS = frozenset({"<", "<=", ">", ">=", "=="})
UNARY_AFTER = frozenset({"(", ",", "=", "<", "[", "|", ";", *OPERATORS, "repeat", "for", "in", "def", "as"})
BREAKS = ("_NL", "COMMENT")

Shape = Literal["inline", "hanging", "block"]


class FormatError(RuntimeError):
    """The formatted text would not mean what the input means: a bug in the formatter; the file is left alone."""


@dataclass
class Bracket:
    """`[ ... | ... ]`: its branches (one for a block), each a list of items, and its shape as written."""

    branches: list[list[Any]]
    shape: Shape
    comment: str | None = None  # a comment right after `[`, on its line
    bar_breaks: list[bool] = field(default_factory=list)  # per `|`: whether it starts a line
    inline: str | None = None  # `_inline`'s answer, once asked: each level asks again for its inner blocks
    measured: bool = False


@dataclass
class Statement:
    parts: list[Token | Bracket] = field(default_factory=list)
    comment: str | None = None  # a trailing comment
    joined: bool = False  # written on the line of what precedes it (after `;`, `[` or `|`)


@dataclass(frozen=True)
class Comment:
    text: str


BLANK = "blank"


class _Reader:
    """Tokens -> nested items (statements, comments, blank lines), bracket by bracket."""

    def __init__(self, text: str) -> None:
        self.tokens = [t for t in parser().lex(text, dont_ignore=True) if not t.type.startswith("__IGNORE")]
        self.position = 0

    def block(self, joined: bool = False) -> tuple[list[Any], str | None]:
        """Items up to `|`, `]` or the end; also returns which of those ended it. `joined`: whether the
        first statement follows its opener on the same line."""
        items: list[Any] = []
        current = Statement(joined=joined)
        while self.position < len(self.tokens):
            token = self.tokens[self.position]
            self.position += 1
            if token.type == "COMMENT":
                text = str(token).rstrip()
                if current.parts:
                    current.comment = text
                else:
                    items.append(Comment(text))
                    current.joined = False
            elif str(token) == ";" and not current.parts and current.comment is None:
                continue  # an empty statement (`[ ; a`): `a` is where the statement was
            elif token.type == "_NL" or str(token) == ";":
                self._end(items, current)
                current = Statement(joined=str(token) == ";" and bool(items) and isinstance(items[-1], Statement)
                                    and items[-1].comment is None)  # fmt: skip
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
        while self.position < len(self.tokens) and str(self.tokens[self.position]) == ";":
            self.position += 1  # `[ ; # c`: an empty statement first means nothing, and must not make the shape
        start = self.position
        comment = None
        if (
            start < len(self.tokens)
            and self.tokens[start].type == "COMMENT"
            and self.tokens[start].line == opening.line
        ):
            comment = str(self.tokens[start]).rstrip()
            self.position += 1
        branches, bar_breaks = [], []
        while True:
            after = self._after_semicolons(self.position)
            items, ended = self.block(joined=after is not None and after.type not in BREAKS)
            branches.append(_trim(items))
            if ended != "|":
                break
            bar_breaks.append(self.position >= 2 and self.tokens[self.position - 2].type in BREAKS)
        inside = self.tokens[start : self.position]
        if comment is None and not any(t.type in BREAKS for t in inside):
            shape: Shape = "inline"
        elif comment is not None or getattr(self._after_semicolons(start), "type", None) in BREAKS:
            shape = "block"
        else:
            shape = "hanging"
        return Bracket(branches, shape, comment, bar_breaks)

    def _after_semicolons(self, position: int) -> Token | None:
        """The first token from `position` that is not `;` (`[ ; # c` opens a block, as `[ # c` does)."""
        while position < len(self.tokens) and str(self.tokens[position]) == ";":
            position += 1
        return self.tokens[position] if position < len(self.tokens) else None

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
    """Prints items into lines; `line` is the line being built, `closed` whether a comment ended it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: str | None = None
        self.closed = False

    def flush(self) -> None:
        if self.line is not None:
            self.lines.append(self.line.rstrip())
        self.line, self.closed = None, False

    def start(self, indent: str, text: str = "") -> None:
        self.flush()
        self.line = indent + text

    def block(self, items: list[Any], indent: str, continuing: bool = False, split: bool = False) -> None:
        """Print a list of items at `indent`; with `continuing`, a first joined statement goes on the
        current line (a hanging bracket's first line); with `split`, one statement per line (a one-line
        bracket too long for its line)."""
        for number, item in enumerate(_trim(list(items))):
            if item is BLANK:
                self.flush()
                if self.lines and self.lines[-1] != "":
                    self.lines.append("")
            elif isinstance(item, Comment):
                self.start(indent, item.text)
                self.flush()
            elif item.joined and not split and self.line is not None and not self.closed and (number or continuing):
                if number:
                    self.line += "; "
                self.statement(item, indent)
            else:
                self.start(indent)
                self.statement(item, indent)

    def statement(self, statement: Statement, indent: str) -> None:
        words = [str(p) if isinstance(p, Token) else "[" for p in statement.parts]
        comparing = bool(words) and words[0] == "assert"
        previous: str | None = None
        for index, part in enumerate(statement.parts):
            if isinstance(part, Bracket):
                self.bracket(part, indent, previous is not None)
                previous = "]"
                continue
            text = str(part)
            unary = text == "-" and _is_unary(words, index)
            if self.closed:
                self.start(indent)
            elif _spaced(previous, text, unary, comparing):
                self.line += " "
            self.line += text
            previous = "(" if unary else text  # nothing between a unary minus and its operand
        if statement.comment:
            self.line += f"  {statement.comment}"
            self.closed = True

    def bracket(self, bracket: Bracket, indent: str, spaced: bool) -> None:
        if self.closed:
            self.start(indent)
        self.line += " " if spaced else ""
        inline = _inline(bracket) if bracket.shape == "inline" else None
        if inline is not None:
            self.line += inline
        elif bracket.shape == "hanging":
            self.hanging(bracket)
        else:
            self.line += "[" + (f"  {bracket.comment}" if bracket.comment else "")
            self.closed = bool(bracket.comment)
            for number, branch in enumerate(bracket.branches):
                if number:
                    self.start(indent, "|")
                self.block(branch, indent + INDENT, split=bracket.shape == "inline")
            self.start(indent, "]")

    def hanging(self, bracket: Bracket) -> None:
        """`[ a; b` / `  c ]`: later lines aligned after `[ `, `|` under `[`."""
        column = " " * len(self.line)
        self.line += "[ "
        for number, branch in enumerate(bracket.branches):
            if number:
                if bracket.bar_breaks[number - 1] or self.closed or self.line is None:
                    self.start(column, "|")
                else:
                    self.line += " |"
                first = next((item for item in branch if item is not BLANK), None)
                if isinstance(first, Statement) and first.joined:
                    self.line += " "
                else:
                    self.flush()
            self.block(branch, column + "  ", continuing=True)
        if self.closed or self.line is None:
            self.start(column, "]")
        else:
            self.line += " ]"


def _inline(bracket: Bracket) -> str | None:
    """`[ a; b | c ]` on one line, or None when it would be too long (computed once per bracket: asked
    afresh at each level, 30 nested one-line `repeat`s took 2**30 steps)."""
    if not bracket.measured:
        bracket.inline, bracket.measured = _one_line(bracket), True
    return bracket.inline


def _one_line(bracket: Bracket) -> str | None:
    branches = []
    for branch in bracket.branches:
        printer = _Printer()
        printer.line = ""
        printer.block(branch, "", continuing=True)
        printer.flush()
        branches.append("; ".join(printer.lines))
    text = "[ " + " | ".join(branches) + " ]"
    return text if len(text) <= MAX_INLINE and len(branches) == len(bracket.branches) else None


@dataclass(frozen=True)
class _Mark:
    """Where a node or a field begins or ends in `_meaning`'s flat list (never equal to a value)."""

    what: str
    name: str = ""


_END, _LIST = _Mark("end"), _Mark("list")


_FIELDS: dict[type, tuple[str, ...]] = {}
"""A surface node's type -> the names of its fields that carry meaning (positions left out)."""


def _fields(node: Any) -> tuple[str, ...] | None:
    """The meaningful fields of a surface node (a dataclass), or None for any other value."""
    kind = type(node)
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(kind):
        names = _FIELDS[kind] = tuple(
            f.name for f in dataclasses.fields(kind)
            if not (f.name in ("span", "end") or f.name.endswith("_span") or f.name.endswith("_spans"))
        )  # fmt: skip
    return names


def _meaning(value: Any) -> list[Any]:
    """Surface statements without their positions, as one flat list: what formatting must keep.
    Iterative, so a spec nested to every limit (blocks in blocks, arithmetic in arithmetic) is safe;
    a node is its type's mark, its fields' values in their fixed order, then an end mark."""
    flat: list[Any] = []
    stack = [value]
    pop, push, extend, add = stack.pop, stack.append, stack.extend, flat.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is Argument and type(item.value) is not Expr:  # most nodes: a plain argument
            add((type(item.value), item.value, item.key, item.op, item.quoted))
        elif kind is _Mark:
            add(item)
        elif kind is list or kind is tuple:
            add(_LIST)
            push(_END)
            extend(reversed(item))
        elif (names := _fields(item)) is not None:
            add(_Mark("node", kind.__name__))
            push(_END)
            extend(getattr(item, name) for name in reversed(names))
        elif kind is not Span:  # positions in tuples (`for f, n in ...`) are dropped
            add((kind, item))
    return flat


def _statements(text: str, name: str) -> Iterator[Any]:
    return iter(parse_surface(Source(text, name)))


def format_text(text: str, name: str = "<string>") -> str:
    """The canonical layout of a spec's text; NetdslError (the parser's) if it does not parse."""
    statements = list(_statements(text, name))  # syntax errors are reported as by `netdsl check`
    deep = too_deep(statements)  # the reader and the printer recurse once per level, as lowering does
    if deep is not None:
        raise NetdslError([Diagnostic("E207", deep[0], deep[1], help="see docs/limits.md")], Source(text, name))
    items, _ = _Reader(text.replace("\r\n", "\n")).block()
    printer = _Printer()
    printer.block(items, "")
    printer.flush()
    formatted = "\n".join(printer.lines).strip("\n") + "\n" if printer.lines else ""
    if formatted != text and _meaning(list(_statements(formatted, name))) != _meaning(statements):
        raise FormatError(f"formatting {name} would change its meaning; it is left unchanged (please report this)")
    return formatted
