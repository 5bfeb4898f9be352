"""What every layer file builds on: argument syntax, primitive ops, shape arithmetic.

A *layer* (an IR node such as `conv`) is described by calls on a graph of *ops*; an op is one
Keras layer (Conv2D, Activation, Add, ...). Each op knows, side by side, its shape rule, its
weights' shapes (parameter counts are derived from them, never written as separate formulas),
its MACs and receptive-field rule, how to build itself from the `keras` module it is handed, and
how to write itself as Python source. Nothing here imports Keras.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Annotated, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveInt

Shape = tuple[int, ...]
"""A tensor's shape without the batch axis: (32, 32, 3), (40,)."""


class ShapeError(Exception):
    """An op cannot accept its inputs' shapes. The analyzer locates it at the layer's span."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.help = code, message, help


@dataclass(frozen=True)
class Syntax:
    """How a statement's arguments bind to a layer's fields.

    positional: fields filled, in order, by bare values (`conv 10` -> filters=10).
    prefixed:   short options written as prefix+number (`k3`, `k3x5`, `s2` -> kernel, stride).
    flags:      bare words setting a field to a value (`same` -> padding='same', `nobias`).
    sequence:   (field, words): bare words appended in order to a tuple field (activations, `bn`).
    below:      fields written `key<value` (`freeze<142`).
    keywords:   every field may also be written `field=value`; aliases map other spellings.
    """

    positional: tuple[str, ...] = ()
    prefixed: dict[str, str] = field(default_factory=dict)
    flags: dict[str, tuple[str, Any]] = field(default_factory=dict)
    sequence: tuple[str, frozenset[str]] | None = None
    below: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    example: str = ""


# ---------------------------------------------------------------- shape arithmetic
# Written once, as Keras does in keras/src/ops/operation_utils.py, for any number of spatial axes
# (1-D sequences, 2-D images, 3-D volumes), and used by every op.

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


# ---------------------------------------------------------------- ops


@dataclass(frozen=True)
class Weight:
    """One weight tensor of an op: its shape and whether training updates it."""

    name: str
    shape: Shape
    trainable: bool = True

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Op:
    """One Keras layer. Subclasses are frozen dataclasses holding the layer's arguments."""

    keras_class: ClassVar[str] = ""  # "Conv2D"
    prefix: ClassVar[str] = ""  # "conv2d": Keras's automatic name for the class
    inner_prefixes: ClassVar[tuple[str, ...]] = ()  # names taken by layers it wraps: Bidirectional(LSTM) -> lstm
    is_layer: ClassVar[bool] = True  # False: a Keras operation (`x + 3.0`), absent from `model.layers`
    keeps_positions: ClassVar[bool] = True  # False: outputs no longer line up with input positions (flatten)

    def output_shape(self, *inputs: Shape) -> Shape:
        """The output shape for these input shapes, or ShapeError."""
        raise NotImplementedError

    def weights(self, *inputs: Shape) -> list[Weight]:
        """The weights this op creates for these input shapes."""
        return []

    def macs(self, output: Shape, *inputs: Shape) -> int:
        """Multiply-accumulates for one example (FLOPs are about twice this)."""
        return 0

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        """Receptive field of one output position; None once the tensor is no longer spatial, or once its
        positions no longer line up with the input's (`keeps_positions`: the field is not tracked past it)."""
        return inputs[0] if inputs and self.keeps_positions else None

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        """(code, message) for likely mistakes that Keras accepts."""
        return []

    def input_warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        """Likely mistakes that only a network's input itself can show (the analyzer asks only an op fed by one)."""
        return []

    def keras_args(self) -> dict[str, Any]:
        """The keyword arguments of the Keras constructor, with Python values."""
        return {}

    def to_keras(self, keras: Any, name: str) -> Any:
        """Build the Keras layer; `keras` is handed in so this module never imports it."""
        return getattr(keras.layers, self.keras_class)(name=name, **self.keras_args())

    def source_args(self) -> dict[str, Any]:
        """The constructor's keyword arguments for emitted source: `keras_args`, plus `Code` for any
        argument that is an expression (a regularizer). `netdsl emit` turns the ones that vary
        between layers into helper-function parameters."""
        return self.keras_args()

    def to_source(self, name: str | None = None) -> str:
        """The Keras constructor call as Python source; without `name=` when None (Keras's auto-name)."""
        args = {**self.source_args(), **({"name": name} if name else {})}
        return f"layers.{self.keras_class}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


class RankedOp(Op):
    """An op whose Keras class depends on its number of spatial axes, `rank` (a field of the subclass):
    Conv1D, Conv2D, Conv3D from the template `Conv{}D`."""

    keras_template: ClassVar[str] = ""  # "Conv{}D"
    prefix_template: ClassVar[str] = ""  # "conv{}d"

    @property
    def keras_class(self) -> str:  # type: ignore[override]
        return self.keras_template.format(self.rank)  # type: ignore[attr-defined]

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.prefix_template.format(self.rank)  # type: ignore[attr-defined]

    def input_warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        """W408: a square 2-D network input is read as a sequence; it is much more likely an image without
        channels. (Inside a network, a (128, 128) sequence of 128 channels is nothing to warn about.)"""
        shape = inputs[0] if inputs else ()
        if self.rank == 1 and len(shape) == 2 and shape[0] == shape[1] > 4:  # type: ignore[attr-defined]
            return [(
                "W408",
                f"{self.prefix} reads the square {fmt_shape(shape)} as a sequence of {shape[0]} steps with "
                f"{shape[1]} channels; for a {shape[0]}x{shape[1]} image with one channel, write "
                f"`input {shape[0]}x{shape[1]}x1`",
            )]  # fmt: skip
        return []


class Regularized(Op):
    """An op with an optional L2 kernel regulariser (a field `l2` of the subclass), in Keras and in source."""

    def to_keras(self, keras: Any, name: str) -> Any:
        regularizer = keras.regularizers.L2(self.l2) if self.l2 else None  # type: ignore[attr-defined]
        return getattr(keras.layers, self.keras_class)(name=name, kernel_regularizer=regularizer, **self.keras_args())

    def source_args(self) -> dict[str, Any]:
        l2 = self.l2  # type: ignore[attr-defined]
        return {**self.keras_args(), **({"kernel_regularizer": Code(f"regularizers.L2({l2!r})")} if l2 else {})}


class FieldArgs(Op):
    """An op whose Keras arguments are its fields, by the same names, each left out while it holds its default
    (which is Keras's too): `ReLU(max_value=6.0)`, `LeakyReLU(negative_slope=0.1)`, `BatchNormalization()`."""

    def keras_args(self) -> dict[str, Any]:
        values = {f.name: (getattr(self, f.name), f.default) for f in fields(self)}  # type: ignore[arg-type]
        return {name: value for name, (value, default) in values.items() if default is MISSING or value != default}


class ElementWise(Op):
    """An op that keeps its input's shape (activations, dropout, noise, scaling)."""

    def output_shape(self, *inputs: Shape) -> Shape:
        return inputs[0]


class Code(str):
    """A Python expression in emitted source: its repr is the expression itself, not a string literal."""

    def __repr__(self) -> str:
        return str(self)


T = TypeVar("T")


class Tensor(Protocol):
    """Whatever a graph passes between ops: shape records, Keras tensors, source names."""


class Graph(Protocol[T]):
    """The one interface a layer's `apply` talks to. The analyzer, the compiler and the emitter each
    implement it (by subclassing `GraphBase`), so a layer is described once for all three."""

    layer: Any  # the netdsl layer being applied (its span locates errors)
    frames: list[Any]  # the user blocks being applied, outermost first (their uses locate errors too)

    def call(self, op: Op, *inputs: T) -> T:
        """Apply `op` to `inputs`; return its output."""
        ...

    def shape(self, x: T) -> Shape:
        """The shape of `x` without the batch axis: rank-generic layers pick their Keras class from it."""
        ...

    def application(self, application: Any, x: T) -> T:
        """A whole keras.applications backbone (or an earlier run's model) on `x`."""
        ...

    def run(self, layers: Any, x: T) -> T:
        """Apply a sequence of layers (a branch, a block's body) to `x`, binding `as` names."""
        ...

    def bind(self, name: str, tensor: T) -> None:
        """Remember `tensor` under a name made unique by lowering."""
        ...

    def lookup(self, name: str) -> T:
        """The tensor bound to `name`."""
        ...


class GraphBase(Generic[T]):
    """What every graph shares: walking layer sequences, the current layer and block frames, names."""

    def __init__(self) -> None:
        self.layer: Any = None
        self.frames: list[Any] = []
        self.names: dict[str, T] = {}

    def run(self, layers: Any, x: T) -> T:
        outer = self.layer
        for layer in layers:
            self.layer = layer
            x = layer.apply(x, self)
            if layer.tap is not None:
                self.bind(layer.tap, x)
        self.layer = outer
        return x

    def bind(self, name: str, tensor: T) -> None:
        self.names[name] = tensor

    def lookup(self, name: str) -> T:
        return self.names[name]
