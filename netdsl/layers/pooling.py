"""Pooling: windowed (`maxpool`, `avgpool`) and global (`gmp`, `gap`), each MaxPooling1D/2D/3D (and so on)
by the input's rank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from netdsl.ir import Layer
from netdsl.layers.base import (
    AxisSizes,
    Graph,
    Op,
    ReceptiveField,
    Shape,
    Sizes,
    Syntax,
    Tensor,
    check_window,
    compact,
    per_axis,
    rank_of,
    window_output,
)

KERAS_NAME = {"max": ("MaxPooling", "max_pooling"), "avg": ("AveragePooling", "average_pooling")}


class ModeOp(Op):
    """A pooling op, whose Keras class follows its `mode` and `rank` (fields of the subclass): the templates
    take Keras's word for the mode and the rank, `{}{}D` -> MaxPooling2D, `Global{}{}D` -> GlobalAveragePooling1D."""

    keras_template: ClassVar[str] = "{}{}D"
    prefix_template: ClassVar[str] = "{}{}d"

    @property
    def keras_class(self) -> str:  # type: ignore[override]
        return self.keras_template.format(KERAS_NAME[self.mode][0], self.rank)  # type: ignore[attr-defined]

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.prefix_template.format(KERAS_NAME[self.mode][1], self.rank)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PoolOp(ModeOp):
    mode: str  # "max" | "avg"
    pool: Sizes = (2, 2)
    strides: Sizes = (2, 2)
    padding: str = "valid"
    rank: int = 2

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        check_window(self.prefix, shape, self.rank, pool=self.pool, strides=self.strides)
        out = window_output(
            shape, self.pool, self.strides, self.padding, f"{self.mode}pool {'x'.join(map(str, self.pool))} with '{self.padding}' padding",
            help="use 'same' padding or a smaller window",
        )  # fmt: skip
        return (*out, shape[-1])

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.pool, self.strides) if inputs[0] else None

    def keras_args(self) -> dict[str, Any]:
        return {"pool_size": compact(self.pool), "strides": compact(self.strides), "padding": self.padding}


POOL_SYNTAX = Syntax(
    positional=("pool",),
    prefixed={"k": "pool", "s": "stride"},
    flags={"same": ("padding", "same"), "valid": ("padding", "valid")},
    aliases={"pool_size": "pool", "strides": "stride", "kernel": "pool"},
    example="maxpool 2",
)


class MaxPool(Layer):
    """`maxpool [K|kK] [sS] [same|valid]`: max pooling (MaxPooling1D/2D/3D by the input's rank); window 2 by
    default, stride = window."""

    kind: Literal["maxpool"] = "maxpool"
    pool: AxisSizes = (2,)
    stride: AxisSizes | None = None
    padding: Literal["same", "valid"] = "valid"

    syntax: ClassVar[Syntax] = POOL_SYNTAX
    summary: ClassVar[str] = "max pooling over a window (default 2, stride = window; 1-D/2-D/3-D by rank)"
    mode: ClassVar[str] = "max"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        rank = rank_of(graph.shape(x))
        pool = per_axis(self.pool, rank)
        strides = per_axis(self.stride, rank) if self.stride is not None else pool
        return graph.call(PoolOp(self.mode, pool, strides, self.padding, rank), x)


class AvgPool(MaxPool):
    """`avgpool [K|kK] [sS] [same|valid]`: average pooling, same options as maxpool."""

    kind: Literal["avgpool"] = "avgpool"  # type: ignore[assignment]
    syntax: ClassVar[Syntax] = Syntax(**{**POOL_SYNTAX.__dict__, "example": "avgpool k3 s2 same"})
    summary: ClassVar[str] = "average pooling over a window (default 2, stride = window; 1-D/2-D/3-D by rank)"
    mode: ClassVar[str] = "avg"


@dataclass(frozen=True)
class GlobalPoolOp(ModeOp):
    mode: str
    keepdims: bool = False
    rank: int = 2
    keras_template: ClassVar[str] = "Global{}{}D"
    prefix_template: ClassVar[str] = "global_{}{}d"
    keeps_positions: ClassVar[bool] = False  # every output sees the whole input

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        check_window(self.prefix, shape, self.rank)
        return (*(1,) * self.rank, shape[-1]) if self.keepdims else (shape[-1],)

    def keras_args(self) -> dict[str, Any]:
        return {"keepdims": True} if self.keepdims else {}


class GlobalMaxPool(Layer):
    """`gmp [keepdims]`: global max pooling, a feature map (or sequence) to one value per channel; with
    `keepdims`, kept as a 1x1 map (Keras's keepdims=True), as squeeze-and-excitation blocks need."""

    kind: Literal["gmp"] = "gmp"
    keepdims: bool = False

    syntax: ClassVar[Syntax] = Syntax(flags={"keepdims": ("keepdims", True)}, example="gmp")
    summary: ClassVar[str] = "global max pooling (feature map -> vector of channels; `keepdims` keeps 1x1)"
    mode: ClassVar[str] = "max"
    ends_feature_extractor: ClassVar[bool] = True

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(GlobalPoolOp(self.mode, self.keepdims, rank_of(graph.shape(x))), x)


class GlobalAvgPool(GlobalMaxPool):
    """`gap [keepdims]`: global average pooling."""

    kind: Literal["gap"] = "gap"  # type: ignore[assignment]
    syntax: ClassVar[Syntax] = Syntax(flags={"keepdims": ("keepdims", True)}, example="gap keepdims")
    summary: ClassVar[str] = "global average pooling (feature map -> vector of channels; `keepdims` keeps 1x1)"
    mode: ClassVar[str] = "avg"
