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
        # Keras's element-wise rule (Merge._compute_elemwise_op_output_shape): axes must be equal,
        # or one of them 1, which broadcasts. So `res 8` on a 1-channel input builds in Keras.
        shape = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(shape) or any(a != b and 1 not in (a, b) for a, b in zip(shape, other)):
                raise ShapeError(
                    "E304",
                    f"the residual add's two inputs have different shapes: {fmt_shape(inputs[0])} "
                    f"(the shortcut) and {fmt_shape(other)} (the branch)",
                    help="a residual branch must keep its input's shape: same number of filters, stride 1",
                )
            shape = tuple(b if a == 1 else a for a, b in zip(shape, other))
        return shape

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        if all(other == inputs[0] for other in inputs[1:]):
            return []
        return [(
            "W404",
            f"the residual add broadcasts {fmt_shape(inputs[0])} (the shortcut) and {fmt_shape(inputs[1])} "
            f"(the branch) to {fmt_shape(self.output_shape(*inputs))}; Keras accepts this, but a size-1 axis "
            "is repeated rather than added element by element",
        )]  # fmt: skip

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return widest(list(inputs))
