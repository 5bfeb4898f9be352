"""Shared weights (`tower shared`): one Keras model called at every shared use, one row of `model.layers`,
its parameters counted once and its MACs once per call; against Keras models written by hand, the
compiler (`--verify`) and the emitted module; and the refusals."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.verify import compare
from tests.conftest import SPECS
from tests.helpers import assert_equal_to_keras, error_of

TIED = """def block f [ add [ conv f k3 nobias bn relu; conv f k3 nobias bn ]; relu ]
input 16x16x8
conv 8 k3 as stem
repeat 3 [ block 8 shared ]
block 8
gap; dense 10 softmax
"""


def siamese(keras):
    """The Keras way (keras.io's Siamese examples): one tower model, called on each input."""
    keras.backend.clear_session()
    L = keras.layers
    left, right = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    image = keras.Input((28, 28, 1))
    x = L.MaxPooling2D(2)(L.Activation("relu")(L.Conv2D(32, 3, padding="same")(image)))
    x = L.MaxPooling2D(2)(L.Activation("relu")(L.Conv2D(64, 3, padding="same")(x)))
    x = L.GlobalAveragePooling2D()(L.Activation("relu")(L.Conv2D(64, 3, padding="same")(x)))
    tower = keras.Model(image, L.Dense(64)(x), name="tower")
    a = tower(left)
    difference = L.Subtract()([tower(right), a])
    return keras.Model([left, right], L.Activation("sigmoid")(L.Dense(1)(difference)))


def tied(keras):
    """A residual block whose weights are tied across three applications, then one block of its own."""
    keras.backend.clear_session()
    L = keras.layers

    def block(x):
        y = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(x)))
        y = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(y))
        return L.Activation("relu")(L.Add()([x, y]))

    inputs = keras.Input((16, 16, 8))
    x = L.Conv2D(8, 3, padding="same")(inputs)
    inner = keras.Input((16, 16, 8))
    shared = keras.Model(inner, block(inner), name="block")
    for _ in range(3):
        x = shared(x)
    x = L.GlobalAveragePooling2D()(block(x))
    return keras.Model(inputs, L.Activation("softmax")(L.Dense(10)(x)))


@pytest.mark.keras
@pytest.mark.parametrize(("spec", "build"), [("siamese", siamese), ("tied", tied)])
def test_shared_blocks_equal_keras_models_written_by_hand(spec: str, build) -> None:
    keras = pytest.importorskip("keras")
    net = netdsl.load(SPECS / "siamese.net") if spec == "siamese" else netdsl.parse(TIED)
    report = netdsl.analyze(net)
    assert_equal_to_keras(report, build(keras))
    assert netdsl.verify(net).ok
    from tests.test_emit import run_emitted

    assert not compare(report, run_emitted(netdsl.emit(net)))


def test_a_shared_block_is_one_row_counted_once_and_computed_at_each_use() -> None:
    report = netdsl.check(SPECS / "siamese.net")
    (tower,) = [row for row in report.layers if row.type == "Functional"]
    assert (tower.name, tower.params, tower.inputs) == ("tower", 59_904, ("input_layer",))
    unshared = netdsl.check(TIED.replace(" shared", ""))
    one_block = 2 * (8 * 8 * 9 + 4 * 8)  # two convs without bias and two batch norms
    assert netdsl.check(TIED).total_params == unshared.total_params - 2 * one_block
    assert [row.inputs for row in report.layers if row.type == "Subtract"] == [("tower", "tower")]
    per_call = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 9 * 32 + 7 * 7 * 64 * 9 * 64 + 64 * 64
    assert tower.macs == 2 * per_call  # each image goes through the tower


def test_the_later_names_skip_what_the_model_took() -> None:
    """Building the tower takes Keras's automatic names of its own input and layers (input_layer_2, dense): the
    classifier's Dense after it is dense_1, as in the Keras model written by hand."""
    names = [row.name for row in netdsl.check(SPECS / "siamese.net").layers]
    assert names[-2:] == ["dense_1", "activation_3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("def t [dense 4]\ninput 8 as a\ninput 9 as b\nuse a\nt shared\nuse b\nt shared\n",
         "t.net:7:1: error[E316]: shared block 't' is applied to (None, 9) here, but to (None, 8) at its first use (line 5)"),
        ("def t f [dense f]\ninput 8\nt 4 shared\nt 5 shared\n",
         "t.net:4:1: error[E317]: shared uses of block 't' need the same arguments: f=5 here, f=4 at 3:1"),
        ("def u [dense 4]\ndef t [u shared]\ninput 8\nt shared\n",
         "t.net:4:1: error[E318]: block: a shared block cannot hold another ('u')"),
        ("def t [pretrained mobilenetv2 weights=none]\ninput 32x32x3\nt shared\n",
         "t.net:3:1: error[E318]: block: a shared block cannot hold a backbone (`pretrained`)"),
        ("def t [conv 8 k5 valid]\ninput 3x3x1\nt shared\n",
         "t.net:3:1: error[E303]: block: conv (line 1): conv2d with kernel 5x5 and 'valid' padding shrinks (None, 3, 3, 1) to nothing"),
        ("def t [dense 4]\ninput 8\nseq [ t shared ]\n",
         "t.net:3:1: error[E535]: seq: seq holds layers one after another (a Keras Sequential): a shared block ('t') cannot be inside it"),
    ],
)  # fmt: skip
def test_what_a_shared_block_cannot_be(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected), error_of(text)


def test_shared_is_a_parameter_where_the_block_has_one() -> None:
    """A block with a parameter called `shared` keeps it: the flag is only the bare word no parameter takes."""
    net = netdsl.parse("def t shared=1 [dense 4]\ninput 8\nt shared\n")
    assert not net.layers[0].shared and net.layers[0].args == (("shared", "shared"),)
    assert netdsl.parse("def t [dense 4]\ninput 8\nt shared\n").layers[0].shared
