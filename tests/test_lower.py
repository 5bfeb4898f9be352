"""Lowering: variables, `repeat`, argument binding and validation, each error located."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.ir import Network
from netdsl.layers.activation import Activation
from netdsl.layers.conv import Conv, Res
from tests.helpers import error_of


def test_conv_options_bind_to_fields() -> None:
    (conv,) = netdsl.parse("input 32x32x3\nconv 20 k3x5 s2 valid nobias l2=1e-6 relu bn").layers
    assert isinstance(conv, Conv)
    assert (conv.filters, conv.kernel, conv.stride, conv.padding) == (
        20,
        (3, 5),
        (2,),
        "valid",
    )  # k3 is (3,): every axis
    assert (conv.bias, conv.l2, conv.post) == (False, 1e-6, ("relu", "bn"))
    assert conv.span is not None and (conv.span.line, conv.span.column) == (2, 1)


def test_keyword_aliases_and_defaults() -> None:
    (conv,) = netdsl.parse("conv filters=8 kernel_size=5 strides=1 use_bias=false").layers
    assert (conv.filters, conv.kernel, conv.stride, conv.bias, conv.padding) == (8, (5,), (1,), False, "same")


def test_post_ops_keep_the_written_order() -> None:
    a, b = netdsl.parse("conv 8 relu bn; conv 8 bn relu").layers
    assert a.post == ("relu", "bn") and b.post == ("bn", "relu")


def test_res_defaults_are_the_seeds_reslayer() -> None:
    (res,) = netdsl.parse("res 20").layers
    assert isinstance(res, Res)
    assert (res.kernel, res.bias, res.l2, res.post) == ((3,), False, 1e-6, ("relu", "bn"))


def test_standalone_activation() -> None:
    (act,) = netdsl.parse("softmax").layers
    assert isinstance(act, Activation) and act.function == "softmax"


def test_repeat_for_substitutes_everywhere() -> None:
    net = netdsl.parse("repeat [conv w k3 s2; dense units=w] for w in 4, 8")
    assert [(layer.kind, getattr(layer, "filters", None) or getattr(layer, "units", None)) for layer in net.layers] == [
        ("conv", 4), ("dense", 4), ("conv", 8), ("dense", 8),
    ]  # fmt: skip


def test_nested_repeat_and_counts() -> None:
    net = netdsl.parse("repeat 2 [conv 4; repeat 3 [relu]]; repeat 0 [dense 3]")
    assert [layer.kind for layer in net.layers] == ["conv", *["activation"] * 3] * 2


def test_loop_variable_can_be_a_word() -> None:
    net = netdsl.parse("repeat [dense 4 a] for a in relu, tanh")
    assert [layer.post for layer in net.layers] == [("relu",), ("tanh",)]


def test_identical_statements_share_one_frozen_node() -> None:
    net = netdsl.parse("repeat 1000 [conv 4 relu]")
    assert len(net.layers) == 1000 and len({id(layer) for layer in net.layers}) == 1


def test_training_directives() -> None:
    net = netdsl.parse(
        "flatten\ntrain sgd lr=0.1 batch=64 epochs=3 momentum=0.8 cosine\naugment shift=0.1 flip zoom=0.2"
    )
    t = net.training
    assert (t.optimizer, t.lr, t.batch, t.epochs, t.momentum, t.schedule) == ("sgd", 0.1, 64, 3, 0.8, "cosine")
    assert (t.augment.shift, t.augment.flip, t.augment.zoom) == (0.1, True, 0.2)


def test_ir_json_round_trip_is_exact() -> None:
    net = netdsl.load("specs/resnet.net")
    again = Network.model_validate_json(net.model_dump_json())
    assert again == net
    assert again.model_dump() == net.model_dump()


def test_unknown_kind_in_json_lists_the_valid_kinds() -> None:
    with pytest.raises(Exception) as info:
        Network.model_validate({"layers": [{"kind": "cnv", "filters": 3}]})
    assert "'conv'" in str(info.value) and "'dense'" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cnv 10 k3",
            "t.net:1:1: error[E101]: unknown layer 'cnv'\n1 | cnv 10 k3\n  | ^^^\n  help: did you mean 'conv'?",
        ),
        ("conv 0", "t.net:1:6: error[E201]: conv: filters must be a positive integer, got 0"),
        ("conv -3", "error[E201]: conv: filters must be a positive integer, got -3"),
        ("conv 2.5", "error[E201]: conv: filters must be a whole number, got 2.5"),
        ("conv 10 s0", "t.net:1:9: error[E201]: conv: stride must be a positive integer, got 0"),
        ("conv 10 k0", "error[E201]: conv: kernel must be a positive integer, got 0"),
        (
            "conv 10 k1x2x3x4",
            "error[E201]: conv: kernel must be a number or one size per axis such as 3x5, got 1x2x3x4",
        ),
        ("conv 10 padding=full", "error[E201]: conv: padding must be 'same', 'valid' or 'causal', got full"),
        ("dense 0", "error[E201]: dense: units must be a positive integer, got 0"),
        ("dense 10 bias=maybe", "error[E201]: dense: bias must be true or false, got maybe"),
        ("dense 10 l2=x", "error[E201]: dense: l2 must be a number, got x"),
        ("dropout 1", "error[E201]: dropout: rate must be less than 1.0, got 1"),
        ("dropout -0.1", "error[E201]: dropout: rate must be at least 0.0, got -0.1"),
        (
            "conv 10 rleu",
            "error[E202]: conv: unknown argument 'rleu'\n1 | conv 10 rleu\n  |         ^^^^\n  help: did you mean 'relu'?",
        ),
        ("conv 10 kernal=3", "error[E202]: conv has no argument 'kernal'"),
        # options written after a post-op word belong to it, and are checked by its own layer class
        ("conv 10 bn momentum=1.5", "t.net:1:12: error[E201]: conv: bn: momentum must be less than 1.0, got 1.5"),
        ("conv 10 relu momentum=.9", "t.net:1:14: error[E202]: conv: relu has no argument 'momentum'"),
        ("conv 10 bn moment=.9", "error[E202]: conv: bn has no argument 'moment'\n1 | conv 10 bn moment=.9"),
        (
            "conv 10 relu alpha=.1",
            "error[E201]: conv: relu: alpha applies to leaky_relu and elu only, not to relu, got 0.1",
        ),
        ("leaky_relu alpha=-1", "error[E201]: leaky_relu: alpha must be at least 0 (Keras's LeakyReLU refuses"),
        ("dense 10 kernal=3", "error[E202]: dense has no argument 'kernal'"),
        ("conv 10 20", "error[E202]: conv: unexpected value '20' (positional arguments: filters)"),
        ("gmp 3", "error[E202]: gmp: unexpected value '3' (positional arguments: none)"),
        ("conv 10 freeze<3", "error[E202]: conv takes no 'freeze<...' argument"),
        ("conv w", "error[E205]: conv: 'w' is not defined"),
        ("conv", "t.net:1:1: error[E203]: conv: missing filters"),
        ("conv 10 k3 k5", "t.net:1:12: error[E204]: conv: kernel is given twice"),
        ("input 8x8x1\ninput 8x8x1", "t.net:2:1: error[E204]: input is given twice"),
        ("conv 10\ninput 8x8x1", "t.net:2:1: error[E206]: input must come before the first layer"),
        ("input 0x3", "t.net:1:7: error[E206]: input: expected a shape of positive sizes such as 32x32x3, got 0x3"),
        ("input", "t.net:1:1: error[E206]: input takes one shape, such as `input 32x32x3`"),
        ("repeat -1 [conv 3]", "t.net:1:8: error[E201]: repeat: count must be a whole number >= 0, got -1"),
        (
            "repeat 1000000000 [conv 3]",
            "error[E207]: repeat expands to 1,000,000,000 statements; netdsl handles at most 250,000",
        ),
        ("flatten\ntrain lr=-1", "t.net:2:7: error[E201]: train: lr must be greater than 0.0, got -1"),
        ("flatten\ntrain adamm", "error[E202]: train: unknown argument 'adamm'"),
        ("flatten\ntrain epochs=3\ntrain epochs=4", "t.net:3:7: error[E204]: train: epochs is given twice"),
        ("flatten\naugment shift=2", "error[E201]: augment: shift must be less than 1.0, got 2"),
    ],
)
def test_each_lowering_error_message(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_the_variable_hint() -> None:
    assert "'w' is not a defined variable; variables come from `repeat [...] for w in ...`" in error_of("conv w")


def test_independent_errors_are_reported_together() -> None:
    message = error_of("input 32x32x3\ncnv 10\nconv 0\ndense 10 rleu\n")
    assert "t.net:2:1: error[E101]" in message
    assert "t.net:3:6: error[E201]" in message
    assert "t.net:4:10: error[E202]" in message


def test_nesting_limit() -> None:
    text = "repeat 1 [" * 101 + "relu" + "]" * 101
    assert "error[E207]: repeat is nested more than 100 deep" in error_of(text)


def test_a_repeat_counted_by_an_enclosing_loop_variable_expands_every_iteration() -> None:
    """Regression (found by tests/properties): sizing the body with the outer scope, where `w` is not yet
    bound, counted `repeat w [...]` as empty, and the outer loop then ran only once."""
    assert len(netdsl.parse("input 1x1x1\nrepeat [repeat w [flatten]] for w in 1, 1").layers) == 2
    assert len(netdsl.parse("input 1x1x1\nrepeat [repeat w [flatten]] for w in 0, 2, 1").layers) == 3
    nested = "input 4\nrepeat [repeat [repeat v [dense 3]] for v in w, 1] for w in 2, 3"
    assert len(netdsl.parse(nested).layers) == (2 + 1) + (3 + 1)
