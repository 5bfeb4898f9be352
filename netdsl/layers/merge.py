"""Element-wise merges of two branches (used by `res`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netdsl.layers.base import Op, ReceptiveField, Shape, ShapeError, fmt_shape, widest


@dataclass(frozen=True)
class AddOp(Op):
    keras_class: ClassVar[str] = "Add"
    prefix: ClassVar[str] = "add"

    def output_shape(self, *inputs: Shape) -> Shape:
        first = inputs[0]
        for other in inputs[1:]:
            if other != first:
                raise ShapeError(
                    "E304",
                    f"the residual add's two inputs have different shapes: {fmt_shape(first)} "
                    f"(the shortcut) and {fmt_shape(other)} (the branch)",
                    help="a residual branch must keep its input's shape: same number of filters, stride 1",
                )
        return first

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return widest(list(inputs))
