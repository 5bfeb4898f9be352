"""Batch normalization (`bn`) and dropout (`dropout P`): layers that keep their input's shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from netdsl.ir import Layer
from netdsl.layers.base import Graph, Op, Shape, ShapeError, Syntax, Tensor, Weight


@dataclass(frozen=True)
class BatchNormOp(Op):
    momentum: float = 0.99
    epsilon: float = 0.001
    keras_class: ClassVar[str] = "BatchNormalization"
    prefix: ClassVar[str] = "batch_normalization"

    def output_shape(self, *inputs: Shape) -> Shape:
        if not inputs[0]:
            raise ShapeError("E302", "batch_normalization needs an input with a channel axis")
        return inputs[0]

    def weights(self, *inputs: Shape) -> list[Weight]:
        # 4*C parameters: gamma and beta are learnt, the moving statistics are not.
        channels = (inputs[0][-1],)
        return [
            Weight("gamma", channels),
            Weight("beta", channels),
            Weight("moving_mean", channels, trainable=False),
            Weight("moving_variance", channels, trainable=False),
        ]

    def keras_args(self) -> dict[str, Any]:
        defaults = BatchNormOp()
        args: dict[str, Any] = {}
        if self.momentum != defaults.momentum:
            args["momentum"] = self.momentum
        if self.epsilon != defaults.epsilon:
            args["epsilon"] = self.epsilon
        return args


class BatchNorm(Layer):
    """`bn [momentum=0.99] [epsilon=0.001]`: Keras BatchNormalization over the last axis."""

    kind: Literal["bn"] = "bn"
    momentum: float = Field(0.99, ge=0, lt=1)
    epsilon: float = Field(0.001, gt=0)

    syntax: ClassVar[Syntax] = Syntax(aliases={"eps": "epsilon"}, example="bn momentum=0.9")
    summary: ClassVar[str] = "batch normalization (4*C parameters, 2*C of them non-trainable)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(BatchNormOp(self.momentum, self.epsilon), x)


@dataclass(frozen=True)
class DropoutOp(Op):
    rate: float
    keras_class: ClassVar[str] = "Dropout"
    prefix: ClassVar[str] = "dropout"

    def output_shape(self, *inputs: Shape) -> Shape:
        return inputs[0]

    def keras_args(self) -> dict[str, Any]:
        return {"rate": self.rate}


class Dropout(Layer):
    """`dropout P`: zero a fraction P (0 <= P < 1) of activations while training."""

    kind: Literal["dropout"] = "dropout"
    rate: float = Field(ge=0, lt=1)

    syntax: ClassVar[Syntax] = Syntax(positional=("rate",), example="dropout .1")
    summary: ClassVar[str] = "dropout with rate P in [0, 1)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(DropoutOp(self.rate), x)
