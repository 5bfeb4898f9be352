"""The seed's four models: totals to the unit, and every layer equal to Keras's."""

from __future__ import annotations

import pytest

import netdsl
from tests.conftest import SPECS

# From the seed post's model.summary() output: (total, trainable, non-trainable).
SEED = {
    "simple": (123_330, 123_330, 0),
    "convnet": (37_490, 37_490, 0),
    "convnet2": (156_570, 155_970, 600),
    "resnet": (771_690, 769_890, 1_800),
}


@pytest.mark.parametrize("name", sorted(SEED))
def test_seed_totals(name: str) -> None:
    report = netdsl.check(SPECS / f"{name}.net")
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == SEED[name]


@pytest.mark.parametrize("name", sorted(SEED))
def test_specs_open_with_a_comment_saying_where_they_come_from(name: str) -> None:
    first = (SPECS / f"{name}.net").read_text().splitlines()[0]
    assert first.startswith("# ") and "Deep Learning With Keras" in first


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(SEED))
def test_every_layer_equals_keras(name: str) -> None:
    pytest.importorskip("keras")
    import keras

    net = netdsl.load(SPECS / f"{name}.net")
    report = netdsl.analyze(net)
    model = netdsl.build_model(net)
    keras_rows = [
        (layer.name, type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers
    ]
    ours = [(r.name, r.type, r.output_shape, r.params) for r in report.layers]
    assert ours == keras_rows
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    non_trainable = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
    assert (model.count_params(), trainable, non_trainable) == SEED[name]
