"""Convolutions: `conv` (Conv1D, Conv2D or Conv3D, by the input's rank; dilation and groups) plus optional
activations / batch norms, and `res` (the seed's ResLayer). Depthwise, separable and transposed
convolutions share `WindowLayer` from here (depthwise.py, transpose.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from netdsl.ir import Layer
from netdsl.layers.activation import (
    POST_WORDS,
    ActivationName,
    PostStep,
    apply_post,
    final_activation,
    post_activations,
)
from netdsl.layers.base import (
    AxisSizes,
    Graph,
    RankedOp,
    ReceptiveField,
    Regularized,
    Shape,
    ShapeError,
    Sizes,
    Syntax,
    Tensor,
    Weight,
    check_window,
    compact,
    per_axis,
    rank_of,
    spatial,
    window_output,
)
from netdsl.layers.merge import AddOp

SAME_HELP = "use 'same' padding, a smaller kernel or stride, or a larger input"


def check_dilation(name: str, strides: Sizes, dilation: Sizes) -> None:
    """Keras refuses a stride above 1 together with a dilation above 1 (E320 here, a ValueError there)."""
    if max(strides) > 1 and max(dilation) > 1:
        raise ShapeError(
            "E320", f"{name} cannot combine a stride above 1 with a dilation above 1 (Keras refuses it)",
            help="use s1 with the dilation, and downsample in another layer",
        )  # fmt: skip


@dataclass(frozen=True)
class ConvOp(RankedOp, Regularized):
    """Keras Conv1D/Conv2D/Conv3D (`rank` spatial axes)."""

    filters: int
    kernel: Sizes
    strides: Sizes = (1, 1)
    padding: str = "same"
    use_bias: bool = True
    l2: float = 0.0
    dilation: Sizes = (1, 1)
    groups: int = 1
    rank: int = 2
    activation: str | None = None  # fused into the layer (Keras's `activation=`), not a layer of its own
    keras_template: ClassVar[str] = "Conv{}D"
    prefix_template: ClassVar[str] = "conv{}d"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        check_window(self.prefix, shape, self.rank, kernel=self.kernel, strides=self.strides, dilation=self.dilation)
        check_dilation(self.prefix, self.strides, self.dilation)
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
        what = f"{self.prefix} with kernel {'x'.join(map(str, self.kernel))} and '{self.padding}' padding"
        sizes = window_output(shape, self.kernel, self.strides, self.padding, what, SAME_HELP, self.dilation)
        return (*sizes, self.filters)

    def weights(self, *inputs: Shape) -> list[Weight]:
        kernel = Weight("kernel", (*self.kernel, inputs[0][-1] // self.groups, self.filters))
        return [kernel, Weight("bias", (self.filters,))] if self.use_bias else [kernel]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        per_position = math.prod(self.kernel) * (inputs[0][-1] // self.groups) * self.filters
        return math.prod(spatial(output)) * per_position

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.kernel, self.strides, self.dilation) if inputs[0] else None

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "filters": self.filters,
            "kernel_size": compact(self.kernel),
            "strides": compact(self.strides),
            "padding": self.padding,
        }
        if max(self.dilation) > 1:
            args["dilation_rate"] = compact(self.dilation)
        if self.groups != 1:
            args["groups"] = self.groups
        if not self.use_bias:
            args["use_bias"] = False
        if self.activation:
            args["activation"] = self.activation
        return args


WINDOW_SYNTAX: dict[str, Any] = dict(
    prefixed={"k": "kernel", "s": "stride", "d": "dilation"},
    flags={"same": ("padding", "same"), "valid": ("padding", "valid"), "causal": ("padding", "causal"),
           "nobias": ("bias", False), "bias": ("bias", True)},
    sequence=("post", POST_WORDS),
    aliases={"kernel_size": "kernel", "strides": "stride", "use_bias": "bias", "dilation_rate": "dilation",
             "depth_multiplier": "multiplier"},
)  # fmt: skip
"""The arguments every convolution shares: `k3x5 s2 d2 same nobias`, then activations and `bn`."""


class WindowLayer(Layer):
    """What every convolution statement has: kernel, stride, dilation, padding, bias and post-ops. Sizes are
    kept as written (`k3` is (3,)) and spread over the input's spatial axes when the layer is applied."""

    kernel: AxisSizes = (3,)
    stride: AxisSizes = (1,)
    dilation: AxisSizes = (1,)
    padding: Literal["same", "valid"] = "same"
    bias: bool = True
    post: tuple[PostStep, ...] = ()

    ranks: ClassVar[tuple[int, ...]] = (1, 2, 3)  # the spatial ranks Keras has this layer for

    def window(self, x: Tensor, graph: Graph) -> tuple[int, Sizes, Sizes, Sizes]:
        """The spatial rank this statement builds for, and its kernel, strides and dilation per axis."""
        rank = rank_of(graph.shape(x), self.ranks)
        return rank, per_axis(self.kernel, rank), per_axis(self.stride, rank), per_axis(self.dilation, rank)


class Conv(WindowLayer):
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
        rank, kernel, strides, dilation = self.window(x, graph)
        op = ConvOp(self.filters, kernel, strides, self.padding, self.bias, self.l2, dilation, self.groups, rank,
                    self.activation)  # fmt: skip
        return apply_post(graph, graph.call(op, x), self.post)

    def output_activation(self) -> str | None:
        return final_activation(self.post) or self.activation

    def activations(self) -> tuple[str, ...]:
        return post_activations(self.post, self.activation)


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
        op = ConvOp(self.filters, per_axis(self.kernel, rank), (1,) * rank, "same", self.bias, self.l2,
                    (1,) * rank, 1, rank)  # fmt: skip
        branch = apply_post(graph, graph.call(op, x), self.post)
        return graph.call(AddOp(), x, branch)
