"""Fully connected layers: `dense N` and `flatten`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from netdsl.ir import Layer
from netdsl.layers.activation import POST_WORDS, Activated, ActivationName, PostStep, apply_post
from netdsl.layers.base import (
    Graph,
    Op,
    Regularized,
    Shape,
    ShapeError,
    Syntax,
    Tensor,
    Weight,
    fmt_shape,
)


@dataclass(frozen=True)
class DenseOp(Regularized):
    units: int
    use_bias: bool = True
    l2: float = 0.0
    activation: str | None = None  # fused into the layer (Keras's `activation=`), not a layer of its own
    keras_class: ClassVar[str] = "Dense"
    prefix: ClassVar[str] = "dense"

    def output_shape(self, *inputs: Shape) -> Shape:
        if not inputs[0]:
            raise ShapeError("E302", "dense needs an input with at least one axis besides the batch")
        # Keras's Dense acts on the last axis only: (H, W, C) -> (H, W, units).
        return (*inputs[0][:-1], self.units)

    def weights(self, *inputs: Shape) -> list[Weight]:
        kernel = Weight("kernel", (inputs[0][-1], self.units))
        return [kernel, Weight("bias", (self.units,))] if self.use_bias else [kernel]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return math.prod(inputs[0]) * self.units

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        """W402 on an image or a volume; on a sequence, acting on each step is what a Transformer's feed-forward
        layers and a tagger's outputs are for."""
        if len(inputs[0]) > 2:
            return [(
                "W402",
                f"dense on the unpooled {fmt_shape(inputs[0])} acts on the last axis only "
                f"(output {fmt_shape(self.output_shape(*inputs))}); add `flatten`, `gmp` or `gap` "
                "before it if you meant a classifier",
            )]  # fmt: skip
        return []

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"units": self.units}
        if not self.use_bias:
            args["use_bias"] = False
        if self.activation:
            args["activation"] = self.activation
        return args


class Dense(Activated, Layer):
    """`dense N [nobias] [l2=X] [activation=A] [activation|bn ...]`: Keras Dense, then the activations
    written; `activation=softmax` is fused into the Dense, as keras.applications' classifiers write it."""

    kind: Literal["dense"] = "dense"
    units: PositiveInt
    bias: bool = True
    l2: float = Field(0.0, ge=0)
    activation: ActivationName | None = None
    post: tuple[PostStep, ...] = ()

    syntax: ClassVar[Syntax] = Syntax(
        positional=("units",),
        flags={"nobias": ("bias", False), "bias": ("bias", True)},
        sequence=("post", POST_WORDS),
        aliases={"use_bias": "bias"},
        example="dense 10 softmax",
    )
    summary: ClassVar[str] = "fully connected layer on the last axis"
    is_head_candidate: ClassVar[bool] = True

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        op = DenseOp(self.units, self.bias, self.l2, self.activation)
        return apply_post(graph, graph.call(op, x), self.post)


@dataclass(frozen=True)
class FlattenOp(Op):
    keras_class: ClassVar[str] = "Flatten"
    prefix: ClassVar[str] = "flatten"
    keeps_positions: ClassVar[bool] = False

    def output_shape(self, *inputs: Shape) -> Shape:
        return (math.prod(inputs[0]),)


class Flatten(Layer):
    """`flatten`: a feature map to a vector."""

    kind: Literal["flatten"] = "flatten"
    syntax: ClassVar[Syntax] = Syntax(example="flatten")
    summary: ClassVar[str] = "reshape to a vector"
    ends_feature_extractor: ClassVar[bool] = True

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(FlattenOp(), x)
