"""Depthwise and separable convolutions: `dwconv` (Keras DepthwiseConv1D/2D: one kernel per input channel,
MobileNet's blocks) and `sepconv` (SeparableConv1D/2D: a depthwise then a 1x1 pointwise conv, Xception's)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt

from netdsl.layers.activation import apply_post
from netdsl.layers.base import (
    Graph,
    RankedOp,
    ReceptiveField,
    Shape,
    Sizes,
    Syntax,
    Tensor,
    Weight,
    check_window,
    compact,
    spatial,
    window_output,
)
from netdsl.layers.conv import SAME_HELP, WINDOW_SYNTAX, WindowLayer, check_dilation


@dataclass(frozen=True)
class DepthwiseConvOp(RankedOp):
    kernel: Sizes = (3, 3)
    strides: Sizes = (1, 1)
    padding: str = "valid"
    use_bias: bool = True
    depth_multiplier: int = 1
    dilation: Sizes = (1, 1)
    rank: int = 2
    keras_template: ClassVar[str] = "DepthwiseConv{}D"
    prefix_template: ClassVar[str] = "depthwise_conv{}d"

    def spatial_output(self, shape: Shape) -> Sizes:
        """Checks the input (worded as Conv2D's messages, which the analyzer's tests and docs show) and
        returns the output's spatial sizes."""
        name = f"conv{self.rank}d"
        check_window(name, shape, self.rank, kernel=self.kernel, strides=self.strides, dilation=self.dilation)
        check_dilation(name, self.strides, self.dilation)
        what = f"{name} with kernel {'x'.join(map(str, self.kernel))} and '{self.padding}' padding"
        return window_output(shape, self.kernel, self.strides, self.padding, what, SAME_HELP, self.dilation)

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        return (*self.spatial_output(shape), shape[-1] * self.depth_multiplier)

    def weights(self, *inputs: Shape) -> list[Weight]:
        channels = inputs[0][-1]
        kernel = Weight("kernel", (*self.kernel, channels, self.depth_multiplier))
        return [kernel, Weight("bias", (channels * self.depth_multiplier,))] if self.use_bias else [kernel]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return math.prod(output) * math.prod(self.kernel)

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.kernel, self.strides, self.dilation) if inputs[0] else None

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "kernel_size": compact(self.kernel),
            "strides": compact(self.strides),
            "padding": self.padding,
        }
        if self.depth_multiplier != 1:
            args["depth_multiplier"] = self.depth_multiplier
        if max(self.dilation) > 1:
            args["dilation_rate"] = compact(self.dilation)
        if not self.use_bias:
            args["use_bias"] = False
        return args


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
        return [*kernels, Weight("bias", (self.filters,))] if self.use_bias else kernels

    def macs(self, output: Shape, *inputs: Shape) -> int:
        positions, middle = math.prod(spatial(output)), inputs[0][-1] * self.depth_multiplier
        return positions * middle * (math.prod(self.kernel) + self.filters)

    def keras_args(self) -> dict[str, Any]:
        return {"filters": self.filters, **super().keras_args()}


class DepthwiseConv(WindowLayer):
    """`dwconv [kK] [sS] [dD] [multiplier=M] [same|valid] [nobias] [activation|bn ...]`: one K-wide kernel
    per input channel (M of them with `multiplier=M`), Keras DepthwiseConv2D (DepthwiseConv1D on a
    sequence). Padding defaults to `same`, as for conv."""

    kind: Literal["dwconv"] = "dwconv"
    multiplier: PositiveInt = 1

    ranks: ClassVar[tuple[int, ...]] = (1, 2)
    syntax: ClassVar[Syntax] = Syntax(**WINDOW_SYNTAX, example="dwconv k3 s2 nobias bn relu6")
    summary: ClassVar[str] = "depthwise convolution (DepthwiseConv1D/2D): one kernel per channel"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        rank, kernel, strides, dilation = self.window(x, graph)
        op = DepthwiseConvOp(kernel, strides, self.padding, self.bias, self.multiplier, dilation, rank)
        return apply_post(graph, graph.call(op, x), self.post)


class SeparableConv(WindowLayer):
    """`sepconv F [kK] [sS] [dD] [multiplier=M] [same|valid] [nobias] [activation|bn ...]`: a depthwise conv
    then a pointwise (1x1) conv to F filters, in one Keras SeparableConv2D (SeparableConv1D on a sequence)."""

    kind: Literal["sepconv"] = "sepconv"
    filters: PositiveInt
    multiplier: PositiveInt = 1

    ranks: ClassVar[tuple[int, ...]] = (1, 2)
    syntax: ClassVar[Syntax] = Syntax(positional=("filters",), **WINDOW_SYNTAX, example="sepconv 128 k3 nobias bn")
    summary: ClassVar[str] = "separable convolution (SeparableConv1D/2D): depthwise, then pointwise to F filters"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        rank, kernel, strides, dilation = self.window(x, graph)
        op = SeparableConvOp(kernel, strides, self.padding, self.bias, self.multiplier, dilation, rank, self.filters)
        return apply_post(graph, graph.call(op, x), self.post)
