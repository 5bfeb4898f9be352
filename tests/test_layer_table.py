"""One row per registered layer kind: spec text -> every Keras layer's name, class, output shape and
parameter counts, checked against the same model written by hand in Keras (built once per session), and
the MACs and receptive field, checked against a hand formula.

Adding a layer kind means adding a row: `test_every_registered_kind_has_a_row` fails until it has one.
A row is `Row(spec, keras, macs, rf)`:
- spec: netdsl text; the kind under test is its last statement's;
- keras: `lambda L: [L.Conv2D(...), ...]` (applied in order to the input) or `lambda L, x: tensor` (a graph);
- macs: the statement's multiply-accumulates, as a formula; rf: the last layer's receptive field
  ((sizes per axis), (jumps per axis)), or None where the output is no longer spatial.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import netdsl
from netdsl.ir import REGISTRY
from netdsl.verify import compare
from tests.test_arch_specs import position_embedding
from tests.test_emit import run_emitted


@dataclass(frozen=True)
class Row:
    spec: str
    keras: Callable[..., Any]
    macs: int | None  # None only for a backbone: its MACs are its layers', each kind checked in its own rows
    rf: tuple[tuple[int, ...], tuple[int, ...]] | None

    @property
    def net(self) -> netdsl.Network:
        return netdsl.parse(self.spec.replace("; ", "\n"))

    @property
    def kind(self) -> str:
        return self.net.layers[-1].kind


def lstm(units: int, features: int, gates: int = 4) -> int:
    """Multiply-accumulates of one recurrent step: every gate sees the input and the previous state."""
    return gates * units * (features + units)


def hard_sigmoid_gate(L: Any, x: Any) -> Any:
    """keras.applications' MobileNetV3 squeeze-excite gate (its hard sigmoid is Keras arithmetic around a
    ReLU(6) layer, so `model.layers` lists the ReLU only), then a residual add, whose name the ops' count."""
    gate = L.Conv2D(4, 1, padding="same")(L.GlobalAveragePooling2D(keepdims=True)(x))
    gate = L.ReLU(6.0)(gate + 3.0) * (1.0 / 6.0)
    y = L.Multiply()([x, gate])
    branch = L.Conv2D(4, 1, padding="same")(y)
    return L.Add()([y, branch])


def keras_applications_class(name: str) -> Any:
    """keras.applications' own CustomScaleLayer or LayerScale (private to it: the truth for netdsl's classes)."""
    from keras.src.applications import convnext, inception_resnet_v2

    return getattr(inception_resnet_v2, name, None) or getattr(convnext, name)


def convnext_stem(L: Any, x: Any) -> Any:
    """keras.applications' ConvNeXt stem: a Sequential of a patchify conv and a layer norm (one layer)."""
    import keras

    return keras.Sequential([L.Conv2D(8, 2, strides=2), L.LayerNormalization(epsilon=1e-6)])(x)


# fmt: off
ROWS = [
    Row("input 8x8x4; add scale=.17 [ id | conv 4 k1 ]", lambda L, x: keras_applications_class("CustomScaleLayer")(0.17)([x, L.Conv2D(4, 1, padding="same")(x)]), 8 * 8 * 4 * 4, ((1, 1), (1, 1))),
    Row("input 8x8x4; plus [ id | conv 4 k3 ]", lambda L, x: x + L.Conv2D(4, 3, padding="same")(x), 8 * 8 * 4 * 9 * 4, ((3, 3), (1, 1))),
    Row("input 8x8x4; layerscale 1e-6", lambda L: [keras_applications_class("LayerScale")(1e-6, 4)], 0, ((1, 1), (1, 1))),
    Row("input 8x8x4; seq [ conv 8 k2 s2 valid; layernorm epsilon=1e-6 ]", convnext_stem, 4 * 4 * 8 * 2 * 2 * 4, ((2, 2), (2, 2))),
    # convolutions
    Row("input 32x32x3; conv 8 k3 s2", lambda L: [L.Conv2D(8, 3, strides=2, padding="same")], 16 * 16 * 8 * 27, ((3, 3), (2, 2))),
    Row("input 9x10x3; conv 4 k3x5 s2x1 valid nobias relu", lambda L: [L.Conv2D(4, (3, 5), strides=(2, 1), use_bias=False), L.Activation("relu")], 4 * 6 * 4 * 45, ((3, 5), (2, 1))),
    Row("input 16x16x4; conv 8 d2", lambda L: [L.Conv2D(8, 3, padding="same", dilation_rate=2)], 16 * 16 * 8 * 9 * 4, ((5, 5), (1, 1))),
    Row("input 16x16x8; conv 16 groups=4 bn relu", lambda L: [L.Conv2D(16, 3, padding="same", groups=4), L.BatchNormalization(), L.Activation("relu")], 16 * 16 * 16 * 9 * 2, ((3, 3), (1, 1))),
    Row("input 16x16x8; conv 8 bn momentum=0.9 epsilon=1e-5 leaky_relu alpha=0.1", lambda L: [L.Conv2D(8, 3, padding="same"), L.BatchNormalization(momentum=0.9, epsilon=1e-5), L.LeakyReLU(negative_slope=0.1)], 16 * 16 * 8 * 9 * 8, ((3, 3), (1, 1))),
    Row("input 100x16; conv 32 k5 valid relu", lambda L: [L.Conv1D(32, 5), L.Activation("relu")], 96 * 32 * 5 * 16, ((5,), (1,))),
    Row("input 100x16; conv 8 k3 d2 causal", lambda L: [L.Conv1D(8, 3, padding="causal", dilation_rate=2)], 100 * 8 * 3 * 16, ((5,), (1,))),
    Row("input 100x16; conv 8 k3 d4", lambda L: [L.Conv1D(8, 3, padding="same", dilation_rate=4)], 100 * 8 * 3 * 16, ((9,), (1,))),
    Row("input 16x16x3; conv 8 k3 activation=relu", lambda L: [L.Conv2D(8, 3, padding="same", activation="relu")], 16 * 16 * 8 * 27, ((3, 3), (1, 1))),
    Row("input 8x8x8x2; conv 4 k3 s2", lambda L: [L.Conv3D(4, 3, strides=2, padding="same")], 4 * 4 * 4 * 4 * 27 * 2, ((3, 3, 3), (2, 2, 2))),
    Row("input 9x9x4; res 4 k3", lambda L, x: L.Add()([x, L.BatchNormalization()(L.Activation("relu")(L.Conv2D(4, 3, padding="same", use_bias=False, kernel_regularizer="l2")(x)))]), 9 * 9 * 4 * 9 * 4, ((3, 3), (1, 1))),
    Row("input 16x16x8; dwconv k3 s2 bn relu6", lambda L: [L.DepthwiseConv2D(3, strides=2, padding="same"), L.BatchNormalization(), L.ReLU(6.0)], 8 * 8 * 8 * 9, ((3, 3), (2, 2))),
    Row("input 16x16x8; dwconv k5 multiplier=2 nobias valid", lambda L: [L.DepthwiseConv2D(5, depth_multiplier=2, use_bias=False)], 12 * 12 * 16 * 25, ((5, 5), (1, 1))),
    Row("input 50x8; dwconv k3", lambda L: [L.DepthwiseConv1D(3, padding="same")], 50 * 8 * 3, ((3,), (1,))),
    Row("input 16x16x8; sepconv 32 k3 nobias", lambda L: [L.SeparableConv2D(32, 3, padding="same", use_bias=False)], 16 * 16 * 8 * (9 + 32), ((3, 3), (1, 1))),
    Row("input 16x16x8; sepconv 32 k3 s2 multiplier=2 relu", lambda L: [L.SeparableConv2D(32, 3, strides=2, padding="same", depth_multiplier=2), L.Activation("relu")], 8 * 8 * 16 * (9 + 32), ((3, 3), (2, 2))),
    Row("input 40x8; sepconv 16 k5 valid", lambda L: [L.SeparableConv1D(16, 5)], 36 * 8 * (5 + 16), ((5,), (1,))),
    Row("input 8x8x16; deconv 8 k3 s2", lambda L: [L.Conv2DTranspose(8, 3, strides=2, padding="same")], 8 * 8 * 9 * 16 * 8, None),
    Row("input 7x7x16; deconv 8 k3 s2 valid output_padding=1", lambda L: [L.Conv2DTranspose(8, 3, strides=2, output_padding=1)], 7 * 7 * 9 * 16 * 8, None),
    Row("input 7x7x16; deconv 8 k4 s2 valid nobias relu", lambda L: [L.Conv2DTranspose(8, 4, strides=2, use_bias=False), L.Activation("relu")], 7 * 7 * 16 * 16 * 8, None),
    Row("input 20x4; deconv 2 k5 s3 output_padding=2", lambda L: [L.Conv1DTranspose(2, 5, strides=3, padding="same", output_padding=2)], 20 * 5 * 4 * 2, None),
    Row("input 4x4x4x2; deconv 3 k2 s2", lambda L: [L.Conv3DTranspose(3, 2, strides=2, padding="same")], 64 * 8 * 2 * 3, None),
    # pooling
    Row("input 9x9x2; maxpool", lambda L: [L.MaxPooling2D()], 0, ((2, 2), (2, 2))),
    Row("input 9x9x2; maxpool k3 s2 same", lambda L: [L.MaxPooling2D(3, strides=2, padding="same")], 0, ((3, 3), (2, 2))),
    Row("input 100x16; maxpool 4", lambda L: [L.MaxPooling1D(4)], 0, ((4,), (4,))),
    Row("input 8x8x8x2; maxpool", lambda L: [L.MaxPooling3D()], 0, ((2, 2, 2), (2, 2, 2))),
    Row("input 9x9x2; avgpool k3 s1 same", lambda L: [L.AveragePooling2D(3, strides=1, padding="same")], 0, ((3, 3), (1, 1))),
    Row("input 100x16; avgpool 2 s1", lambda L: [L.AveragePooling1D(2, strides=1)], 0, ((2,), (1,))),
    Row("input 9x9x2; gmp", lambda L: [L.GlobalMaxPooling2D()], 0, None),
    Row("input 100x16; gmp", lambda L: [L.GlobalMaxPooling1D()], 0, None),
    Row("input 9x9x2; gap keepdims", lambda L: [L.GlobalAveragePooling2D(keepdims=True)], 0, None),
    Row("input 4x4x4x2; gap", lambda L: [L.GlobalAveragePooling3D()], 0, None),
    # dense, flatten, dropout, bn
    Row("input 20; dense 10 softmax", lambda L: [L.Dense(10), L.Activation("softmax")], 200, None),
    Row("input 20; dense 10 activation=softmax", lambda L: [L.Dense(10, activation="softmax")], 200, None),
    Row("input 6x20; dense 10 nobias", lambda L: [L.Dense(10, use_bias=False)], 6 * 20 * 10, ((1,), (1,))),
    Row("input 3x4x5; flatten", lambda L: [L.Flatten()], 0, None),
    Row("input 8x8x4; conv 2 k1 activation=swish", lambda L: [L.Conv2D(2, 1, padding="same", activation="swish")], 8 * 8 * 2 * 4, ((1, 1), (1, 1))),
    Row("input 20; dropout .25", lambda L: [L.Dropout(0.25)], 0, None),
    Row("input 8x8x3; dropout .25 noise_shape=1x1x1", lambda L: [L.Dropout(0.25, noise_shape=(None, 1, 1, 1))], 0, ((1, 1), (1, 1))),
    Row("input 8x8x3; bn momentum=0.9", lambda L: [L.BatchNormalization(momentum=0.9)], 0, ((1, 1), (1, 1))),
    Row("input 8x8x3; bn scale=0 epsilon=1.001e-5", lambda L: [L.BatchNormalization(epsilon=1.001e-5, scale=False)], 0, ((1, 1), (1, 1))),
    # activations
    Row("input 20; relu", lambda L: [L.Activation("relu")], 0, None),
    Row("input 20; hard_swish", lambda L: [L.Activation("hard_swish")], 0, None),
    Row("input 20; relu6", lambda L: [L.ReLU(6.0)], 0, None),
    Row("input 20; relu class=ReLU", lambda L: [L.ReLU()], 0, None),
    Row("input 8x8x4; mul [ gap keepdims; conv 4 k1 relu6 offset=3 scale=1/6 ]; add [ conv 4 k1 ]", hard_sigmoid_gate, 8 * 8 * 4 * 4, ((1, 1), (1, 1))),
    Row("input 20; leaky_relu", lambda L: [L.Activation("leaky_relu")], 0, None),
    Row("input 20; leaky_relu alpha=0.1", lambda L: [L.LeakyReLU(negative_slope=0.1)], 0, None),
    Row("input 20; elu alpha=0.5", lambda L: [L.ELU(alpha=0.5)], 0, None),
    Row("input 6x6x4; prelu", lambda L: [L.PReLU()], 0, ((1, 1), (1, 1))),
    Row("input 6x6x4; prelu shared", lambda L: [L.PReLU(shared_axes=[1, 2])], 0, ((1, 1), (1, 1))),
    # sequences (Keras's Embedding casts float inputs to integer ids)
    Row("input 50; embed 1000 16", lambda L: [L.Embedding(1000, 16)], 0, ((1,), (1,))),
    Row("input 50; embed 1000 16; conv 8 k5 valid", lambda L: [L.Embedding(1000, 16), L.Conv1D(8, 5)], 46 * 8 * 5 * 16, ((5,), (1,))),
    Row("input 20x8; lstm 16", lambda L: [L.LSTM(16)], 20 * lstm(16, 8), None),
    Row("input 20x8; lstm 16 seq", lambda L: [L.LSTM(16, return_sequences=True)], 20 * lstm(16, 8), None),
    Row("input 20x8; lstm 16 seq bidir; lstm 4", lambda L: [L.Bidirectional(L.LSTM(16, return_sequences=True)), L.LSTM(4)], 20 * lstm(4, 32), None),
    Row("input 20x8; lstm 16 bidir", lambda L: [L.Bidirectional(L.LSTM(16))], 2 * 20 * lstm(16, 8), None),
    Row("input 20x8; gru 16 bidir merge=sum", lambda L: [L.Bidirectional(L.GRU(16), merge_mode="sum")], 2 * 20 * lstm(16, 8, gates=3), None),
    Row("input 20x8; gru 16 return_sequences=1", lambda L: [L.GRU(16, return_sequences=True)], 20 * lstm(16, 8, gates=3), None),
    # attention: (query, value[, key]); MACs: the four projections, the scores and the weighted values
    Row("input 10x16; mha 4 8", lambda L, x: L.MultiHeadAttention(4, 8)(x, x), 3 * 10 * 16 * 4 * 8 + 10 * 10 * 4 * 16 + 10 * 4 * 8 * 16, None),
    Row("input 4x5x8; mha 2 4 value_dim=3 output_dim=6 nobias dropout=.1", lambda L, x: L.MultiHeadAttention(2, 4, value_dim=3, output_shape=6, use_bias=False, dropout=0.1)(x, x), 2 * 20 * 8 * 2 * 4 + 20 * 8 * 2 * 3 + 20 * 20 * 2 * 7 + 20 * 2 * 3 * 6, None),
    Row("input 10x16; dense 6 as m; dense 4; mha 2 8 m causal", lambda L, x: (lambda m: L.MultiHeadAttention(2, 8)(L.Dense(4)(m), m, use_causal_mask=True))(L.Dense(6)(x)), 10 * 4 * 16 + 2 * 10 * 6 * 16 + 10 * 10 * 2 * 16 + 10 * 2 * 8 * 4, None),
    Row("input 10x16; dense 6 as v; dense 5 as k; dense 4; mha 2 3 v k", lambda L, x: (lambda v: (lambda k: L.MultiHeadAttention(2, 3)(L.Dense(4)(k), v, k))(L.Dense(5)(v)))(L.Dense(6)(x)), 10 * 2 * 3 * (4 + 5 + 6) + 10 * 10 * 2 * 6 + 10 * 2 * 3 * 4, None),
    Row("input 10x16; mha 2 8; dropout .1", lambda L, x: (lambda y: L.Dropout(0.1)(y))(L.MultiHeadAttention(2, 8)(x, x)), 0, None),
    Row("input 10x16; add [ posembed ]", lambda L, x: L.Add()([x, position_embedding(__import__("keras"))(10)(x)]), 0, ((1,), (1,))),
    Row("input 10x16; posembed length=12", lambda L, x: position_embedding(__import__("keras"))(12)(x), 0, ((1,), (1,))),
    Row("input 4x8x8x3; td [ conv 6 k3 relu; gap ]", lambda L: [L.TimeDistributed(L.Conv2D(6, 3, padding="same")), L.TimeDistributed(L.Activation("relu")), L.TimeDistributed(L.GlobalAveragePooling2D())], 4 * 8 * 8 * 6 * 27, None),
    Row("input 5x7; td [ dense 3 ]", lambda L: [L.TimeDistributed(L.Dense(3))], 5 * 7 * 3, None),
    # resampling and shape
    Row("input 5x7x3; upsample", lambda L: [L.UpSampling2D()], 0, None),
    Row("input 5x7x3; upsample 2x3 bilinear", lambda L: [L.UpSampling2D((2, 3), interpolation="bilinear")], 0, None),
    Row("input 10x3; upsample 3", lambda L: [L.UpSampling1D(3)], 0, None),
    Row("input 4x4x4x2; upsample", lambda L: [L.UpSampling3D()], 0, None),
    Row("input 7x7x3; zeropad", lambda L: [L.ZeroPadding2D(1)], 0, ((1, 1), (1, 1))),
    Row("input 7x7x3; zeropad 0x1x0x1", lambda L: [L.ZeroPadding2D(((0, 1), (0, 1)))], 0, ((1, 1), (1, 1))),
    Row("input 10x3; zeropad 2", lambda L: [L.ZeroPadding1D(2)], 0, ((1,), (1,))),
    Row("input 7x8x3; zeropad correct=3", lambda L: [L.ZeroPadding2D(((1, 1), (0, 1)))], 0, ((1, 1), (1, 1))),
    Row("input 10x3; zeropad correct=5", lambda L: [L.ZeroPadding1D((1, 2))], 0, ((1,), (1,))),
    Row("input 9x9x3; crop 1x2", lambda L: [L.Cropping2D((1, 2))], 0, ((1, 1), (1, 1))),
    Row("input 10x3; crop 1x3", lambda L: [L.Cropping1D((1, 3))], 0, ((1,), (1,))),
    Row("input 6x6x4x2; crop 1", lambda L: [L.Cropping3D(1)], 0, ((1, 1, 1), (1, 1, 1))),
    Row("input 4x4x8; reshape 16x8", lambda L: [L.Reshape((16, 8))], 0, None),
    Row("input 4x6x8; permute 2x1x3", lambda L: [L.Permute((2, 1, 3))], 0, None),
    # normalisation, scaling, noise
    Row("input 10x16; layernorm", lambda L: [L.LayerNormalization()], 0, ((1,), (1,))),
    Row("input 8x8x16; groupnorm 4 epsilon=1e-5", lambda L: [L.GroupNormalization(4, epsilon=1e-5)], 0, ((1, 1), (1, 1))),
    Row("input 8x8x3; rescale 0.00392", lambda L: [L.Rescaling(0.00392)], 0, ((1, 1), (1, 1))),
    Row("input 8x8x3; normalize", lambda L: [L.Normalization()], 0, ((1, 1), (1, 1))),
    Row("input 8x8x3; normalize mean=0.5 variance=0.25", lambda L: [L.Normalization(mean=0.5, variance=0.25)], 0, ((1, 1), (1, 1))),
    Row("input 8x8x3; sdropout .2", lambda L: [L.SpatialDropout2D(0.2)], 0, ((1, 1), (1, 1))),
    Row("input 10x3; sdropout .2", lambda L: [L.SpatialDropout1D(0.2)], 0, ((1,), (1,))),
    Row("input 20; noise 0.1", lambda L: [L.GaussianNoise(0.1)], 0, None),
    # a backbone, against keras.applications (MACs: its layers', each kind checked in the rows above)
    Row("input 32x32x3; pretrained mobilenetv2 weights=none", lambda L, x: __import__("keras").applications.MobileNetV2(include_top=False, weights=None, input_tensor=x).output, None, ((491, 491), (32, 32))),
    # graphs: merges, the identity branch, `use`, a user block
    Row("input 8x8x4; add [ conv 4 k3 | conv 4 k1 ]", lambda L, x: L.Add()([L.Conv2D(4, 3, padding="same")(x), L.Conv2D(4, 1, padding="same")(x)]), 8 * 8 * 4 * (9 + 1) * 4, ((3, 3), (1, 1))),
    Row("input 8x8x4; conv 4 k3 as a; cat a [ conv 2 k1 s1 ]", lambda L, x: (lambda a: L.Concatenate()([a, a, L.Conv2D(2, 1, padding="same")(a)]))(L.Conv2D(4, 3, padding="same")(x)), 8 * 8 * 2 * 4, ((3, 3), (1, 1))),
    Row("input 8x8x4; mul [ conv 4 k1 sigmoid ]", lambda L, x: L.Multiply()([x, L.Activation("sigmoid")(L.Conv2D(4, 1, padding="same")(x))]), 8 * 8 * 4 * 4, ((1, 1), (1, 1))),
    Row("input 8x8x4; conv 4 k1; id", lambda L: [L.Conv2D(4, 1, padding="same")], 0, ((1, 1), (1, 1))),
    Row("input 8x8x4; conv 4 k3 as a; conv 4 k1; use a", lambda L: [L.Conv2D(4, 3, padding="same")], 0, ((3, 3), (1, 1))),
    Row("def b f [ conv f k3 relu ]; input 8x8x4; b 6", lambda L: [L.Conv2D(6, 3, padding="same"), L.Activation("relu")], 8 * 8 * 6 * 9 * 4, ((3, 3), (1, 1))),
]
# fmt: on


def keras_rows(row: Row) -> list[tuple]:
    """The Keras model the row describes, written by hand: (name, class, output shape, params, trainable, frozen)."""
    import keras

    keras.backend.clear_session()  # fresh automatic names, as the analyzer's
    x = keras.Input(row.net.input_shape)
    if len(inspect.signature(row.keras).parameters) == 2:
        y = row.keras(keras.layers, x)
    else:
        y = x
        for layer in row.keras(keras.layers):
            y = layer(y)
    model = keras.Model(x, y)

    def size(weights: list) -> int:
        return sum(int(keras.ops.size(w)) for w in weights)

    return [
        (layer.name, type(layer).__name__, tuple(layer.output.shape), layer.count_params(),
         size(layer.trainable_weights), size(layer.non_trainable_weights))
        for layer in model.layers
    ]  # fmt: skip


@pytest.fixture(scope="module")
def keras_models() -> dict[str, list[tuple]]:
    """Every row's hand-written Keras model, built once per session."""
    pytest.importorskip("keras")
    return {row.spec: keras_rows(row) for row in ROWS}


def test_every_registered_kind_has_a_row() -> None:
    missing = set(REGISTRY) - {row.kind for row in ROWS}
    assert not missing, f"layer kinds without a row in tests/test_layer_table.py: {sorted(missing)}"


def test_rows_are_distinct() -> None:
    assert len({row.spec for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.spec for row in ROWS])
def test_macs_and_receptive_field(row: Row) -> None:
    report = netdsl.analyze(row.net)
    last = len(row.net.layers) - 1  # the rows the last statement made (a block's are on its definition's lines)
    if row.macs is not None:
        assert sum(r.macs for r in report.layers if r.statement == last) == row.macs
    assert report.layers[-1].receptive_field_axes == row.rf


@pytest.mark.keras
@pytest.mark.parametrize("row", ROWS, ids=[row.spec for row in ROWS])
def test_every_keras_layer_equals_the_hand_written_model(row: Row, keras_models: dict[str, list[tuple]]) -> None:
    report = netdsl.analyze(row.net)
    ours = [
        (r.name, r.type, r.output_shape, r.params, r.trainable_params, r.non_trainable_params) for r in report.layers
    ]
    assert ours == keras_models[row.spec]


@pytest.mark.keras
def test_a_backbone_s_receptive_field_equals_one_walked_from_the_keras_model() -> None:
    """The backbone row's receptive field, recomputed from keras.applications' own layer configs."""
    import keras

    (row,) = [row for row in ROWS if row.kind == "pretrained"]
    model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=row.net.input_shape)
    fields: dict[str, tuple[int, int]] = {}  # layer name -> (size, jump) along the height axis
    for layer in model.layers:
        inbound = (
            [t._keras_history[0].name for t in keras.tree.flatten(layer.input)]
            if layer.name != model.layers[0].name
            else []
        )
        size, jump = max((fields[name] for name in inbound), default=(1, 1))
        config = layer.get_config()
        window = config.get("kernel_size") or config.get("pool_size")
        if window:
            dilation = (config.get("dilation_rate") or (1,))[0]
            size, jump = size + (window[0] - 1) * dilation * jump, jump * config["strides"][0]
        fields[layer.name] = (size, jump)
    assert fields[model.layers[-1].name] == (row.rf[0][0], row.rf[1][0])


@pytest.mark.keras
@pytest.mark.parametrize("row", ROWS, ids=[row.spec for row in ROWS])
def test_check_verify_and_the_emitted_source_build_the_same_model(row: Row) -> None:
    """`check --verify` (netdsl's compiler) and `netdsl emit`'s module (each op's to_source) both agree."""
    verification = netdsl.verify(row.net)
    assert verification.ok, verification.differences
    source = netdsl.emit(row.net)
    differences = compare(netdsl.analyze(row.net), run_emitted(source))
    assert not differences, "\n".join(d.message for d in differences) + "\n\n" + source


# fmt: off
REFUSED = [
    # (spec, the first line `netdsl check` prints after `t.net:`): what Keras would refuse, said at the statement
    ("input 100x16; conv 8 k3x5", "2:1: error[E320]: conv: conv1d kernel 3x5 has 2 sizes, but the input (None, 100, 16) has 1 spatial axis"),
    ("input 10x4; conv 8 s2 d2", "2:1: error[E320]: conv: conv1d cannot combine a stride above 1 with a dilation above 1 (Keras refuses it)"),
    ("input 8x8x4; conv 8 causal", "2:1: error[E320]: conv: conv2d has no 'causal' padding (Keras's Conv1D has, for sequences)"),
    ("input 20x4; sepconv 8 causal", "2:11: error[E201]: sepconv: padding must be 'same' or 'valid', got causal"),
    ("input 8x8x4; conv 6 groups=4", "2:1: error[E320]: conv: conv2d groups=4 does not divide the filters (6)"),
    ("input 8x8x6; conv 8 groups=4", "2:1: error[E320]: conv: conv2d groups=4 does not divide the input channels (6)"),
    ("input 5x5x4; deconv 4 s2 output_padding=2", "2:1: error[E320]: deconv: conv2d_transpose output_padding 2x2 must be smaller than the stride 2x2"),
    ("input 1x1x4; deconv 2 k2 s1 output_padding=0", "2:1: error[E303]: deconv: conv2d_transpose with kernel 2x2, 'same' padding and output_padding 0x0 shrinks (None, 1, 1, 4) to nothing"),
    ("input 8x8x3; zeropad 1x2x3", "2:1: error[E320]: zeropad: zero_padding2d 1x2x3 has 3 sizes for the input (None, 8, 8, 3)"),
    ("input 8x8x3; zeropad 1 correct=3", "2:11: error[E201]: zeropad: correct must be written without sizes (it computes them), got 3"),
    ("input 8x8x3; zeropad correct=1", "2:9: error[E201]: zeropad: correct must be at least 2, got 1"),
    ("input 8x8x3; crop correct=3", "2:6: error[E201]: crop: correct is zeropad's alone (Keras's correct_pad pads; nothing crops that way), got 3"),
    ("input 4x4x3; crop 2", "2:1: error[E303]: crop: cropping2d of ((2, 2), (2, 2)) crops (None, 4, 4, 3) to nothing"),
    ("input 10x4; upsample 2 bilinear", "2:1: error[E320]: upsample: up_sampling1d has no interpolation= (only UpSampling2D does)"),
    ("input 4x4x8; reshape 5x5", "2:1: error[E320]: reshape: reshape to (None, 5, 5) needs 25 elements, the input (None, 4, 4, 8) has 128"),
    ("input 4x4x8; permute 2x1", "2:1: error[E320]: permute: permute 2x1 names 2 axes, the input (None, 4, 4, 8) has 3"),
    ("input 4x4x8; permute 1x1x3", "2:9: error[E201]: permute: dims must be an order of the axes 1 to 3, each once, got 1x1x3"),
    ("input 4x4x6; groupnorm 4", "2:1: error[E320]: groupnorm: group_normalization of 4 groups needs channels divisible by 4, got 6"),
    ("input 4x4x6; normalize mean=1", "2:1: error[E201]: normalize: variance must be given together with mean="),
    ("input 10x4; lstm 4 merge=sum", "2:8: error[E201]: lstm: merge applies to bidir only"),
    ("input 10; lstm 4", "2:1: error[E302]: lstm: lstm needs a 3-D input (batch, timesteps, features); got (None, 10)"),
    ("input 10; gmp", "2:1: error[E302]: gmp: global_max_pooling2d needs a 4-D input (batch, height, width, channels); got (None, 10)"),
    ("input 8x8x3; dropout .1 noise_shape=1x1", "2:1: error[E320]: dropout: dropout noise_shape 1x1 does not fit the input (None, 8, 8, 3)"),
    ("input 8x8x3; dwconv multiplier=0", "2:8: error[E201]: dwconv: multiplier must be a positive integer, got 0"),
    ("input 20; mha 2 4", "2:1: error[E302]: mha: multi_head_attention needs a query with positions and features, such as (batch, steps, features); got (None, 20)"),
    ("input 4x4x8 as img; input 10x8 as seq; mha 2 4 img", "3:1: error[E304]: mha: the query is (None, 10, 8), the value (None, 4, 4, 8); the value (and key) need the query's rank"),
    ("input 10x16 as a; conv 4 k3 s2; mha 2 4 a causal", "3:1: error[E304]: mha: a causal mask needs as many query as value positions; got (None, 5, 4) and (None, 10, 16)"),
    ("input 10x16 as a; dense 4 as b; dense 4 as c; mha 2 4 a b c", "4:1: error[E202]: mha reads at most 2 named tensors, got 3: a, b, c"),
    ("input 10x16; mha 2 4 casual", "2:9: error[E202]: mha: unknown argument 'casual'"),
    ("input 8x8x8x3; td [ add [ conv 3 k3 ] ]", "2:1: error[E319]: td: td wraps each layer inside in a TimeDistributed: a merge of 2 tensors (add) cannot be inside it"),
    ("input 8; td [ dense 4 ]", "2:6: error[E302]: dense: time_distributed needs (batch, steps, ...) with something in each step; got (None, 8)"),
    ("input 20; posembed", "2:1: error[E302]: posembed: position_embedding needs a sequence (batch, steps, features); got (None, 20)"),
    ("input 10x16; posembed length=5", "2:1: error[E320]: posembed: position_embedding of length 5 has no position for each of the 10 steps of (None, 10, 16)"),
]
# fmt: on


@pytest.mark.keras
def test_zeropad_correct_is_keras_s_correct_pad() -> None:
    """`zeropad correct=K` pads as keras.applications' own `imagenet_utils.correct_pad(x, K)` (the function its
    MobileNets and EfficientNets call before a strided window) at even, odd and mixed sizes."""
    keras = pytest.importorskip("keras")
    from keras.src.applications.imagenet_utils import correct_pad

    for size in [(224, 224), (225, 224), (15, 16), (2, 1), (7, 7)]:
        for kernel in (2, 3, 5, 7):
            model = netdsl.build_model(netdsl.parse(f"input {size[0]}x{size[1]}x3\nzeropad correct={kernel}"))
            expected = correct_pad(keras.Input((*size, 3)), kernel)
            assert model.layers[1].get_config()["padding"] == tuple(map(tuple, expected)), (size, kernel)


@pytest.mark.parametrize(("spec", "expected"), REFUSED, ids=[spec for spec, _ in REFUSED])
def test_what_keras_would_refuse_is_a_located_error(runner, write_spec, spec: str, expected: str) -> None:
    from netdsl.cli import main

    path = write_spec(spec.replace("; ", "\n"), "t.net")
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"{path}:{expected}"), result.stderr


# Keras fails to build each of these, with three exceptions that are netdsl's own refusals: UpSampling1D has no
# interpolation argument at all, Keras checks a dropout's noise_shape only when it drops, and Keras builds a
# transposed convolution with an empty axis (in both, the next layer or the first training step fails instead).
KERAS_REFUSES = [
    spec for spec, said in REFUSED
    if ("E320" in said or "E303" in said)
    and not any(own in said for own in ("interpolation", "noise_shape", "conv2d_transpose with"))
]  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize("spec", KERAS_REFUSES)
def test_keras_refuses_them_too(spec: str) -> None:
    """The shape errors are Keras's own refusals, not netdsl's caution: the same layers fail in Keras."""
    pytest.importorskip("keras")
    net = netdsl.parse(spec.replace("; ", "\n"))
    with pytest.raises(Exception):  # noqa: B017  (Keras raises ValueError, TypeError or a backend error)
        netdsl.build_model(net, check=False)
