"""Shape arithmetic, written once for any number of spatial axes (1-D sequences, 2-D images, 3-D volumes), as
Keras keeps it in keras/src/ops/operation_utils.py: output lengths of sliding windows, receptive fields,
per-axis sizes, and the errors a shape can raise. Pure functions; netdsl.layers.base re-exports them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveInt

Shape = tuple[int, ...]
"""A tensor's shape without the batch axis: (32, 32, 3), (40,)."""


class ShapeError(Exception):
    """An op cannot accept its inputs' shapes. The analyzer locates it at the layer's span."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.help = code, message, help


Sizes = tuple[int, ...]
"""One size per spatial axis: a kernel (3, 3), strides (2,), a receptive field's jump."""


def spatial(shape: Shape) -> Shape:
    """The spatial axes of a channels-last shape: (32, 32, 3) -> (32, 32), (200, 64) -> (200,)."""
    return shape[:-1]


def per_axis(value: int | Sizes, rank: int) -> Sizes:
    """`3` (or `(3,)`) -> (3,) * rank: kernels, strides and dilations may be written once for every axis
    (Keras's `standardize_tuple`); longer tuples are kept as written."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    return tuple(value) * rank if len(value) == 1 else tuple(value)


def _axis_sizes(value: Any) -> Any:
    """`3` -> (3,); `3x3` -> (3,) as well (one size for every axis), so equal layers are equal nodes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return value[:1]
    return value


AxisSizes = Annotated[tuple[PositiveInt, ...], BeforeValidator(_axis_sizes), Field(min_length=1, max_length=3)]
"""An IR field of per-axis sizes: `k3` (and `k3x3`) is (3,), for every axis; `k3x5` is (3, 5)."""
AxisCounts = Annotated[tuple[NonNegativeInt, ...], BeforeValidator(_axis_sizes), Field(min_length=1, max_length=6)]
"""Per-axis counts that may be 0 (paddings, croppings); up to (before, after) for each of 3 axes."""


def conv_output_length(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Keras's output length of a convolution or pooling window along one axis ('causal' pads the start
    of a sequence, so it keeps the length as 'same' does)."""
    if padding in ("same", "causal"):
        return math.ceil(size / stride)
    effective = (kernel - 1) * dilation + 1
    return (size - effective) // stride + 1 if size >= effective else 0


def window_output(shape: Shape, window: Sizes, strides: Sizes, padding: str, what: str, help: str,
                  dilation: Sizes | None = None) -> Sizes:  # fmt: skip
    """The spatial sizes after a sliding window (conv, pool) on a channels-last map of any rank; E303
    when the map shrinks to nothing. `what` names the op and its padding in the message
    (`conv2d with kernel 5x5 and 'valid' padding`)."""
    dilation = dilation or (1,) * len(window)
    sizes = tuple(
        conv_output_length(size, k, s, padding, d) for size, k, s, d in zip(spatial(shape), window, strides, dilation)
    )
    if min(sizes) < 1:
        raise ShapeError("E303", f"{what} shrinks {fmt_shape(shape)} to nothing", help=help)
    return sizes


def fmt_shape(shape: Shape) -> str:
    """`(None, 32, 32, 3)`, as Keras prints it: the batch axis first, then `shape` (which has none).
    netdsl's one shape formatter; shapes that carry the batch axis pass `shape[1:]`."""
    return "(" + ", ".join(["None", *map(str, shape)]) + ")"


def fmt_sizes(sizes: Sizes) -> str:
    """`3` when every axis agrees, else `3x5`: kernels, strides and receptive fields as specs write them."""
    return str(sizes[0]) if len(set(sizes)) == 1 else "x".join(map(str, sizes))


@dataclass(frozen=True)
class ReceptiveField:
    """Size and jump (stride product) of one output position, per spatial axis (height, width, ...)."""

    size: Sizes = (1, 1)
    jump: Sizes = (1, 1)

    @classmethod
    def of_input(cls, shape: Shape) -> ReceptiveField | None:
        """One input position sees itself; a vector input has no spatial axes (None)."""
        return cls((1,) * (len(shape) - 1), (1,) * (len(shape) - 1)) if len(shape) > 1 else None

    def through(self, kernel: Sizes, stride: Sizes, dilation: Sizes | None = None) -> ReceptiveField:
        """After a window op: r' = r + (k_eff-1)*j, j' = j*s, with k_eff = (k-1)*d+1."""
        dilation = dilation or (1,) * len(kernel)
        return ReceptiveField(
            tuple(r + (k - 1) * d * j for r, k, d, j in zip(self.size, kernel, dilation, self.jump)),
            tuple(j * s for j, s in zip(self.jump, stride)),
        )

    def text(self) -> str:
        """`7 (jump 2)`, or `3x5 (jump 2x3)` when the axes differ."""
        return f"{fmt_sizes(self.size)} (jump {fmt_sizes(self.jump)})"


def widest(fields: list[ReceptiveField | None]) -> ReceptiveField | None:
    """Receptive field of a merge: the widest of its inputs', axis by axis."""
    known = [f for f in fields if f is not None]
    if not known:
        return None
    return ReceptiveField(
        tuple(max(axis) for axis in zip(*(f.size for f in known))),
        tuple(max(axis) for axis in zip(*(f.jump for f in known))),
    )


SPATIAL_AXES = {
    1: "(batch, length, channels)",
    2: "(batch, height, width, channels)",
    3: "(batch, depth, height, width, channels)",
}
"""How messages name a channels-last input with 1, 2 or 3 spatial axes."""


def rank_of(shape: Shape, supported: tuple[int, ...] = (1, 2, 3)) -> int:
    """The spatial rank a rank-generic layer (`conv`, `maxpool`, ...) builds its Keras class for: its input's,
    where Keras has that class, else 2, whose op then refuses the input with the usual 2-D message (E302)."""
    rank = len(shape) - 1
    return rank if rank in supported else 2


def check_window(name: str, shape: Shape, rank: int, **sizes: Sizes) -> None:
    """E302 unless `shape` has `rank` spatial axes and channels; E320 unless every per-axis argument
    (kernel, strides, ...) has one size per spatial axis (`k3x5` on a sequence)."""
    require_rank(name, shape, rank + 1, SPATIAL_AXES[rank])
    for what, value in sizes.items():
        if len(value) != rank:
            raise ShapeError(
                "E320",
                f"{name} {what} {'x'.join(map(str, value))} has {len(value)} sizes, but the input "
                f"{fmt_shape(shape)} has {rank} spatial {'axis' if rank == 1 else 'axes'}",
                help="write one size for every axis (such as `k3`)" + (f" or {rank} sizes" if rank > 1 else ""),
            )


def compact(sizes: Sizes) -> int | Sizes:
    """Keras's argument as people write it: `3` for (3, 3), the tuple when the axes differ."""
    return sizes[0] if len(set(sizes)) == 1 else tuple(sizes)


def require_rank(op: str, shape: Shape, rank: int, what: str) -> None:
    """Raise E302 unless `shape` (without batch) has `rank` axes."""
    if len(shape) != rank:
        raise ShapeError(
            "E302",
            f"{op} needs a {rank + 1}-D input {what}; got {fmt_shape(shape)}",
            help="add `flatten` or a global pooling (`gmp`/`gap`) to go from a feature map to a vector"
            if rank == 1
            else None,
        )
