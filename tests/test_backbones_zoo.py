"""`pretrained` with the zoo's families as backbones (netdsl/backbones/*.json), at input sizes other than
the 224x224 and 225x225 their data was generated at: the analyzer (no Keras) against the same model
written by hand here, keras.applications' backbone then a head, in a fresh session, so that every layer's
name (the head's too: InceptionV3's own automatic names push its softmax to `activation_94`), class,
output shape, counts and inputs agree, and so do the totals and the output shape."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.backbones import APPLICATIONS
from netdsl.verify import keras_layers

pytestmark = pytest.mark.keras

ADDED = ["resnet101", "resnet152", "resnet50v2", "mobilenet", "mobilenetv3small", "densenet121",
         "efficientnetb0", "xception", "inceptionv3"]  # fmt: skip
"""The backbones added with the zoo (resnet50, mobilenetv2 and vgg16 are tested in test_pretrained.py)."""
SIZES = [(197, 197), (100, 150)]
DEEPER = ["vgg19", "resnet101v2", "resnet152v2", "densenet169", "densenet201", "mobilenetv3large",
          *(f"efficientnetb{i}" for i in range(1, 8))]  # fmt: skip
"""The deeper and wider members of those families, added later: each at one size that is odd and not square
(121x97: both odd at the input, their halvings' parities differ on the two axes, so Keras's correct_pad
differs too), since their blocks are the ones their family's first member is tested with at SIZES."""
OWN_CLASSES = ["inceptionresnetv2", "convnexttiny", "efficientnetv2b0", "nasnetmobile"]
"""Backbones with keras.applications' own classes (CustomScaleLayer, LayerScale), Sequential layers and `x + y`
operations (ConvNeXt), or cells that read the cell before the last (NASNet): at 121x97 as DEEPER, for CI time
(InceptionResNetV2 and NASNetMobile have 779 and 768 layers)."""


def spec(name: str, size: tuple[int, int]) -> netdsl.Network:
    return netdsl.parse(
        f"input {size[0]}x{size[1]}x3\npretrained {name} weights=none freeze<20\ngap\ndense 10 softmax\n"
    )


def keras_model(keras, name: str, size: tuple[int, int]):
    """keras.applications' backbone on an input, global average pooling, Dense(10), softmax: written without
    netdsl, in a fresh session (whose automatic names netdsl's rows carry)."""
    keras.backend.clear_session()
    inputs = keras.Input((*size, 3))
    function = getattr(keras.applications, APPLICATIONS[name].function)
    x = function(include_top=False, weights=None, input_tensor=inputs).output
    x = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, keras.layers.Activation("softmax")(x))


CASES = [(name, SIZES) for name in ADDED] + [(name, [(121, 97)]) for name in DEEPER + OWN_CLASSES]


@pytest.mark.parametrize(("name", "sizes"), CASES, ids=[name for name, _ in CASES])
def test_backbone_equals_keras_applications_at_odd_sizes(name: str, sizes: list[tuple[int, int]]) -> None:
    keras = pytest.importorskip("keras")
    for size in sizes:
        report = netdsl.analyze(spec(name, size))
        model = keras_model(keras, name, size)
        theirs = keras_layers(model)
        assert len(report.layers) == len(theirs), size
        for ours, row in zip(report.layers, theirs):
            assert (ours.name, ours.type, ours.output_shape, ours.params, ours.inputs) == (
                row.name, row.type, row.output_shape, row.params, row.inputs
            ), (size, ours.name)  # fmt: skip
        frozen = sum(row.params for row in theirs[:20]) + sum(row.non_trainable_params for row in theirs[20:])
        assert (report.total_params, report.non_trainable_params) == (model.count_params(), frozen), size
        assert report.output_shape == tuple(model.output.shape)


def test_netdsl_check_prints_the_backbone_s_totals(runner, write_spec) -> None:
    """The CLI (`netdsl check`) on one of them, at an odd size: Keras's totals, without loading Keras."""
    from netdsl.cli import main

    path = write_spec("input 197x197x3\npretrained mobilenetv3small weights=none\ngap\ndense 10 softmax\n", "t.net")
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    report = netdsl.analyze(netdsl.load(path))
    assert f"Total params: {report.total_params:,}" in result.output
    assert "activation_18" in result.output  # the head's softmax, after the backbone's 18 automatic names


EXPECTED = {  # mode -> what preprocess_input makes of the pixel (R, G, B) = (255, 128, 0)
    "caffe": [0 - 103.939, 128 - 116.779, 255 - 123.68],  # BGR, ImageNet means subtracted
    "tf": [1.0, 128 / 127.5 - 1, -1.0],  # -1..1
    "torch": [(1 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0 - 0.406) / 0.225],  # 0..1, then standardised
    "built-in": [255.0, 128.0, 0.0],  # unchanged: the model rescales itself (a Rescaling layer first)
}


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_every_backbone_s_preprocessing_is_keras_s_own(name: str) -> None:
    """The mode netdsl states for each backbone is what its keras.applications.<module>.preprocess_input does."""
    keras = pytest.importorskip("keras")
    import numpy as np

    app = APPLICATIONS[name]
    pixel = np.array([[[[255.0, 128.0, 0.0]]]], dtype="float32")
    out = getattr(keras.applications, app.module).preprocess_input(pixel.copy())
    assert np.allclose(np.asarray(out).ravel(), EXPECTED[app.preprocessing], atol=1e-4), (name, np.asarray(out))


def test_check_verify_with_merges_after_mobilenetv3s_operations() -> None:
    """netdsl's own compiler agrees too (`check --verify`): the head's Add and Multiply come after the
    backbone's `add`/`multiply` operations took their automatic names, so they are `add_9`, `multiply_9`."""
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    net = netdsl.parse("input 100x150x3\npretrained mobilenetv3small weights=none freeze<30\ngap\n"
                       "add [ dense 8 | dense 8 ]\nmul [ dense 8 ]\ndense 3 softmax\n")  # fmt: skip
    verification = netdsl.verify(net)
    assert verification.ok, [d.message for d in verification.differences[:5]]
    names = [row.name for row in verification.report.layers]
    assert "add_9" in names and "multiply_9" in names


def test_check_verify_after_convnext_s_sequentials_and_operations() -> None:
    """netdsl's own compiler agrees with the analyzer on a head after ConvNeXtTiny: its Sequential stem and
    downsamplings take no automatic names, its eighteen `x + y` operations take `add` to `add_17`."""
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    net = netdsl.parse("input 96x120x3\npretrained convnexttiny weights=none freeze<30\ngap\n"
                       "add [ dense 8 | dense 8 ]\ndense 3 softmax\n")  # fmt: skip
    verification = netdsl.verify(net)
    assert verification.ok, [d.message for d in verification.differences[:5]]
    assert [row.name for row in verification.report.layers[-3:]] == ["add_18", "dense_2", "activation"]
