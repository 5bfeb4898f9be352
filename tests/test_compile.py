"""The Keras compiler and `netdsl check --verify`: the built model, its source map, and the comparison."""

from __future__ import annotations

import json
import sys

import pytest

import netdsl
from netdsl.cli import main
from netdsl.compile import KerasUnavailable, compile_network
from netdsl.verify import compare
from tests.conftest import SPECS

pytestmark = pytest.mark.keras
keras = pytest.importorskip("keras")

SEED_SPECS = ("simple", "convnet", "convnet2", "resnet")


def floor_same_padding(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """A deliberately wrong shape rule ('same' padding rounding down), for proving the checks catch it."""
    if padding == "same":
        return size // stride
    effective = (kernel - 1) * dilation + 1
    return (size - effective) // stride + 1 if size >= effective else 0


def test_each_keras_layer_traces_back_to_its_spec_line() -> None:
    net = netdsl.load(SPECS / "resnet.net")
    compiled = compile_network(net)
    lines = {name: compiled.span(name).line for name in (layer.name for layer in compiled.model.layers)}
    # input on line 6, the stem conv on 7, then per width: ConvLayer on 9, two ResLayers on 10 and 11.
    assert lines["input_layer"] == 6
    assert (lines["conv2d"], lines["activation"]) == (7, 7)
    assert (lines["conv2d_1"], lines["batch_normalization"]) == (9, 9)
    assert (lines["conv2d_2"], lines["add"]) == (10, 10)
    assert (lines["conv2d_3"], lines["add_1"]) == (11, 11)
    assert (lines["global_max_pooling2d"], lines["dropout"], lines["dense"]) == (13, 14, 15)
    report = netdsl.analyze(net)
    assert [row.line for row in report.layers] == [lines[row.name] for row in report.layers]


def test_only_public_keras_layers_and_no_lambda() -> None:
    model = netdsl.build_model(netdsl.load(SPECS / "resnet.net"))
    for layer in model.layers:
        assert type(layer).__name__ != "Lambda"
        assert getattr(keras.layers, type(layer).__name__) is type(layer)


def test_saved_model_reloads_in_safe_mode(tmp_path) -> None:
    model = netdsl.build_model(netdsl.load(SPECS / "resnet.net"))
    path = tmp_path / "resnet.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]
    assert reloaded.count_params() == 771_690


def test_compile_reports_a_bad_spec_with_netdsl_s_message_not_a_keras_traceback() -> None:
    net = netdsl.parse("input 8x8x3\nres 4\n")
    with pytest.raises(netdsl.NetdslError) as caught:
        netdsl.build_model(net)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line) == ("E304", 2)


@pytest.mark.parametrize("name", SEED_SPECS)
def test_verify_agrees_on_the_seed_specs(name: str) -> None:
    verification = netdsl.verify(SPECS / f"{name}.net")
    assert verification.ok, verification.differences
    assert verification.layers == len(verification.report.layers)
    assert verification.backend == keras.backend.backend()


def test_compare_finds_every_kind_of_difference() -> None:
    net = netdsl.parse("input 9x9x3\nconv 4 k3 s2 relu bn\ngmp\ndense 2")
    model = netdsl.build_model(net)
    report = netdsl.analyze(net)
    rows = list(report.layers)
    rows[1] = rows[1].model_copy(update={"output_shape": (None, 4, 4, 4), "params": 1})
    rows[3] = rows[3].model_copy(update={"name": "batchnorm", "non_trainable_params": 0})
    bad = report.model_copy(update={"layers": rows[:-1], "total_params": 7})
    messages = [d.message for d in compare(bad, model)]
    assert (
        "conv2d (Conv2D): output shape differs: netdsl says (None, 4, 4, 4), Keras builds (None, 5, 5, 4)" in messages
    )
    assert "conv2d (Conv2D): parameter count differs: netdsl says 1, Keras builds 112" in messages
    assert (
        "batchnorm (BatchNormalization): layer name differs: netdsl says batchnorm, Keras builds batch_normalization"
        in messages
    )
    assert any(m.startswith("batchnorm (BatchNormalization): non-trainable parameter count differs") for m in messages)
    assert "the model: the number of layers differs: netdsl says 5, Keras builds 6 (unmatched: dense)" in messages
    assert any(m.startswith("the model: total parameters differs: netdsl says 7") for m in messages)


def test_check_verify_prints_agreement(runner) -> None:
    result = runner.invoke(main, ["check", "--verify", str(SPECS / "convnet.net")])
    assert result.exit_code == 0, result.output
    assert f"verified against Keras {keras.__version__}" in result.output
    assert "10 layers: every output shape and parameter count agrees" in result.output


def test_check_verify_json_carries_the_verification(runner) -> None:
    result = runner.invoke(main, ["check", "--json", "--verify", str(SPECS / "simple.net")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verify"]["ok"] is True and data["verify"]["differences"] == []
    assert data["total_params"] == 123_330


def test_check_verify_catches_a_broken_shape_rule(runner, monkeypatch, write_spec) -> None:
    """'same' padding rounding down instead of up: shapes go wrong on odd sizes, and verify says where."""
    monkeypatch.setattr("netdsl.layers.shapes.conv_output_length", floor_same_padding)
    spec = write_spec("input 9x9x3\nconv 4 k3 s2 relu\ngmp\ndense 2\n")
    result = runner.invoke(main, ["check", "--verify", str(spec)])
    assert result.exit_code == 1
    assert "found 2 difference(s)" in result.stdout
    assert (
        f"{spec}:2:1: error[E601]: conv2d (Conv2D): output shape differs: netdsl says (None, 4, 4, 4), "
        "Keras builds (None, 5, 5, 4)"
    ) in result.stderr
    assert "activation (Activation): output shape differs" in result.stderr
    assert "help: the analyzer is wrong here; please report this spec as a netdsl bug" in result.stderr


def test_check_verify_reports_a_model_keras_refuses(runner, monkeypatch, write_spec) -> None:
    """If the analyzer accepted a spec Keras cannot build, verify says so instead of crashing."""
    monkeypatch.setattr("netdsl.layers.merge.AddOp.output_shape", lambda self, *shapes: shapes[0])
    spec = write_spec("input 8x8x3\nres 4\n")
    result = runner.invoke(main, ["check", "--verify", str(spec)])
    assert result.exit_code == 1
    assert "error[E601]: the analyzer accepts this spec but Keras cannot build it: Inputs have incompatible shapes" in (
        result.stderr
    )


def test_check_verify_without_keras_exits_2_with_the_install_command(runner, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now raises ImportError
    with pytest.raises(KerasUnavailable):
        netdsl.verify(SPECS / "simple.net")
    result = runner.invoke(main, ["check", "--verify", str(SPECS / "simple.net")])
    assert result.exit_code == 2
    assert "error: --verify builds the model with Keras: Keras is not installed" in result.stderr
    assert "pip install 'netdsl[keras]'" in result.stderr


def test_check_verify_still_reports_a_bad_spec_as_such(runner, write_spec) -> None:
    spec = write_spec("input 4x4x3\nconv 8 k5 valid\n")
    result = runner.invoke(main, ["check", "--verify", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}:2:1: error[E303]" in result.stderr
    assert "verified" not in result.stdout


# ---------------------------------------------------------------- analyzer bugs found against Keras


def test_residual_add_broadcasts_a_one_channel_shortcut_like_keras() -> None:
    """Found while probing Keras for the invalid-program strategy: its Add broadcasts size-1 axes, so
    `res 4` on a 1-channel input builds (None, 8, 8, 4); the analyzer used to reject it with E304."""
    net = netdsl.parse("input 8x8x1\nres 4\ngap")
    report = netdsl.analyze(net)
    add = next(row for row in report.layers if row.type == "Add")
    assert add.output_shape == (None, 8, 8, 4)
    (warning,) = report.warnings
    assert warning.code == "W404" and warning.span.line == 2
    assert warning.message.startswith("the residual add broadcasts (None, 8, 8, 1) (the shortcut) and (None, 8, 8, 4)")
    assert netdsl.verify(net).ok
    # a branch of one filter broadcasts too; two different sizes above 1 still cannot be added
    assert netdsl.analyze(netdsl.parse("input 8x8x3\nres 1")).output_shape == (None, 8, 8, 3)
    with pytest.raises(netdsl.NetdslError) as caught:
        netdsl.analyze(netdsl.parse("input 8x8x3\nres 2"))
    assert caught.value.diagnostics[0].code == "E304"


def test_check_verify_refuses_a_model_larger_than_memory_before_keras_allocates_it(runner, write_spec) -> None:
    spec = write_spec("input 1000000\ndense 1000000\n")  # 10^12 float32 parameters: 4 TB
    result = runner.invoke(main, ["check", "--verify", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}:2:1: error[E306]: cannot build the model" in result.stderr
    assert "verified" not in result.stdout


def test_deep_networks_build_past_the_default_recursion_limit() -> None:
    import sys

    net = netdsl.parse("input 8\nrepeat 1200 [dense 4]\n")
    limit = sys.getrecursionlimit()
    model = netdsl.build_model(net)
    assert len(model.layers) == 1201
    assert sys.getrecursionlimit() == limit  # restored after the build


def test_too_deep_for_keras_is_a_located_refusal(monkeypatch) -> None:
    import netdsl.compile

    monkeypatch.setattr(netdsl.compile, "KERAS_DEPTH_LIMIT", 100)
    net = netdsl.parse("input 8\nrepeat 50 [dense 4 relu]\n", file="deep.net")
    for check in (True, False):  # refused by the analysis up front, or by the real count of built layers
        with pytest.raises(netdsl.NetdslError) as info:
            netdsl.build_model(net, check=check)
        assert (
            "deep.net:1:1: error[E207]: the network has 101 Keras layers; netdsl builds Keras models of at most 100"
            in str(info.value)
        )


def test_fused_activations_and_bn_without_scale_reach_the_keras_configs() -> None:
    """`conv 8 activation=relu` is one Conv2D with its activation (VGG16's form), `dense 10
    activation=softmax` one Dense (keras.applications' classifiers), `bn scale=0` a BatchNormalization
    without gamma (InceptionV3's); the layer table checks their counts, this their configs."""
    net = netdsl.parse("input 8x8x3\nconv 8 activation=relu\nbn scale=0\ngap\ndense 10 activation=softmax")
    model = netdsl.build_model(net)
    conv, bn, dense = (model.get_layer(name) for name in ("conv2d", "batch_normalization", "dense"))
    assert conv.get_config()["activation"] == "relu" and dense.get_config()["activation"] == "softmax"
    assert bn.get_config()["scale"] is False and [w.name for w in bn.trainable_weights] == ["beta"]
    assert netdsl.parse("input 8\ndense 10 activation=softmax").layers[-1].output_activation() == "softmax"
    assert "activation='relu'" in netdsl.emit(net)
