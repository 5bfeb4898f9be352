"""Graph constructs: merges of parallel branches (`add`, `cat`, `mul`, `avg`, `max`, `sub`), the identity
branch (`id`), switching to a named tensor (`use`), and an instance of a user-defined block.

A merge's branches are sub-networks, each applied to the merge's input; its named references (`cat d1`)
are tensors made earlier and bound with `as`. Names are resolved by lowering (each binding gets a name
unique in the network), so here a graph only binds and looks them up.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import ValidationInfo, field_validator

from netdsl.ir import Layer, Span
from netdsl.layers.activation import named_operation
from netdsl.layers.base import Graph, Op, ReceptiveField, Shape, ShapeError, Syntax, Tensor, fmt_shape, widest
from netdsl.layers.scale import ScaledAddOp
from netdsl.layers.shared import shared_model


def _labelled(shapes: tuple[Shape, ...], labels: tuple[str, ...]) -> str:
    """`branch 1 is (None, 16, 16, 128) (line 7), branch 2 is (None, 32, 32, 64) (line 8)`."""
    names = labels or tuple(f"input {i + 1}" for i in range(len(shapes)))
    return ", ".join(f"{name.split(' (')[0]} is {fmt_shape(shape)}" + (f" ({name.split(' (', 1)[1]}" if " (" in name else "")
                     for name, shape in zip(names, shapes))  # fmt: skip


@dataclass(frozen=True)
class ElementwiseOp(Op):
    """Keras's element-wise merges (Add, Multiply, Average, Maximum, Subtract): equal shapes, or size-1
    axes that broadcast (Merge._compute_elemwise_op_output_shape). `labels` name the inputs in messages."""

    labels: tuple[str, ...] = ()
    word: ClassVar[str] = ""

    def output_shape(self, *inputs: Shape) -> Shape:
        if len(inputs) < 2:
            raise ShapeError("E315", f"{self.word} merges at least two tensors, got {len(inputs)}",
                             help=f"give two branches (`{self.word} [a | b]`) or a name (`{self.word} d1`)")  # fmt: skip
        if self.keras_class == "Subtract" and len(inputs) != 2:
            raise ShapeError("E315", f"sub takes exactly two tensors, got {len(inputs)}",
                             help="names are joined with the current tensor, which comes first: `use a; sub b` is a - b")  # fmt: skip
        shape = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(shape) or any(a != b and 1 not in (a, b) for a, b in zip(shape, other)):
                raise ShapeError(
                    "E304", f"the inputs have different shapes: {_labelled(inputs, self.labels)}",
                    help="element-wise merges need equal shapes: match the filters and strides of the branches, "
                    "or project the shortcut (`conv F k1 s=S`)",
                )  # fmt: skip
            shape = tuple(b if a == 1 else a for a, b in zip(shape, other))
        return shape

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        if all(other == inputs[0] for other in inputs[1:]):
            return []
        return [("W404", f"{self.word} broadcasts {_labelled(inputs, self.labels)} to {fmt_shape(self.output_shape(*inputs))}; "
                 "Keras accepts this, but a size-1 axis is repeated rather than combined element by element")]  # fmt: skip

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return widest(list(inputs))


@dataclass(frozen=True)
class MultiplyOp(ElementwiseOp):
    keras_class: ClassVar[str] = "Multiply"
    prefix: ClassVar[str] = "multiply"
    word: ClassVar[str] = "mul"

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        """A per-channel gate, (1, 1, C) on an (H, W, C) map, is squeeze-and-excite: the broadcast is the point."""
        full = max(inputs, key=math.prod)
        if all(shape == full or shape == (*(1,) * (len(full) - 1), full[-1]) for shape in inputs):
            return []
        return super().warnings(*inputs)


def _elementwise(name: str, keras_class: str, prefix: str, word: str) -> type[ElementwiseOp]:
    """An element-wise merge that differs from ElementwiseOp only in its Keras class, name and word."""
    attributes = {
        "keras_class": keras_class,
        "prefix": prefix,
        "word": word,
        "__doc__": f"`{word}`: Keras {keras_class}.",
    }
    return dataclass(frozen=True)(type(name, (ElementwiseOp,), attributes))


AverageOp = _elementwise("AverageOp", "Average", "average", "avg")
MaximumOp = _elementwise("MaximumOp", "Maximum", "maximum", "max")
SubtractOp = _elementwise("SubtractOp", "Subtract", "subtract", "sub")
MergeAddOp = _elementwise("MergeAddOp", "Add", "add", "add")  # `res` uses merge.AddOp: a shortcut and a branch


@dataclass(frozen=True)
class ConcatenateOp(Op):
    """Keras Concatenate: equal shapes but along `axis`, where the sizes add up."""

    axis: int = -1
    labels: tuple[str, ...] = ()
    keras_class: ClassVar[str] = "Concatenate"
    prefix: ClassVar[str] = "concatenate"

    def output_shape(self, *inputs: Shape) -> Shape:
        if len(inputs) < 2:
            raise ShapeError("E315", f"cat joins at least two tensors, got {len(inputs)}",
                             help="give two branches (`cat [a | b]`) or a name (`cat d1`)")  # fmt: skip
        rank = len(inputs[0])
        axis = self.axis + rank + 1 if self.axis < 0 else self.axis  # counted with the batch axis, as Keras does
        if not 1 <= axis <= rank:
            raise ShapeError("E304", f"cat: axis {self.axis} does not exist in {fmt_shape(inputs[0])}")
        at = axis - 1
        for other in inputs[1:]:
            if len(other) != rank or any(a != b for i, (a, b) in enumerate(zip(inputs[0], other)) if i != at):
                raise ShapeError(
                    "E304", f"the inputs differ outside the joined axis {self.axis}: {_labelled(inputs, self.labels)}",
                    help="concatenated tensors must agree on every other axis: the same height and width for channels",
                )  # fmt: skip
        return (*inputs[0][:at], sum(shape[at] for shape in inputs), *inputs[0][at + 1 :])

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return widest(list(inputs))

    def keras_args(self) -> dict[str, Any]:
        return {"axis": self.axis} if self.axis != -1 else {}


@dataclass(frozen=True)
class SumOp(ElementwiseOp):
    """`plus`: Python's `+` on Keras tensors, an operation and not a layer (absent from `model.layers`, yet
    named 'add' from the counter layers are named by), as ConvNeXt writes its residual `inputs + x`."""

    keras_class: ClassVar[str] = "Operation"
    prefix: ClassVar[str] = "add"
    word: ClassVar[str] = "plus"
    is_layer: ClassVar[bool] = False

    def to_keras(self, keras: Any, name: str) -> Any:
        return lambda tensors: named_operation(functools.reduce(operator.add, tensors), name)

    def to_source(self, name: str | None = None) -> str:
        return "(lambda tensors: sum(tensors[1:], tensors[0]))"


MERGES: dict[str, type[Op]] = {
    "add": MergeAddOp, "cat": ConcatenateOp, "mul": MultiplyOp, "avg": AverageOp, "max": MaximumOp, "sub": SubtractOp,
    "plus": SumOp,
}  # fmt: skip


def _where(layers: tuple[Layer, ...], fallback: Span | None) -> str:
    span = next((layer.span for layer in layers if layer.span is not None), fallback)
    return f" (line {span.line})" if span is not None else ""


class Merge(Layer):
    """`add [a | b]`, `cat [a | b | c]`, `add d1`, `cat d1 [a]`: the named tensors and the branches (each
    applied to the current tensor), in the order written, joined by one Keras merge layer. One branch alone is joined with the
    current tensor (`add [conv 64; conv 64]` is a residual block, `cat [bn; relu; conv 32]` a dense layer);
    `id` is the identity branch. `add scale=S [a | b]` is a + b * S (Inception-ResNet's scaled residual, one
    CustomScaleLayer); `plus [a | b]` is a + b with Keras's `+` on tensors, an operation rather than a layer."""

    kind: Literal["merge"] = "merge"
    mode: Literal["add", "cat", "mul", "avg", "max", "sub", "plus"]
    branches: tuple[tuple[AnyLayer, ...], ...] = ()  # noqa: F821  (completed in netdsl.layers)
    refs: tuple[str, ...] = ()
    ref_names: tuple[str, ...] = ()  # the names as written, for messages and emitted code
    axis: int = -1
    scale: float | None = None

    @field_validator("scale")
    @classmethod
    def _scale_is_adds(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("mode") != "add":
            raise ValueError(f"applies to add only, not to {info.data.get('mode')}")
        return value

    words: ClassVar[tuple[str, ...]] = tuple(MERGES)
    internal: ClassVar[frozenset[str]] = Layer.internal | {"mode", "branches", "refs", "ref_names"}
    takes_branches: ClassVar[bool] = True
    syntax: ClassVar[Syntax] = Syntax(example="add [conv 64 k3 bn relu; conv 64 k3 bn | id]")
    summary: ClassVar[str] = "merge of branches / named tensors: add, cat (channels), mul, avg, max, sub"

    @classmethod
    def from_word(cls, word: str) -> dict[str, Any]:
        return {"mode": word}

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        inputs, labels = [], []
        if len(self.branches) == 1 or not self.branches:
            inputs.append(x)
            labels.append("the input")
        for ref, name in zip(self.refs, self.ref_names or self.refs):  # in the order written: names, then branches
            inputs.append(graph.lookup(ref))
            labels.append(f"'{name}'")
        for number, branch in enumerate(self.branches, 1):
            inputs.append(graph.run(branch, x))
            label = "the branch" if len(self.branches) == 1 else f"branch {number}"
            labels.append(label + (_where(branch, None) if branch else ""))
        op = MERGES[self.mode]
        if self.scale is not None:
            return graph.call(ScaledAddOp(self.scale, tuple(labels)), *inputs)
        merge = op(axis=self.axis, labels=tuple(labels)) if op is ConcatenateOp else op(labels=tuple(labels))  # type: ignore[call-arg]
        return graph.call(merge, *inputs)


class Identity(Layer):
    """`id`: the identity, as a branch (`add [conv 64; conv 64 | id]`). No Keras layer."""

    kind: Literal["id"] = "id"
    syntax: ClassVar[Syntax] = Syntax(example="add [conv 8 | id]")
    summary: ClassVar[str] = "the identity branch of a merge (no Keras layer)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return x


class Use(Layer):
    """`use NAME`: go on from a tensor named earlier with `as` (an input, a skip connection)."""

    kind: Literal["use"] = "use"
    restarts_path: ClassVar[bool] = True
    ref: str
    ref_name: str = ""
    internal: ClassVar[frozenset[str]] = Layer.internal | {"ref", "ref_name"}
    syntax: ClassVar[Syntax] = Syntax(example="use image")
    summary: ClassVar[str] = "continue from a tensor named with `as` (no Keras layer)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.lookup(self.ref)


def use_note(name: str, span: Span | None, values: tuple[tuple[str, Any], ...]) -> str:
    """`in block 'basic' used at 12:5, with f=128, s=2`: the note on an error inside a block's body, from
    lowering (its arguments) and from the analyzer (its shapes) alike."""
    where = f" at {span.line}:{span.column}" if span else ""
    shown = ", ".join(f"{k}={'x'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values)
    return f"in block '{name}' used{where}" + (f", with {shown}" if shown else "")


class Block(Layer):
    """One use of a user-defined block (`def basic f s=1 [...]`, then `basic 64 s=2`): its lowered body.
    `args` are the values its parameters took, for messages (`with f=64, s=2`) and emitted code."""

    kind: Literal["block"] = "block"
    words: ClassVar[tuple[str, ...] | None] = ()  # written as the block's own name
    name: str
    args: tuple[tuple[str, int | float | str | tuple[int, ...] | None], ...] = ()
    body: tuple[AnyLayer, ...] = ()  # noqa: F821  (completed in netdsl.layers)
    shared: bool = False  # `tower shared`: every shared use is one Keras model, with one set of weights

    internal: ClassVar[frozenset[str]] = Layer.internal | {"name", "args", "body"}
    own_function: ClassVar[bool] = True
    syntax: ClassVar[Syntax] = Syntax(example="def basic f s=1 [conv f k3 s=s bn relu]")
    summary: ClassVar[str] = "a use of a block defined with `def NAME params [ ... ]`"

    def emit_name(self) -> str:
        return self.name

    def describe(self) -> str:
        return use_note(self.name, self.span, self.args)

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        graph.frames.append(self)
        try:
            if self.shared:
                return graph.call(shared_model(self.name, self.body, graph.shape(x), graph), x)
            return graph.run(self.body, x)
        finally:
            graph.frames.pop()
