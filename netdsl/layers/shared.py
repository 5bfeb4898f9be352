"""Shared weights: a user block used with `shared` (`tower shared`) is built once, as one Keras model (a
`Functional`, named after the block), and every shared use calls that model, so all of them apply one
set of weights: a Siamese network's two towers, or a weight-tied block repeated. It is one row of
`model.layers` and its parameters are counted once, as Keras counts them; the graphs (analyzer,
compiler, emitter) reuse the layer of an op whose `share` key they have met before."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netdsl.layers.base import GraphBase, Op, ReceptiveField, Shape, ShapeError, Weight

Call = tuple[Op, tuple[int, ...]]
"""An op of the model's body and where its inputs come from: -1 is the model's input, i the i-th op's output."""


@dataclass(frozen=True)
class SharedModelOp(Op):
    """A block's body as one Keras model on inputs of `input_shape`; `share` is the key its uses meet by."""

    name: str
    input_shape: Shape
    calls: tuple[Call, ...]
    output: int  # which call's output the model returns
    refusal: ShapeError | None = field(default=None, compare=False)
    keras_class: ClassVar[str] = "Functional"

    @property
    def share(self) -> str:  # type: ignore[override]
        return self.name

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.name  # the model is named after the block

    @property
    def inner_prefixes(self) -> tuple[str, ...]:  # type: ignore[override]
        """The model's own input and every layer inside take Keras's automatic names when it is built."""
        return ("input_layer", *(name for op, _ in self.calls for name in (*op.inner_prefixes, op.prefix)))

    @property
    def keeps_positions(self) -> bool:  # type: ignore[override]
        return all(op.keeps_positions for op, _ in self.calls)

    def walk(self, first: Any, step: Callable[[Op, list[Any]], Any]) -> list[Any]:
        """`step(op, its inputs' values)` for each call in order, from the model's input's value `first`."""
        values = {-1: first}
        for index, (op, inputs) in enumerate(self.calls):
            values[index] = step(op, [values[i] for i in inputs])
        return [values[i] for i in range(-1, len(self.calls))]

    def shapes(self, shape: Shape) -> list[Shape]:
        """The model's input shape, then each call's output shape."""
        if self.refusal is not None:
            raise self.refusal
        return self.walk(shape, lambda op, inputs: op.output_shape(*inputs))

    def output_shape(self, *inputs: Shape) -> Shape:
        return self.shapes(inputs[0])[self.output + 1]

    def weights(self, *inputs: Shape) -> list[Weight]:
        shapes = self.shapes(inputs[0])
        return [w for (op, ins) in self.calls for w in op.weights(*(shapes[i + 1] for i in ins))]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        shapes = self.shapes(inputs[0])
        return sum(op.macs(shapes[n + 1], *(shapes[i + 1] for i in ins)) for n, (op, ins) in enumerate(self.calls))

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return self.walk(inputs[0], lambda op, fields: op.receptive_field(*fields))[self.output + 1]

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        shapes = self.shapes(inputs[0])
        return [w for (op, ins) in self.calls for w in op.warnings(*(shapes[i + 1] for i in ins))]

    def to_keras(self, keras: Any, name: str) -> Any:
        """The block's body on a fresh `keras.Input`, as a model of its own (its layers named by Keras)."""
        inputs = keras.Input(shape=self.input_shape)
        tensors = self.walk(inputs, lambda op, args: op.call_keras(op.to_keras(keras, None), tuple(args)))
        return keras.Model(inputs, tensors[self.output + 1], name=name)

    def to_source(self, name: str | None = None) -> str:
        return f"{self.name}_model()"  # the emitted module's function: the one model, made at its first use

    def model_source(self, lines_of: Callable[[tuple[Call, ...]], list[str]]) -> list[str]:
        """The emitted module's `def tower_model():`, which makes the model at its first use in `build_model()`
        (so Keras names its layers in the analyzer's order) and returns it to every use; `lines_of` writes the
        body's calls as Python lines, from `x` (the model's input) to `x` (its output)."""
        body = lines_of(self.calls[: self.output + 1])
        return [
            f"def {self.name}_model():",
            f'    """The block {self.name!r} as one model: every shared use calls it, with the same weights."""',
            f"    if {self.name!r} not in SHARED:",
            f"        inputs = keras.Input(shape={tuple(self.input_shape)!r})",
            "        x = inputs",
            *(f"        {line}".replace("\n", "\n        ") for line in body),
            f"        SHARED[{self.name!r}] = keras.Model(inputs, x, name={self.name!r})",
            f"    return SHARED[{self.name!r}]",
        ]


class RecordGraph(GraphBase[int]):
    """The graph a shared block's body runs on: it records the ops and their wiring, with their shapes, and
    refuses what one model of one input cannot hold (a backbone, another shared block inside)."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.shapes: dict[int, Shape] = {-1: shape}
        self.refusal: ShapeError | None = None

    def refuse(self, code: str, message: str, help: str | None = None) -> None:
        self.refusal = self.refusal or ShapeError(code, message, help)

    def shape(self, x: int) -> Shape:
        return self.shapes[x]

    def call(self, op: Op, *inputs: int) -> int:
        if op.share is not None:
            self.refuse(
                "E318", f"a shared block cannot hold another ('{op.share}')", help="use the inner block unshared"
            )
        self.calls.append((op, inputs))
        index = len(self.calls) - 1
        try:
            self.shapes[index] = op.output_shape(*(self.shapes[i] for i in inputs))
        except ShapeError as err:  # said at the shared use, naming the line inside the block
            line = f" (line {self.layer.span.line})" if self.layer is not None and self.layer.span else ""
            self.refuse(err.code, f"{getattr(self.layer, 'kind', op.prefix)}{line}: {err.message}", err.help)
            self.shapes[index] = self.shapes[inputs[0]] if inputs else ()
        return index

    def application(self, application: Any, x: int) -> int:
        self.refuse("E318", "a shared block cannot hold a backbone (`pretrained`)", help="share a block of layers")
        return x


def shared_model(name: str, body: Any, shape: Shape, graph: Any) -> SharedModelOp:
    """The op of a shared use of block `name` (its lowered `body`) on inputs of `shape`."""
    record = RecordGraph(shape)
    record.frames = graph.frames
    output = record.run(body, -1)
    if output == -1 and record.refusal is None:
        record.refuse("E318", f"shared block '{name}' has no layers", help="a shared block is a model: give it layers")
    return SharedModelOp(name, tuple(shape), tuple(record.calls), output, record.refusal)
