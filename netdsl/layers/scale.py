"""Learnt and fixed scalings that keras.applications builds from Keras classes of its own, not public
`keras.layers`: Inception-ResNet's residual `x + r * scale` (its `CustomScaleLayer`: `add scale=.17 [id | r]`)
and ConvNeXt's per-channel `LayerScale` (`layerscale 1e-6`).

netdsl defines the two Keras classes itself (`netdsl_layers`), with the same names, calls, weights and
configs as keras.applications' (whose are private to `keras.src.applications`, a path that may move), once
Keras is imported (never at import time), and registers them for serialisation (`netdsl>CustomScaleLayer`,
`netdsl>LayerScale`), so a saved model loads in any process where netdsl has imported Keras. `netdsl emit`
copies `netdsl_layers` into the emitted module, so that module still needs nothing but Keras.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from netdsl.ir import Layer
from netdsl.layers.base import (
    ElementWise,
    Graph,
    Op,
    ReceptiveField,
    Shape,
    ShapeError,
    Syntax,
    Tensor,
    Weight,
    fmt_shape,
    widest,
)


def netdsl_layers(keras: Any) -> tuple[type, type, type]:
    """The Keras classes netdsl defines, registered as `netdsl>NAME` (re-registering replaces them)."""

    @keras.saving.register_keras_serializable(package="netdsl")
    class CustomScaleLayer(keras.layers.Layer):
        """`inputs[0] + inputs[1] * scale`: Inception-ResNet's scaled residual."""

        def __init__(self, scale, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, inputs):
            return inputs[0] + inputs[1] * self.scale

        def get_config(self):
            return {**super().get_config(), "scale": self.scale}

    @keras.saving.register_keras_serializable(package="netdsl")
    class LayerScale(keras.layers.Layer):
        """`x * gamma`, gamma a learnt weight per channel starting at `init_values`: ConvNeXt's."""

        def __init__(self, init_values, projection_dim, **kwargs):
            super().__init__(**kwargs)
            self.init_values, self.projection_dim = init_values, projection_dim

        def build(self, _):
            self.gamma = self.add_weight(
                shape=(self.projection_dim,), initializer=keras.initializers.Constant(self.init_values), trainable=True
            )

        def call(self, x):
            return x * self.gamma

        def get_config(self):
            return {**super().get_config(), "init_values": self.init_values, "projection_dim": self.projection_dim}

    @keras.saving.register_keras_serializable(package="netdsl")
    class PositionEmbedding(keras.layers.Layer):
        """A learnt vector per position, its first `steps` rows broadcast to the input: keras_hub's."""

        def __init__(self, sequence_length, **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = sequence_length

        def build(self, input_shape):
            if input_shape[-2] is not None and input_shape[-2] > self.sequence_length:
                raise ValueError(f"{input_shape[-2]} steps, but positions for {self.sequence_length} only")
            self.position_embeddings = self.add_weight(
                name="embeddings", shape=(self.sequence_length, input_shape[-1]), initializer="glorot_uniform"
            )

        def call(self, inputs):
            shape = keras.ops.shape(inputs)
            table = keras.ops.slice(self.position_embeddings, (0, 0), (shape[-2], shape[-1]))
            return keras.ops.broadcast_to(table, shape)

        def get_config(self):
            return {**super().get_config(), "sequence_length": self.sequence_length}

    return CustomScaleLayer, LayerScale, PositionEmbedding


CLASSES = ("CustomScaleLayer", "LayerScale", "PositionEmbedding")  # PositionEmbedding: position.py's `posembed`
"""The names `netdsl_layers` returns, in its order."""
_defined: dict[int, dict[str, type]] = {}  # id(keras) -> its classes, defined once per process


def keras_class(keras: Any, name: str) -> type:
    """One of netdsl's Keras classes, defined (and registered) on first use."""
    return registered(keras)[name]


def registered(keras: Any) -> dict[str, type]:
    """netdsl's Keras classes by name, defined and registered once per process (`import_keras` calls it, so a
    saved model that holds them loads with `keras.saving.load_model` wherever netdsl imported Keras)."""
    if id(keras) not in _defined:
        _defined[id(keras)] = dict(zip(CLASSES, netdsl_layers(keras)))
    return _defined[id(keras)]


def emitted_definitions(lines: list[str]) -> list[str]:
    """The source `netdsl emit` puts in a module whose code (`lines`) constructs any of these classes."""
    if not any(f"{name}(" in line for line in lines for name in CLASSES):
        return []
    source = textwrap.dedent(inspect.getsource(netdsl_layers)).rstrip().split("\n")
    return ["def netdsl_layers(keras):", *source[1:], "", "", f"{', '.join(CLASSES)} = netdsl_layers(keras)"]


class NetdslClassOp(Op):
    """An op whose Keras class is one of netdsl's own (`keras_class`), in the compiler and in emitted source."""

    def to_keras(self, keras: Any, name: str) -> Any:
        return keras_class(keras, self.keras_class)(name=name, **self.keras_args())

    def to_source(self, name: str | None = None) -> str:
        args = {**self.source_args(), **({"name": name} if name else {})}
        return f"{self.keras_class}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


@dataclass(frozen=True)
class ScaledAddOp(NetdslClassOp):
    """`a + b * scale` of two tensors of one shape (keras.applications' CustomScaleLayer: no weights)."""

    scale: float
    labels: tuple[str, ...] = ()
    keras_class: ClassVar[str] = "CustomScaleLayer"
    prefix: ClassVar[str] = "custom_scale_layer"

    def output_shape(self, *inputs: Shape) -> Shape:
        if len(inputs) != 2:
            raise ShapeError("E315", f"add scale= adds the second of two tensors, scaled, to the first; got {len(inputs)}",
                             help="write `add scale=S [ id | branch ]`")  # fmt: skip
        if inputs[0] != inputs[1]:
            raise ShapeError(
                "E304", f"the inputs have different shapes: {fmt_shape(inputs[0])} and {fmt_shape(inputs[1])}",
                help="a scaled residual branch must keep its input's shape (CustomScaleLayer does not broadcast)",
            )  # fmt: skip
        return inputs[0]

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return widest(list(inputs))

    def keras_args(self) -> dict[str, Any]:
        return {"scale": self.scale}


@dataclass(frozen=True)
class LayerScaleOp(ElementWise, NetdslClassOp):
    init_values: float
    projection_dim: int
    keras_class: ClassVar[str] = "LayerScale"
    prefix: ClassVar[str] = "layer_scale"

    def output_shape(self, *inputs: Shape) -> Shape:
        if not inputs[0] or inputs[0][-1] != self.projection_dim:
            raise ShapeError("E302", f"layer_scale needs an input with a channel axis; got {fmt_shape(inputs[0])}")
        return inputs[0]

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("gamma", (self.projection_dim,))]

    def keras_args(self) -> dict[str, Any]:
        return {"init_values": self.init_values, "projection_dim": self.projection_dim}


class LayerScaleLayer(Layer):
    """`layerscale V`: x * gamma, a learnt scale per channel that starts at V (ConvNeXt's LayerScale, 1e-6
    there): C parameters."""

    kind: Literal["layerscale"] = "layerscale"
    init_values: float = Field(gt=0)

    syntax: ClassVar[Syntax] = Syntax(positional=("init_values",), aliases={"init": "init_values"},
                                      example="layerscale 1e-6")  # fmt: skip
    summary: ClassVar[str] = "a learnt per-channel scale starting at V (ConvNeXt's LayerScale, C parameters)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        shape = graph.shape(x)
        return graph.call(LayerScaleOp(self.init_values, shape[-1] if shape else 0), x)
