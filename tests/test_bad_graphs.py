"""Inputs from the third round of attacks (the graph language and the design tools) that used to end in a
RecursionError, a formatter that never returned, or a slow path: each is now a located E207 or an answer.

- arithmetic nested thousands deep (`f*f*...*f`, `----1`) overflowed lowering's recursion;
- a chain of blocks each using the one before nests the lowered network through block uses, which the text
  alone does not show (every body is one level deep);
- `netdsl fmt` measured each one-line block again at every enclosing level (2**depth steps: 30 nested
  one-line `repeat`s never finished), recursed without the nesting limit, and compared meanings
  recursively;
- one `assert` line sent a whole spec to Lark's slow parser (13 s instead of 8 at the token limit);
- `netdsl emit` wrote a `for` with an empty body (a SyntaxError) for a loop whose body makes no layer;
- fmt was not idempotent on `[ ; # c` (an empty statement after `[` made the bracket look hanging).
"""

from __future__ import annotations

import ast

import pytest

import netdsl
from netdsl import fmt
from netdsl.cli import main
from netdsl.fastparse import parse_fast
from netdsl.nesting import MAX_DEPTH, MAX_EXPRESSION_DEPTH


def codes(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.parse(text)
    return [(d.code, d.span.line, d.span.column, d.message) for d in info.value.diagnostics]


DEEP_ARITHMETIC = [
    "input 8\nrepeat [ dense f" + "*f" * 9000 + " ] for f in 2\n",  # 9,000 operators, left to right
    "input 8\ndense " + "-" * 15000 + "1\n",  # unary minus: Lark builds it, past the fast parser's nesting
    "input 8\ndense 1" + "+1" * (MAX_EXPRESSION_DEPTH + 1) + "\n",  # one past the limit
    "input 8\ndef b f=1" + "+1" * 200 + " [ dense f ]\nb\n",  # a parameter's default
    "input 8\nrepeat n [ dense 2 ] for n in 1" + "-1" * 200 + "\n",  # a loop's value
]


@pytest.mark.parametrize("text", DEEP_ARITHMETIC, ids=["product", "negation", "limit", "default", "loop"])
def test_deep_arithmetic_is_a_located_refusal(text: str) -> None:
    (code, line, _column, message) = codes(text)[0]
    assert code == "E207" and line == 2 and "arithmetic nested more than 100 operators deep" in message
    # the formatter refuses it alike
    with pytest.raises(netdsl.NetdslError) as info:
        fmt.format_text(text)
    assert info.value.diagnostics[0].code == "E207"


def test_arithmetic_at_the_limit_is_computed() -> None:
    net = netdsl.parse("input 8\ndense 1" + "+1" * MAX_EXPRESSION_DEPTH + "\n")
    assert net.layers[0].units == MAX_EXPRESSION_DEPTH + 1
    assert netdsl.parse("input 8\ndense " + "-" * 100 + "3\n").layers[0].units == 3  # an even number of minuses


def test_blocks_using_blocks_too_deep_are_refused_at_the_innermost_use() -> None:
    defs = "def d1 [ relu ]\n" + "".join(f"def d{i} [ d{i - 1} ]\n" for i in range(2, 2000))
    (code, line, column, message) = codes("input 8\ndense 2\n" + defs + "d1999\n")[0]
    assert code == "E207" and "nested more than 100 deep, counting the bodies of the blocks used" in message
    assert line == 2 + 1999 - MAX_DEPTH and column == 13  # the 101st block down the chain, `def d1899 [ d1898 ]`


def test_blocks_branches_and_repeats_at_the_depth_limit_go_through_every_tool(tmp_path) -> None:
    """100 levels (50 blocks, each a merge of one branch) and 100-deep arithmetic inside: check, the JSON,
    fmt (twice: idempotent), diff, draw's DOT, emit and the spec id all answer."""
    defs = "def d1 [ add [ dense 8 ] ]\n" + "".join(f"def d{i} [ add [ d{i - 1} ] ]\n" for i in range(2, 51))
    deep = "input 8\n" + "repeat 1 [ " * MAX_DEPTH + "dense 1" + "+1" * 99 + " ]" * MAX_DEPTH + "\n"
    for name, text in {"blocks.net": defs + "input 8\nd50\n", "repeats.net": deep}.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        report = netdsl.analyze(netdsl.load(path))
        assert report.to_json() and "<table" in report._repr_html_() and len(netdsl.spec_id(path)) == 12
        once = fmt.format_text(text)
        assert fmt.format_text(once) == once
        assert netdsl.diff(path, path).counts is not None
        assert "digraph" in netdsl.draw(path).source
        assert "def build_model" in netdsl.emit(netdsl.load(path))
    blocks = netdsl.analyze(netdsl.load(tmp_path / "blocks.net"))
    assert [row.type for row in blocks.layers].count("Add") == 50


def test_fmt_measures_each_one_line_block_once(monkeypatch) -> None:
    calls = []
    one_line = fmt._one_line
    monkeypatch.setattr(fmt, "_one_line", lambda bracket: calls.append(1) or one_line(bracket))
    text = "input 8\n" + "repeat 2 [ " * 30 + "dense 4" + " ]" * 30 + "\n"  # 2**30 steps before
    formatted = fmt.format_text(text)
    assert len(calls) == 30
    assert formatted.count("repeat 2 [") == 30 and fmt.format_text(formatted) == formatted


def test_fmt_refuses_nesting_past_the_limit_with_the_lowering_s_error(runner, write_spec) -> None:
    path = write_spec("input 8\n" + "add [ " * 300 + "dense 8" + " ]" * 300 + "\n", "deep.net")
    result = runner.invoke(main, ["fmt", "--check", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "deep.net:2:601: error[E207]: a branch is nested more than 100 deep" in result.output


def test_a_spec_with_budgets_stays_on_the_fast_parser() -> None:
    text = "input 8\n" + "dense 4\n" * 1000 + "assert params <= 2.5M\nassert rf>=3\n"
    statements = parse_fast(text)  # raised Fallback (Lark's parser, ~10 times slower) before
    assert [s.word for s in statements[-2:]] == ["assert", "assert"]
    assert [a.value for a in statements[-2].args] == ["params", "<=", "2.5M"]
    with pytest.raises(netdsl.NetdslError) as info:  # measured as before: the second one fails
        netdsl.check_budgets(text)
    assert [(d.code, d.span.line) for d in info.value.diagnostics] == [("E701", 1003)]


@pytest.mark.parametrize("text", [
    "input 8\nrepeat [ id ] for f in 4\ndense 2\n",
    "input 8\nrepeat 3 [ id ]\ndense 2\n",
    "input 8 as x\nrepeat 2 [ use x ]\ndense 2\n",
    "input 8\nrepeat [ repeat 2 [ id ]; id ] for f in 1, 2\ndense 2\n",
])  # fmt: skip
def test_emit_writes_no_empty_loop(text: str) -> None:
    source = netdsl.emit(netdsl.parse(text))
    ast.parse(source)  # an IndentationError before
    assert "layers.Dense(units=2)(x)" in source


def test_fmt_of_an_empty_statement_after_a_bracket_is_idempotent() -> None:
    text = " ; # ;  add  [  def  add \\\n add  [  ; # ] \\\n ] "
    once = fmt.format_text(text)
    assert once == "# ;  add  [  def  add \\\nadd [  # ] \\\n]\n" and fmt.format_text(once) == once
    assert fmt.format_text("input 8\nadd [ ; dense 4 | id ]\n") == "input 8\nadd [ dense 4 | id ]\n"


def test_a_shared_block_given_an_outer_tensor_is_e216() -> None:
    """A shared block is one Keras model: a tensor argument (`t z shared`) made analyze, emit and
    build_model fail with a KeyError inside the shared model's graph."""
    text = "def t x [ add x ]\ninput 8\ndense 8 as z\nt z shared\nt z shared\n"
    assert codes(text)[0][:3] == ("E216", 4, 1)
    net = netdsl.parse(text.replace(" shared", ""))  # without `shared`, each use reads the tensor
    assert [row.type for row in netdsl.analyze(net).layers].count("Add") == 2


def test_emit_unrolls_loops_nested_deeper_than_python_can_indent() -> None:
    """100 nested `repeat [...] for f in 2` were emitted as 100 nested `for`s: Python refuses a 100th level
    of indentation ("too many levels of indentation"), so the module could not even be read."""
    from netdsl.emit import MAX_LOOPS

    text = "input 8\n" + "repeat [ dense f; " * 100 + "dense 2" + " ] for f in 2" * 100 + "\n"
    source = netdsl.emit(netdsl.parse(text))
    tree = ast.parse(source)  # an IndentationError before
    assert sum(isinstance(node, ast.For) for node in ast.walk(tree)) == MAX_LOOPS
    assert source.count("layers.Dense(") == 101  # the deepest loops written out, once each
