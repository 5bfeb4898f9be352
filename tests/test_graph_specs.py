"""The graph specs in specs/ against Keras models written by hand here, without netdsl's compiler: every
layer's name, class, output shape, inputs and counts, in `model.layers` order, and the totals."""

from __future__ import annotations

from pathlib import Path

import pytest

import netdsl
from netdsl.verify import keras_layers

pytestmark = pytest.mark.keras
SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    return keras


def fresh(keras):
    """A fresh Keras session, so that automatic names start again at conv2d, conv2d_1, ..."""
    keras.backend.clear_session()
    return keras.layers


def conv_bn(L, x, filters, kernel, strides=1, relu=True):
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation("relu")(x) if relu else x


def resnet20(keras):
    L = fresh(keras)
    inputs = keras.Input((32, 32, 3))
    x = conv_bn(L, inputs, 16, 3)
    for filters in (16, 32, 64):
        for block in range(3):
            strides = 2 if filters > 16 and block == 0 else 1
            y = conv_bn(L, x, filters, 3, strides)
            y = conv_bn(L, y, filters, 3, relu=False)
            if strides == 1:
                x = L.Activation("relu")(L.Add()([x, y]))
            else:
                shortcut = conv_bn(L, x, filters, 1, strides, relu=False)
                x = L.Activation("relu")(L.Add()([y, shortcut]))
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Activation("softmax")(L.Dense(10)(x))
    return keras.Model(inputs, outputs)


def densenet_bc(keras):
    L = fresh(keras)

    def dense_layer(x, k=12):
        y = L.Activation("relu")(L.BatchNormalization()(x))
        y = L.Conv2D(4 * k, 1, padding="same", use_bias=False)(y)
        y = L.Activation("relu")(L.BatchNormalization()(y))
        y = L.Conv2D(k, 3, padding="same", use_bias=False)(y)
        return L.Concatenate()([x, y])

    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(24, 3, padding="same", use_bias=False)(inputs)
    for channels in (48, 60):
        for _ in range(6):
            x = dense_layer(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
        x = L.AveragePooling2D(2)(L.Conv2D(channels, 1, padding="same", use_bias=False)(x))
    for _ in range(6):
        x = dense_layer(x)
    x = L.GlobalAveragePooling2D()(L.Activation("relu")(L.BatchNormalization()(x)))
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(10)(x)))


def inception(keras):
    L = fresh(keras)

    def conv(x, filters, kernel, strides=1):
        return L.Activation("relu")(L.Conv2D(filters, kernel, strides=strides, padding="same")(x))

    def module(x, a, b1, b2, c1, c2, p):
        one = conv(x, a, 1)
        three = conv(conv(x, b1, 1), b2, 3)
        five = conv(conv(x, c1, 1), c2, 5)
        pool = conv(L.MaxPooling2D(3, strides=1, padding="same")(x), p, 1)
        return L.Concatenate()([one, three, five, pool])

    inputs = keras.Input((64, 64, 3))
    x = L.MaxPooling2D(3, strides=2, padding="same")(conv(inputs, 64, 7, 2))
    x = L.MaxPooling2D(3, strides=2, padding="same")(conv(conv(x, 64, 1), 192, 3))
    x = module(x, 64, 96, 128, 16, 32, 32)
    x = module(x, 128, 128, 192, 32, 96, 64)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = module(x, 192, 96, 208, 16, 48, 64)
    x = L.Dropout(0.4)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(10)(x)))


def unet(keras):
    L = fresh(keras)

    def twice(x, filters):
        x = L.Conv2D(filters, 3, padding="same")(x)
        x = L.Activation("relu")(x)
        x = L.Conv2D(filters, 3, padding="same")(x)
        return L.Activation("relu")(x)

    inputs = keras.Input((128, 128, 1))
    d1 = twice(inputs, 16)
    x = L.MaxPooling2D(2)(d1)
    d2 = twice(x, 32)
    x = L.MaxPooling2D(2)(d2)
    d3 = twice(x, 64)
    x = L.MaxPooling2D(2)(d3)
    d4 = twice(x, 128)
    x = L.MaxPooling2D(2)(d4)
    x = twice(x, 256)
    x = L.Conv2DTranspose(128, 2, strides=2, padding="same")(x)
    x = L.Concatenate()([x, d4])
    x = twice(x, 128)
    x = L.Conv2DTranspose(64, 2, strides=2, padding="same")(x)
    x = L.Concatenate()([x, d3])
    x = twice(x, 64)
    x = L.Conv2DTranspose(32, 2, strides=2, padding="same")(x)
    x = L.Concatenate()([x, d2])
    x = twice(x, 32)
    x = L.Conv2DTranspose(16, 2, strides=2, padding="same")(x)
    x = L.Concatenate()([x, d1])
    x = twice(x, 16)
    x = L.Conv2D(2, 1, padding="same")(x)
    outputs = L.Activation("softmax")(x)
    return keras.Model(inputs, outputs)


def two_inputs(keras):
    L = fresh(keras)
    image = keras.Input((32, 32, 3))
    meta = keras.Input((8,))
    features = L.GlobalAveragePooling2D()(L.Activation("relu")(L.Conv2D(16, 3, padding="same")(image)))
    x = L.Activation("relu")(L.Dense(16)(meta))
    x = L.Concatenate()([x, features])
    label = L.Activation("softmax")(L.Dense(10)(x))
    score = L.Dense(1)(features)
    return keras.Model([image, meta], [label, score])


TWO_INPUTS = """input 32x32x3 as image
input 8 as meta
use image
conv 16 k3 relu; gap as features
use meta
dense 16 relu
cat features
dense 10 softmax as label
use features
dense 1 as score
output label score
"""

CASES = {
    "resnet20": (lambda: netdsl.load(SPECS / "resnet20.net"), resnet20, 274_042, 1_568),
    "densenet_bc": (lambda: netdsl.load(SPECS / "densenet_bc.net"), densenet_bc, 181_210, 5_088),
    "inception": (lambda: netdsl.load(SPECS / "inception.net"), inception, 1_058_154, 0),
    "unet": (lambda: netdsl.load(SPECS / "unet.net"), unet, 1_940_834, 0),
    "two_inputs": (lambda: netdsl.parse(TWO_INPUTS), two_inputs, None, 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_spec_equals_a_hand_written_keras_model(keras, case: str) -> None:
    load, build, total, non_trainable = CASES[case]
    report = netdsl.analyze(load())
    model = build(keras)
    theirs = keras_layers(model)
    assert len(report.layers) == len(theirs)
    for ours, keras_row in zip(report.layers, theirs):
        assert (ours.name, ours.type, ours.output_shape, ours.params, ours.trainable_params, ours.inputs) == (
            keras_row.name, keras_row.type, keras_row.output_shape, keras_row.params, keras_row.trainable_params,
            keras_row.inputs,
        ), ours.name  # fmt: skip
    assert report.total_params == model.count_params()
    if total is not None:
        assert report.total_params == total
    assert report.non_trainable_params == non_trainable
    assert [tuple(s) for s in report.output_shapes] == [tuple(t.shape) for t in model.outputs]


@pytest.mark.parametrize("name", ["resnet20", "densenet_bc", "inception", "unet"])
def test_graph_specs_are_at_most_half_their_keras_code(name: str) -> None:
    """The issue's bar: each spec is at most half the lines of the Keras code that builds it."""
    import inspect

    spec = [
        line for line in (SPECS / f"{name}.net").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    keras_code = [line for line in inspect.getsource(globals()[name]).splitlines() if line.strip()]
    helpers = [line for line in inspect.getsource(conv_bn).splitlines() if line.strip()] if name == "resnet20" else []
    assert len(spec) * 2 <= len(keras_code) + len(helpers), (len(spec), len(keras_code) + len(helpers))


def test_graph_specs_build_and_verify(keras) -> None:
    """netdsl's own compiler agrees with its analyzer on the graph specs (a consistency check)."""
    from netdsl.verify import verify_network

    for name in ("resnet20", "densenet_bc", "inception", "unet"):
        assert verify_network(netdsl.load(SPECS / f"{name}.net")).ok, name
    assert verify_network(netdsl.parse(TWO_INPUTS)).ok
