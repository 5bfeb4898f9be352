"""`posembed`: a learnt position embedding, one vector per step of a sequence (keras_hub's `PositionEmbedding`,
which Keras itself lacks), as a Transformer adds it to its tokens: `add [ posembed ]` is x + E[:steps]. Its
Keras class is netdsl's own (scale.netdsl_layers, with the other classes netdsl defines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt

from netdsl.ir import Layer
from netdsl.layers.base import Graph, Shape, ShapeError, Syntax, Tensor, Weight, fmt_shape
from netdsl.layers.scale import NetdslClassOp


@dataclass(frozen=True)
class PositionEmbeddingOp(NetdslClassOp):
    """keras_hub's PositionEmbedding: a learnt (sequence_length, features) table; the output is its first
    `steps` rows, broadcast to the input's shape (the input's values are not read, only its shape)."""

    sequence_length: int
    keras_class: ClassVar[str] = "PositionEmbedding"
    prefix: ClassVar[str] = "position_embedding"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        if len(shape) != 2:
            raise ShapeError(
                "E302", f"position_embedding needs a sequence (batch, steps, features); got {fmt_shape(shape)}",
                help="`reshape` a feature map to (positions, channels) first, as a Vision Transformer does",
            )  # fmt: skip
        if shape[0] > self.sequence_length:
            raise ShapeError(
                "E320", f"position_embedding of length {self.sequence_length} has no position for each of the "
                f"{shape[0]} steps of {fmt_shape(shape)}",
                help=f"leave out `length=` (the input's {shape[0]} steps), or give at least {shape[0]}",
            )  # fmt: skip
        return shape

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("embeddings", (self.sequence_length, inputs[0][-1]))]

    def keras_args(self) -> dict[str, Any]:
        return {"sequence_length": self.sequence_length}


class PositionEmbedding(Layer):
    """`posembed [length=N]`: a learnt embedding of each position of a sequence, N positions (default: the
    input's steps) of the input's features; `add [ posembed ]` adds it to the tokens."""

    kind: Literal["posembed"] = "posembed"
    length: PositiveInt | None = None

    syntax: ClassVar[Syntax] = Syntax(aliases={"sequence_length": "length"}, example="add [ posembed ]")
    summary: ClassVar[str] = "a learnt position embedding of a sequence (keras_hub's PositionEmbedding)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        shape = graph.shape(x)
        return graph.call(PositionEmbeddingOp(self.length or (shape[0] if shape else 1)), x)
