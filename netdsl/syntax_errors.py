"""Syntax errors for humans: Lark's errors as located diagnostics whose expected tokens are said in words
(never as Lark's terminal names such as `LSQB`), and the statement boundaries that recovery blanks out."""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from netdsl.diagnostics import Diagnostic, Source, did_you_mean
from netdsl.ir import Span
from netdsl.lark_parser import parser

TERMINAL_WORDS = {
    "NUMBER": "a number",
    "NAME": "a word",
    "SHAPE": "a shape such as 32x32x3",
    "LIMIT": "a number such as 2M, 300M, 32 or 64MB",
    "STRING": 'a quoted string ("...")',
    "_NL": "a new line",
    "$END": "the end of the file",
}


def _describe(terminal: str) -> str:
    if terminal in TERMINAL_WORDS:
        return TERMINAL_WORDS[terminal]
    try:
        pattern = parser().get_terminal(terminal).pattern
    except KeyError:
        return terminal.lower()
    if isinstance(pattern, PatternStr):
        return f"'{pattern.value}'"
    return terminal.lower()


def expected_words(terminals: set[str] | frozenset[str]) -> str:
    """`'[', a number or a word`: the expected tokens in words, for humans."""
    names = sorted({_describe(t) for t in terminals if not t.startswith("__")})
    if len(names) > 1:
        return ", ".join(names[:-1]) + " or " + names[-1]
    return names[0] if names else "something else"


_NUMBER = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _syntax_error(err: UnexpectedInput, source: Source) -> Diagnostic:
    line, column = max(err.line, 1), max(err.column, 1)
    help_text = None
    run_together = isinstance(err, UnexpectedToken) and err.token.type == "LIMIT" and not _NUMBER.fullmatch(err.token)
    if isinstance(err, UnexpectedCharacters) or run_together:  # `3k` outside `assert` lexes as a budget's limit
        text = source.line(line)
        char = text[column - 1 : column] or "?"
        shown = f"'{char}'" if char.isprintable() else f"U+{ord(char):04X}"  # NUL, ESC, ... named, not printed
        help_text = "statements are words and numbers separated by ';' or new lines; '#' starts a comment"
        if char.isascii() and char.isalnum():  # `32x32x`, `3k`: a number run into letters
            start = len(re.sub(r"[A-Za-z0-9_.+\-]*$", "", text[: column - 1]))
            chunk = re.match(r"[A-Za-z0-9_.+\-]*", text[start:]).group()  # type: ignore[union-attr]
            help_text = f"'{chunk}' is not a number, a shape such as 32x32x3, or a word (words start with a letter)"
        return Diagnostic(
            "E103",
            f"unexpected character {shown}",
            Span(line=line, column=column, end_line=line, end_column=column + 1),
            help=help_text,
        )
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        token: Token = err.token
        text = str(token).replace("\n", "\\n")
        statement = re.split(r"[;\[]", source.line(line)[: column - 1])[-1].split()
        if str(token) == "[" and statement:  # `repaet 3 [`: a misspelt keyword before a block
            help_text = did_you_mean(statement[0], ["repeat"])
        if str(token) == "]":
            help_text = "is there a '[' for this ']'?"
        if str(token) == "for" and getattr(err, "pos_in_stream", None) is not None:  # `repaet [...] for w in ...`
            start, _ = statement_around(source.text, err.pos_in_stream)
            first = source.text[start:].split(maxsplit=1)[:1]
            help_text = (
                did_you_mean(first[0], ["repeat"]) if first else None
            ) or "`for` belongs to `repeat [...] for v in ...`"
        shown = "line break" if token.type == "_NL" else f"'{text}'"
        return Diagnostic(
            "E102",
            f"unexpected {shown}; expected {expected_words(err.expected)}",
            Span(line=line, column=column, end_line=token.end_line or line, end_column=token.end_column or column + 1),
            help=help_text,
        )
    expected = getattr(err, "expected", None) or set()
    lines = source.text.removesuffix("\n").split("\n")  # line breaks as Lark counts them
    last = len(lines)
    lines[-1] = lines[-1].removesuffix("\r")
    return Diagnostic(
        "E104",
        f"unexpected end of input; expected {expected_words(expected)}",
        Span(line=last, column=len(lines[-1]) + 1, end_line=last, end_column=len(lines[-1]) + 2),
        help="is a ']' missing?" if "RSQB" in expected else None,
    )


def _past_comment_or_string(text: str, i: int) -> int:
    """The index just past the comment or string that starts at `i`; `i` itself if none does."""
    if text[i] == "#":
        newline = text.find("\n", i)
        return len(text) if newline < 0 else newline
    if text[i] == '"':
        close, newline = text.find('"', i + 1), text.find("\n", i + 1)
        return close + 1 if close >= 0 and (newline < 0 or close < newline) else i + 1
    return i


def statement_around(text: str, pos: int) -> tuple[int, int]:
    """The [start, end) of the statement holding `pos`, a whole `repeat [...]` included.

    A statement ends at `;` or a line break outside brackets (not after a `\\` continuation),
    or just before the `]` of an enclosing block; comments and strings are skipped. The start is
    found by scanning forward from the top, so brackets inside comments cannot mislead it.
    """
    starts, i = [0], 0  # the current statement's start at each bracket depth
    while i < pos:
        char, after = text[i], _past_comment_or_string(text, i)
        if after != i:
            i = after
            continue
        if char == "[":
            starts.append(i + 1)
        elif char == "]" and len(starts) > 1:
            starts.pop()
        elif char == ";" or (char == "\n" and text[i - 1 : i] != "\\"):
            starts[-1] = i + 1
        i += 1
    start = starts[-1]
    depth, end = 0, start
    while end < len(text):
        char, after = text[end], _past_comment_or_string(text, end)
        if after != end:
            end = after
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            if depth == 0:
                end += end == pos  # a stray `]` is the error itself: drop it with its statement
                break
            depth -= 1
        elif depth == 0 and (char == ";" or (char == "\n" and text[end - 1 : end] != "\\")):
            break
        end += 1
    return start, max(end, pos)


def skip_past(err: UnexpectedInput | UnexpectedEOF, text: str) -> str | None:
    """The text with the statement holding `err` blanked out (line breaks kept, so positions stay true),
    for the next round of error recovery; None when there is nothing further to look at."""
    pos = getattr(err, "pos_in_stream", None)
    if isinstance(err, UnexpectedEOF) or pos is None or getattr(err, "token", None) == "":
        return None
    start, end = statement_around(text, pos)
    blanked = text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]
    return None if blanked == text else blanked
