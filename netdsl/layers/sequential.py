"""`seq [ ... ]`: layers one after another, wrapped in one Keras `Sequential`, which is then a single layer
of the model (one row of `model.layers`, its parameters those of the layers inside). keras.applications'
ConvNeXt builds its stem and its downsampling steps so."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from netdsl.ir import Layer
from netdsl.layers.base import Code, GraphBase, Op, ReceptiveField, Shape, ShapeError, Syntax, Tensor, Weight

NOT_A_STACK = "seq holds layers one after another (a Keras Sequential): {what} cannot be inside it"


@dataclass(frozen=True)
class SequentialOp(Op):
    """A Keras Sequential of `ops`, each applied to the previous one's output. `refusal`: why the body
    cannot be one (a merge inside), raised as the op's shape error so the analyzer locates it."""

    ops: tuple[Op, ...]
    refusal: ShapeError | None = field(default=None, compare=False)
    named_inside: bool = False  # its layers have names of their own (a backbone's), not automatic ones
    keras_class: ClassVar[str] = "Sequential"
    prefix: ClassVar[str] = "sequential"

    @property
    def inner_prefixes(self) -> tuple[str, ...]:  # type: ignore[override]
        return () if self.named_inside else tuple(op.prefix for op in self.ops)  # taken first, as Keras does

    @property
    def keeps_positions(self) -> bool:  # type: ignore[override]
        return all(op.keeps_positions for op in self.ops)

    def shapes(self, shape: Shape) -> list[Shape]:
        """The input's shape, then each op's output shape."""
        if self.refusal is not None:
            raise self.refusal
        if not self.ops:
            raise ShapeError("E535", "seq needs at least one layer inside", help="for example `seq [ conv 8 k2 s2 ]`")
        shapes = [shape]
        for op in self.ops:
            shapes.append(op.output_shape(shapes[-1]))
        return shapes

    def output_shape(self, *inputs: Shape) -> Shape:
        return self.shapes(inputs[0])[-1]

    def weights(self, *inputs: Shape) -> list[Weight]:
        shapes = self.shapes(inputs[0])
        return [weight for op, shape in zip(self.ops, shapes) for weight in op.weights(shape)]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        shapes = self.shapes(inputs[0])
        return sum(op.macs(out, shape) for op, shape, out in zip(self.ops, shapes, shapes[1:]))

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        field_ = inputs[0]
        for op in self.ops:
            field_ = op.receptive_field(field_)
        return field_

    def warnings(self, *inputs: Shape) -> list[tuple[str, str]]:
        shapes = self.shapes(inputs[0])
        return [warning for op, shape in zip(self.ops, shapes) for warning in op.warnings(shape)]

    def to_keras(self, keras: Any, name: str) -> Any:
        inner = [op.to_keras(keras, None) for op in self.ops]  # type: ignore[arg-type]  (None: Keras names them)
        return keras.Sequential(inner, name=name)

    def to_source(self, name: str | None = None) -> str:
        inner = ", ".join(op.to_source() for op in self.ops)
        return f"keras.Sequential([{inner}]" + (f", name={name!r})" if name else ")")

    def source_args(self) -> dict[str, Any]:
        return {"layers": Code("[" + ", ".join(op.to_source() for op in self.ops) + "]")}


class StackGraph(GraphBase[Shape]):
    """The graph a `seq` body runs on: it records the body's ops in order and refuses what a Sequential
    cannot hold (merges, names, operations that are not layers, backbones)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.refusal: ShapeError | None = None

    def refuse(self, what: str) -> None:
        self.refusal = self.refusal or ShapeError(
            "E535", NOT_A_STACK.format(what=what), help="write the branches outside `seq [ ... ]`"
        )

    def shape(self, x: Shape) -> Shape:
        return x

    def call(self, op: Op, *inputs: Shape) -> Shape:
        if len(inputs) != 1:
            self.refuse(f"a merge of {len(inputs)} tensors ({op.prefix})")
        elif not op.is_layer:
            self.refuse(f"a Keras operation that is no layer ({op.prefix})")
        elif op.share is not None:
            self.refuse(f"a shared block ('{op.share}')")
        self.ops.append(op)
        try:
            return op.output_shape(inputs[0])
        except ShapeError:  # raised again, located, when the analyzer applies the whole SequentialOp
            return inputs[0]

    def application(self, application: Any, x: Shape) -> Shape:
        self.refuse("a backbone")
        return x

    def bind(self, name: str, tensor: Shape) -> None:
        self.refuse(f"a name (`as {name.split('#')[0]}`)")

    def lookup(self, name: str) -> Shape:
        self.refuse(f"a use of '{name.split('#')[0]}'")
        return ()


class Bodied(Layer):
    """A layer written with one body in brackets (`seq [ ... ]`, `td [ ... ]`), which lowering puts in `branches`."""

    branches: tuple[tuple[AnyLayer, ...], ...] = ()  # noqa: F821  (completed in netdsl.layers); one, the body

    internal: ClassVar[frozenset[str]] = Layer.internal | {"branches"}
    takes_branches: ClassVar[bool] = True


class Seq(Bodied):
    """`seq [ layer; layer; ... ]`: the layers inside, one after another, as one Keras Sequential layer of the
    model (`seq [ conv 96 k4 s4 valid; layernorm epsilon=1e-6 ]` is ConvNeXt's stem)."""

    kind: Literal["seq"] = "seq"
    syntax: ClassVar[Syntax] = Syntax(example="seq [ layernorm epsilon=1e-6; conv 192 k2 s2 valid ]")
    summary: ClassVar[str] = "layers one after another as one Keras Sequential layer (ConvNeXt's stem)"

    def apply(self, x: Tensor, graph: Any) -> Tensor:
        stack = StackGraph()
        if len(self.branches) != 1:
            stack.refuse(f"{len(self.branches)} branches")
        stack.layer, stack.frames = graph.layer, graph.frames
        stack.run(self.branches[0] if len(self.branches) == 1 else (), graph.shape(x))
        return graph.call(SequentialOp(tuple(stack.ops), stack.refusal), x)
