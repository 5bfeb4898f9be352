"""Network -> keras.Model, with the Keras 3 functional API and public `keras.layers` only.

The only module that imports Keras, and only when `build_model` is called. It runs the same
`apply` the analyzer runs, on a graph whose tensors are Keras tensors, and names every layer as
the analyzer does, so each row of `netdsl check` matches a row of `model.summary()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netdsl.analysis import Namer, analyze
from netdsl.ir import Layer, Network
from netdsl.layers.base import Op


class KerasGraph:
    """A Graph whose tensors are Keras symbolic tensors."""

    def __init__(self, keras: Any) -> None:
        self.keras = keras
        self.namer = Namer()
        self.layer: Layer | None = None
        self.sources: dict[str, Layer] = {}  # Keras layer name -> the netdsl layer it came from

    def input(self, shape: tuple[int, ...]) -> Any:
        self.namer.counts["input_layer"] = 1
        return self.keras.Input(shape=shape, name="input_layer")

    def call(self, op: Op, *inputs: Any) -> Any:
        name = self.namer(op.prefix)
        if self.layer is not None:
            self.sources[name] = self.layer
        layer = op.to_keras(self.keras, name)
        return layer(list(inputs) if len(inputs) > 1 else inputs[0])


def build_model(net: Network, trainable: Callable[[int, str], bool] | None = None, check: bool = True) -> Any:
    """Build the Keras model. The spec is analyzed first, so a bad spec fails with netdsl's
    located message rather than a Keras traceback."""
    import keras

    if check:
        analyze(net, trainable)
    graph = KerasGraph(keras)
    x = inputs = graph.input(net.input_shape)  # type: ignore[arg-type]
    for layer in net.layers:
        graph.layer = layer
        x = layer.apply(x, graph)
    model = keras.Model(inputs=inputs, outputs=x, name=_model_name(net.name))
    if trainable is not None:
        for index, keras_layer in enumerate(model.layers):
            keras_layer.trainable = trainable(index, keras_layer.name)
    return model


def _model_name(name: str) -> str:
    """Keras model names must be plain identifiers-ish; spec names can hold dashes or dots."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned or "model"
