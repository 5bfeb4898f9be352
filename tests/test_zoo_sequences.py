"""The zoo's sequence specs (specs/zoo/text_cnn.net, lstm_classifier.net) against Keras models written by
hand here, without netdsl's compiler: every layer's name, class, output shape, inputs and counts, in
`model.layers` order, and the totals."""

from __future__ import annotations

from pathlib import Path

import pytest

import netdsl
from tests.helpers import assert_equal_to_keras

pytestmark = pytest.mark.keras
ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def text_cnn(keras):
    """Kim (2014): parallel convolutions over 3, 4 and 5 words, each max-pooled over time, concatenated."""
    keras.backend.clear_session()
    L = keras.layers
    tokens = keras.Input((200,), dtype="int32")
    x = L.Embedding(20000, 128)(tokens)
    convs = [L.Conv1D(100, size)(x) for size in (3, 4, 5)]
    relus = [L.Activation("relu")(conv) for conv in convs]
    pooled = [L.GlobalMaxPooling1D()(relu) for relu in relus]
    x = L.Dropout(0.5)(L.Concatenate()(pooled))
    return keras.Model(tokens, L.Activation("softmax")(L.Dense(2)(x)))


def lstm_classifier(keras):
    """The Keras example's bidirectional LSTM for IMDB sentiment."""
    keras.backend.clear_session()
    L = keras.layers
    tokens = keras.Input((200,), dtype="int32")
    x = L.Embedding(20000, 128)(tokens)
    x = L.Bidirectional(L.LSTM(64, return_sequences=True))(x)
    x = L.Bidirectional(L.LSTM(64))(x)
    return keras.Model(tokens, L.Activation("sigmoid")(L.Dense(1)(x)))


CASES = {"text_cnn": (text_cnn, 2_714_502), "lstm_classifier": (lstm_classifier, 2_757_761)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_zoo_sequence_spec_equals_a_hand_written_keras_model(keras, name: str) -> None:
    build, total = CASES[name]
    net = netdsl.load(ZOO / f"{name}.net")
    assert net.input_dtype == "int32"
    report = netdsl.analyze(net)
    model = build(keras)
    assert_equal_to_keras(report, model)
    assert report.total_params == total
    assert report.non_trainable_params == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_zoo_sequence_specs_build_with_integer_inputs(keras, name: str) -> None:
    """netdsl's own compiler gives the model an int32 input, as the hand-written one has."""
    model = netdsl.build_model(netdsl.load(ZOO / f"{name}.net"))
    assert model.inputs[0].dtype == "int32"
