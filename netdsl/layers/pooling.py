"""Pooling: windowed (`maxpool`, `avgpool`) and global (`gmp`, `gap`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from netdsl.ir import Layer
from netdsl.layers.base import (
    Graph,
    Op,
    ReceptiveField,
    Shape,
    Syntax,
    Tensor,
    require_rank,
    window_output,
)
from netdsl.layers.conv import Pair

KERAS_POOL = {"max": "MaxPooling2D", "avg": "AveragePooling2D"}
KERAS_GLOBAL = {"max": "GlobalMaxPooling2D", "avg": "GlobalAveragePooling2D"}


@dataclass(frozen=True)
class Pool2DOp(Op):
    mode: str  # "max" | "avg"
    pool: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    padding: str = "valid"

    @property
    def keras_class(self) -> str:  # type: ignore[override]
        return KERAS_POOL[self.mode]

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return "max_pooling2d" if self.mode == "max" else "average_pooling2d"

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        require_rank(self.prefix, shape, 3, "(batch, height, width, channels)")
        out = window_output(
            shape, self.pool, self.strides, self.padding, f"{self.mode}pool {self.pool[0]}x{self.pool[1]} with '{self.padding}' padding",
            help="use 'same' padding or a smaller window",
        )  # fmt: skip
        return (*out, shape[2])

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return 0

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.pool, self.strides) if inputs[0] else None

    def keras_args(self) -> dict[str, Any]:
        pool = self.pool[0] if self.pool[0] == self.pool[1] else self.pool
        strides = self.strides[0] if self.strides[0] == self.strides[1] else self.strides
        return {"pool_size": pool, "strides": strides, "padding": self.padding}


POOL_SYNTAX = Syntax(
    positional=("pool",),
    prefixed={"k": "pool", "s": "stride"},
    flags={"same": ("padding", "same"), "valid": ("padding", "valid")},
    aliases={"pool_size": "pool", "strides": "stride", "kernel": "pool"},
    example="maxpool 2",
)


class MaxPool(Layer):
    """`maxpool [K|kK] [sS] [same|valid]`: max pooling; window 2 by default, stride = window."""

    kind: Literal["maxpool"] = "maxpool"
    pool: Pair = (2, 2)
    stride: Pair | None = None
    padding: Literal["same", "valid"] = "valid"

    syntax: ClassVar[Syntax] = POOL_SYNTAX
    summary: ClassVar[str] = "max pooling over a window (default 2x2, stride = window)"
    mode: ClassVar[str] = "max"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(Pool2DOp(self.mode, self.pool, self.stride or self.pool, self.padding), x)


class AvgPool(MaxPool):
    """`avgpool [K|kK] [sS] [same|valid]`: average pooling, same options as maxpool."""

    kind: Literal["avgpool"] = "avgpool"  # type: ignore[assignment]
    syntax: ClassVar[Syntax] = Syntax(**{**POOL_SYNTAX.__dict__, "example": "avgpool k3 s2 same"})
    summary: ClassVar[str] = "average pooling over a window (default 2x2, stride = window)"
    mode: ClassVar[str] = "avg"


@dataclass(frozen=True)
class GlobalPoolOp(Op):
    mode: str

    @property
    def keras_class(self) -> str:  # type: ignore[override]
        return KERAS_GLOBAL[self.mode]

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return "global_max_pooling2d" if self.mode == "max" else "global_average_pooling2d"

    def output_shape(self, *inputs: Shape) -> Shape:
        require_rank(self.prefix, inputs[0], 3, "(batch, height, width, channels)")
        return (inputs[0][2],)

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return None


class GlobalMaxPool(Layer):
    """`gmp`: global max pooling, a feature map to one value per channel."""

    kind: Literal["gmp"] = "gmp"
    syntax: ClassVar[Syntax] = Syntax(example="gmp")
    summary: ClassVar[str] = "global max pooling (feature map -> vector of channels)"
    mode: ClassVar[str] = "max"
    ends_feature_extractor: ClassVar[bool] = True

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(GlobalPoolOp(self.mode), x)


class GlobalAvgPool(GlobalMaxPool):
    """`gap`: global average pooling."""

    kind: Literal["gap"] = "gap"  # type: ignore[assignment]
    syntax: ClassVar[Syntax] = Syntax(example="gap")
    summary: ClassVar[str] = "global average pooling (feature map -> vector of channels)"
    mode: ClassVar[str] = "avg"
