"""Depthwise and separable convolutions: `dwconv` (Keras DepthwiseConv1D/2D: one kernel per input channel,
MobileNet's blocks) and `sepconv` (SeparableConv1D/2D: a depthwise then a 1x1 pointwise conv, Xception's)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt

from netdsl.layers.activation import Activated
from netdsl.layers.base import Graph, Shape, Sizes, Syntax, Tensor, Weight, spatial
from netdsl.layers.window import WINDOW_SYNTAX, WindowLayer, WindowOp, with_bias


@dataclass(frozen=True)
class DepthwiseConvOp(WindowOp):
    depth_multiplier: int = 1
    keras_template: ClassVar[str] = "DepthwiseConv{}D"
    prefix_template: ClassVar[str] = "depthwise_conv{}d"

    def spatial_output(self, shape: Shape) -> Sizes:
        """Checks the input (worded as Conv2D's messages, which the analyzer's tests and docs show) and
        returns the output's spatial sizes."""
        name = f"conv{self.rank}d"
        self.check(shape, name)
        return self.sliding_output(shape, name)

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        return (*self.spatial_output(shape), shape[-1] * self.depth_multiplier)

    def weights(self, *inputs: Shape) -> list[Weight]:
        channels = inputs[0][-1]
        kernel = Weight("kernel", (*self.kernel, channels, self.depth_multiplier))
        return with_bias([kernel], channels * self.depth_multiplier, self.use_bias)

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return math.prod(output) * math.prod(self.kernel)

    def own_args(self) -> dict[str, Any]:
        return {"depth_multiplier": self.depth_multiplier} if self.depth_multiplier != 1 else {}


@dataclass(frozen=True)
class SeparableConvOp(DepthwiseConvOp):
    """A depthwise conv (`depth_multiplier` kernels per channel) then a pointwise conv to `filters`."""

    filters: int = 1
    keras_template: ClassVar[str] = "SeparableConv{}D"
    prefix_template: ClassVar[str] = "separable_conv{}d"

    def output_shape(self, *inputs: Shape) -> Shape:
        return (*self.spatial_output(inputs[0]), self.filters)

    def weights(self, *inputs: Shape) -> list[Weight]:
        middle = inputs[0][-1] * self.depth_multiplier
        kernels = [
            Weight("depthwise_kernel", (*self.kernel, inputs[0][-1], self.depth_multiplier)),
            Weight("pointwise_kernel", (*(1,) * self.rank, middle, self.filters)),
        ]
        return with_bias(kernels, self.filters, self.use_bias)

    def macs(self, output: Shape, *inputs: Shape) -> int:
        positions, middle = math.prod(spatial(output)), inputs[0][-1] * self.depth_multiplier
        return positions * middle * (math.prod(self.kernel) + self.filters)

    def own_args(self) -> dict[str, Any]:
        return {"filters": self.filters, **super().own_args()}


class DepthwiseConv(Activated, WindowLayer):
    """`dwconv [kK] [sS] [dD] [multiplier=M] [same|valid] [nobias] [activation|bn ...]`: one K-wide kernel
    per input channel (M of them with `multiplier=M`), Keras DepthwiseConv2D (DepthwiseConv1D on a
    sequence). Padding defaults to `same`, as for conv."""

    kind: Literal["dwconv"] = "dwconv"
    multiplier: PositiveInt = 1

    ranks: ClassVar[tuple[int, ...]] = (1, 2)
    syntax: ClassVar[Syntax] = Syntax(**WINDOW_SYNTAX, example="dwconv k3 s2 nobias bn relu6")
    summary: ClassVar[str] = "depthwise convolution (DepthwiseConv1D/2D): one kernel per channel"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return self.with_post(DepthwiseConvOp(self.multiplier, **self.window(x, graph)), x, graph)


class SeparableConv(Activated, WindowLayer):
    """`sepconv F [kK] [sS] [dD] [multiplier=M] [same|valid] [nobias] [activation|bn ...]`: a depthwise conv
    then a pointwise (1x1) conv to F filters, in one Keras SeparableConv2D (SeparableConv1D on a sequence)."""

    kind: Literal["sepconv"] = "sepconv"
    filters: PositiveInt
    multiplier: PositiveInt = 1

    ranks: ClassVar[tuple[int, ...]] = (1, 2)
    syntax: ClassVar[Syntax] = Syntax(positional=("filters",), **WINDOW_SYNTAX, example="sepconv 128 k3 nobias bn")
    summary: ClassVar[str] = "separable convolution (SeparableConv1D/2D): depthwise, then pointwise to F filters"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        op = SeparableConvOp(self.multiplier, self.filters, **self.window(x, graph))
        return self.with_post(op, x, graph)
