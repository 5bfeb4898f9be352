"""Text -> surface program: the Lark parser (built once, cached) and a thin transformer.

Syntax errors become `Diagnostic`s with the expected tokens said in words, never as Lark's
terminal names (`LSQB`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark import Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedEOF, UnexpectedInput

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.fastparse import Fallback, parse_fast
from netdsl.ir import Argument, Command, Define, Expr, Param, Repeat, Span, Statement
from netdsl.lark_parser import GRAMMAR_PATHS, grammar_path, parser  # noqa: F401  (the public names stay here)
from netdsl.syntax_errors import TERMINAL_WORDS, _syntax_error, expected_words, skip_past, statement_around  # noqa: F401

MAX_SOURCE_BYTES = 4 * 1024 * 1024
"""Largest spec netdsl reads: a hundred thousand written-out layers fit; docs/limits.md."""
MAX_TOKENS = 500_000
"""Most tokens (words, numbers, symbols, line breaks) a spec may hold: Lark's LALR parser and the
transformer take ~40 us of CPU per token here, so parsing stays under ~20 s; docs/limits.md."""
MAX_STATEMENT_TOKENS = 20_000
"""Most tokens between two `;`, line breaks or brackets: a statement takes at most 10,000 arguments
(netdsl.binding.MAX_ARGUMENTS), and a 2 MB one-line spec is refused before it is parsed."""
MAX_DIGITS = 40
"""Longest whole number (in a number, a shape or `k3`-style option): sizes past 2**63 are refused by the
analyzer anyway, and Python will not even convert integers of over 4,300 digits."""
_WHOLE_NUMBER = re.compile(rf"[0-9]{{{MAX_DIGITS + 1},}}")
_INTEGRAL = re.compile(r"[+-]?[0-9]+|[0-9]+(x[0-9]+)+|[A-Za-z]+[0-9]+(x[0-9]+)*")  # what is converted with int()
_TOKEN = re.compile(
    r"#[^\n]*|(?:\r?\n)+|[^\s;\[\]=<,#|()*/+\-]+|[;\[\]=<,|()*/+\-]"
)  # line breaks count, as Lark's _NL


def _span(meta_or_token: object) -> Span:
    m = meta_or_token
    return Span(
        line=m.line,  # type: ignore[attr-defined]
        column=m.column,  # type: ignore[attr-defined]
        end_line=m.end_line,  # type: ignore[attr-defined]
        end_column=m.end_column,  # type: ignore[attr-defined]
    )


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)


class ToSurface(Transformer_NonRecursive):
    """One method per grammar rule, named after it. Non-recursive so deep nesting cannot overflow."""

    def start(self, children: list) -> list[Statement]:
        return list(children)

    @v_args(meta=True)
    def command(self, meta: object, children: list) -> Command:
        word, *rest = children
        args, branches, spans, alias, alias_span = [], None, (), None, None
        for child in rest:
            if isinstance(child, Argument):
                args.append(child)
            elif child[0] == "branches":
                branches, spans = child[1], child[2]
            else:  # ("alias", name, span)
                alias, alias_span = child[1], child[2]
        return Command(str(word), tuple(args), _span(word), _span(meta), branches, spans, alias, alias_span)

    @v_args(meta=True)
    def branches(self, meta: object, children: list) -> tuple:
        where = _span(meta)  # an empty branch (`[ ]`, `[ a | ]`) is located at the brackets
        return (
            "branches",
            tuple(body for body, _ in children),
            tuple(span if span.line else where for _, span in children),
        )

    @v_args(meta=True)
    def branch(self, meta: object, children: list) -> tuple:
        span = _span(meta) if not getattr(meta, "empty", True) else Span(line=0, column=0)
        return (tuple(children), span)

    def alias(self, children: list) -> tuple:
        (name,) = children
        return ("alias", str(name), _span(name))

    @v_args(meta=True)
    def repeat(self, meta: object, children: list) -> Repeat:
        count, body, loop = None, (), None
        for child in children:
            if isinstance(child, Argument):
                count = child
            elif isinstance(child, tuple) and child and child[0] == "loop":
                loop = child
            else:
                body = child
        span = _span(meta)
        if loop:
            _, names, values = loop
            (var, var_span), *more = names
            return Repeat(body, span, count, var, var_span, values, tuple(more))
        return Repeat(body, span, count)

    @v_args(meta=True)
    def assertion(self, meta: object, children: list) -> Command:
        """`assert params < 2M` -> the directive `assert` with three words: measure, comparison, limit."""
        metric, comparison, limit = children
        start = _span(meta)
        word = start.model_copy(update={"end_line": start.line, "end_column": start.column + len("assert")})
        args = (Argument(str(metric), _span(metric)), comparison, Argument(str(limit), _span(limit), quoted=True))
        return Command("assert", args, word, start)

    def comparison(self, children: list) -> Argument:
        (token,) = children
        return Argument(str(token), _span(token), quoted=True)

    def define(self, children: list) -> Define:
        name, *params, body = children
        return Define(str(name), _span(name), tuple(params), body)

    def param(self, children: list) -> Param:
        name, *default = children
        return Param(str(name), _span(name), default[0] if default else None)

    def count(self, children: list) -> Argument:
        return children[0]

    def block(self, children: list) -> tuple[Statement, ...]:
        return tuple(children)

    def loop(self, children: list) -> tuple:
        names = [(str(c), _span(c)) for c in children if isinstance(c, Token)]
        values = tuple(c for c in children if isinstance(c, Argument))
        return ("loop", names, values)

    def _expr(self, op: str, children: list) -> Argument:
        first, last = children[0].span, children[-1].span
        span = first.model_copy(update={"end_line": last.end_line, "end_column": last.end_column})
        return Argument(Expr(op, tuple(children)), span)

    def plus(self, children: list) -> Argument:
        return self._expr("+", children)

    minus = lambda self, children: self._expr("-", children)  # noqa: E731  (one line each: the rules differ only in the sign)
    times = lambda self, children: self._expr("*", children)  # noqa: E731
    divide = lambda self, children: self._expr("/", children)  # noqa: E731

    @v_args(meta=True)
    def negate(self, meta: object, children: list) -> Argument:
        return Argument(Expr("neg", tuple(children)), _span(meta))

    @v_args(meta=True)
    def tuple(self, meta: object, children: list) -> Argument:
        return Argument(Expr("tuple", tuple(children)), _span(meta))

    def number(self, children: list) -> Argument:
        (token,) = children
        return Argument(_number(token), _span(token))

    def word(self, children: list) -> Argument:
        (token,) = children
        return Argument(str(token), _span(token))

    def string(self, children: list) -> Argument:
        (token,) = children
        return Argument(str(token)[1:-1], _span(token), quoted=True)

    def shape(self, children: list) -> Argument:
        (token,) = children
        if isinstance(token, Argument):
            return token
        return Argument(tuple(int(n) for n in str(token).split("x")), _span(token))

    def _keyed(self, children: list, op: str) -> Argument:
        key, value = children
        span = _span(key).model_copy(update={"end_line": value.span.end_line, "end_column": value.span.end_column})
        return Argument(value.value, span, key=str(key), op=op, quoted=value.quoted)  # type: ignore[arg-type]

    def keyword(self, children: list) -> Argument:
        return self._keyed(children, "=")

    def below(self, children: list) -> Argument:
        return self._keyed(children, "<")


def _position(text: str, index: int) -> Span:
    """The line and column of a character offset (computed only when an error needs it: it is O(n))."""
    start = text.rfind("\n", 0, index) + 1
    return Span(line=text.count("\n", 0, index) + 1, column=index - start + 1)


def _too_large(source: Source, code: str, message: str, span: Span, help: str = "see docs/limits.md") -> NetdslError:
    """The error `check_size` raises for one of the limits of docs/limits.md, located at `span`."""
    return NetdslError([Diagnostic(code, message, span, help=help)], source)


def check_size(source: Source) -> None:
    """Refuse, before parsing, a spec too large to parse in seconds (E207, located where it overflows)."""
    size = len(source.text.encode("utf-8", errors="replace")) if len(source.text) * 4 > MAX_SOURCE_BYTES else 0
    if size > MAX_SOURCE_BYTES:
        raise _too_large(source, "E207", f"the spec is {size / 2**20:.1f} MB; netdsl reads specs of at most "
                         f"{MAX_SOURCE_BYTES // 2**20} MB", Span(line=1, column=1))  # fmt: skip
    tokens = run = 0  # run: tokens since the last `;` or line break, about one statement's arguments
    for match in _TOKEN.finditer(source.text):
        tokens += match.group().startswith("#") is False
        run = 0 if match.group() in (";", "[", "|", "]") or match.group()[0] in "\r\n" else run + 1
        if run > MAX_STATEMENT_TOKENS:
            raise _too_large(source, "E207", f"a statement of more than {MAX_STATEMENT_TOKENS:,} words, numbers and "
                             "symbols", _position(source.text, match.start()))  # fmt: skip
        digits = _WHOLE_NUMBER.search(match.group()) if len(match.group()) > MAX_DIGITS else None
        if digits and _INTEGRAL.fullmatch(match.group()):
            raise _too_large(source, "E201", f"a whole number of {len(digits.group()):,} digits; netdsl reads at most "
                             f"{MAX_DIGITS}", _position(source.text, match.start() + digits.start()))  # fmt: skip
        if tokens > MAX_TOKENS:
            raise _too_large(
                source, "E207", f"the spec has more than {MAX_TOKENS:,} tokens (words, numbers, symbols and line "
                "breaks)", _position(source.text, match.start()),
                help="use `repeat` for long runs of layers; see docs/limits.md",
            )  # fmt: skip


MAX_SYNTAX_ERRORS = 10
"""Syntax errors reported per file; recovery re-parses once per error (quickly: see `_probe`), so it is
bounded too."""


@dataclass
class SyntaxErrors(NetdslError):
    """Syntax errors, with the statements that parsed once the bad ones were skipped (None when
    recovery stopped early), so that `netdsl.parse` can check those too and report all at once."""

    recovered: list[Statement] | None = None


def _probe(text: str, failure: Fallback) -> UnexpectedInput | None:
    """Lark's error for the statement the fast parser stopped in, from that statement alone: the text before
    it becomes the line breaks and spaces that keep every line and column, and the text after it is cut after
    the end of the line. Only an error at the very token the fast parser stopped at is trusted; otherwise
    (None) the whole text is given to Lark. This keeps error recovery linear in the spec's size."""
    start = failure.start
    if failure.pos < start:
        start = text.rfind("\n", 0, failure.pos) + 1
    line_start = text.rfind("\n", 0, start) + 1
    prefix = "\n" * text.count("\n", 0, start) + " " * (start - line_start)
    cut = failure.pos
    while True:  # to the end of the line (a `\` at its end continues it)
        cut = text.find("\n", cut)
        if cut < 0 or not text[:cut].rstrip("\r").endswith("\\"):
            break
        cut += 1
    body = text[start:] if cut < 0 else text[start : cut + 1]  # with the line break (a `\r\n` stays whole)
    try:
        parser().parse(prefix + body)
    except UnexpectedEOF:
        return None
    except UnexpectedInput as err:
        if getattr(err, "token", None) is not None and getattr(err.token, "type", "") == "$END":
            return None
        line_offset = text.rfind("\n", 0, failure.pos) + 1
        if (err.line, err.column) != (text.count("\n", 0, failure.pos) + 1, failure.pos - line_offset + 1):
            return None
        err.pos_in_stream = failure.pos  # in the real text's offsets
        return err
    return None


def parse_surface(source: Source) -> list[Statement]:
    """Parse a spec's text into surface statements, or raise NetdslError with every syntax error.

    The fast parser (netdsl/fastparse.py) reads specs without errors; at a syntax error Lark, the
    grammar's own parser, says what was expected. After an error the statement holding it is blanked
    out (line breaks kept, so positions stay true) and the text is parsed again: each independent error
    is reported once, and a misspelt `repeat [` does not cascade into an error at its `]`.
    """
    check_size(source)
    diagnostics: list[Diagnostic] = []
    text, statements = source.text, None
    while True:
        try:
            statements = parse_fast(text)
            break
        except Fallback as failure:
            err = _probe(text, failure)
        if err is None:
            try:
                statements = ToSurface().transform(parser().parse(text))
                break
            except (UnexpectedInput, UnexpectedEOF) as full:
                err = full
        diagnostics.append(_syntax_error(err, source))
        blanked = skip_past(err, text) if len(diagnostics) < MAX_SYNTAX_ERRORS else None
        if blanked is None:
            break
        text = blanked
    if diagnostics:
        raise SyntaxErrors(diagnostics, source, statements)
    return statements  # type: ignore[return-value]
