"""Sequences: `embed V D` (Embedding), `lstm U` and `gru U` (with `seq` for return_sequences and `bidir` for
a Bidirectional wrapper), on `(timesteps, features)` inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import PositiveInt, ValidationInfo, field_validator

from netdsl.ir import Layer
from netdsl.layers.base import Code, Graph, Op, ReceptiveField, Shape, Syntax, Tensor, Weight, require_rank


@dataclass(frozen=True)
class EmbeddingOp(Op):
    """Keras Embedding: each integer of the input becomes a learnt vector (float inputs are cast)."""

    vocabulary: int
    dimension: int
    rank: int = 1  # the input's axes
    keras_class: ClassVar[str] = "Embedding"
    prefix: ClassVar[str] = "embedding"

    def output_shape(self, *inputs: Shape) -> Shape:
        return (*inputs[0], self.dimension)

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("embeddings", (self.vocabulary, self.dimension))]

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return ReceptiveField((1,) * self.rank, (1,) * self.rank)  # one token per position

    def keras_args(self) -> dict[str, Any]:
        return {"input_dim": self.vocabulary, "output_dim": self.dimension}


class Embed(Layer):
    """`embed V D`: Keras Embedding of a vocabulary of V tokens into D dimensions; `input 200` of token ids
    becomes (200, D)."""

    kind: Literal["embed"] = "embed"
    vocabulary: PositiveInt
    dimension: PositiveInt

    syntax: ClassVar[Syntax] = Syntax(
        positional=("vocabulary", "dimension"), aliases={"input_dim": "vocabulary", "output_dim": "dimension"},
        example="embed 20000 128",
    )  # fmt: skip
    summary: ClassVar[str] = "embedding of V token ids into D dimensions (Keras Embedding)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(EmbeddingOp(self.vocabulary, self.dimension, len(graph.shape(x))), x)


GATES = {"LSTM": 4, "GRU": 3}
"""Gate blocks of each recurrent cell: their kernels are that many `units`-wide matrices side by side."""


@dataclass(frozen=True)
class RecurrentOp(Op):
    """Keras LSTM or GRU (GRU with Keras's default reset_after=True: two bias rows)."""

    cell: str  # "LSTM" | "GRU"
    units: int
    sequences: bool = False
    keeps_positions: ClassVar[bool] = False  # each step sees every earlier one

    @property
    def keras_class(self) -> str:  # type: ignore[override]
        return self.cell

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.cell.lower()

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        require_rank(self.prefix, shape, 2, "(batch, timesteps, features)")
        return (shape[0], self.units) if self.sequences else (self.units,)

    def weights(self, *inputs: Shape) -> list[Weight]:
        width = GATES[self.cell] * self.units
        bias = (2, width) if self.cell == "GRU" else (width,)
        return [Weight("kernel", (inputs[0][-1], width)), Weight("recurrent_kernel", (self.units, width)),
                Weight("bias", bias)]  # fmt: skip

    def macs(self, output: Shape, *inputs: Shape) -> int:
        steps, features = inputs[0]
        return steps * GATES[self.cell] * self.units * (features + self.units)

    def keras_args(self) -> dict[str, Any]:
        return {"units": self.units, **({"return_sequences": True} if self.sequences else {})}


@dataclass(frozen=True)
class BidirectionalOp(Op):
    """Keras Bidirectional around a recurrent layer: a forward and a backward copy, merged."""

    layer: RecurrentOp
    merge: str = "concat"
    keras_class: ClassVar[str] = "Bidirectional"
    prefix: ClassVar[str] = "bidirectional"
    keeps_positions: ClassVar[bool] = False

    @property
    def inner_prefixes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.layer.prefix,)  # `Bidirectional(LSTM(64))` names its LSTM argument too

    def output_shape(self, *inputs: Shape) -> Shape:
        shape = self.layer.output_shape(*inputs)
        return (*shape[:-1], 2 * shape[-1]) if self.merge == "concat" else shape

    def weights(self, *inputs: Shape) -> list[Weight]:
        inner = self.layer.weights(*inputs)
        return [Weight(f"{way}_{w.name}", w.shape, w.trainable) for way in ("forward", "backward") for w in inner]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return 2 * self.layer.macs(self.layer.output_shape(*inputs), *inputs)

    def keras_args(self) -> dict[str, Any]:
        return {"merge_mode": self.merge} if self.merge != "concat" else {}

    def to_keras(self, keras: Any, name: str) -> Any:
        inner = getattr(keras.layers, self.layer.keras_class)(**self.layer.keras_args())
        return keras.layers.Bidirectional(inner, name=name, **self.keras_args())

    def source_args(self) -> dict[str, Any]:
        return {"layer": Code(self.layer.to_source()), **self.keras_args()}


class LSTM(Layer):
    """`lstm U [seq] [bidir] [merge=concat|sum|mul|ave]`: Keras LSTM with U units; `seq` returns the whole
    sequence (return_sequences=True), `bidir` wraps it in Bidirectional (twice the parameters; the outputs
    concatenated unless `merge=` says otherwise)."""

    kind: Literal["lstm"] = "lstm"
    units: PositiveInt
    sequences: bool = False
    bidirectional: bool = False
    merge: Literal["concat", "sum", "mul", "ave"] = "concat"

    syntax: ClassVar[Syntax] = Syntax(
        positional=("units",),
        flags={"seq": ("sequences", True), "bidir": ("bidirectional", True)},
        aliases={"return_sequences": "sequences", "bidirectional": "bidirectional", "merge_mode": "merge"},
        example="lstm 64 seq bidir",
    )
    summary: ClassVar[str] = "LSTM over (timesteps, features); `seq` returns every step, `bidir` Bidirectional"
    cell: ClassVar[str] = "LSTM"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        op: Op = RecurrentOp(self.cell, self.units, self.sequences)
        if self.bidirectional:
            op = BidirectionalOp(op, self.merge)  # type: ignore[arg-type]
        return graph.call(op, x)

    @field_validator("merge")
    @classmethod
    def _merge_needs_bidir(cls, value: str, info: ValidationInfo) -> str:
        if value != "concat" and not info.data.get("bidirectional"):
            raise ValueError("applies to bidir only (how the two directions' outputs combine)")
        return value


class GRU(LSTM):
    """`gru U [seq] [bidir] [merge=...]`: Keras GRU (reset_after=True), same options as lstm."""

    kind: Literal["gru"] = "gru"  # type: ignore[assignment]
    syntax: ClassVar[Syntax] = Syntax(**{**LSTM.syntax.__dict__, "example": "gru 32"})
    summary: ClassVar[str] = "GRU over (timesteps, features); `seq` returns every step, `bidir` Bidirectional"
    cell: ClassVar[str] = "GRU"
