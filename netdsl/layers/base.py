"""What every layer file builds on: argument syntax, primitive ops, shape arithmetic.

A *layer* (an IR node such as `conv`) is described by calls on a graph of *ops*; an op is one
Keras layer (Conv2D, Activation, Add, ...). Each op knows, side by side, its shape rule, its
weights' shapes (parameter counts are derived from them, never written as separate formulas),
its MACs and receptive-field rule, how to build itself from the `keras` module it is handed, and
how to write itself as Python source. Nothing here imports Keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

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
# Written once, as Keras does in keras/src/ops/operation_utils.py, and used by every op.


def conv_output_length(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Keras's output length of a convolution or pooling window along one axis."""
    if padding == "same":
        return math.ceil(size / stride)
    effective = (kernel - 1) * dilation + 1
    return (size - effective) // stride + 1 if size >= effective else 0


def window_output(shape: Shape, window: tuple[int, int], strides: tuple[int, int], padding: str,
                  what: str, help: str) -> tuple[int, int]:  # fmt: skip
    """Height and width after a sliding window (conv, pool) on an (H, W, C) map; E303 when the map
    shrinks to nothing. `what` names the op and its padding in the message
    (`conv2d with kernel 5x5 and 'valid' padding`)."""
    height, width = (conv_output_length(size, k, s, padding) for size, k, s in zip(shape[:2], window, strides))
    if min(height, width) < 1:
        raise ShapeError("E303", f"{what} shrinks {fmt_shape(shape)} to nothing", help=help)
    return height, width


def fmt_shape(shape: Shape) -> str:
    """`(None, 32, 32, 3)`, as Keras prints it (batch axis first)."""
    return "(" + ", ".join(["None", *map(str, shape)]) + ")"


@dataclass(frozen=True)
class ReceptiveField:
    """Size and jump (stride product) of one output position, per spatial axis (height, width)."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)

    def through(self, kernel: tuple[int, int], stride: tuple[int, int]) -> ReceptiveField:
        """After a window op: r' = r + (k-1)*j, j' = j*s."""
        return ReceptiveField(
            tuple(r + (k - 1) * j for r, k, j in zip(self.size, kernel, self.jump)),  # type: ignore[arg-type]
            tuple(j * s for j, s in zip(self.jump, stride)),  # type: ignore[arg-type]
        )

    def text(self) -> str:
        size = str(self.size[0]) if self.size[0] == self.size[1] else "x".join(map(str, self.size))
        jump = str(self.jump[0]) if self.jump[0] == self.jump[1] else "x".join(map(str, self.jump))
        return f"{size} (jump {jump})"


def widest(fields: list[ReceptiveField | None]) -> ReceptiveField | None:
    """Receptive field of a merge: the widest of its inputs'."""
    known = [f for f in fields if f is not None]
    if not known:
        return None
    return ReceptiveField(
        tuple(max(f.size[i] for f in known) for i in range(2)),  # type: ignore[arg-type]
        tuple(max(f.jump[i] for f in known) for i in range(2)),  # type: ignore[arg-type]
    )


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
        """Receptive field of one output position; None once the tensor is no longer spatial."""
        return inputs[0] if inputs else None

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        """(code, message) for likely mistakes that Keras accepts."""
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


class Code(str):
    """A Python expression in emitted source: its repr is the expression itself, not a string literal."""

    def __repr__(self) -> str:
        return str(self)


T = TypeVar("T")


class Tensor(Protocol):
    """Whatever a graph passes between ops: shape records, Keras tensors, source names."""


class Graph(Protocol[T]):
    """The one interface a layer's `apply` talks to. Analyzer, compiler and emitter implement it."""

    def call(self, op: Op, *inputs: T) -> T:
        """Apply `op` to `inputs`; return its output."""
        ...
