"""`td [ ... ]`: each layer inside applied to every step of a sequence of frames, with one set of weights
(Keras's `TimeDistributed`, one around each layer), as a CNN-LSTM reads a video: `td [ conv 32 k3 relu;
maxpool 2; gap ]` on (frames, height, width, channels), then `lstm` over the frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from netdsl.layers.base import Code, GraphBase, Op, Shape, ShapeError, Syntax, Tensor, Weight, fmt_shape
from netdsl.layers.sequential import Bodied


def _steps(shape: Shape) -> None:
    if len(shape) < 2:
        raise ShapeError(
            "E302", f"time_distributed needs (batch, steps, ...) with something in each step; got {fmt_shape(shape)}",
            help="`td [ ... ]` applies its layers to each step: give it a sequence of frames (or of vectors)",
        )  # fmt: skip


@dataclass(frozen=True)
class TimeDistributedOp(Op):
    """Keras TimeDistributed around `layer`: the layer on each step (the first axis after the batch)."""

    layer: Op
    keras_class: ClassVar[str] = "TimeDistributed"
    prefix: ClassVar[str] = "time_distributed"
    keeps_positions: ClassVar[bool] = False  # netdsl tracks no receptive field through the wrapper

    @property
    def inner_prefixes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self.layer.inner_prefixes, self.layer.prefix)  # `TimeDistributed(Conv2D(8, 3))` names its Conv2D

    def output_shape(self, *inputs: Shape) -> Shape:
        (shape,) = inputs
        _steps(shape)
        return (shape[0], *self.layer.output_shape(shape[1:]))

    def weights(self, *inputs: Shape) -> list[Weight]:
        return self.layer.weights(inputs[0][1:])

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return inputs[0][0] * self.layer.macs(output[1:], inputs[0][1:])

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        return self.layer.warnings(inputs[0][1:])

    def to_keras(self, keras: Any, name: str) -> Any:
        return keras.layers.TimeDistributed(self.layer.to_keras(keras, None), name=name)

    def source_args(self) -> dict[str, Any]:
        return {"layer": Code(self.layer.to_source())}


class StepGraph(GraphBase[Any]):
    """The graph a `td` body runs on: it shows each layer one step's shape (so `conv` on frames is a Conv2D)
    and puts each op in a TimeDistributed on the graph outside; merges and names have no place inside."""

    def __init__(self, outer: Any) -> None:
        super().__init__()
        self.outer = outer
        self.refusal: str | None = None

    def shape(self, x: Any) -> Shape:
        shape = self.outer.shape(x)
        return shape[1:] if len(shape) > 1 else shape

    def call(self, op: Op, *inputs: Any) -> Any:
        why = (f"a merge of {len(inputs)} tensors ({op.prefix})" if len(inputs) != 1
               else f"a Keras operation that is no layer ({op.prefix})" if not op.is_layer
               else f"a shared block ('{op.share}')" if op.share is not None else None)  # fmt: skip
        if why is not None:
            self.refusal = self.refusal or why
            return inputs[0]
        outer = self.outer.layer
        self.outer.layer = self.layer  # rows and errors at the statement inside
        try:
            return self.outer.call(TimeDistributedOp(op), inputs[0])
        finally:
            self.outer.layer = outer

    def application(self, application: Any, x: Any) -> Any:
        self.refusal = self.refusal or "a backbone"
        return x

    def bind(self, name: str, tensor: Any) -> None:
        self.refusal = self.refusal or f"a name (`as {name.split('#')[0]}`)"

    def lookup(self, name: str) -> Any:
        self.refusal = self.refusal or f"a use of '{name.split('#')[0]}'"
        raise LookupError(name)


class TimeDistributed(Bodied):
    """`td [ layer; layer; ... ]`: each layer inside wrapped in its own Keras TimeDistributed, so it runs on each
    step of the input (a video's frames) with the same weights; `conv`, pooling and `flatten` see one frame."""

    kind: Literal["td"] = "td"
    syntax: ClassVar[Syntax] = Syntax(example="td [ conv 32 k3 relu; maxpool 2; gap ]")
    summary: ClassVar[str] = "each layer inside on every step of a sequence (Keras TimeDistributed): a CNN-LSTM"

    def apply(self, x: Tensor, graph: Any) -> Tensor:
        steps = StepGraph(graph)
        steps.frames = graph.frames
        if len(self.branches) != 1:
            steps.refusal = f"{len(self.branches)} branches"
        else:
            try:
                x = steps.run(self.branches[0], x)
            except LookupError:
                pass
        if steps.refusal is not None:  # said by the analyzer, at the `td` statement
            return graph.call(RefusedOp(ShapeError(
                "E319", f"td wraps each layer inside in a TimeDistributed: {steps.refusal} cannot be inside it",
                help="write merges, names and branches outside `td [ ... ]`",
            )), x)  # fmt: skip
        return x


@dataclass(frozen=True)
class RefusedOp(Op):
    """What a `td` body cannot hold, raised as a shape error when the analyzer applies it (never built)."""

    error: ShapeError
    prefix: ClassVar[str] = "time_distributed"

    def output_shape(self, *inputs: Shape) -> Shape:
        raise self.error
