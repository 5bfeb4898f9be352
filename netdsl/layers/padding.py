"""Zero padding (Keras ZeroPadding2D): the explicit padding of ResNet's stem and MobileNetV2's strided blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netdsl.layers.base import Op, ReceptiveField, Shape, require_rank

Padding = tuple[tuple[int, int], tuple[int, int]]


def correct_pad(size: tuple[int, int], half: int) -> Padding:
    """Keras's `imagenet_utils.correct_pad` for a kernel of `2*half+1`: one less before the data on an even
    side, so that a stride-2 'valid' convolution lines up as TensorFlow's 'same' would."""
    return tuple((half - (1 - n % 2), half) for n in size)  # type: ignore[return-value]


@dataclass(frozen=True)
class ZeroPaddingOp(Op):
    """`padding` ((top, bottom), (left, right)); or, when `correct` is set, Keras's `correct_pad` for a kernel
    of 2*correct+1, which depends on the input's size and so is computed here, per input."""

    padding: Padding = ((1, 1), (1, 1))
    correct: int | None = None
    keras_class: ClassVar[str] = "ZeroPadding2D"
    prefix: ClassVar[str] = "zero_padding2d"

    def resolved(self, shape: Shape) -> Padding:
        return correct_pad((shape[0], shape[1]), self.correct) if self.correct is not None else self.padding

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        require_rank("zero_padding2d", shape, 3, "(batch, height, width, channels)")
        (top, bottom), (left, right) = self.resolved(shape)
        return (shape[0] + top + bottom, shape[1] + left + right, shape[2])

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0]  # padding adds no context to a position; it only moves the grid

    def keras_args(self) -> dict[str, Any]:
        return {"padding": self.padding}
