"""A fast path for the parser: the grammar of grammar/netdsl.lark, hand-written, for specs without errors.

Lark's LALR parser, building a tree and propagating positions, takes ~90 us per statement; this one
takes a few. It accepts exactly what the grammar accepts and builds exactly the surface statements
(spans included) that `netdsl.syntax.ToSurface` builds from Lark's tree: tests/test_fastparse.py
checks both on every spec, doc example and thousands of generated programs. On anything it does not
expect it raises `Fallback`, and `parse_surface` asks Lark, whose messages say what was expected. So
the grammar file stays the language's definition and the source of every syntax error.

Budgets (`assert params <= 2M`), whose comparison and limit are terminals of their own in the grammar,
are read from adjacent tokens (a spec with one `assert` line used to go to Lark whole: 13 s instead of
8 at the token limit). Keywords (`repeat`, `def`, `for`, `in`, `as`) are words where Lark's contextual lexer would not accept
the keyword, as in Lark: `conv repeat` is a layer with the argument 'repeat'.
"""

from __future__ import annotations

import re
from typing import Any

from netdsl.ir import Argument, Command, Define, Expr, Param, Repeat, Span, Statement
from netdsl.quick import construct

_LIMIT_TEXT = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[A-Za-z]+(?![A-Za-z0-9_.])"
_TOKENS = re.compile(
    r"(?P<WS>[ \t\f]+)|(?P<CONT>\\\r?\n)|(?P<COMMENT>#[^\n]*)|(?P<NL>(?:\r?\n)+)"
    r"|(?P<SHAPE>[0-9]+(?:x[0-9]+)+(?![A-Za-z0-9_]))"
    r"|(?P<NUMBER>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?![A-Za-z_]))"
    rf"|(?P<LIMIT>{_LIMIT_TEXT})"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_.]*)|(?P<STRING>\"[^\"\n]*\")|(?P<P>[;\[\]|=<>,()*/+\-])"
)
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "=="})
_AFTER_NUMBER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
_LIMIT = re.compile(_LIMIT_TEXT)
"""A budget's limit with its unit (`2M`, `1.5MB`), Lark's LIMIT less its plain numbers, which are NUMBERs.
Lark lexes it only after a comparison; here it is taken where it is longer than the NUMBER found (which
Lark's regex backtracks: `2.5MB` to `2.`), and anywhere but a budget it is a syntax error, as in Lark."""
_LIMIT_END = re.compile(r"(?![A-Za-z0-9_.])")  # what Lark's LIMIT requires after a plain number
MAX_NESTING = 100
"""Deeper brackets or parentheses go to Lark (whose transformer does not recurse): this parser recurses,
four frames a level, so it stays far below Python's limit. Lowering refuses more than 100 levels anyway."""


class Fallback(Exception):
    """Not a spec this parser handles (a syntax error, or nesting too deep): let Lark parse it. `start` is
    the offset of the top-level statement being parsed, `pos` that of the token it stopped at."""

    def __init__(self, start: int = 0, pos: int = 0) -> None:
        super().__init__(start, pos)
        self.start, self.pos = start, pos


class Token:
    """One token: its kind (NAME, NUMBER, ..., or the punctuation itself), text and span."""

    __slots__ = ("column", "end_column", "end_line", "kind", "line", "pos", "text")

    def __init__(self, kind: str, text: str, line: int, column: int, end_line: int, end_column: int, pos: int) -> None:
        self.kind, self.text, self.pos = kind, text, pos
        self.line, self.column, self.end_line, self.end_column = line, column, end_line, end_column


def tokens(text: str) -> list[Token]:
    """The tokens of `text`, with Lark's line and column numbers, up to a character no token starts (a BAD
    token, which no rule accepts)."""
    out: list[Token] = []
    line, start, pos, size = 1, 0, 0, len(text)  # start: offset of the current line's first character
    match = _TOKENS.match
    while pos < size:
        m = match(text, pos)
        if m is None:  # no token starts here: the parser stops when it gets here, as Lark's lexer would
            out.append(Token("BAD", text[pos], line, pos - start + 1, line, pos - start + 2, pos))
            break
        kind, value = m.lastgroup, m.group()
        end = m.end()
        if kind == "NUMBER" and text[end : end + 1] in _AFTER_NUMBER:  # `2M`, `2.5MB`: a LIMIT
            limit = _LIMIT.match(text, pos)
            if limit is not None and limit.end() > end:
                kind, value, end = "LIMIT", limit.group(), limit.end()
        if kind in ("NL", "CONT"):
            newlines = value.count("\n")
            if kind == "NL":
                out.append(Token("NL", value, line, pos - start + 1, line + newlines, 1, pos))
            line += newlines
            start = pos + value.rindex("\n") + 1
        elif kind == "P":
            out.append(Token(value, value, line, pos - start + 1, line, end - start + 1, pos))
        elif kind != "WS" and kind != "COMMENT":
            out.append(Token(kind, value, line, pos - start + 1, line, end - start + 1, pos))  # type: ignore[arg-type]
        pos = end
    return out


def _construct(line: int, column: int, end_line: int, end_column: int) -> Span:
    """A Span without Pydantic's validation: the tokenizer computed these ints (see netdsl.quick)."""
    return construct(Span, line=line, column=column, end_line=end_line, end_column=end_column)


def _span(first: Token, last: Token) -> Span:
    """A span from two tokens' positions, which the tokenizer computed: no validation needed."""
    return _construct(first.line, first.column, last.end_line, last.end_column)


def _number(text: str) -> int | float:
    return int(text) if text.isdigit() else float(text)  # NUMBER holds ASCII digits, '.' and an exponent


class _Parser:
    """Recursive descent over the token list; each method returns its node and leaves `i` past it."""

    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0
        self.eof = Token("$END", "", 0, 0, 0, 0, toks[-1].pos + len(toks[-1].text) if toks else 0)
        self.top = 0  # offset of the top-level statement being parsed

    def peek(self) -> Token:
        return self.toks[self.i] if self.i < len(self.toks) else self.eof

    def fail(self) -> Fallback:
        return Fallback(self.top, self.peek().pos)

    def take(self, kind: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise self.fail()
        self.i += 1
        return tok

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail()

    # ------------------------------------------------------------ statement lists

    def lines(self, closers: tuple[str, ...]) -> tuple[tuple[Statement, ...], Token | None, Token | None]:
        """`_line* statement?` up to one of `closers` (not consumed): the statements, and the first and last
        tokens taken (separators included, as Lark's positions include them)."""
        out: list[Statement] = []
        first = last = None
        need_sep = False
        while True:
            tok = self.peek()
            if tok.kind in closers:
                return tuple(out), first, last
            if tok.kind in (";", "NL"):
                self.i += 1
                need_sep = False
            elif need_sep:
                raise self.fail()
            else:
                if self.depth == 0:
                    self.top = tok.pos
                out.append(self.statement())
                need_sep = True
            first = first or tok
            last = self.toks[self.i - 1]

    def statement(self) -> Statement:
        tok = self.peek()
        if tok.kind != "NAME":
            raise self.fail()
        if tok.text == "repeat":
            return self.repeat()
        if tok.text == "def":
            return self.define()
        if tok.text == "assert":
            return self.assertion()
        return self.command()

    def assertion(self) -> Command:
        """`assert params < 2M`, as ToSurface.assertion builds it: the comparison and the limit are terminals
        of their own in the grammar (`<=` is one token, `2M` a LIMIT), read here from adjacent tokens."""
        word, metric = self.take("NAME"), self.take("NAME")
        first = self.peek()
        if first.kind not in ("<", ">", "="):
            raise self.fail()
        self.i += 1
        last, after = first, self.peek()
        if after.kind == "=" and after.pos == first.pos + 1:  # `<=`, `>=`, `==`
            self.i += 1
            last = after
        comparison = first.text + (last.text if last is not first else "")
        limit = self.peek()
        if comparison not in _COMPARISONS or limit.kind not in ("NUMBER", "LIMIT"):
            raise self.fail()
        if limit.kind == "NUMBER" and self.text_after(limit) is not None:
            raise self.fail()
        self.i += 1
        args = (
            Argument(metric.text, _span(metric, metric)),
            Argument(comparison, _span(first, last), quoted=True),
            Argument(limit.text, _span(limit, limit), quoted=True),
        )
        return Command("assert", args, _span(word, word), _span(word, limit))

    def text_after(self, tok: Token) -> Token | None:
        """The token right after `tok` when nothing separates them and Lark's LIMIT may not end there."""
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if nxt is None or nxt.pos != tok.pos + len(tok.text):
            return None
        return nxt if _LIMIT_END.match(nxt.text) is None else None

    def block(self) -> tuple[tuple[Statement, ...], Token]:
        self.take("[")
        self.deeper()
        body, _, _ = self.lines(("]",))
        self.depth -= 1
        return body, self.take("]")

    def repeat(self) -> Repeat:
        start = self.take("NAME")
        count = None
        if self.peek().kind != "[":
            count, _ = self.expr()
        body, last = self.block()
        var = var_span = None
        more: list[tuple[str, Span]] = []
        values: list[Argument] = []
        tok = self.peek()
        if tok.kind == "NAME" and tok.text == "for":
            self.i += 1
            name = self.take("NAME")
            var, var_span = name.text, _span(name, name)
            while self.peek().kind == ",":
                self.i += 1
                name = self.take("NAME")
                more.append((name.text, _span(name, name)))
            if self.peek().text != "in":
                raise self.fail()
            self.take("NAME")
            while True:
                value, last = self.item()
                values.append(value)
                if self.peek().kind != ",":
                    break
                self.i += 1
        span = _span(start, last)
        if var is None:
            return Repeat(body, span, count)
        return Repeat(body, span, count, var, var_span, tuple(values), tuple(more))

    def item(self) -> tuple[Argument, Token]:
        """A loop value: an expression, or a parenthesised tuple of two or more."""
        if self.peek().kind != "(":
            return self.expr()
        mark = self.i
        open_ = self.take("(")
        self.deeper()
        first, _ = self.expr()
        if self.peek().kind != ",":  # `(f+1)*2`: a parenthesised expression after all
            self.depth -= 1
            self.i = mark
            return self.expr()
        items = [first]
        while self.peek().kind == ",":
            self.i += 1
            items.append(self.expr()[0])
        close = self.take(")")
        self.depth -= 1
        return Argument(Expr("tuple", tuple(items)), _span(open_, close)), close

    def define(self) -> Define:
        self.take("NAME")
        name = self.take("NAME")
        params = []
        while self.peek().kind == "NAME":
            param = self.take("NAME")
            default = None
            if self.peek().kind == "=":
                self.i += 1
                default, _ = self.expr()
            params.append(Param(param.text, _span(param, param), default))
        body, _ = self.block()
        return Define(name.text, _span(name, name), tuple(params), body)

    def command(self) -> Command:
        word = self.take("NAME")
        last = word
        args: list[Argument] = []
        while True:
            tok = self.peek()
            kind = tok.kind
            if kind == "NAME" and tok.text == "as":
                break
            if kind == "NAME" and self.i + 1 < len(self.toks) and self.toks[self.i + 1].kind in ("=", "<"):
                op = self.toks[self.i + 1].kind  # `key=value`, `key<value`, `key=(v1, v2, v3)`
                self.i += 2
                value, last = self.item() if op == "=" else self.expr()
                span = _construct(tok.line, tok.column, value.span.end_line, value.span.end_column)
                args.append(Argument(value.value, span, key=tok.text, op=op, quoted=value.quoted))  # type: ignore[arg-type]
            elif kind in ("NAME", "NUMBER", "STRING", "SHAPE", "-", "("):
                value, last = self.expr()
                args.append(value)
            else:
                break
        branches = None
        spans: tuple[Span, ...] = ()
        if self.peek().kind == "[":
            branches, spans, last = self.branches()
        alias = alias_span = None
        tok = self.peek()
        if tok.kind == "NAME" and tok.text == "as":
            self.i += 1
            name = self.take("NAME")
            alias, alias_span, last = name.text, _span(name, name), name
        return Command(word.text, tuple(args), _span(word, word), _span(word, last), branches, spans, alias, alias_span)

    def branches(self) -> tuple[tuple[tuple[Statement, ...], ...], tuple[Span, ...], Token]:
        open_ = self.take("[")
        self.deeper()
        bodies, firsts = [], []
        while True:
            body, first, last = self.lines(("|", "]"))
            bodies.append(body)
            firsts.append((first, last))
            if self.peek().kind == "]":
                break
            self.take("|")
        close = self.take("]")
        self.depth -= 1
        where = _span(open_, close)
        spans = tuple(_span(first, last) if first is not None else where for first, last in firsts)  # type: ignore[arg-type]
        return tuple(bodies), spans, close

    # ------------------------------------------------------------ expressions

    def expr(self) -> tuple[Argument, Token]:
        """`sum`: products joined by + and -, left to right; returns the argument and its last token."""
        return self.joined(self.product, ("+", "-"))

    def product(self) -> tuple[Argument, Token]:
        """Atoms joined by * and /, left to right."""
        return self.joined(self.atom, ("*", "/"))

    def joined(self, operand: Any, operators: tuple[str, str]) -> tuple[Argument, Token]:
        left, last = operand()
        while self.peek().kind in operators:
            op = self.take(self.peek().kind).kind
            right, last = operand()
            left = _binary(op, left, right)
        return left, last

    def atom(self) -> tuple[Argument, Token]:
        tok = self.peek()
        kind = tok.kind
        self.i += 1
        if kind == "NUMBER":
            return Argument(_number(tok.text), _span(tok, tok)), tok
        if kind == "NAME":
            return Argument(tok.text, _span(tok, tok)), tok
        if kind == "STRING":
            return Argument(tok.text[1:-1], _span(tok, tok), quoted=True), tok
        if kind == "SHAPE":
            return Argument(tuple(int(n) for n in tok.text.split("x")), _span(tok, tok)), tok
        if kind == "-":
            self.deeper()
            operand, last = self.atom()
            self.depth -= 1
            return Argument(Expr("neg", (operand,)), _span(tok, last)), last
        if kind == "(":
            self.deeper()
            inner, _ = self.expr()
            close = self.take(")")
            self.depth -= 1
            return inner, close
        self.i -= 1
        raise self.fail()


def _binary(op: str, left: Argument, right: Argument) -> Argument:
    span = _construct(left.span.line, left.span.column, right.span.end_line, right.span.end_column)
    return Argument(Expr(op, (left, right)), span)


def parse_fast(text: str) -> list[Statement]:
    """The surface statements of a spec without syntax errors; Fallback for anything else."""
    parser = _Parser(tokens(text))
    statements, _, _ = parser.lines(("$END",))
    return list(statements)
