"""Graph constructs without Keras: merges and branches, named tensors and their scopes, user blocks,
arithmetic, loops over several variables, several inputs and outputs, and their located errors."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.analysis import analyze
from tests.helpers import error_of as located_error
from tests.helpers import failure


def report_of(text: str):
    return analyze(netdsl.parse(text, name="t"))


def error_of(text: str) -> str:
    return located_error(text, file=None)  # these messages name the spec `<string>`


def codes(text: str) -> list[str]:
    return [w.code for w in report_of(text).warnings]


# ------------------------------------------------------------------ merges


@pytest.mark.parametrize(
    ("merge", "keras_class", "channels"),
    [
        ("add", "Add", 8),
        ("mul", "Multiply", 8),
        ("avg", "Average", 8),
        ("max", "Maximum", 8),
        ("cat", "Concatenate", 16),
    ],
)
def test_each_merge_joins_two_branches(merge: str, keras_class: str, channels: int) -> None:
    report = report_of(f"input 8x8x3\n{merge} [ conv 8 k3 | conv 8 k1 ]\n")
    last = report.layers[-1]
    assert (last.type, last.output_shape, last.params) == (keras_class, (None, 8, 8, channels), 0)
    assert last.inputs == ("conv2d", "conv2d_1")
    assert report.total_params == (3 * 9 * 8 + 8) + (3 * 8 + 8)


def test_one_branch_is_joined_with_the_current_tensor_first() -> None:
    add = report_of("input 8x8x4\nconv 4 k3 as a\nadd [ conv 4 k3 ]\n").layers[-1]
    assert add.inputs == ("conv2d", "conv2d_1")
    cat = report_of("input 8x8x4\ncat [ conv 6 k3 ]\n").layers[-1]
    assert (cat.inputs, cat.output_shape) == (("input_layer", "conv2d"), (None, 8, 8, 10))


def test_the_identity_branch_and_sub_and_axis() -> None:
    report = report_of("input 8x8x4\nsub [ conv 4 k3 | id ]\ncat axis=1 [ id | id ]\n")
    assert [r.type for r in report.layers[-2:]] == ["Subtract", "Concatenate"]
    assert report.output_shape == (None, 16, 8, 4)
    assert "sub takes exactly two tensors, got 3" in error_of("input 8x8x4\nsub [ id | id | id ]\n")


def test_a_mismatched_merge_names_each_branch_and_its_line() -> None:
    message = error_of("input 32x32x64\nadd [ conv 128 k3 s2\n    | conv 64 k1 ]\n")
    assert "<string>:2:1: error[E304]: add: the inputs have different shapes: branch 1 is (None, 16, 16, 128) (line 2), " \
           "branch 2 is (None, 32, 32, 64) (line 3)" in message  # fmt: skip
    message = error_of("input 8x8x4\nconv 8 k3 s2 as a\nuse a\ncat a [ conv 4 k3 s2 ]\n")
    assert "the input is (None, 4, 4, 8), 'a' is (None, 4, 4, 8), the branch is (None, 2, 2, 4) (line 4)" in message


def test_branches_belong_to_merges() -> None:
    assert "error[E202]: conv takes no branches" in error_of("input 8x8x3\nconv 8 [ relu ]\n")
    assert "error[E315]: cat needs branches or names to merge" in error_of("input 8x8x3\ncat\n")


def test_receptive_field_and_macs_through_a_merge() -> None:
    report = report_of("input 32x32x3\nadd [ conv 8 k3; conv 8 k3 | conv 8 k1 ]\n")
    add = report.layers[-1]
    assert add.receptive_field == (5, 1)  # the widest input's
    assert add.macs == 0 and report.macs == sum(r.macs for r in report.layers[:-1])


# ------------------------------------------------------------------ names


def test_names_skip_connections_and_use() -> None:
    report = report_of("input 16x16x1\nconv 8 k3 relu as d1\nmaxpool 2\nconv 8 k3\nuse d1\nconv 4 k1\ncat d1\n")
    assert report.output_shape == (None, 16, 16, 12)
    assert report.layers[-1].inputs == ("conv2d_2", "activation")
    assert [w.code for w in report.warnings] == ["W406"]  # the pooled branch reaches no output


def test_unknown_and_early_names() -> None:
    assert "error[E209]: unknown name 'stme'" in error_of("input 8x8x3\nconv 8 as stem\nadd stme\n")
    assert "did you mean 'stem'?" in error_of("input 8x8x3\nconv 8 as stem\nadd stme\n")
    message = error_of("input 8x8x3\nconv 8\nadd later\nconv 8 as later\n")
    assert "<string>:3:5: error[E209]: 'later' is used before it is made" in message
    assert "it is named at line 4, column 11" in message
    assert "error[E209]: unknown name 'b'" in error_of("input 8x8x3\noutput b\n")


def test_names_are_scoped_to_repeat_iterations_branches_and_blocks() -> None:
    report = report_of("input 8x8x4\nrepeat 3 [ conv 4 k3 as skip; conv 4 k3; add skip ]\n")
    adds = [r for r in report.layers if r.type == "Add"]
    assert [a.inputs for a in adds] == [("conv2d_1", "conv2d"), ("conv2d_3", "conv2d_2"), ("conv2d_5", "conv2d_4")]
    assert "error[E209]: unknown name 'inner'" in error_of("input 8x8x4\nadd [ conv 4 as inner | id ]\nadd inner\n")
    assert "error[E209]: unknown name 'outer'" in error_of("input 8x8x4\nconv 4 as outer\ndef b [ add outer ]\nb\n")


def test_a_block_reads_the_tensors_given_to_it_as_arguments() -> None:
    """`cell 6 a`: a parameter whose value names a visible tensor is that tensor inside (NASNet's two-input
    cells); the block still sees no other outer name, and a word that names no tensor stays a value."""
    cell = "def cell f p [ conv f k1 as h; add [ id | use p; conv f k1 ]; cat h ]\ninput 8x8x4\n"
    report = report_of(cell + "conv 4 k1 as a\nconv 4 k3\ncell 6 a\n")
    rows = {row.name: row for row in report.layers}
    assert rows["conv2d_3"].inputs == ("conv2d",) and rows["conv2d_2"].inputs == ("conv2d_1",)
    assert report.output_shape == (None, 8, 8, 12)
    twice = report_of(cell + "conv 4 k1 as a\ncell 6 a\ncell 6 a\n")  # each use reads `a` again
    assert [r.inputs for r in twice.layers if r.name in ("conv2d_2", "conv2d_4")] == [("conv2d",), ("conv2d",)]
    assert "error[E209]: unknown name 'b'" in error_of(cell + "conv 4 k1 as a\nconv 4 as b\ndef d p [ add b ]\nd a\n")
    act = report_of("def c f a [ conv f activation=a ]\ninput 8x8x4\nc 4 relu\n")  # `relu` names no tensor
    assert act.layers[-1].type == "Conv2D"


def test_a_name_never_used_is_a_warning_once() -> None:
    assert codes("input 8\nrepeat 3 [ dense 4 as h ]\ndense 2\n") == ["W407"]
    assert codes("input 8x8x3 as image\nconv 4\n") == ["W407"]


# ------------------------------------------------------------------ blocks

BASIC = "def basic f s=1 [ add [ conv f k3 s=s; conv f k3 | conv f k1 s=s ] ]\ninput 8x8x4\n"


def test_blocks_take_positional_keyword_and_default_arguments() -> None:
    for use in ("basic 8 2", "basic 8 s=2", "basic f=8 s=2", "basic s=2 f=8"):
        assert report_of(BASIC + use).output_shape == (None, 4, 4, 8), use
    assert report_of(BASIC + "basic 8").output_shape == (None, 8, 8, 8)
    report = report_of("input 8x8x4\nbasic 8\n" + BASIC.split("\n")[0])  # used above its definition
    assert report.layers[-1].blocks == ("basic@2:1",)


ERRORS = [  # (spec, a line of the message): each mistake located, in words
    (BASIC + "basic 8 stride=2", "<string>:3:9: error[E202]: basic has no argument 'stride'"),
    (BASIC + "basic 8 ss=2", "did you mean 's'?"),
    (BASIC + "basic 8 2 3", "error[E202]: basic: unexpected value '3'"),
    (BASIC + "basic 8 2 3", "basic takes 2 arguments: basic f s=1"),
    (BASIC + "basic s=2", "<string>:3:1: error[E203]: basic: missing f"),
    (BASIC + "basic s=2", "basic takes: basic f s=1 (defined at line 1)"),
    (BASIC + "basic 8 2 s=2", "error[E204]: basic: s is given twice"),
    (BASIC + "basik 8", "error[E101]: unknown layer 'basik'"),
    (BASIC + "basik 8", "did you mean 'basic'?"),
    ("def a [ b ]\ndef b [ a ]\ninput 8\na\n", "error[E210]: block 'a' uses itself (a -> b -> a)"),
    ("input 8\nrepeat 2 [ def inner [ dense 2 ] ]\n", "error[E210]: def inner must be at the top level"),
    ("def x [ dense 2 ]\ndef x [ dense 3 ]\ninput 8\nx\n", "error[E210]: block 'x' is defined twice"),
    ("def conv [ dense 2 ]\ninput 8\ndense 2\n", "error[E210]: 'conv' is a netdsl word"),
    ("def x f f [ dense f ]\ninput 8\nx 2 3\n", "parameter 'f' is given twice"),
    ("input 8x8x4\nrepeat [ conv f/3 k3 ] for f in 64\n", "<string>:2:15: error[E201]: conv: filters must be a whole number, got 21.333333333333332"),
    ("input 8\nrepeat [ dense f/0 ] for f in 4\n", "error[E211]: cannot compute (f/0): division by zero"),
    ("input 8\nrepeat [ dense 2*g ] for f in 4\n", "error[E205]: 'g' is not defined"),
    ('input 8\ndense 2*"a"\n', "error[E211]"),
    # an error inside a block names the use and the definition
    ("def stem f [\n  conv f k9 valid\n]\ninput 8x8x3\nstem 16\n",
     "<string>:2:3: error[E303]: conv: conv2d with kernel 9x9 and 'valid' padding shrinks"),
    ("def stem f [\n  conv f k9 valid\n]\ninput 8x8x3\nstem 16\n", "note: in block 'stem' used at 5:1, with f=16"),
    ("def stem f [ conv f k3 bogus ]\ninput 8x8x3\nstem 16\n", "<string>:1:24: error[E202]: conv: unknown argument 'bogus'"),
    ("def stem f [ conv f k3 bogus ]\ninput 8x8x3\nstem 16\n", "note: in block 'stem' used at 3:1, with f=16"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "expected"), ERRORS)
def test_block_definition_and_arithmetic_errors(spec: str, expected: str) -> None:
    assert expected in error_of(spec)


def test_a_block_named_like_a_layer_is_one_error_not_one_per_use() -> None:
    """`def res f k [...]` used as `res 24 3` three times: the uses were read as netdsl's own `res` (one filter
    count), three E202s after the E210 that says what to do (found writing the EfficientNet specs)."""
    spec = "def res f k [ conv f k=k ]\ninput 8x8x3\nres 24 3\nrepeat 2 [ res 24 5 ]\n"
    caught = failure(spec)
    assert [(d.code, d.span.line) for d in caught.diagnostics] == [("E210", 1)]  # type: ignore[union-attr]
    assert [d.code for d in failure(spec.replace("res 24 5", "res 24 5 bogus")).diagnostics] == ["E210", "E202"]


# ------------------------------------------------------------------ arithmetic and loops


def test_arithmetic_in_arguments() -> None:
    report = report_of("input 8x8x4\nrepeat [ conv 4*f k3; conv f/2 k1; conv (f+1)*2 k1; dense f-16 ] for f in 32\n")
    assert [r.output_shape[-1] for r in report.layers[1:]] == [128, 16, 66, 16]


def test_loops_over_several_variables_and_counts_from_variables() -> None:
    text = "input 8\nrepeat n [ dense u ] for u, n in (4, 1), (6, 2), (2, 3)\n"
    assert [r.output_shape[-1] for r in report_of(text).layers[1:]] == [4, 6, 6, 2, 2, 2]
    assert "<string>:2:42: error[E212]: repeat: 2 variables (u, n) but 1 value in 3" in error_of(
        "input 8\nrepeat n [ dense u ] for u, n in (4, 1), 3\n"
    )


# ------------------------------------------------------------------ inputs and outputs


def test_several_inputs_and_outputs() -> None:
    report = report_of(
        "input 8x8x3 as image\ninput 5 as meta\ndense 4 as m\nuse image\ngap\ncat m\ndense 3 as a\ndense 1 as b\noutput a b\n"
    )
    assert report.input_shapes == [(None, 8, 8, 3), (None, 5)]
    assert report.output_shapes == [(None, 3), (None, 1)]
    assert [r.name for r in report.layers[:2]] == ["input_layer", "input_layer_1"]
    assert "error[E204]: input is given twice" in error_of("input 8\ninput 4\ndense 2\n")
    assert "error[E204]: output is given twice" in error_of("input 8\ndense 2 as a\noutput a\noutput a\n")


def test_int_inputs() -> None:
    net = netdsl.parse("input 200 int\ndense 4\n")
    assert net.input_dtype == "int32" and netdsl.analyze(net).input_shape == (None, 200)


def test_the_table_shows_inputs_for_graphs_only() -> None:
    from netdsl.render import summary_table

    graph = summary_table(report_of("input 8x8x3\nadd [ conv 3 k3 | conv 3 k1 ]\n"))
    assert "Connected to" in graph and "conv2d, conv2d_1" in graph
    assert "Connected to" not in summary_table(report_of("input 8x8x3\nconv 3 k3\nres 3\n"))


def test_netdsl_layers_lists_merges_and_blocks(runner) -> None:
    from netdsl.cli import main

    result = runner.invoke(main, ["layers"])
    assert "add, cat, mul, avg, max, sub" in result.output and "def NAME params" in result.output


def test_keras_order_survives_rows_it_never_gets() -> None:
    """Duplicate names and cycles cannot come from a spec; the ordering still ends (a guard, not a feature)."""
    from netdsl.analysis import LayerReport
    from netdsl.graph_order import keras_order
    from netdsl.quick import construct

    def row(name: str, *inputs: str) -> LayerReport:
        return construct(LayerReport, name=name, type="Dense", output_shape=(None, 1), params=0, trainable_params=0,
                         non_trainable_params=0, macs=0, inputs=inputs)  # fmt: skip

    assert keras_order([row("a"), row("a", "a")], ["a"])[0] == [0, 1]
    order, reached = keras_order([row("a", "b"), row("b", "a")], ["b"])
    assert sorted(order) == [0, 1] and reached == {0, 1}
