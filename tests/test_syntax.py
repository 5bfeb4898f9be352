"""The grammar and the transformer: text -> surface statements with spans; syntax errors in words."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.diagnostics import Source
from netdsl.ir import Command, Repeat
from netdsl.syntax import grammar_path, parse_surface
from tests.helpers import error_of

CARD = "conv 10 k7 s1; repeat [conv w k3 s2; res w; res w] for w in 20,40,80,160; gmp; dropout .1; dense 10 softmax"


def surface(text: str) -> list:
    return parse_surface(Source(text))


def test_design_card_parses_verbatim() -> None:
    statements = surface(CARD)
    assert [type(s).__name__ for s in statements] == ["Command", "Repeat", "Command", "Command", "Command"]
    rep = statements[1]
    assert isinstance(rep, Repeat)
    assert rep.var == "w"
    assert [v.value for v in rep.values] == [20, 40, 80, 160]
    assert [c.word for c in rep.body] == ["conv", "res", "res"]  # type: ignore[union-attr]
    net = netdsl.parse(CARD)
    assert len(net.layers) == 1 + 4 * 3 + 3


def test_argument_forms_and_spans() -> None:
    (cmd,) = surface('conv 10 .5 1e-6 k3x5 s2 l2=1e-6 freeze<142 w="a b" 32x32x3')
    assert isinstance(cmd, Command)
    values = [a.value for a in cmd.args]
    assert values == [10, 0.5, 1e-6, "k3x5", "s2", 1e-6, 142, "a b", (32, 32, 3)]
    assert [a.key for a in cmd.args][5:8] == ["l2", "freeze", "w"]
    assert cmd.args[6].op == "<"
    assert cmd.args[7].quoted
    assert (cmd.span.line, cmd.span.column, cmd.span.end_column) == (1, 1, 5)
    assert (cmd.args[0].span.column, cmd.args[0].span.end_column) == (6, 8)


def test_separators_comments_and_continuations() -> None:
    text = "# a comment\n\n;input 32x32x3 # trailing\nconv 10 \\\n  relu;;\n\nrepeat 2 [\n  dense 4\n\n]\n"
    statements = surface(text)
    assert [getattr(s, "word", "repeat") for s in statements] == ["input", "conv", "repeat"]
    assert [a.value for a in statements[1].args] == [10, "relu"]  # type: ignore[union-attr]
    assert statements[2].body[0].span.line == 8  # type: ignore[union-attr]


def test_empty_and_comment_only_files_parse() -> None:
    assert surface("") == []
    assert surface("# nothing\n\n") == []


def test_crlf_line_endings() -> None:
    net = netdsl.parse("input 8x8x1\r\nconv 2\r\ngap\r\n")
    assert [layer.kind for layer in net.layers] == ["conv", "gap"]


def test_grammar_file_is_found() -> None:
    assert grammar_path().name == "netdsl.lark"


SYNTAX_ERRORS = [
    # what was expected is said in words, with the line, a caret and a hint
    ("input 8x8x1\nconv 10 ]",
     ("t.net:2:9: error[E102]: unexpected ']'", "2 | conv 10 ]", "  |         ^", "is there a '[' for this ']'?")),
    # a misspelt `repeat`: with branches it reads as a word such as `add [...]`, an unknown one
    ("repaet 3 [conv 1]", ("error[E101]: unknown layer 'repaet'", "did you mean 'repeat'?")),
    ("repaet [conv w] for w in 1, 2", ("error[E102]: unexpected 'for'", "did you mean 'repeat'?")),
    ("input 8x8x1\nconv 10 @ relu", ("t.net:2:9: error[E103]: unexpected character '@'",)),
    ("input 8x8x1\nrepeat [conv 3", ("error[E104]: unexpected end of input; expected", "']'")),
    ("repeat [conv w] for w in", ("error[E104]", "a number")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragments"), SYNTAX_ERRORS)
def test_syntax_errors_say_what_was_expected_in_words(text: str, fragments: tuple[str, ...]) -> None:
    message = error_of(text)
    assert [fragment for fragment in fragments if fragment not in message] == [], message
    assert "LSQB" not in message and "RSQB" not in message  # no grammar terminal names
