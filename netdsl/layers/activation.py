"""Activations: as a layer of their own (`relu`, `leaky_relu alpha=.1`, `prelu`) and as post-ops of
conv/dense (`conv 10 relu bn`, `conv 10 bn momentum=.9 leaky_relu alpha=.1`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, ValidationInfo, field_validator

from netdsl.ir import Layer
from netdsl.layers.base import ElementWise, FieldArgs, Graph, Op, Shape, Syntax, Tensor, Weight
from netdsl.layers.norm import BatchNorm, BatchNormOp

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

WITH_ALPHA = ("leaky_relu", "elu")
"""Activations with a parameter: written `leaky_relu alpha=.1`, they become Keras's LeakyReLU / ELU layers."""


@dataclass(frozen=True)
class ActivationOp(ElementWise):
    function: str
    keras_class: ClassVar[str] = "Activation"
    prefix: ClassVar[str] = "activation"

    def keras_args(self) -> dict[str, Any]:
        return {"activation": self.function}


@dataclass(frozen=True)
class ReLUOp(ElementWise, FieldArgs):
    """Keras's `ReLU` layer, whose arguments `Activation('relu')` lacks: MobileNetV2's ReLU6 is `ReLU(6.0)`."""

    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0
    keras_class: ClassVar[str] = "ReLU"
    prefix: ClassVar[str] = "re_lu"


@dataclass(frozen=True)
class LeakyReLUOp(ElementWise, FieldArgs):
    """Keras LeakyReLU (its default slope is 0.3, unlike `Activation('leaky_relu')`'s 0.2)."""

    negative_slope: float
    keras_class: ClassVar[str] = "LeakyReLU"
    prefix: ClassVar[str] = "leaky_re_lu"


@dataclass(frozen=True)
class ELUOp(ElementWise, FieldArgs):
    alpha: float
    keras_class: ClassVar[str] = "ELU"
    prefix: ClassVar[str] = "elu"


@dataclass(frozen=True)
class ArithmeticOp(ElementWise):
    """`x + value` or `x * value` on a Keras tensor: a Keras operation but not a Layer, so `model.layers`
    does not list it, yet it takes a name ('add', 'multiply') from the counter layers are named by.
    keras.applications' MobileNetV3 writes its hard sigmoid so: `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`."""

    operator: Literal["+", "*"]
    value: float
    keras_class: ClassVar[str] = "Operation"
    is_layer: ClassVar[bool] = False

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return "add" if self.operator == "+" else "multiply"

    def to_keras(self, keras: Any, name: str) -> Any:
        value = float(self.value)
        return lambda x: named_operation(x + value if self.operator == "+" else x * value, name)

    def to_source(self, name: str | None = None) -> str:
        return f"(lambda t: t {self.operator} {float(self.value)!r})"


def named_operation(out: Any, name: str) -> Any:
    """A Keras operation's output, its operation renamed to `name` (as a fresh session names it), so that its
    automatic name, drawn from Keras's counter, can never clash with a layer netdsl named."""
    history = getattr(out, "_keras_history", None)  # (operation, node index, tensor index)
    if history is not None and name:  # inside a shared model (name None), Keras's own name stays
        history[0].name = name
    return out


def activation_op(function: str, alpha: float | None = None, layer_class: str | None = None) -> Op:
    """The Keras layer for an activation word: `relu6` is ReLU(max_value=6) as keras.applications writes
    it, and `relu class=ReLU` is ReLU(); `leaky_relu`/`elu` with an alpha are the LeakyReLU/ELU layers;
    the rest are Activation(name)."""
    if function == "relu6":
        return ReLUOp(max_value=6.0)
    if layer_class == "ReLU":
        return ReLUOp()
    if alpha is not None:
        return LeakyReLUOp(alpha) if function == "leaky_relu" else ELUOp(alpha)
    return ActivationOp(function)


class Activation(Layer):
    """An activation as its own layer: `relu`, `softmax`, ... (Keras `Activation`); `relu6` (ReLU(6));
    `relu class=ReLU` (Keras's ReLU layer, the same function); `leaky_relu alpha=.1` (LeakyReLU) and
    `elu alpha=.5` (ELU). `offset=` and `scale=` compute f(x + offset) * scale with Keras operations
    that are not layers: `relu6 offset=3 scale=1/6` is MobileNetV3's hard sigmoid, one ReLU row."""

    kind: Literal["activation"] = "activation"
    function: ActivationName
    alpha: float | None = None
    layer_class: Literal["ReLU"] | None = None
    offset: float = 0.0
    scale: float = 1.0

    words: ClassVar[tuple[str, ...]] = ACTIVATIONS
    syntax: ClassVar[Syntax] = Syntax(
        aliases={"negative_slope": "alpha", "class": "layer_class"}, example="leaky_relu alpha=0.1"
    )
    summary: ClassVar[str] = "an activation as a layer: relu, relu6, softmax, hard_swish, leaky_relu alpha=.1, ..."

    @field_validator("alpha")
    @classmethod
    def _alpha_has_a_meaning(cls, value: float | None, info: ValidationInfo) -> float | None:
        function = info.data.get("function")
        if value is not None and function not in WITH_ALPHA:
            raise ValueError(f"applies to {' and '.join(WITH_ALPHA)} only, not to {function}")
        if value is not None and function == "leaky_relu" and value < 0:
            raise ValueError("must be at least 0 (Keras's LeakyReLU refuses a negative slope)")
        return value

    @field_validator("layer_class")
    @classmethod
    def _class_is_relus(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("function") != "relu":
            raise ValueError(f"applies to relu only, not to {info.data.get('function')}")
        return value

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        if self.offset:
            x = graph.call(ArithmeticOp("+", self.offset), x)
        x = graph.call(activation_op(self.function, self.alpha, self.layer_class), x)
        return graph.call(ArithmeticOp("*", self.scale), x) if self.scale != 1 else x

    def output_activation(self) -> str | None:
        return self.function

    def activations(self) -> tuple[str, ...]:
        return (self.function,)

    def raw_input_note(self) -> str | None:
        return self.function

    @classmethod
    def from_word(cls, word: str) -> dict[str, Any]:
        return {"function": word}


PostStep = Union[PostWord, Annotated[Union[BatchNorm, Activation], Field(discriminator="kind")]]
"""One step after a conv/dense: a word (`relu`, `bn`), or, when options follow it (`bn momentum=.9`),
the node of that word's own layer, so the step has exactly the options of the layer it stands for."""


def post_activations(post: tuple[PostStep, ...], fused: str | None = None) -> tuple[str, ...]:
    """The activations of a conv/dense: its fused `activation=` first, then its trailing steps' (not bn)."""
    steps = tuple(getattr(step, "function", step) for step in post if step != "bn" and not isinstance(step, BatchNorm))
    return (fused, *steps) if fused else steps


def final_activation(post: tuple[PostStep, ...]) -> str | None:
    """The activation a conv/dense's trailing steps end in (batch norms rescale, they do not activate)."""
    functions = [getattr(step, "function", step) for step in post if step != "bn" and not isinstance(step, BatchNorm)]
    return functions[-1] if functions else None


class Activated:
    """The activations of a layer with trailing post-ops and maybe a fused `activation=` (every convolution,
    dense): a mixin, listed before the layer's base, that reads the layer's `post` and `activation` fields.
    Without it a layer's `softmax` would be invisible to W401 and to the trainer's head (a loss on logits)."""

    def output_activation(self) -> str | None:
        return final_activation(self.post) or getattr(self, "activation", None)  # type: ignore[attr-defined]

    def activations(self) -> tuple[str, ...]:
        return post_activations(self.post, getattr(self, "activation", None))  # type: ignore[attr-defined]


def apply_post(graph: Graph, x: Tensor, post: tuple[PostStep, ...]) -> Tensor:
    """Apply a conv/dense's trailing activations and batch norms, in the order written."""
    for step in post:
        if isinstance(step, Layer):
            x = step.apply(x, graph)
        else:
            x = graph.call(BatchNormOp() if step == "bn" else activation_op(step), x)
    return x


@dataclass(frozen=True)
class PReLUOp(ElementWise):
    """Keras PReLU: a learnt slope per element, or shared along `shared_axes` (1-based, batch excluded)."""

    shared_axes: tuple[int, ...] = ()
    keras_class: ClassVar[str] = "PReLU"
    prefix: ClassVar[str] = "p_re_lu"

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("alpha", tuple(1 if axis in self.shared_axes else n for axis, n in enumerate(inputs[0], 1)))]

    def keras_args(self) -> dict[str, Any]:
        return {"shared_axes": list(self.shared_axes)} if self.shared_axes else {}


class PReLU(Layer):
    """`prelu [shared]`: a learnt negative slope per element (Keras's default), or one per channel with
    `shared` (every axis but the channels' shared, as image models use it)."""

    kind: Literal["prelu"] = "prelu"
    shared: bool = False

    syntax: ClassVar[Syntax] = Syntax(flags={"shared": ("shared", True)}, example="prelu shared")
    summary: ClassVar[str] = "PReLU: a learnt negative slope per element, or per channel with `shared`"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        axes = tuple(range(1, len(graph.shape(x)))) if self.shared else ()
        return graph.call(PReLUOp(axes), x)
