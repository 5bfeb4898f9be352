"""Depthwise convolution (Keras DepthwiseConv2D): one kernel per input channel, as in MobileNetV2's blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netdsl.layers.base import Op, ReceptiveField, Shape, Weight, require_rank, window_output


@dataclass(frozen=True)
class DepthwiseConv2DOp(Op):
    kernel: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    use_bias: bool = True
    depth_multiplier: int = 1
    keras_class: ClassVar[str] = "DepthwiseConv2D"
    prefix: ClassVar[str] = "depthwise_conv2d"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        # Worded as Conv2D's messages were before (the analyzer's tests and docs show these).
        require_rank("conv2d", shape, 3, "(batch, height, width, channels)")
        height, width = window_output(
            shape, self.kernel, self.strides, self.padding, f"conv2d with kernel {self.kernel[0]}x{self.kernel[1]} and '{self.padding}' padding",
            help="use 'same' padding, a smaller kernel or stride, or a larger input",
        )  # fmt: skip
        return (height, width, shape[2] * self.depth_multiplier)

    def weights(self, *inputs: Shape) -> list[Weight]:
        channels = inputs[0][-1]
        kernel = Weight("kernel", (*self.kernel, channels, self.depth_multiplier))
        return [kernel, Weight("bias", (channels * self.depth_multiplier,))] if self.use_bias else [kernel]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return output[0] * output[1] * output[2] * self.kernel[0] * self.kernel[1]

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.kernel, self.strides) if inputs[0] else None

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"kernel_size": self.kernel, "strides": self.strides, "padding": self.padding}
        if not self.use_bias:
            args["use_bias"] = False
        if self.depth_multiplier != 1:
            args["depth_multiplier"] = self.depth_multiplier
        return args
