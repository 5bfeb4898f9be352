"""Activations: as a layer of their own (`relu`) and as post-ops of conv/dense (`conv 10 relu bn`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from netdsl.ir import Layer
from netdsl.layers.base import Graph, Op, Shape, Syntax, Tensor
from netdsl.layers.norm import BatchNormOp

# Element-wise activations that exist in keras.activations (Keras 3) and need no arguments.
ACTIVATIONS: tuple[str, ...] = (
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish",
    "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "tanh", "softplus", "softsign",
    "softmax", "log_softmax", "exponential", "linear",
)  # fmt: skip
ActivationName = Literal[ACTIVATIONS]  # type: ignore[valid-type]

POST_WORDS = frozenset((*ACTIVATIONS, "bn"))
"""Words that may follow a conv/dense, applied in the order written: `relu bn` or `bn relu`."""
PostWord = Literal[(*ACTIVATIONS, "bn")]  # type: ignore[valid-type]
"""The type of one such word in a layer's `post` field (a word, not an op: `apply_post` makes the ops)."""


@dataclass(frozen=True)
class ActivationOp(Op):
    function: str
    keras_class: ClassVar[str] = "Activation"
    prefix: ClassVar[str] = "activation"

    def output_shape(self, *inputs: Shape) -> Shape:
        return inputs[0]

    def keras_args(self) -> dict[str, Any]:
        return {"activation": self.function}


@dataclass(frozen=True)
class ReLUOp(Op):
    """Keras's `ReLU` layer, whose arguments `Activation('relu')` lacks: MobileNetV2's ReLU6 is `ReLU(6.0)`."""

    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0
    keras_class: ClassVar[str] = "ReLU"
    prefix: ClassVar[str] = "re_lu"

    def output_shape(self, *inputs: Shape) -> Shape:
        return inputs[0]

    def keras_args(self) -> dict[str, Any]:
        defaults = ReLUOp()
        return {key: getattr(self, key) for key in ("max_value", "negative_slope", "threshold")
                if getattr(self, key) != getattr(defaults, key)}  # fmt: skip


def apply_post(graph: Graph, x: Tensor, post: tuple[str, ...]) -> Tensor:
    """Apply a conv/dense's trailing activations and batch norms, in the order written."""
    for word in post:
        x = graph.call(BatchNormOp() if word == "bn" else ActivationOp(word), x)
    return x


def final_activation(post: tuple[str, ...]) -> str | None:
    """The activation a conv/dense's trailing words end in (batch norms rescale, they do not activate)."""
    functions = [word for word in post if word != "bn"]
    return functions[-1] if functions else None


class Activation(Layer):
    """An activation as its own layer: `relu`, `softmax`, ... (Keras `Activation`)."""

    kind: Literal["activation"] = "activation"
    function: ActivationName

    words: ClassVar[tuple[str, ...]] = ACTIVATIONS
    syntax: ClassVar[Syntax] = Syntax(example="softmax")
    summary: ClassVar[str] = "an activation as a layer of its own: relu, softmax, sigmoid, tanh, ..."

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(ActivationOp(self.function), x)

    def output_activation(self) -> str | None:
        return self.function

    @classmethod
    def from_word(cls, word: str) -> dict[str, Any]:
        return {"function": word}
