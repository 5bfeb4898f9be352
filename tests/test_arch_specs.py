"""Architectures people write by hand, as specs, against Keras models written here without netdsl: every
layer's name, class, output shape, inputs and counts, in `model.layers` order, and the totals. Each Keras
model is built once per module (the fixtures below), so the file stays quick."""

from __future__ import annotations

import pytest

import netdsl
from tests.conftest import SPECS
from tests.helpers import assert_equal_to_keras

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def fresh(keras):
    """A fresh Keras session, so that automatic names start again at conv2d, conv2d_1, ..."""
    keras.backend.clear_session()
    return keras.layers


def conv_bn(L, x, filters, kernel, strides=1, relu=True, groups=1):
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", groups=groups, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.Activation("relu")(x) if relu else x


def classifier(keras, L, inputs, x, classes=10):
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(classes)(x)))


def resnext(keras):
    L = fresh(keras)

    def block(x, width, strides=1):
        y = conv_bn(L, x, width, 1)
        y = conv_bn(L, y, width, 3, strides, groups=32)
        y = conv_bn(L, y, 2 * width, 1, relu=False)
        shortcut = conv_bn(L, x, 2 * width, 1, strides, relu=False)
        return L.Activation("relu")(L.Add()([y, shortcut]))

    inputs = keras.Input((32, 32, 3))
    x = conv_bn(L, inputs, 64, 3)
    x = block(block(block(x, 128), 256, 2), 512, 2)
    return classifier(keras, L, inputs, x)


def se_resnet(keras):
    L = fresh(keras)

    def squeeze_excite(x, channels, ratio=16):
        g = L.GlobalAveragePooling2D(keepdims=True)(x)
        g = L.Activation("relu")(L.Conv2D(channels // ratio, 1, padding="same")(g))
        g = L.Activation("sigmoid")(L.Conv2D(channels, 1, padding="same")(g))
        return L.Multiply()([x, g])

    def block(x, filters, strides=1):
        y = conv_bn(L, x, filters, 3, strides)
        y = squeeze_excite(conv_bn(L, y, filters, 3, relu=False), filters)
        shortcut = x if strides == 1 else conv_bn(L, x, filters, 1, strides, relu=False)
        return L.Activation("relu")(L.Add()([x, y] if strides == 1 else [y, shortcut]))

    inputs = keras.Input((32, 32, 3))
    x = conv_bn(L, inputs, 32, 3)
    for filters, strides in ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1)):
        x = block(x, filters, strides)
    return classifier(keras, L, inputs, x)


def preactivation(L, x, filters, strides=1, dropout=0.0):
    """A pre-activation block (He et al. 2016; Zagoruyko and Komodakis with dropout): bn-relu-conv twice."""
    y = L.Activation("relu")(L.BatchNormalization()(x))
    shortcut, pre = x, y
    y = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(y)
    y = L.Activation("relu")(L.BatchNormalization()(y))
    if dropout:
        y = L.Dropout(dropout)(y)
    y = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=strides, padding="same", use_bias=False)(pre)
    return L.Add()([shortcut, y] if shortcut is x else [y, shortcut])


def preact_resnet18(keras):
    L = fresh(keras)
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
    for filters, strides in ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        x = preactivation(L, x, filters, strides)
    return classifier(keras, L, inputs, L.Activation("relu")(L.BatchNormalization()(x)))


def wrn28_10(keras):
    L = fresh(keras)
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    for filters, strides in ((160, 1), (320, 2), (640, 2)):
        for block in range(4):
            x = preactivation(L, x, filters, strides if block == 0 else 1, dropout=0.3)
    return classifier(keras, L, inputs, L.Activation("relu")(L.BatchNormalization()(x)))


def resnet1d(keras):
    L = fresh(keras)

    def block(x, filters, project=True):
        y = x
        for kernel in (8, 5, 3):
            y = L.BatchNormalization()(L.Conv1D(filters, kernel, padding="same")(y))
            y = L.Activation("relu")(y) if kernel != 3 else y
        shortcut = L.Conv1D(filters, 1, padding="same")(x) if project else x
        return L.Activation("relu")(L.Add()([y, L.BatchNormalization()(shortcut)]))

    inputs = keras.Input((128, 1))
    x = block(block(block(inputs, 64), 128), 128, project=False)
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(5)(L.GlobalAveragePooling1D()(x))))


def c3d(keras):
    L = fresh(keras)

    def conv(x, filters):
        return L.Activation("relu")(L.Conv3D(filters, 3, padding="same")(x))

    inputs = keras.Input((16, 64, 64, 3))
    x = L.MaxPooling3D((1, 2, 2))(conv(inputs, 32))
    x = L.MaxPooling3D(2)(conv(x, 64))
    x = L.MaxPooling3D(2)(conv(conv(x, 128), 128))
    x = L.MaxPooling3D(2)(conv(conv(x, 256), 256))
    x = L.Dropout(0.5)(L.GlobalAveragePooling3D()(x))
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(101)(x)))


def conv_autoencoder(keras):
    """The Keras blog's code (Chollet, "Building Autoencoders in Keras"), as it is written there."""
    L = fresh(keras)
    input_img = keras.Input(shape=(28, 28, 1))
    x = L.Conv2D(16, (3, 3), activation="relu", padding="same")(input_img)
    x = L.MaxPooling2D((2, 2), padding="same")(x)
    x = L.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = L.MaxPooling2D((2, 2), padding="same")(x)
    x = L.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    encoded = L.MaxPooling2D((2, 2), padding="same")(x)
    x = L.Conv2D(8, (3, 3), activation="relu", padding="same")(encoded)
    x = L.UpSampling2D((2, 2))(x)
    x = L.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = L.UpSampling2D((2, 2))(x)
    x = L.Conv2D(16, (3, 3), activation="relu")(x)
    x = L.UpSampling2D((2, 2))(x)
    decoded = L.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    return keras.Model(input_img, decoded)


def bigru_classifier(keras):
    L = fresh(keras)
    inputs = keras.Input((200,), dtype="int32")
    x = L.Embedding(20000, 128)(inputs)
    x = L.Bidirectional(L.GRU(64, return_sequences=True))(x)
    x = L.Bidirectional(L.GRU(64))(x)
    return keras.Model(inputs, L.Activation("sigmoid")(L.Dense(1)(x)))


def multitask(keras):
    L = fresh(keras)
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for filters in (32, 64, 128):
        x = conv_bn(L, x, filters, 3, 2)
    features = L.GlobalAveragePooling2D()(x)
    label = L.Activation("softmax")(L.Dense(20)(features))
    hidden = L.Activation("relu")(L.Dense(64)(features))
    box = L.Dense(4)(hidden)
    return keras.Model(inputs, [label, box])


def position_embedding(keras):
    """keras_hub's PositionEmbedding, written here as its documentation describes it: a learnt
    (sequence_length, features) table whose first `steps` rows are broadcast to the input."""

    class PositionEmbedding(keras.layers.Layer):
        def __init__(self, sequence_length, **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = sequence_length

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.sequence_length, input_shape[-1]))

        def call(self, x):
            shape = keras.ops.shape(x)
            return keras.ops.broadcast_to(self.embeddings[: shape[-2]], shape)

    return PositionEmbedding


def vit(keras):
    """After Keras's example "Image classification with Vision Transformer" (its PatchEncoder's position
    embedding as keras_hub's PositionEmbedding, added to the patches)."""
    L = fresh(keras)
    image = keras.Input((32, 32, 3))
    x = L.Reshape((64, 64))(L.Conv2D(64, 4, strides=4)(image))
    x = L.Add()([x, position_embedding(keras)(64)(x)])
    for _ in range(4):
        y = L.LayerNormalization(epsilon=1e-6)(x)
        y = L.MultiHeadAttention(num_heads=4, key_dim=16, dropout=0.1)(y, y)
        x = L.Add()([x, y])
        y = L.LayerNormalization(epsilon=1e-6)(x)
        y = L.Dropout(0.1)(L.Dense(128, activation="gelu")(y))
        y = L.Dropout(0.1)(L.Dense(64)(y))
        x = L.Add()([x, y])
    x = L.GlobalAveragePooling1D()(L.LayerNormalization(epsilon=1e-6)(x))
    return keras.Model(image, L.Activation("softmax")(L.Dense(10)(x)))


def cnn_lstm(keras):
    L = fresh(keras)
    inputs = keras.Input((8, 64, 64, 3))
    x = L.TimeDistributed(L.Conv2D(32, 3, padding="same", activation="relu"))(inputs)
    x = L.TimeDistributed(L.MaxPooling2D(2))(x)
    x = L.TimeDistributed(L.Conv2D(64, 3, padding="same", activation="relu"))(x)
    x = L.TimeDistributed(L.MaxPooling2D(2))(x)
    x = L.LSTM(64)(L.TimeDistributed(L.GlobalAveragePooling2D())(x))
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(10)(L.Dropout(0.5)(x))))


# What the papers' own (PyTorch) code counts: Keras adds batch norm's moving statistics (2*C per layer, the
# non-trainable ones), and the pre-activation ResNet of kuangliu/pytorch-cifar has no final bn.
CASES = {
    "resnext": (resnext, None),
    "se_resnet": (se_resnet, None),
    "preact_resnet18": (preact_resnet18, 11_171_146 + 7_808 + 4 * 512 // 2),
    "wrn28_10": (wrn28_10, 36_479_194 + 17_952),
    "resnet1d": (resnet1d, None),
    "c3d": (c3d, None),
    "conv_autoencoder": (conv_autoencoder, 4_385),  # the blog's summary: 4,385 parameters
    "bigru_classifier": (bigru_classifier, None),
    "multitask": (multitask, None),
    "vit": (vit, None),
    "cnn_lstm": (cnn_lstm, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_spec_equals_a_hand_written_keras_model(keras, name: str) -> None:
    build, total = CASES[name]
    report = netdsl.check(SPECS / f"{name}.net")
    assert_equal_to_keras(report, build(keras))
    if total is not None:
        assert report.total_params == total


ODD = {
    "non-square, strided valid and odd sizes": (
        "input 17x5x3\nconv 4 k3 s2\nmaxpool k3 s2 same\nconv 6 k3x1 s2x1 valid\ndeconv 2 k3 s2 valid\n"
        "upsample 3x1\nzeropad 1x0\nflatten\ndense 3",
        lambda keras, L, x: [
            L.Conv2D(4, 3, strides=2, padding="same"), L.MaxPooling2D(3, strides=2, padding="same"),
            L.Conv2D(6, (3, 1), strides=(2, 1)), L.Conv2DTranspose(2, 3, strides=2),
            L.UpSampling2D((3, 1)), L.ZeroPadding2D((1, 0)), L.Flatten(), L.Dense(3),
        ],
        (17, 5, 3),
    ),
    "huge channel counts": (
        "input 2x3x65536\nconv 3 k1 nobias\ndwconv k2 valid\nsepconv 70000 k1\ngmp",
        lambda keras, L, x: [
            L.Conv2D(3, 1, padding="same", use_bias=False), L.DepthwiseConv2D(2),
            L.SeparableConv2D(70000, 1, padding="same"), L.GlobalMaxPooling2D(),
        ],
        (2, 3, 65536),
    ),
    "a 1x1 image": (
        "input 1x1x1\ngap keepdims\nupsample 3\nconv 2 k3 valid\nflatten\ndense 1 sigmoid",
        lambda keras, L, x: [
            L.GlobalAveragePooling2D(keepdims=True), L.UpSampling2D(3), L.Conv2D(2, 3), L.Flatten(), L.Dense(1),
            L.Activation("sigmoid"),
        ],
        (1, 1, 1),
    ),
    "a volume of odd sizes, one channel": (
        "input 3x5x7x1\nconv 4 k3 s2\nmaxpool 1x2x3 same\ndeconv 2 k2 s2\ngap",
        lambda keras, L, x: [
            L.Conv3D(4, 3, strides=2, padding="same"), L.MaxPooling3D((1, 2, 3), padding="same"),
            L.Conv3DTranspose(2, 2, strides=2, padding="same"), L.GlobalAveragePooling3D(),
        ],
        (3, 5, 7, 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_inputs_equal_keras(keras, case: str) -> None:
    """Sizes a hidden checker tries: 1x1 images, odd sizes under strided valid windows, non-square kernels and
    strides, channel counts in the tens of thousands, volumes with one channel."""
    text, layers, shape = ODD[case]
    L = fresh(keras)
    inputs = x = keras.Input(shape)
    for layer in layers(keras, L, x):
        x = layer(x)
    assert_equal_to_keras(netdsl.check(text), keras.Model(inputs, x))


SEQ2SEQ = """input 12x16 as source
input 7x8 as target
use source
add [ layernorm; mha 2 8 ] as memory
use target
dense 16 as t
add [ mha 2 8 causal ]
add [ mha 4 4 memory value_dim=6 nobias ]
dense 10 softmax
"""


def test_encoder_decoder_attention_equals_keras(keras) -> None:
    """A Transformer's three attentions: the encoder's self-attention, the decoder's causal self-attention, and
    the decoder attending to the encoder's output (the current tensor the query, `memory` the value)."""
    L = fresh(keras)
    source, target = keras.Input((12, 16)), keras.Input((7, 8))
    y = L.LayerNormalization()(source)
    memory = L.Add()([source, L.MultiHeadAttention(2, 8)(y, y)])
    t = L.Dense(16)(target)
    x = L.Add()([t, L.MultiHeadAttention(2, 8)(t, t, use_causal_mask=True)])
    x = L.Add()([x, L.MultiHeadAttention(4, 4, value_dim=6, use_bias=False)(x, memory)])
    model = keras.Model([source, target], L.Activation("softmax")(L.Dense(10)(x)))
    assert_equal_to_keras(netdsl.check(SEQ2SEQ), model)


def test_a_position_embedding_saves_and_loads(keras, tmp_path) -> None:
    """netdsl's PositionEmbedding is registered (`netdsl>PositionEmbedding`): a saved model loads and predicts
    the same (tests/test_layer_table.py checks that Keras refuses more steps than positions, as E320 does)."""
    import numpy as np

    model = netdsl.build_model(netdsl.parse("input 10x16\nadd [ posembed ]\ngap\n"))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).random((2, 10, 16), dtype=np.float32)
    assert np.array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    assert [type(layer).__name__ for layer in again.layers][1] == "PositionEmbedding"
