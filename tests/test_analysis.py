"""The analyzer: Keras's shape and parameter semantics, MACs, receptive fields, located errors, warnings."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.layers.base import conv_output_length
from tests.helpers import error_of


def analyze(text: str) -> netdsl.Report:
    return netdsl.analyze(netdsl.parse(text, file="t.net"))


def rows(text: str) -> list[tuple[str, str, tuple, int]]:
    return [(r.name, r.type, r.output_shape, r.params) for r in analyze(text).layers]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [(32, 3, 2, "valid", 15), (15, 3, 2, "valid", 7), (32, 3, 2, "same", 16), (7, 3, 2, "same", 4),
     (5, 5, 1, "valid", 1), (4, 5, 1, "valid", 0), (197, 7, 2, "same", 99), (1, 1, 3, "valid", 1)],
)  # fmt: skip
def test_conv_output_length_matches_keras_arithmetic(size, kernel, stride, padding, expected) -> None:
    assert conv_output_length(size, kernel, stride, padding) == expected


def test_seed_convnet_rows_equal_the_posts_summary() -> None:
    # The post's model.summary() for ConvNet([20, 40, 80]), row by row (Keras 3 names).
    assert rows("input 32x32x3\nrepeat [conv w k3 s2 valid relu] for w in 20,40,80\ngmp\ndense 10 softmax") == [
        ("input_layer", "InputLayer", (None, 32, 32, 3), 0),
        ("conv2d", "Conv2D", (None, 15, 15, 20), 560),
        ("activation", "Activation", (None, 15, 15, 20), 0),
        ("conv2d_1", "Conv2D", (None, 7, 7, 40), 7240),
        ("activation_1", "Activation", (None, 7, 7, 40), 0),
        ("conv2d_2", "Conv2D", (None, 3, 3, 80), 28880),
        ("activation_2", "Activation", (None, 3, 3, 80), 0),
        ("global_max_pooling2d", "GlobalMaxPooling2D", (None, 80), 0),
        ("dense", "Dense", (None, 10), 810),
        ("activation_3", "Activation", (None, 10), 0),
    ]


def test_batch_norm_has_4c_params_of_which_2c_non_trainable() -> None:
    report = analyze("input 8x8x3\nconv 20 nobias\nbn")
    bn = report.layers[-1]
    assert (bn.params, bn.trainable_params, bn.non_trainable_params) == (80, 40, 40)
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == (540 + 80, 580, 40)


def test_dense_on_a_feature_map_acts_on_the_last_axis_and_warns() -> None:
    report = analyze("input 8x8x3\ndense 5")
    dense = report.layers[-1]
    assert dense.output_shape == (None, 8, 8, 5) and dense.params == 3 * 5 + 5
    assert [w.code for w in report.warnings] == ["W402"]
    assert report.warnings[0].span.line == 2
    per_step = analyze("input 10x16\ndense 32 gelu\ndense 16")  # a Transformer's feed-forward block: no W402
    assert per_step.layers[-1].output_shape == (None, 10, 16) and per_step.warnings == []


def test_a_dense_per_position_before_a_pooling_is_no_warning() -> None:
    """W402 is for a classifier that forgot its pooling; ConvNeXt's pointwise dense layers, pooled later, are not."""
    assert analyze("input 8x8x3\ndense 5\ngap\ndense 2").warnings == []
    assert [w.code for w in analyze("input 8x8x3\ndense 5\ngap\ndense 2 as a\nuse a\noutput a").warnings] == []
    assert [w.code for w in analyze("input 8x8x3\ndense 5 as a\ngap\ndense 2 as b\noutput a b").warnings] == ["W402"]


def test_layer_after_the_final_softmax_warns() -> None:
    report = analyze("input 10\ndense 4 softmax\ndense 2")
    assert [w.code for w in report.warnings] == ["W401"]
    assert report.warnings[0].span.line == 3
    fused = analyze("input 10\ndense 4 activation=softmax\ndense 2")  # the softmax fused into the Dense
    assert [(w.code, w.span.line) for w in fused.warnings] == [("W401", 3)]


def test_dropout_after_softmax_does_not_warn() -> None:
    assert analyze("input 10\ndense 4\nsoftmax\ndropout .1").warnings == []


def test_pooling_shapes_and_defaults() -> None:
    assert rows("input 9x9x2\nmaxpool\navgpool k3 s1 same\nmaxpool 2 s1\ngap")[1:] == [
        ("max_pooling2d", "MaxPooling2D", (None, 4, 4, 2), 0),
        ("average_pooling2d", "AveragePooling2D", (None, 4, 4, 2), 0),
        ("max_pooling2d_1", "MaxPooling2D", (None, 3, 3, 2), 0),
        ("global_average_pooling2d", "GlobalAveragePooling2D", (None, 2), 0),
    ]


def test_non_square_kernels_and_strides() -> None:
    (_, conv) = analyze("input 10x12x1\nconv 2 k3x5 s2x3 valid").layers
    assert conv.output_shape == (None, 4, 3, 2) and conv.params == 3 * 5 * 2 + 2
    assert conv.receptive_field_axes == ((3, 5), (2, 3))


def test_receptive_field_size_and_jump() -> None:
    report = analyze("input 32x32x3\nconv 4 k7\nconv 4 k3 s2\nmaxpool\nconv 4 k3")
    fields = [r.receptive_field for r in report.layers]
    assert fields == [(1, 1), (7, 1), (9, 2), (11, 4), (19, 4)]


def test_residual_receptive_field_is_the_wider_branch() -> None:
    report = analyze("input 16x16x4\nres 4 k5")
    add = report.layers[-1]
    assert add.type == "Add" and add.receptive_field == (5, 1)
    assert add.inputs == ("input_layer", "batch_normalization")


def test_macs() -> None:
    report = analyze("input 8x8x3\nconv 4 k3 s1 same\nflatten\ndense 10")
    conv, dense = report.layers[1], report.layers[3]
    assert conv.macs == 8 * 8 * 4 * 3 * 3 * 3
    assert dense.macs == 8 * 8 * 4 * 10
    assert report.macs == conv.macs + dense.macs and report.flops == 2 * report.macs


def test_totals_are_sums_of_rows() -> None:
    report = netdsl.check("specs/resnet.net")
    assert report.total_params == sum(r.params for r in report.layers)
    assert report.trainable_params == sum(r.trainable_params for r in report.layers)
    assert report.param_bytes == 4 * report.total_params


def test_frozen_layers_count_as_non_trainable() -> None:
    net = netdsl.parse("input 8x8x3\nconv 4\nconv 4")
    report = netdsl.analyze(net, trainable=lambda index, name: name != "conv2d")
    assert report.layers[1].trainable_params == 0 and report.layers[1].non_trainable_params == 112
    assert report.non_trainable_params == 112


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "input 32x32x3\nconv 20\nres 40",
            "t.net:3:1: error[E304]: res: the residual add's two inputs have different shapes: "
            "(None, 32, 32, 20) (the shortcut) and (None, 32, 32, 40) (the branch)",
        ),
        ("input 8x8x3\nconv 4 k5 valid\nconv 4 k5 valid",
         "t.net:3:1: error[E303]: conv: conv2d with kernel 5x5 and 'valid' padding shrinks (None, 4, 4, 4) to nothing"),
        ("input 3x3x1\nmaxpool 4", "t.net:2:1: error[E303]: maxpool: maxpool 4x4 with 'valid' padding shrinks"),
        ("input 32x32x3\nflatten\nconv 10",
         "t.net:3:1: error[E302]: conv: conv2d needs a 4-D input (batch, height, width, channels); got (None, 3072)"),
        ("input 32x32x3\nflatten\ngmp", "t.net:3:1: error[E302]: gmp: global_max_pooling2d needs a 4-D input"),
        ("input 10\nmaxpool", "error[E302]: maxpool: max_pooling2d needs a 4-D input"),
        ("conv 10", "error[E301]: no input shape: start the spec with `input HxWxC`"),
        ("input 32x32x3", "t.net:1:1: error[E305]: the network has no layers"),
    ],
)  # fmt: skip
def test_each_analysis_error_message(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_shape_error_has_a_caret_and_help() -> None:
    message = error_of("input 32x32x3\nconv 20\nres 40")
    assert "3 | res 40\n  | ^^^" in message
    assert "help: a residual branch must keep its input's shape" in message


def test_input_override() -> None:
    report = netdsl.check("specs/convnet.net", input_shape=(64, 64, 3))
    assert report.input_shape == (None, 64, 64, 3)
    assert report.layers[1].output_shape == (None, 31, 31, 20)


@pytest.mark.parametrize(
    "last", ["sepconv 10 k3 softmax", "dwconv k3 bn softmax", "deconv 10 k2 s2 softmax", "conv 10 k1 softmax"]
)
def test_every_convolution_reports_its_trailing_softmax(last: str) -> None:
    """W401 and the trainer's head read a layer's activations; a convolution's softmax must be seen (else the
    trainer would put a loss on logits on top of probabilities)."""
    from netdsl.trainer.head import find_head

    net = netdsl.parse(f"input 8x8x10\n{last}")
    assert net.layers[-1].output_activation() == "softmax"
    assert find_head(net, analyze(net.source)).activation == "softmax"
    assert [w.code for w in analyze(f"input 8x8x10\n{last}\nconv 4 k1").warnings] == ["W401"]


def test_a_square_sequence_warns_only_as_the_networks_input() -> None:
    """W408 is for `input 28x28` (an image without its channel axis); a (128, 128) sequence made inside a 1-D
    network (128 steps, 128 filters) is what was meant, and each of its convolutions warned before."""
    inside = analyze("input 128x1\nconv 128 k8\nconv 128 k5\nconv 128 k3\ngap")
    assert [w.code for w in inside.warnings] == []
    raw = analyze("input 28x28\nconv 28 k3\nconv 28 k3\ngmp")
    assert [(w.code, w.span.line) for w in raw.warnings] == [("W408", 2)]
