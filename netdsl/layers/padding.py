"""Resampling and reshaping: `upsample` (UpSampling1D/2D/3D), `zeropad` (ZeroPadding1D/2D/3D: also the
explicit padding of ResNet's stem and MobileNetV2's strided blocks), `crop` (Cropping1D/2D/3D),
`reshape` and `permute`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PositiveInt, ValidationInfo, field_validator

from netdsl.ir import Layer
from netdsl.layers.base import (
    AxisCounts,
    AxisSizes,
    Graph,
    Op,
    RankedOp,
    ReceptiveField,
    Shape,
    ShapeError,
    Sizes,
    Syntax,
    Tensor,
    check_window,
    fmt_shape,
    per_axis,
    rank_of,
    spatial,
)

Padding = tuple[tuple[int, int], ...]
"""(before, after) per spatial axis: ((top, bottom), (left, right)) on an image."""


def correct_pad(size: Sizes, half: int) -> Padding:
    """Keras's `imagenet_utils.correct_pad` for a kernel of `2*half+1`: one less before the data on an even
    side, so that a stride-2 'valid' convolution lines up as TensorFlow's 'same' would."""
    return tuple((half - (1 - n % 2), half) for n in size)


def sides(counts: Sizes, rank: int) -> Padding | None:
    """`1` (every side), `1x2` (per axis, both sides) or `0x1x0x1` ((before, after) per axis) -> Padding;
    None when the count of sizes fits none of these for `rank` spatial axes."""
    if len(counts) in (1, rank):
        return tuple((n, n) for n in per_axis(counts, rank))
    if len(counts) == 2 * rank:
        return tuple((counts[2 * i], counts[2 * i + 1]) for i in range(rank))
    return None


@dataclass(frozen=True)
class ZeroPaddingOp(RankedOp):
    """`padding` (before, after) per axis; or, when `correct` is set, Keras's `correct_pad` for a kernel of
    2*correct+1, which depends on the input's size and so is computed here, per input."""

    padding: Padding = ((1, 1), (1, 1))
    correct: int | None = None
    rank: int = 2
    written: Sizes = ()  # the sizes as the statement wrote them, when they fit no reading (E320)
    sign: ClassVar[int] = 1
    keras_template: ClassVar[str] = "ZeroPadding{}D"
    prefix_template: ClassVar[str] = "zero_padding{}d"

    def resolved(self, shape: Shape) -> Padding:
        return correct_pad(spatial(shape), self.correct) if self.correct is not None else self.padding

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        check_window(self.prefix, shape, self.rank)
        if self.written:
            raise ShapeError(
                "E320", f"{self.prefix} {'x'.join(map(str, self.written))} has {len(self.written)} sizes for the "
                f"input {fmt_shape(shape)}", help=f"write one size, one per spatial axis ({self.rank}), or a "
                f"before/after pair per axis ({2 * self.rank})",
            )  # fmt: skip
        sizes = tuple(n + self.sign * (a + b) for n, (a, b) in zip(spatial(shape), self.resolved(shape)))
        if min(sizes) < 1:
            raise ShapeError("E303", f"{self.prefix} of {self.padding} crops {fmt_shape(shape)} to nothing")
        return (*sizes, shape[-1])

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0]  # padding or cropping adds no context to a position; it only moves the grid

    def keras_args(self) -> dict[str, Any]:
        return {("cropping" if self.sign < 0 else "padding"): self.padding[0] if self.rank == 1 else self.padding}


@dataclass(frozen=True)
class CroppingOp(ZeroPaddingOp):
    sign: ClassVar[int] = -1
    keras_template: ClassVar[str] = "Cropping{}D"
    prefix_template: ClassVar[str] = "cropping{}d"


class ZeroPad(Layer):
    """`zeropad P`: zeros around the spatial axes (ZeroPadding2D; 1-D/3-D by rank). `zeropad 1` pads every
    side by 1, `zeropad 1x2` the height by 1 and the width by 2 on both sides, `zeropad 0x1x0x1` gives
    (before, after) per axis: ((0, 1), (0, 1)), as MobileNetV2 pads before a stride-2 conv.
    `zeropad correct=K` is keras.applications' `correct_pad(x, K)` for a K-wide window, computed from the
    input's size (one less before the data on an even side), so a spec pads as Keras does at any size."""

    kind: Literal["zeropad"] = "zeropad"
    sizes: AxisCounts | None = None  # None: 1 on every side, unless `correct` computes them
    correct: Annotated[int, Field(ge=2)] | None = None  # a window of 1 has nothing to centre (Keras's would pad -1)

    syntax: ClassVar[Syntax] = Syntax(positional=("sizes",), aliases={"padding": "sizes"}, example="zeropad 0x1x0x1")
    summary: ClassVar[str] = "zero padding around the spatial axes (ZeroPadding1D/2D/3D by rank)"
    op: ClassVar[type[ZeroPaddingOp]] = ZeroPaddingOp

    @field_validator("correct")
    @classmethod
    def _alone(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and cls.model_fields["kind"].default != "zeropad":
            raise ValueError("is zeropad's alone (Keras's correct_pad pads; nothing crops that way)")
        if value is not None and info.data.get("sizes") is not None:
            raise ValueError("must be written without sizes (it computes them)")
        return value

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        shape = graph.shape(x)
        rank = rank_of(shape)
        if self.correct is not None:  # resolved here, so the op (and Keras, and emitted code) see plain numbers
            padding: Padding | None = correct_pad(spatial(shape), self.correct // 2)
        else:
            padding = sides(self.sizes or (1,), rank)
        written = () if padding else self.sizes or (1,)
        return graph.call(self.op(padding or (), rank=rank, written=written), x)


class Crop(ZeroPad):
    """`crop P`: removes P rows/columns at the sides (Cropping2D; 1-D/3-D by rank), sizes as for zeropad."""

    kind: Literal["crop"] = "crop"  # type: ignore[assignment]
    syntax: ClassVar[Syntax] = Syntax(positional=("sizes",), aliases={"cropping": "sizes"}, example="crop 2x2")
    summary: ClassVar[str] = "cropping of the spatial axes (Cropping1D/2D/3D by rank)"
    op: ClassVar[type[ZeroPaddingOp]] = CroppingOp


@dataclass(frozen=True)
class UpSamplingOp(RankedOp):
    size: Sizes = (2, 2)
    interpolation: str = "nearest"
    rank: int = 2
    keras_template: ClassVar[str] = "UpSampling{}D"
    prefix_template: ClassVar[str] = "up_sampling{}d"
    keeps_positions: ClassVar[bool] = False  # an output's jump would be a fraction of an input pixel: not tracked

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        check_window(self.prefix, shape, self.rank, size=self.size)
        if self.interpolation != "nearest" and self.rank != 2:
            raise ShapeError("E320", f"{self.prefix} has no interpolation= (only UpSampling2D does)")
        return (*(n * s for n, s in zip(spatial(shape), self.size)), shape[-1])

    def keras_args(self) -> dict[str, Any]:
        size = self.size[0] if self.rank == 1 else tuple(self.size)
        return {"size": size, **({"interpolation": self.interpolation} if self.rank == 2 else {})}


class UpSample(Layer):
    """`upsample [N|NxM] [nearest|bilinear]`: repeats rows and columns N times (UpSampling2D; 1-D and 3-D by
    rank, nearest only); default 2. `bilinear` interpolates instead (2-D)."""

    kind: Literal["upsample"] = "upsample"
    size: AxisSizes = (2,)
    interpolation: Literal["nearest", "bilinear"] = "nearest"

    syntax: ClassVar[Syntax] = Syntax(
        positional=("size",),
        flags={"nearest": ("interpolation", "nearest"), "bilinear": ("interpolation", "bilinear")},
        example="upsample 2 bilinear",
    )
    summary: ClassVar[str] = "upsampling by repetition or bilinear interpolation (UpSampling1D/2D/3D by rank)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        rank = rank_of(graph.shape(x))
        return graph.call(UpSamplingOp(per_axis(self.size, rank), self.interpolation, rank), x)


def _sizes(value: Any) -> Any:
    return (value,) if isinstance(value, int) and not isinstance(value, bool) else value


Sizes_ = Annotated[tuple[PositiveInt, ...], BeforeValidator(_sizes)]


@dataclass(frozen=True)
class ReshapeOp(Op):
    target: Sizes
    keras_class: ClassVar[str] = "Reshape"
    prefix: ClassVar[str] = "reshape"
    keeps_positions: ClassVar[bool] = False

    def output_shape(self, *inputs: Shape) -> Shape:
        if math.prod(self.target) != math.prod(inputs[0]):
            raise ShapeError(
                "E320", f"reshape to {fmt_shape(self.target)} needs {math.prod(self.target):,} elements, "
                f"the input {fmt_shape(inputs[0])} has {math.prod(inputs[0]):,}",
            )  # fmt: skip
        return tuple(self.target)

    def keras_args(self) -> dict[str, Any]:
        return {"target_shape": tuple(self.target)}


class Reshape(Layer):
    """`reshape 4x4x8`: Keras Reshape to that shape (batch axis excluded); the element count must agree."""

    kind: Literal["reshape"] = "reshape"
    target: Sizes_

    syntax: ClassVar[Syntax] = Syntax(
        positional=("target",), aliases={"target_shape": "target"}, example="reshape 4x4x8"
    )
    summary: ClassVar[str] = "reshape to the given shape (the same number of elements)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(ReshapeOp(self.target), x)


@dataclass(frozen=True)
class PermuteOp(Op):
    dims: Sizes
    keras_class: ClassVar[str] = "Permute"
    prefix: ClassVar[str] = "permute"
    keeps_positions: ClassVar[bool] = False

    def output_shape(self, *inputs: Shape) -> Shape:
        if len(self.dims) != len(inputs[0]):
            raise ShapeError(
                "E320", f"permute {'x'.join(map(str, self.dims))} names {len(self.dims)} axes, the input "
                f"{fmt_shape(inputs[0])} has {len(inputs[0])} (the batch axis is not counted)",
            )  # fmt: skip
        return tuple(inputs[0][d - 1] for d in self.dims)

    def keras_args(self) -> dict[str, Any]:
        return {"dims": tuple(self.dims)}


class Permute(Layer):
    """`permute 2x1x3`: Keras Permute, reordering the axes (numbered from 1, the batch axis excluded)."""

    kind: Literal["permute"] = "permute"
    dims: Sizes_

    syntax: ClassVar[Syntax] = Syntax(positional=("dims",), example="permute 2x1x3")
    summary: ClassVar[str] = "reorder the axes (1-based, batch excluded): permute 2x1 swaps a sequence's axes"

    @field_validator("dims")
    @classmethod
    def _a_permutation(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if sorted(value) != list(range(1, len(value) + 1)):
            raise ValueError(f"must be an order of the axes 1 to {len(value)}, each once")
        return value

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(PermuteOp(self.dims), x)
