"""Attention: `mha H K` (Keras MultiHeadAttention), self-attention on the current tensor, or with the value
(and key) taken from tensors named with `as` (`mha 8 64 memory`: cross-attention, the current tensor
being the query), as a Transformer's encoder and decoder blocks use it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt

from netdsl.ir import Layer
from netdsl.layers.base import Graph, Op, Shape, ShapeError, Syntax, Tensor, Weight, fmt_shape

ROLES = ("query", "value", "key")
"""MultiHeadAttention's inputs, in the order Keras's `call(query, value, key)` takes them."""


@dataclass(frozen=True)
class MultiHeadAttentionOp(Op):
    """Keras MultiHeadAttention over every axis between the batch and the features (a sequence's steps, an
    image's positions): inputs (query, value) or (query, value, key)."""

    heads: int
    key_dim: int
    value_dim: int | None = None  # Keras's default: key_dim
    output_dim: int | None = None  # Keras's `output_shape`; default: the query's features
    dropout: float = 0.0
    use_bias: bool = True
    causal: bool = False  # `use_causal_mask=True` at the call: each step attends to itself and earlier steps
    keras_class: ClassVar[str] = "MultiHeadAttention"
    prefix: ClassVar[str] = "multi_head_attention"
    inner_prefixes: ClassVar[tuple[str, ...]] = ("softmax", "dropout")  # built unnamed inside it, as Keras does
    keeps_positions: ClassVar[bool] = False  # each output position sees every input position

    @property
    def values(self) -> int:
        return self.value_dim or self.key_dim

    def output_shape(self, *inputs: Shape) -> Shape:
        query, value, key = (*inputs, inputs[-1])[:3]
        for role, shape in zip(ROLES, (query, value, key)):
            if len(shape) < 2:
                raise ShapeError(
                    "E302", f"multi_head_attention needs a {role} with positions and features, such as "
                    f"(batch, steps, features); got {fmt_shape(shape)}",
                    help="attend over a sequence or a feature map: `reshape` a vector, or drop `gap`/`flatten`",
                )  # fmt: skip
        if len(value) != len(query) or key[:-1] != value[:-1]:
            raise ShapeError(
                "E304", f"the query is {fmt_shape(query)}, the value {fmt_shape(value)}"
                + (f" and the key {fmt_shape(key)}" if len(inputs) > 2 else "")
                + "; the value (and key) need the query's rank, and the same positions as each other",
                help="attend from a sequence to a sequence (or a map to a map); `reshape` one of them",
            )  # fmt: skip
        if self.causal and query[:-1] != value[:-1]:
            raise ShapeError(
                "E304", f"a causal mask needs as many query as value positions; got "
                f"{fmt_shape(query)} and {fmt_shape(value)}",
                help="use `causal` for self-attention",
            )  # fmt: skip
        return (*query[:-1], self.output_dim or query[-1])

    def weights(self, *inputs: Shape) -> list[Weight]:
        query, value, key = (*inputs, inputs[-1])[:3]
        out = self.output_dim or query[-1]
        kernels = [
            ("query", (query[-1], self.heads, self.key_dim), (self.heads, self.key_dim)),
            ("key", (key[-1], self.heads, self.key_dim), (self.heads, self.key_dim)),
            ("value", (value[-1], self.heads, self.values), (self.heads, self.values)),
            ("attention_output", (self.heads, self.values, out), (out,)),
        ]
        weights = []
        for name, kernel, bias in kernels:
            weights.append(Weight(f"{name}/kernel", kernel))
            if self.use_bias:
                weights.append(Weight(f"{name}/bias", bias))
        return weights

    def macs(self, output: Shape, *inputs: Shape) -> int:
        """The four projections, the scores (query . key) and the weighted sum of the values."""
        query, value, key = (*inputs, inputs[-1])[:3]
        queries, positions = math.prod(query[:-1]), math.prod(value[:-1])
        heads, keys, values = self.heads, self.key_dim, self.values
        projections = queries * query[-1] * heads * keys + positions * heads * (key[-1] * keys + value[-1] * values)
        attention = queries * positions * heads * (keys + values)
        return projections + attention + queries * heads * values * output[-1]

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"num_heads": self.heads, "key_dim": self.key_dim}
        optional = {"value_dim": self.value_dim, "dropout": self.dropout, "output_shape": self.output_dim}
        args.update({name: value for name, value in optional.items() if value})
        return {**args, **({"use_bias": False} if not self.use_bias else {})}

    def call_keras(self, layer: Any, inputs: tuple[Any, ...]) -> Any:
        return layer(*inputs, **({"use_causal_mask": True} if self.causal else {}))

    def call_source(self, inputs: list[str]) -> str:
        return ", ".join([*inputs, *(["use_causal_mask=True"] if self.causal else [])])


class MultiHeadAttention(Layer):
    """`mha H K [value_dim=V] [output_dim=D] [dropout=P] [nobias] [causal] [VALUE [KEY]]`: Keras
    MultiHeadAttention with H heads of K dimensions. Self-attention on the current tensor, which is the
    query; a name given is the value (and the key, unless a second name is), as in `mha 8 64 memory`."""

    kind: Literal["mha"] = "mha"
    heads: PositiveInt
    key_dim: PositiveInt
    value_dim: PositiveInt | None = None
    output_dim: PositiveInt | None = None
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: bool = True
    causal: bool = False
    refs: tuple[str, ...] = ()  # the value's (and key's) unique names
    ref_names: tuple[str, ...] = ()  # as written, for messages and emitted code

    takes_names: ClassVar[int] = 2  # bare words name tensors: the value, then the key (lowering resolves them)
    internal: ClassVar[frozenset[str]] = Layer.internal | {"refs", "ref_names"}
    syntax: ClassVar[Syntax] = Syntax(
        positional=("heads", "key_dim"),
        flags={"causal": ("causal", True), "nobias": ("bias", False), "bias": ("bias", True)},
        aliases={"num_heads": "heads", "output_shape": "output_dim", "use_bias": "bias",
                 "use_causal_mask": "causal"},
        example="mha 4 16",
    )  # fmt: skip
    summary: ClassVar[str] = "multi-head attention (Keras MultiHeadAttention): self-attention, or to named tensors"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        op = MultiHeadAttentionOp(self.heads, self.key_dim, self.value_dim, self.output_dim, self.dropout,
                                  self.bias, self.causal)  # fmt: skip
        others = [graph.lookup(ref) for ref in self.refs] or [x]
        return graph.call(op, x, *others)
