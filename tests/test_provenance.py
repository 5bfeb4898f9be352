"""Lowering's provenance (issue 10, item 6): each layer's statement, loop variables, repeat iterations and
block use, recorded while lowering; `netdsl emit` writes its loops from it and never parses the source."""

from __future__ import annotations

import ast
from pathlib import Path

import netdsl
from netdsl.ir import Network, Span
from netdsl.provenance import BlockUse, Origin, Pass, Run

PACKAGE = Path(__file__).resolve().parent.parent / "netdsl"


def table(net: Network) -> list[tuple]:
    """The provenance table in a comparable form: place, the statement's word and line, the variables,
    each enclosing iteration as (its repeat's line, its number, what it binds), and the block use."""
    assert net.provenance is not None
    rows = []
    for row in net.provenance.rows():
        origin = row.origin
        passes = [(p.repeat.line, p.iteration, dict(p.bindings)) for p in row.passes]
        block = (origin.block.name, origin.block.span.line, dict(origin.block.values)) if origin.block else None
        rows.append((row.place, origin.site.word, origin.site.span.line, dict(origin.env), passes, block))
    return rows


def test_nested_repeats_with_loop_variables() -> None:
    net = netdsl.parse("input 6\nrepeat [\n  repeat n [dense w]\n  relu\n] for w, n in (3, 2), (5, 1)\ndense 1")
    outer, inner = 2, 3  # the lines of the two repeats
    a, b = {"w": 3, "n": 2}, {"w": 5, "n": 1}
    assert table(net) == [
        ((0,), "dense", 3, a, [(outer, 0, a), (inner, 0, {})], None),
        ((1,), "dense", 3, a, [(outer, 0, a), (inner, 1, {})], None),
        ((2,), "relu", 4, a, [(outer, 0, a)], None),
        ((3,), "dense", 3, b, [(outer, 1, b), (inner, 0, {})], None),
        ((4,), "relu", 4, b, [(outer, 1, b)], None),
        ((5,), "dense", 6, {}, [], None),
    ]
    run, last = net.provenance.trail  # type: ignore[union-attr]
    assert isinstance(run, Run) and isinstance(last, Origin)
    assert (run.counts, run.values, [dict(e) for e in run.envs]) == ((1, 1), [(3, 2), (5, 1)], [a, b])
    inner_runs = [body[0] for body in run.iterations]
    assert [(r.counts, len(r.iterations), dict(r.env)) for r in inner_runs] == [((2,), 2, a), ((1,), 1, b)]


def test_each_value_then_count_times_as_lowering_iterates() -> None:
    net = netdsl.parse("input 6\nrepeat 2 [dense w] for w in 3, 4\ndense 1")
    assert [row.passes for row in net.provenance.rows()][:4] == [  # type: ignore[union-attr]
        (Pass(Span(line=2, column=1, end_line=2, end_column=33), number, (("w", w),)),)
        for number, w in enumerate((3, 3, 4, 4))
    ]
    (run, _) = net.provenance.trail  # type: ignore[union-attr]
    assert run.counts == (2, 2) and run.values == [3, 4] and run.site.mentions == () and run.site.count == "2"


def test_a_block_inside_a_block_sits_in_the_innermost_use() -> None:
    net = netdsl.parse("def inner f [dense f]\ndef outer g [inner g; relu]\ninput 6\nouter 4\nouter 2")
    assert [(r.place, r.origin.site.word, r.origin.block and r.origin.block.name) for r in net.provenance.rows()] == [  # type: ignore[union-attr]
        ((0,), "outer", None),
        ((0, 0, 0), "inner", "outer"),
        ((0, 0, 0, 0, 0), "dense", "inner"),
        ((0, 0, 1), "relu", "outer"),
        ((1,), "outer", None),
        ((1, 0, 0), "inner", "outer"),
        ((1, 0, 0, 0, 0), "dense", "inner"),
        ((1, 0, 1), "relu", "outer"),
    ]


def test_a_block_use_inside_a_repeat() -> None:
    net = netdsl.parse(
        "input 8x8x3\n"
        "def pair f [ conv f k1 relu; repeat 2 [conv f k3] ]\n"
        "repeat [pair w; repeat n [dense w]] for w, n in (4, 2), (8, 0)\n"
        "gap"
    )
    a, b = {"w": 4, "n": 2}, {"w": 8, "n": 0}
    use_a, use_b = ("pair", 3, {"f": 4}), ("pair", 3, {"f": 8})
    assert table(net) == [
        ((0,), "pair", 3, a, [(3, 0, a)], None),
        ((0, 0, 0), "conv", 2, {"f": 4}, [(3, 0, a)], use_a),
        ((0, 0, 1), "conv", 2, {"f": 4}, [(3, 0, a), (2, 0, {})], use_a),
        ((0, 0, 2), "conv", 2, {"f": 4}, [(3, 0, a), (2, 1, {})], use_a),
        ((1,), "dense", 3, a, [(3, 0, a), (3, 0, {})], None),
        ((2,), "dense", 3, a, [(3, 0, a), (3, 1, {})], None),
        ((3,), "pair", 3, b, [(3, 1, b)], None),
        ((3, 0, 0), "conv", 2, {"f": 8}, [(3, 1, b)], use_b),
        ((3, 0, 1), "conv", 2, {"f": 8}, [(3, 1, b), (2, 0, {})], use_b),
        ((3, 0, 2), "conv", 2, {"f": 8}, [(3, 1, b), (2, 1, {})], use_b),
        ((4,), "gap", 4, {}, [], None),
    ]
    (run, _gap) = net.provenance.trail  # type: ignore[union-attr]
    empty = run.iterations[1][1]  # `repeat n` with n = 0 ran, and made nothing: the runs still line up
    assert isinstance(empty, Run) and (empty.counts, empty.iterations) == ((0,), ())
    assert isinstance(net.provenance.rows()[1].origin.block, BlockUse)  # type: ignore[union-attr]


def test_branches_names_and_a_second_input() -> None:
    net = netdsl.parse("input 8x8x3 as image\ninput 10 as meta\nuse image\nadd [conv 3 | id] as d1\nuse d1\ngap")
    rows = [(row.place, row.origin.site.word, row.origin.site.span.line) for row in net.provenance.rows()]  # type: ignore[union-attr]
    assert rows == [
        ((0,), "input", 2),  # the layers go on from the last input: lowering's `use meta`
        ((1,), "use", 3),
        ((2,), "add", 4),
        ((2, 0, 0), "conv", 4),
        ((2, 1, 0), "id", 4),
        ((3,), "use", 5),
        ((4,), "gap", 6),
    ]
    assert len(net.layers) == 5


def test_provenance_is_not_part_of_the_network_s_value() -> None:
    net = netdsl.parse("input 4\nrepeat [dense w relu] for w in 3, 5\ndense 1")
    again = Network.model_validate_json(net.model_dump_json())
    assert again == net and again.provenance is None and "provenance" not in net.model_dump()
    assert net.model_copy(update={"name": "other"}).provenance is net.provenance
    assert net.with_input((7,)).provenance is net.provenance


def body(source: str) -> str:
    return source.split("def build_model", 1)[1]


def test_emit_writes_the_loops_the_provenance_records_not_the_source_s() -> None:
    flat_text = netdsl.parse("input 6\ndense 3\ndense 3\ndense 3")
    looped = netdsl.parse("input 6\nrepeat 3 [dense 3]")
    assert "for" not in body(netdsl.emit(flat_text))
    swapped = flat_text.traced(looped.provenance)
    assert "    for _ in range(3):\n        x = layers.Dense(units=3)(x)\n" in body(netdsl.emit(swapped))


def test_without_provenance_or_with_other_layers_emit_writes_one_call_per_layer() -> None:
    net = netdsl.parse("input 8x8x3\nrepeat [conv w relu bn] for w in 4, 8\ngmp\ndense 2")
    assert "    for w in (4, 8):\n" in body(netdsl.emit(net))
    built_in_python = Network.model_validate_json(net.model_dump_json())  # no provenance
    assert "for " not in body(netdsl.emit(built_in_python))
    cut = net.model_copy(update={"layers": net.layers[1:]})  # the provenance is another network's: not used
    assert "for " not in body(netdsl.emit(cut))
    no_text = net.model_copy(update={"source": ""})  # loops come from provenance, not from the text
    source = netdsl.emit(no_text)
    assert "    for w in (4, 8):\n" in body(source) and '"""conv"""' in source


def test_the_emitter_never_parses_the_source() -> None:
    for path in sorted(PACKAGE.glob("emit*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        parsers = {"netdsl.syntax", "netdsl.fastparse", "netdsl.lark_parser", "netdsl.spec", "netdsl.names"}
        assert not modules & parsers, (path.name, modules & parsers)
        assert not names & {"parse_surface", "parse_fast", "loop_envs", "evaluate", "parse"}, path.name
