"""`pretrained`: backbones analyzed without TensorFlow, freezing as the seed does it, and the errors a user can hit.

The expected counts are Keras's own (keras.applications.ResNet50(include_top=False) plus the seed's head);
the tests marked `keras` rebuild the models and compare every layer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netdsl
from netdsl.backbones import APPLICATIONS, load, raw
from netdsl.cli import main
from netdsl.diagnostics import NetdslError
from netdsl.transfer import freezing
from tests.helpers import failure

ROOT = Path(__file__).resolve().parent.parent
HEAD = "gap\ndense 1024 relu\ndense 1 sigmoid\n"


def seed(freeze: str = "freeze<142", size: str = "224x224x3", weights: str = "none") -> netdsl.Network:
    """The seed's ResNet50 model: the backbone, global average pooling, dense 1024 relu, dense 1 sigmoid."""
    return netdsl.parse(f"input {size}\npretrained resnet50 weights={weights} {freeze}\n{HEAD}")


# ---------------------------------------------------------------- counts and shapes, without Keras


def test_seed_model_counts_before_and_after_freeze_142() -> None:
    everything = netdsl.analyze(seed("freeze=none"))
    assert everything.total_params == 25_686_913
    # Only BatchNorm's moving statistics (2 x 26,560) stay out of training when nothing is frozen.
    assert everything.non_trainable_params == 53_120
    assert len(everything.layers) == 180  # input + 174 backbone layers + gap, dense, relu, dense, sigmoid

    phase_one = netdsl.analyze(seed("freeze=all"))
    assert phase_one.trainable_params == 2_048 * 1_024 + 1_024 + 1_024 + 1  # the head alone
    assert phase_one.total_params == everything.total_params

    phase_two = netdsl.analyze(seed("freeze<142"))
    assert (phase_two.trainable_params, phase_two.non_trainable_params) == (17_075_201, 8_611_712)
    frozen = [row.name for row in phase_two.layers if row.params and not row.trainable_params]
    assert frozen[-1] == "conv4_block6_3_bn" and "conv5_block1_1_conv" not in frozen


def test_freeze_by_layer_name_counts_like_the_index() -> None:
    by_name = netdsl.analyze(seed('freeze<"conv5_block1_1_conv"'))
    assert freezing(seed('freeze<"conv5_block1_1_conv"')).below == 143  # type: ignore[union-attr]
    assert by_name.layers[142].name == "conv4_block6_out"  # what the seed's 142 points at today
    assert by_name.trainable_params == netdsl.analyze(seed("freeze<142")).trainable_params


def test_frozen_and_trainable_words() -> None:
    assert freezing(seed("frozen")) == freezing(seed("freeze=all"))
    assert freezing(seed("trainable")).below == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("size", "backbone_output"),
    [("224x224x3", (7, 7, 2048)), ("197x197x3", (7, 7, 2048)), ("100x150x3", (4, 5, 2048)), ("32x32x3", (1, 1, 2048))],
)
def test_resnet50_output_shape_for_any_input_size(size: str, backbone_output: tuple[int, ...]) -> None:
    report = netdsl.analyze(seed(size=size))
    assert report.layers[174].name == "conv5_block3_out"
    assert report.layers[174].output_shape == (None, *backbone_output)


def test_mobilenetv2_pads_depend_on_the_input_size() -> None:
    """correct_pad: one pixel less before the data on an even side, so odd and even inputs both work."""
    even = netdsl.analyze(netdsl.parse("input 224x224x3\npretrained mobilenetv2 weights=none\ngap"))
    odd = netdsl.analyze(netdsl.parse("input 225x199x3\npretrained mobilenetv2 weights=none\ngap"))
    pad = {row.name: row for row in even.layers}["block_1_pad"]
    assert pad.output_shape == (None, 113, 113, 96)  # 112 + (0, 1)
    assert {row.name: row for row in odd.layers}["block_1_pad"].output_shape == (
        None,
        115,
        101,
        96,
    )  # 113 + (1, 1), 100 + (0, 1)
    assert even.layers[-2].output_shape == (None, 7, 7, 1280)
    assert even.total_params == 2_257_984  # keras.applications.MobileNetV2(include_top=False).count_params()


def test_vgg16_counts() -> None:
    report = netdsl.analyze(
        netdsl.parse("input 224x224x3\npretrained vgg16 weights=none freeze=all\ngap\ndense 10 softmax")
    )
    assert report.total_params == 14_714_688 + 512 * 10 + 10
    assert report.trainable_params == 512 * 10 + 10


def test_backbone_data_covers_every_application() -> None:
    for name in APPLICATIONS:
        backbone = load(name)
        assert backbone.layers[0].inbound == ("input",)
        assert len(set(backbone.names)) == len(backbone.names)


def test_analysis_of_a_backbone_never_imports_tensorflow() -> None:
    code = (
        "import sys, netdsl\n"
        "r = netdsl.analyze(netdsl.parse('input 224x224x3\\npretrained resnet50 freeze<142\\ngap\\ndense 2 softmax'))\n"
        "assert r.total_params == 23591810, r.total_params\n"
        "assert not {'tensorflow', 'keras'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- errors


def test_input_too_small_for_the_backbone() -> None:
    err = failure("input 16x16x3\npretrained resnet50 weights=none\ngap")
    assert err.diagnostics[0].code == "E310"
    assert "at least 32x32 (Keras's minimum for ResNet50), got 16x16" in err.diagnostics[0].message
    assert err.diagnostics[0].span.line == 2  # type: ignore[union-attr]


@pytest.mark.keras
@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_the_smallest_input_is_keras_s(name: str) -> None:
    """E310 below each backbone's smallest input, exactly where keras.applications refuses it too (it raises
    before building anything, so this is cheap). MobileNetV3 was taken to accept any size; Keras wants 32."""
    keras = pytest.importorskip("keras")
    app = APPLICATIONS[name]
    small = app.min_size - 1
    with pytest.raises(ValueError, match=r"at least|should not be smaller|too small|must be"):
        getattr(keras.applications, app.function)(include_top=False, weights=None, input_shape=(small, small, 3))
    err = failure(f"input {small}x{small}x3\npretrained {name} weights=none\ngap")
    assert err.diagnostics[0].code == "E310"
    assert f"at least {app.min_size}x{app.min_size}" in err.diagnostics[0].message
    netdsl.analyze(netdsl.parse(f"input {app.min_size}x{app.min_size}x3\npretrained {name} weights=none\ngap"))


def test_pretrained_weights_need_three_channels() -> None:
    err = failure("input 64x64x1\npretrained vgg16 weights=imagenet\ngap")
    assert err.diagnostics[0].code == "E310" and "expect 3 (RGB) channels, got 1" in err.diagnostics[0].message
    netdsl.analyze(netdsl.parse("input 64x64x1\npretrained vgg16 weights=none\ngap"))  # from scratch: any channels


def test_freeze_index_beyond_the_layer_count() -> None:
    err = failure("input 224x224x3\npretrained resnet50 weights=none freeze<181\n" + HEAD)
    assert err.diagnostics[0].code == "E311"
    assert err.diagnostics[0].message == (
        "pretrained resnet50 freeze<181: the model has only 180 layers (model.layers[0..179])"
    )
    netdsl.analyze(netdsl.parse("input 224x224x3\npretrained resnet50 weights=none freeze<180\n" + HEAD))


def test_freeze_unknown_layer_name() -> None:
    err = failure('input 224x224x3\npretrained resnet50 freeze<"conv5_block1_1_cnv"\ngap')
    assert err.diagnostics[0].code == "E311"
    assert err.diagnostics[0].help == "did you mean 'conv5_block1_1_conv'?"


def test_pretrained_must_be_the_first_layer() -> None:
    err = failure("input 224x224x3\nconv 3\npretrained resnet50\ngap")
    assert err.diagnostics[0].code == "E312" and err.diagnostics[0].span.line == 3  # type: ignore[union-attr]


def test_unknown_backbone_suggests_a_known_one() -> None:
    with pytest.raises(NetdslError) as caught:
        netdsl.parse("input 224x224x3\npretrained resnet05\ngap")
    assert caught.value.diagnostics[0].code == "E202"
    assert caught.value.diagnostics[0].help == "did you mean 'resnet50'?"


def test_missing_backbone_and_negative_freeze() -> None:
    with pytest.raises(NetdslError) as caught:
        netdsl.parse("input 224x224x3\npretrained resnet50 freeze<-1\ngap")
    assert [d.message for d in caught.value.diagnostics] == [
        "pretrained: freeze must be a layer index >= 0, all, none or a layer name, got -1"
    ]
    for text, message in (
        ("pretrained freeze=all", "pretrained: missing backbone"),
        ('pretrained vgg16 run="runs/x"', "pretrained: give a backbone or run=, not both"),
        (
            'pretrained run="runs/x" weights=none',
            'pretrained run="runs/x": takes no weights= (the run\'s own trained weights are loaded)',
        ),
    ):
        found = failure(f"input 224x224x3\n{text}\ngap").diagnostics[0]
        assert (found.code, found.message, found.span.line) == ("E203" if "backbone" in message else "E202", message, 2)  # type: ignore[union-attr]


def test_cli_check_reports_errors_with_exit_1(check_spec) -> None:
    path, result = check_spec("input 16x16x3\npretrained resnet50 weights=none\ngap\n")
    assert result.exit_code == 1
    assert f"{path}:2:1: error[E310]: pretrained resnet50: the input must be at least 32x32" in result.output
    assert "help: use `input 32x32x3` or larger" in result.output


def test_cli_check_json_totals(runner) -> None:
    result = runner.invoke(main, ["check", str(ROOT / "specs" / "resnet50_dogscats.net"), "--json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert (data["total_params"], data["non_trainable_params"]) == (25_686_913, 25_686_913 - 2_099_201)
    assert data["layers"][-5]["name"] == "global_average_pooling2d"


# ---------------------------------------------------------------- against Keras (builds real models)


@pytest.mark.keras
@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_backbone_data_is_what_keras_builds(name: str) -> None:
    """The JSON files are current: regenerating them from the installed Keras gives the same layers."""
    keras = pytest.importorskip("keras")
    from netdsl.backbones.generate import generate

    assert generate(keras, name)["layers"] == raw(name)["layers"], "run: python -m netdsl.backbones.generate"


@pytest.mark.keras
@pytest.mark.parametrize(
    ("size", "freeze"), [("224x224x3", "freeze<142"), ("197x197x3", "freeze=all"), ("100x150x3", "freeze=none")]
)
def test_resnet50_equals_keras(size: str, freeze: str) -> None:
    pytest.importorskip("keras")
    verification = netdsl.verify(seed(freeze, size))
    assert verification.ok, [d.message for d in verification.differences]
    assert verification.layers == 180


@pytest.mark.keras
def test_compiled_model_is_the_backbone_then_the_head_with_the_freeze() -> None:
    pytest.importorskip("keras")
    model = netdsl.build_model(seed("freeze<142", "64x64x3"))
    assert [layer.name for layer in model.layers[:3]] == ["input_layer", "conv1_pad", "conv1_conv"]
    assert [layer.trainable for layer in model.layers[141:144]] == [False, True, True]
    assert model.layers[142].name == "conv4_block6_out"
    bn = model.get_layer("conv4_block6_3_bn")
    assert not bn.trainable  # and so, in Keras 3, it normalizes with its moving statistics even in fit()


@pytest.mark.keras
@pytest.mark.parametrize("name", ["mobilenetv2", "vgg16"])
def test_other_backbones_equal_keras_at_odd_sizes(name: str) -> None:
    pytest.importorskip("keras")
    net = netdsl.parse(f"input 101x77x3\npretrained {name} weights=none freeze<10\ngap\ndense 3 softmax")
    verification = netdsl.verify(net)
    assert verification.ok, [d.message for d in verification.differences]


@pytest.mark.keras
def test_imagenet_weights_offline_is_one_clear_error(monkeypatch) -> None:
    pytest.importorskip("keras")
    from keras.src.utils import file_utils

    def offline(*args: object, **kwargs: object) -> None:  # what get_file raises without a network
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(NetdslError) as caught:
        netdsl.build_model(netdsl.parse("input 96x96x3\npretrained mobilenetv2 weights=imagenet\ngap"))
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "E510"
    assert diagnostic.message == (
        "pretrained mobilenetv2: cannot download the ImageNet weights "
        "(mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5)"
    )
    assert 'weights="path/to/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"' in diagnostic.help
    assert "weights=none" in diagnostic.help
    assert "Name or service not known" in diagnostic.notes[0]


@pytest.mark.keras
def test_weights_file_right_wrong_and_missing(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    path = tmp_path / "mobilenetv2.weights.h5"
    source.save_weights(path)

    model = netdsl.build_model(netdsl.parse(f'input 96x96x3\npretrained mobilenetv2 weights="{path}"\ngap'))
    expected = source.get_layer("Conv1").get_weights()[0]
    assert (model.get_layer("Conv1").get_weights()[0] == expected).all()

    with pytest.raises(NetdslError) as caught:
        netdsl.build_model(netdsl.parse(f'input 96x96x3\npretrained vgg16 weights="{path}"\ngap'))
    assert caught.value.diagnostics[0].code == "E511"
    assert f'the weights file "{path}" does not fit VGG16 (include_top=False)' in caught.value.diagnostics[0].message

    with pytest.raises(NetdslError) as caught:
        netdsl.build_model(netdsl.parse('input 96x96x3\npretrained vgg16 weights="nowhere.h5"\ngap'))
    assert caught.value.diagnostics[0].message == 'pretrained vgg16: weights file "nowhere.h5" does not exist'


@pytest.mark.keras
def test_emitted_source_builds_the_same_flat_model_with_the_freeze() -> None:
    pytest.importorskip("keras")
    net = netdsl.parse("input 40x40x3\npretrained vgg16 weights=none freeze<15\ngap\ndense 2 softmax")
    source = netdsl.emit(net)
    assert "keras.applications.VGG16(include_top=False, weights=None, input_tensor=tensor)" in source
    assert "for layer in model.layers[:15]:  # pretrained vgg16 freeze<15" in source
    namespace: dict = {}
    exec(compile(source, "emitted.py", "exec"), namespace)
    model = namespace["build_model"]()
    report = netdsl.analyze(net)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (len(model.layers), model.count_params(), trainable) == (
        len(report.layers), report.total_params, report.trainable_params,
    )  # fmt: skip


@pytest.mark.keras
def test_check_verify_of_the_dogscats_spec_needs_no_download(runner) -> None:
    """--verify compares the architecture, so weights=imagenet is built with weights=None: no network needed."""
    pytest.importorskip("keras")
    import json

    result = runner.invoke(main, ["check", str(ROOT / "specs" / "resnet50_dogscats.net"), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    verify = json.loads(result.stdout)["verify"]
    assert (verify["ok"], verify["layers"]) == (True, 180)
