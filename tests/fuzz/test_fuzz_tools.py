"""Fuzzing the design tools (issue 13) and the graph language (issue 11) together: random and explosive
programs (deep nesting of repeats, branches and blocks, blocks using blocks, long arithmetic, many
branches, odd line endings) through `format`, `parse`, `spec_id`, `analyze` and its HTML, `diff`,
`draw`'s DOT source and `emit`. Each answers or raises NetdslError within the CPU bound, prints no raw
control character, and keeps its promises: fmt is idempotent, a spec id is 12 hex digits, the emitted
module compiles. (Found by it: the RecursionErrors, the exponential fmt, an emitted empty loop and loops
nested past Python's indentation limit, all in tests/test_bad_graphs.py.)
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netdsl
from tests.fuzz.strategies import grammar_programs, mutated_specs
from tests.fuzz.test_fuzz_cli import LONG, no_hang

TOOLS = settings(
    max_examples=1000 if LONG else 60, derandomize=not LONG, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)  # fmt: skip
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b\u202a-\u202e\u2066-\u2069]")
OTHER = "input 8\ndense 4 relu\nadd [ dense 4 | id ]\ndense 2 softmax\n"
T = TypeVar("T")
LEAVES = ["dense 4", "relu", "id", "bn", "dense f", "dropout .1", "dense 1+1", "cat [ dense 2 ]", "use x"]


def _nested(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    body = st.lists(inner, min_size=0, max_size=3).map("; ".join)
    return st.one_of(
        st.tuples(st.sampled_from(["1", "2", "0", "1000000000", "n", "f-1"]), body).map(lambda t: f"repeat {t[0]} [ {t[1]} ]"),
        st.tuples(body, st.sampled_from(["4", "8, 16", "(1, 2), (3, 4)"])).map(lambda t: f"repeat [ {t[0]} ] for f in {t[1]}"),
        st.lists(body, min_size=1, max_size=4).map(lambda bs: f"{'add' if len(bs) % 2 else 'cat'} [ {' | '.join(bs)} ]"),
        st.tuples(inner, st.sampled_from(["x", "y"])).map(lambda t: f"{t[0]} as {t[1]}"),
    )  # fmt: skip


@st.composite
def explosive(draw: st.DrawFn) -> str:
    """A program built to blow up: nesting near and past the limits, chains of blocks, long arithmetic."""
    kind = draw(st.sampled_from(["tree", "deep", "chain", "arithmetic", "wide"]))
    if kind == "tree":
        body = draw(st.recursive(st.sampled_from(LEAVES), _nested, max_leaves=25))
    elif kind == "deep":  # around MAX_DEPTH, one construct inside itself
        depth = draw(st.integers(95, 130))
        opening = draw(st.sampled_from(["repeat 1 [ ", "add [ ", "cat [ id | ", "repeat [ dense f; "]))
        closing = " ] for f in 2" if opening.startswith("repeat [") else " ]"
        body = opening * depth + "dense 4" + closing * depth
    elif kind == "chain":  # blocks using blocks, one or two uses a level
        length, uses = draw(st.integers(1, 140)), draw(st.sampled_from(["b{}", "b{}; b{}", "add [ b{} | b{} ]"]))
        defs = "def b0 f=4 [ dense f ]\n" + "".join(
            f"def b{i} f=4 [ {uses.format(i - 1, i - 1)} ]\n" for i in range(1, length)
        )
        body = defs + f"b{length - 1}"
    elif kind == "arithmetic":
        ops = draw(st.lists(st.sampled_from(["+1", "*1", "-0", "/1", "*f", "+(-1)"]), min_size=0, max_size=250))
        body = "repeat [ dense 2" + "".join(ops) + " ] for f in 1"
    else:
        body = "add [ " + " | ".join(draw(st.lists(st.sampled_from(LEAVES[:4]), min_size=1, max_size=300))) + " ]"
    start = draw(st.sampled_from(["input 8\n", "input 8 as x\n", "\ufeffinput 8\n", "input 4x4x2\n", ""]))
    text = start + body + "\n"
    newline = draw(st.sampled_from(["\n", "\r\n", "\n\t", " \\\n"]))
    return text.replace("\n", newline) if newline != "\n" else text


def assert_printable(text: str, what: str) -> None:
    assert RAW.search(text) is None, f"{what} prints a raw control character: {text[:300]!r}"


def within(tool: Callable[[], T]) -> T:
    """One tool's call, bounded in CPU like one `netdsl check` (a 2**17-layer block chain is a legal
    network: the seven tools together may take longer than one)."""
    with no_hang():
        return tool()


def exercise(text: str) -> None:
    """Every tool on one program: an answer or a NetdslError, each within the CPU bound."""
    try:
        formatted = within(lambda: netdsl.format(text))
    except netdsl.NetdslError as err:
        assert_printable(str(err), "format's error")
    else:
        assert within(lambda: netdsl.format(formatted)) == formatted, "fmt is not idempotent"
    try:
        net = within(lambda: netdsl.parse(text))
    except netdsl.NetdslError as err:
        assert_printable(str(err), "parse's error")
        return
    assert re.fullmatch(r"[0-9a-f]{12}", within(lambda: netdsl.spec_id(net)))
    try:
        report = within(lambda: netdsl.analyze(net))
    except netdsl.NetdslError as err:
        assert_printable(str(err), "analyze's error")
        return
    ast.parse(within(lambda: netdsl.emit(net)))  # what analyze accepts, emit writes, as Python Python reads
    assert_printable(within(report._repr_html_), "the HTML table")
    assert_printable(within(lambda: netdsl.diff(net, OTHER).text()), "diff")
    try:
        assert "digraph" in within(lambda: netdsl.draw(report).source)
    except netdsl.NetdslError as err:  # E207: too many boxes to draw
        assert err.diagnostics[0].code == "E207"


@TOOLS
@given(text=explosive())
def test_explosive_programs_through_every_tool(text: str) -> None:
    exercise(text)


@TOOLS
@given(text=st.one_of(grammar_programs(), mutated_specs().map(lambda b: b.decode("utf-8", errors="replace"))))
def test_random_and_damaged_programs_through_every_tool(text: str) -> None:
    exercise(text)
