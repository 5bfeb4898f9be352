"""What every layer file builds on: argument syntax and primitive ops (the shape arithmetic is shapes.py's).

A *layer* (an IR node such as `conv`) is described by calls on a graph of *ops*; an op is one
Keras layer (Conv2D, Activation, Add, ...). Each op knows, side by side, its shape rule, its
weights' shapes (parameter counts are derived from them, never written as separate formulas),
its MACs and receptive-field rule, how to build itself from the `keras` module it is handed, and
how to write itself as Python source. Nothing here imports Keras.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from netdsl.layers.shapes import (  # noqa: F401  (re-exported: every layer file imports them from here)
    SPATIAL_AXES,
    AxisCounts,
    AxisSizes,
    ReceptiveField,
    Shape,
    ShapeError,
    Sizes,
    check_window,
    compact,
    conv_output_length,
    fmt_shape,
    fmt_sizes,
    per_axis,
    rank_of,
    require_rank,
    spatial,
    widest,
    window_output,
)


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
    share: ClassVar[str | None] = None  # a key: ops of one key are one Keras layer, called again (shared weights)

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

    def call_keras(self, layer: Any, inputs: tuple[Any, ...]) -> Any:
        """Apply the built Keras layer to its input tensors: one tensor, or a merge's list of them."""
        return layer(list(inputs) if len(inputs) > 1 else inputs[0])

    def call_source(self, inputs: list[str]) -> str:
        """The arguments of that call in emitted source (`x`, `[x, d1]`), from the inputs' variables."""
        return inputs[0] if len(inputs) == 1 else "[" + ", ".join(inputs) + "]"

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
        """W408: a square 2-D input is read as a sequence; it is much more likely an image without channels."""
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
