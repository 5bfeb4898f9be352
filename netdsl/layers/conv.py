"""Convolutions: `conv` (Conv1D, Conv2D or Conv3D, by the input's rank; dilation and groups) plus optional
activations / batch norms, and `res` (the seed's ResLayer). What every convolution shares (the window's
arguments, checks and Keras arguments) is their family base, window.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from netdsl.ir import Layer
from netdsl.layers.activation import POST_WORDS, Activated, ActivationName, PostStep, apply_post
from netdsl.layers.base import (
    AxisSizes,
    Graph,
    Regularized,
    Shape,
    ShapeError,
    Syntax,
    Tensor,
    Weight,
    per_axis,
    rank_of,
    spatial,
)
from netdsl.layers.merge import AddOp
from netdsl.layers.window import WINDOW_SYNTAX, WindowLayer, WindowOp, with_bias


@dataclass(frozen=True)
class ConvOp(WindowOp, Regularized):
    """Keras Conv1D/Conv2D/Conv3D (`rank` spatial axes)."""

    filters: int
    l2: float = 0.0
    groups: int = 1
    activation: str | None = None  # fused into the layer (Keras's `activation=`), not a layer of its own
    keras_template: ClassVar[str] = "Conv{}D"
    prefix_template: ClassVar[str] = "conv{}d"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        self.check(shape, self.prefix)
        if self.padding == "causal" and self.rank != 1:
            raise ShapeError(
                "E320", f"{self.prefix} has no 'causal' padding (Keras's Conv1D has, for sequences)",
                help="use 'same' or 'valid' padding on an image or a volume",
            )  # fmt: skip
        for what, count in (("filters", self.filters), ("input channels", shape[-1])):
            if count % self.groups:
                raise ShapeError(
                    "E320", f"{self.prefix} groups={self.groups} does not divide the {what} ({count})",
                    help="Keras splits filters and input channels into `groups` equal parts",
                )  # fmt: skip
        return (*self.sliding_output(shape, self.prefix), self.filters)

    def weights(self, *inputs: Shape) -> list[Weight]:
        kernel = Weight("kernel", (*self.kernel, inputs[0][-1] // self.groups, self.filters))
        return with_bias([kernel], self.filters, self.use_bias)

    def macs(self, output: Shape, *inputs: Shape) -> int:
        per_position = math.prod(self.kernel) * (inputs[0][-1] // self.groups) * self.filters
        return math.prod(spatial(output)) * per_position

    def own_args(self) -> dict[str, Any]:
        groups = {"groups": self.groups} if self.groups != 1 else {}
        return {"filters": self.filters, **groups, **({"activation": self.activation} if self.activation else {})}


class Conv(Activated, WindowLayer):
    """`conv F [kK] [sS] [dD] [groups=G] [same|valid|causal] [nobias] [l2=X] [activation=A] [activation|bn ...]`:
    Conv1D on a sequence (length, channels; `causal` padding looks only backwards), Conv2D on an image, Conv3D on a volume; then the activations
    and batch norms written after it, in that order (`relu bn` is the seed's ConvLayer order; `bn relu` the
    modern one). `activation=relu` is fused into the conv (Keras's `Conv2D(activation='relu')`, as VGG16
    writes it: no layer of its own). Padding defaults to `same`."""

    kind: Literal["conv"] = "conv"
    filters: PositiveInt
    padding: Literal["same", "valid", "causal"] = "same"  # type: ignore[assignment]  (causal: Conv1D only)
    groups: PositiveInt = 1
    l2: float = Field(0.0, ge=0)
    activation: ActivationName | None = None

    syntax: ClassVar[Syntax] = Syntax(
        positional=("filters",), **WINDOW_SYNTAX, example="conv 20 k3 s2 nobias l2=1e-6 relu bn"
    )
    summary: ClassVar[str] = "convolution (Conv1D/2D/3D by the input's rank), then optional activations / bn"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        op = ConvOp(self.filters, self.l2, self.groups, self.activation, **self.window(x, graph))
        return self.with_post(op, x, graph)


class Res(Layer):
    """`res F [kK]`: the seed's ResLayer, `add([x, ConvLayer(x)])` with a stride-1, same-padded
    conv. Its branch defaults to the seed's ConvLayer (no bias, L2 1e-6, relu, then bn); any of
    conv's options override that."""

    kind: Literal["res"] = "res"
    filters: PositiveInt
    kernel: AxisSizes = (3,)
    bias: bool = False
    l2: float = Field(1e-6, ge=0)
    post: tuple[PostStep, ...] = ("relu", "bn")

    syntax: ClassVar[Syntax] = Syntax(
        positional=("filters",),
        prefixed={"k": "kernel"},
        flags={"nobias": ("bias", False), "bias": ("bias", True)},
        sequence=("post", POST_WORDS),
        aliases={"kernel_size": "kernel", "use_bias": "bias"},
        example="res 20 k3",
    )
    summary: ClassVar[str] = "residual block: x + conv(x) (stride 1, same padding)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        rank = rank_of(graph.shape(x))
        op = ConvOp(self.filters, self.l2, kernel=per_axis(self.kernel, rank), strides=(1,) * rank,
                    use_bias=self.bias, dilation=(1,) * rank, rank=rank)  # fmt: skip
        branch = apply_post(graph, graph.call(op, x), self.post)
        return graph.call(AddOp(), x, branch)
