"""Convolutions: `conv` (Conv2D plus optional activations / batch norms) and `res` (the seed's ResLayer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PositiveInt

from netdsl.ir import Layer
from netdsl.layers.activation import POST_WORDS, PostWord, apply_post, final_activation
from netdsl.layers.base import (
    Code,
    Graph,
    Op,
    ReceptiveField,
    Shape,
    Syntax,
    Tensor,
    Weight,
    per_axis,
    require_rank,
    window_output,
)
from netdsl.layers.merge import AddOp

Pair = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(lambda value: per_axis(value, 2))]


@dataclass(frozen=True)
class Conv2DOp(Op):
    filters: int
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "same"
    use_bias: bool = True
    l2: float = 0.0
    keras_class: ClassVar[str] = "Conv2D"
    prefix: ClassVar[str] = "conv2d"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        require_rank("conv2d", shape, 3, "(batch, height, width, channels)")
        out = window_output(
            shape, self.kernel, self.strides, self.padding, f"conv2d with kernel {self.kernel[0]}x{self.kernel[1]} and '{self.padding}' padding",
            help="use 'same' padding, a smaller kernel or stride, or a larger input",
        )  # fmt: skip
        return (*out, self.filters)

    def weights(self, *inputs: Shape) -> list[Weight]:
        kernel = Weight("kernel", (*self.kernel, inputs[0][-1], self.filters))
        return [kernel, Weight("bias", (self.filters,))] if self.use_bias else [kernel]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return output[0] * output[1] * self.filters * self.kernel[0] * self.kernel[1] * inputs[0][-1]

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.kernel, self.strides) if inputs[0] else None

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "filters": self.filters,
            "kernel_size": self.kernel if self.kernel[0] != self.kernel[1] else self.kernel[0],
            "strides": self.strides if self.strides[0] != self.strides[1] else self.strides[0],
            "padding": self.padding,
        }
        if not self.use_bias:
            args["use_bias"] = False
        return args

    def to_keras(self, keras: Any, name: str) -> Any:
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None
        return keras.layers.Conv2D(name=name, kernel_regularizer=regularizer, **self.keras_args())

    def source_args(self) -> dict[str, Any]:
        regularizer = {"kernel_regularizer": Code(f"regularizers.L2({self.l2!r})")} if self.l2 else {}
        return {**self.keras_args(), **regularizer}


CONV_SYNTAX = dict(
    prefixed={"k": "kernel", "s": "stride"},
    flags={"same": ("padding", "same"), "valid": ("padding", "valid"),
           "nobias": ("bias", False), "bias": ("bias", True)},
    sequence=("post", POST_WORDS),
    aliases={"kernel_size": "kernel", "strides": "stride", "use_bias": "bias"},
)  # fmt: skip


class Conv(Layer):
    """`conv F [kK] [sS] [same|valid] [nobias] [l2=X] [activation|bn ...]`: Conv2D, then the
    activations and batch norms written after it, in that order (`relu bn` is the seed's ConvLayer
    order; `bn relu` the modern one). Padding defaults to `same`."""

    kind: Literal["conv"] = "conv"
    filters: PositiveInt
    kernel: Pair = (3, 3)
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] = "same"
    bias: bool = True
    l2: float = Field(0.0, ge=0)
    post: tuple[PostWord, ...] = ()

    syntax: ClassVar[Syntax] = Syntax(
        positional=("filters",), **CONV_SYNTAX, example="conv 20 k3 s2 nobias l2=1e-6 relu bn"
    )
    summary: ClassVar[str] = "2-D convolution, optionally followed by activations / batch norms"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        op = Conv2DOp(self.filters, self.kernel, self.stride, self.padding, self.bias, self.l2)
        return apply_post(graph, graph.call(op, x), self.post)

    def output_activation(self) -> str | None:
        return final_activation(self.post)


class Res(Layer):
    """`res F [kK]`: the seed's ResLayer, `add([x, ConvLayer(x)])` with a stride-1, same-padded
    conv. Its branch defaults to the seed's ConvLayer (no bias, L2 1e-6, relu, then bn); any of
    conv's options override that."""

    kind: Literal["res"] = "res"
    filters: PositiveInt
    kernel: Pair = (3, 3)
    bias: bool = False
    l2: float = Field(1e-6, ge=0)
    post: tuple[PostWord, ...] = ("relu", "bn")

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
        op = Conv2DOp(self.filters, self.kernel, (1, 1), "same", self.bias, self.l2)
        branch = apply_post(graph, graph.call(op, x), self.post)
        return graph.call(AddOp(), x, branch)
