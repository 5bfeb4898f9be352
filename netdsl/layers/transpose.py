"""Transposed convolution: `deconv` (Keras Conv1DTranspose/Conv2DTranspose/Conv3DTranspose), the upsampling
convolution of decoders and U-Nets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from netdsl.layers.activation import Activated
from netdsl.layers.base import (
    AxisCounts,
    AxisSizes,
    Graph,
    ReceptiveField,
    Regularized,
    Shape,
    ShapeError,
    Sizes,
    Syntax,
    Tensor,
    Weight,
    compact,
    fmt_shape,
    per_axis,
    spatial,
)
from netdsl.layers.window import WINDOW_SYNTAX, WindowLayer, WindowOp, with_bias


def transposed_length(
    size: int, kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int:
    """Keras's output length of a transposed convolution along one axis
    (keras/src/backend/common/backend_utils.py, `_get_output_shape_given_tf_padding`)."""
    kernel = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(kernel, stride) - kernel if output_padding is None else output_padding
        return (size - 1) * stride + kernel + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + kernel % 2 + output_padding


@dataclass(frozen=True)
class ConvTransposeOp(WindowOp, Regularized):
    filters: int
    output_padding: Sizes | None = None
    l2: float = 0.0
    keras_template: ClassVar[str] = "Conv{}DTranspose"
    prefix_template: ClassVar[str] = "conv{}d_transpose"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        self.check(shape, self.prefix, output_padding=self.output_padding)
        pads = self.output_padding or (None,) * self.rank
        if any(p is not None and p >= s for p, s in zip(pads, self.strides)):
            raise ShapeError(
                "E320", f"{self.prefix} output_padding {'x'.join(map(str, pads))} must be smaller than the stride "
                f"{'x'.join(map(str, self.strides))} on every axis (Keras refuses it)",
            )  # fmt: skip
        axes = zip(spatial(shape), self.kernel, self.strides, self.dilation, pads)
        sizes = tuple(transposed_length(n, k, s, d, self.padding, p) for n, k, s, d, p in axes)
        if min(sizes) < 1:  # 'same' with output_padding=0 and an even kernel on a size-1 axis
            raise ShapeError(
                "E303", f"{self.prefix} with kernel {'x'.join(map(str, self.kernel))}, 'same' padding and "
                f"output_padding {'x'.join(map(str, pads))} shrinks {fmt_shape(shape)} to nothing",
                help="leave output_padding out, or use 'valid' padding",
            )  # fmt: skip
        return (*sizes, self.filters)

    def weights(self, *inputs: Shape) -> list[Weight]:
        return with_bias([Weight("kernel", (*self.kernel, self.filters, inputs[0][-1]))], self.filters, self.use_bias)

    def macs(self, output: Shape, *inputs: Shape) -> int:
        # Every input position is spread over a kernel's worth of outputs, for each filter.
        return math.prod(spatial(inputs[0])) * math.prod(self.kernel) * inputs[0][-1] * self.filters

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return None  # an output position's jump would be a fraction of an input pixel: not tracked

    def own_args(self) -> dict[str, Any]:
        padding = {"output_padding": compact(self.output_padding)} if self.output_padding is not None else {}
        return {"filters": self.filters, **padding}


class ConvTranspose(Activated, WindowLayer):
    """`deconv F [kK] [sS] [dD] [output_padding=P] [same|valid] [nobias] [l2=X] [activation|bn ...]`: a transposed
    convolution to F filters (Conv2DTranspose; 1-D and 3-D by the input's rank). `deconv 64 k2 s2` doubles
    the map's size; stride defaults to 2, padding to `same`."""

    kind: Literal["deconv"] = "deconv"
    filters: PositiveInt
    stride: AxisSizes = (2,)
    output_padding: AxisCounts | None = None
    l2: float = Field(0.0, ge=0)

    syntax: ClassVar[Syntax] = Syntax(
        positional=("filters",),
        **WINDOW_SYNTAX,
        example="deconv 64 k3 s2 output_padding=1 relu",
    )
    summary: ClassVar[str] = "transposed convolution (Conv2DTranspose, 1-D/3-D by rank): upsampling by the stride"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        window = self.window(x, graph)
        padding = per_axis(self.output_padding, window["rank"]) if self.output_padding is not None else None
        return self.with_post(ConvTransposeOp(self.filters, padding, self.l2, **window), x, graph)
