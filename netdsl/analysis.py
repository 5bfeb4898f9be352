"""The static analyzer: shapes, parameter counts, MACs and receptive fields, without Keras.

It runs every layer's `apply` on a graph whose tensors are shape records. Each op contributes
one row, named as Keras would name it, so `netdsl check` and `model.summary()` line up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, InstanceOf, PlainSerializer

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.graph_order import keras_order
from netdsl.ir import Network, Span
from netdsl.layers.base import GraphBase, Op, ReceptiveField, Shape, ShapeError, fmt_shape
from netdsl.layers.pretrained import Application
from netdsl.lints import lints
from netdsl.quick import construct, paused_gc

MAX_KERAS_LAYERS = 500_000
"""Most Keras layers one analysis records: each row costs about 1.5 KB, so memory stays under ~1 GB."""


MAX_ELEMENTS = 2**63 - 1
"""Largest tensor or weight, in elements: int64 indexing, the most any framework can address. Bounding
every size also keeps totals printable (Python refuses to print integers of over 4,300 digits)."""


def too_large(what: str, count: int, span: Span | None) -> NetdslError:
    """E207 for a tensor or weight of more than MAX_ELEMENTS elements."""
    return NetdslError([Diagnostic(
        "E207", f"{what} has more than 2**63 elements ({count.bit_length()}-bit count); no framework can hold it",
        span, help="see docs/limits.md",
    )])  # fmt: skip


class LayerReport(BaseModel):
    """One Keras layer of the built model."""

    model_config = ConfigDict(frozen=True)
    name: str
    type: str
    output_shape: tuple[int | None, ...]
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    receptive_field: tuple[int, int] | None = None  # (size, jump) along the first spatial axis (height)
    receptive_field_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # (sizes, jumps), one per spatial axis
    inputs: tuple[str, ...] = ()
    statement: int | None = None  # which lowered statement made this row: `netdsl draw` boxes rows sharing it
    line: int | None = None
    column: int | None = None
    source: str = ""  # the netdsl kind this layer came from
    blocks: tuple[str, ...] = ()  # the user-block uses it is inside, outermost first: ("basic@12:5",)


ReportedDiagnostic = Annotated[InstanceOf[Diagnostic], PlainSerializer(Diagnostic.to_dict, return_type=dict)]
"""A report's warning: the Diagnostic itself, written as `Diagnostic.to_dict` in the report's JSON."""


class PhaseReport(BaseModel):
    """One `phase` line's counts with its freezing applied to the same model (the seed's before/after)."""

    model_config = ConfigDict(frozen=True)
    phase: int  # 1 for the first `phase` line
    line: int | None
    epochs: int
    frozen_below: int  # model.layers[:frozen_below] are frozen in this phase; 0 freezes nothing
    trainable_params: int
    non_trainable_params: int


class Report(BaseModel):
    """What `netdsl check --json` prints for one file."""

    model_config = ConfigDict(frozen=True)
    file: str | None = None
    name: str
    input_shape: tuple[int | None, ...]
    output_shape: tuple[int | None, ...]
    layers: list[LayerReport]
    input_shapes: list[tuple[int | None, ...]] = []  # every input's, the first being input_shape
    output_shapes: list[tuple[int | None, ...]] = []  # every output's, the first being output_shape
    total_params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int  # 2 * MACs, the usual convention
    param_bytes: int  # float32 storage of all parameters
    warnings: list[ReportedDiagnostic] = []
    phases: list[PhaseReport] = []  # per `phase` line: its freezing and what trains then

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_dict(self) -> dict:
        return json.loads(self.model_dump_json())

    def _repr_html_(self) -> str:
        """Jupyter shows a report as an HTML table (netdsl.render sits above the analyzer: imported here, late)."""
        from netdsl.render import html_table

        return html_table(self)


@dataclass(frozen=True)
class Node:
    """A tensor in the shape graph: its shape, receptive field and producing layer's name."""

    shape: Shape
    receptive_field: ReceptiveField | None
    name: str
    call: int = -1  # which call of its layer made it (a shared layer has several)


class Namer:
    """Keras's automatic layer names for a fresh session: conv2d, conv2d_1, conv2d_2, ..."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        name = self.peek(prefix)
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return name

    def peek(self, prefix: str) -> str:
        """The name the next layer of that prefix gets, without taking it."""
        n = self.counts.get(prefix, 0)
        return prefix if n == 0 else f"{prefix}_{n}"

    def take(self, name: str, prefix: str) -> None:
        """Count `name` as given, if it is an automatic name of `prefix` (`activation`, `activation_6`)."""
        number = 0 if name == prefix else name[len(prefix) + 1 :] if name.startswith(f"{prefix}_") else ""
        if isinstance(number, int) or number.isdigit():
            self.counts[prefix] = max(self.counts.get(prefix, 0), int(number) + 1)


class ShapeGraph(GraphBase[Node]):
    """A Graph whose tensors are `Node`s; records one `LayerReport` per op, in creation order (`ordered`
    puts them in Keras's order), each with the count of its trainable weights (`freeze` applies freezing)."""

    def __init__(self, trainable: Callable[[int, str], bool] | None = None) -> None:
        super().__init__()
        self.rows: list[LayerReport] = []
        self.warnings: list[Diagnostic] = []
        self.namer = Namer()
        self.trainable = trainable or (lambda index, name: True)
        self.statement: int | None = None  # index of the top-level layer being applied
        self.bound: dict[str, Span | None] = {}  # name -> where it was given
        self.looked_up: set[str] = set()
        self.hidden: set[str] = set()  # rows of Keras operations that are not layers (`x + 3.0`)
        self.inputs: set[str] = set()  # the input layers' names
        self.calls: list[tuple[int, tuple[int, ...]]] = []  # per call: its row, the calls it takes (graph_order)
        self.shared: dict[str, tuple[int, tuple[Shape, ...], Span | None]] = {}  # key -> row, input shapes, where

    def input(self, shape: Shape, span: Span | None, name: str | None = None) -> Node:
        if math.prod(shape) > MAX_ELEMENTS:
            raise too_large(f"the input {fmt_shape(shape)}", math.prod(shape), span)
        row_name = self.namer("input_layer")
        self.inputs.add(row_name)
        field = ReceptiveField.of_input(shape)
        self.rows.append(_row(row_name, "InputLayer", shape, 0, 0, 0, field, (), span, "input"))
        self.calls.append((len(self.rows) - 1, ()))
        node = Node(shape, field, row_name, len(self.calls) - 1)
        if name is not None:
            self.bound[name] = span
            self.names[name] = node
        return node

    def bind(self, name: str, tensor: Node) -> None:
        self.bound[name] = self.layer.span if self.layer is not None else None
        super().bind(name, tensor)

    def lookup(self, name: str) -> Node:
        self.looked_up.add(name)
        return super().lookup(name)

    def application(self, application: Application, x: Node) -> Node:
        """A whole keras.applications backbone: replay its layers, each under its own Keras name."""
        output = application.replay(x, self.call, x.shape)
        application.claim(self.namer)
        return output

    def shape(self, x: Node) -> Shape:
        return x.shape

    def fail(self, code: str, message: str, help: str | None = None) -> NetdslError:
        """A located error at the current layer; inside a block, its notes say where the block is used."""
        span = self.layer.span if self.layer is not None else None
        notes = tuple(frame.describe() for frame in reversed(self.frames))
        return NetdslError([Diagnostic(code, message, span, notes=notes, help=help)])

    def call(self, op: Op, *inputs: Node, name: str | None = None) -> Node:
        layer = self.layer
        span = layer.span if layer else None
        if len(self.rows) >= MAX_KERAS_LAYERS:  # a statement can expand to many ops: bound the rows too
            raise self.fail(
                "E207", f"the network has more than {MAX_KERAS_LAYERS:,} Keras layers", help="see docs/limits.md"
            )
        shapes = [node.shape for node in inputs]
        if op.share is not None and op.share in self.shared:
            return self.again(op, inputs)
        kind = layer.kind if layer else op.prefix
        try:
            shape = op.output_shape(*shapes)
        except ShapeError as err:
            where = f"{layer.mode if kind == 'merge' else kind}" if layer else op.prefix  # type: ignore[union-attr]
            raise self.fail(err.code, f"{where}: {err.message}", err.help) from None
        if math.prod(shape) > MAX_ELEMENTS:
            raise too_large(f"{kind}: the output {fmt_shape(shape)}", math.prod(shape), span)
        for inner in op.inner_prefixes:  # layers the constructor creates inside this one take names too
            self.namer(inner)
        name = name or self.namer(op.prefix)  # a backbone's layers carry Keras's explicit names
        params = trainable_count = 0
        for weight in op.weights(*shapes):
            if weight.size > MAX_ELEMENTS:
                raise too_large(f"{kind}: the {weight.name} {tuple(weight.shape)}", weight.size, span)
            params += weight.size
            trainable_count += weight.size if weight.trainable else 0
        from_input = any(node.name in self.inputs for node in inputs)
        for code, message in [*op.warnings(*shapes), *(op.input_warnings(*shapes) if from_input else [])]:
            self.warnings.append(Diagnostic(code, message, span, severity="warning"))
        field = op.receptive_field(*(node.receptive_field for node in inputs))
        row = _row(
            name, op.keras_class, shape, params, trainable_count, op.macs(shape, *shapes), field,
            tuple(node.name for node in inputs), span, layer.kind if layer else "", self.statement,
            tuple(f"{f.name}@{f.span.line}:{f.span.column}" for f in self.frames if f.span is not None),
        )  # fmt: skip
        self.rows.append(row)
        self.calls.append((len(self.rows) - 1, tuple(node.call for node in inputs)))
        if not op.is_layer:
            self.hidden.add(name)
        if op.share is not None:
            self.shared[op.share] = (len(self.rows) - 1, tuple(shapes), span)
        return Node(shape, field, name, len(self.calls) - 1)

    def again(self, op: Op, inputs: tuple[Node, ...]) -> Node:
        """A layer met before (shared weights) called on `inputs`: no new row, a new call of the same one."""
        row, first, where = self.shared[op.share]  # type: ignore[index]
        shapes = tuple(node.shape for node in inputs)
        if shapes != first:
            at = f" (line {where.line})" if where else ""
            raise self.fail(
                "E316", f"shared block '{op.share}' is applied to {', '.join(map(fmt_shape, shapes))} here, but to "
                f"{', '.join(map(fmt_shape, first))} at its first use{at}",
                help="shared uses apply one set of weights: give them inputs of one shape, or drop `shared`",
            )  # fmt: skip
        self.calls.append((row, tuple(node.call for node in inputs)))
        output = tuple(self.rows[row].output_shape[1:])
        macs = self.rows[row].macs + op.macs(output, *shapes)  # each call computes again
        self.rows[row] = self.rows[row].model_copy(update={"macs": macs})
        field = op.receptive_field(*(node.receptive_field for node in inputs))
        return Node(output, field, self.rows[row].name, len(self.calls) - 1)

    def ordered(self, outputs: list[Node]) -> tuple[list[LayerReport], list[LayerReport]]:
        """The rows in the order of Keras's `model.layers`, and the rows that reach no output."""
        order, reached = keras_order(self.rows, [node.call for node in outputs], self.calls)
        rows = [self.rows[i] for i in order if self.rows[i].name not in self.hidden]
        return rows, [row for i, row in enumerate(self.rows) if i not in reached and row.name not in self.hidden]

    def freeze(self, rows: list[LayerReport]) -> list[LayerReport]:
        """Apply `trainable(index, name)` to rows in Keras's order: frozen layers train nothing."""
        out = []
        for index, row in enumerate(rows):
            if row.trainable_params and not self.trainable(index, row.name):
                row = row.model_copy(update={"trainable_params": 0, "non_trainable_params": row.params})
            out.append(row)
        return out


def _row(
    name: str, type_: str, shape: Shape, params: int, trainable: int, macs: int,
    field: ReceptiveField | None, inputs: tuple[str, ...], span: Span | None, source: str, statement: int | None = None,
    blocks: tuple[str, ...] = (),
) -> LayerReport:  # fmt: skip
    return construct(  # trusted values: no validation (netdsl.quick)
        LayerReport,
        name=name,
        type=type_,
        output_shape=(None, *shape),
        params=params,
        trainable_params=trainable,
        non_trainable_params=params - trainable,
        macs=macs,
        receptive_field=(field.size[0], field.jump[0]) if field else None,
        receptive_field_axes=(field.size, field.jump) if field else None,
        inputs=inputs,
        statement=statement,
        line=span.line if span else None,
        column=span.column if span else None,
        source=source,
        blocks=blocks,
    )


def analyze(net: Network, trainable: Callable[[int, str], bool] | None = None) -> Report:
    """Shapes, counts, MACs and receptive fields of every layer; raise NetdslError if it cannot build.

    `trainable(index, name)` says whether the layer at that position of `model.layers` trains
    (freezing; by default all do). The spec's own freezing and its `phase` lines are policy, applied
    by `netdsl.transfer.analyze` (what `netdsl.analyze` is), which also resolves `pretrained run=`.
    """
    with paused_gc():  # hundreds of thousands of rows, no cycles (netdsl.quick)
        return _analyze(net, trainable)


def _analyze(net: Network, trainable: Callable[[int, str], bool] | None) -> Report:
    source = Source(net.source, net.file or "<string>")
    if net.input_shape is None:
        raise NetdslError(
            [
                Diagnostic(
                    "E301",
                    "no input shape: start the spec with `input HxWxC` (e.g. `input 32x32x3`)",
                    (net.layers[0].span if net.layers else None) or Span(line=1, column=1),  # where it was needed
                    help="or pass --input 32x32x3 to netdsl check",
                )
            ],
            source,
        )
    if not net.layers:
        raise NetdslError(
            [Diagnostic("E305", "the network has no layers", net.input_span or Span(line=1, column=1))], source
        )
    graph = ShapeGraph(trainable)
    try:
        x = graph.input(net.input_shape, net.input_span, net.input_name)
        inputs = [x, *(graph.input(spec.shape, spec.span, spec.name) for spec in net.extra_inputs)]
        for index, layer in enumerate(net.layers):
            graph.statement = index  # `netdsl draw` boxes the rows of one top-level statement together
            x = graph.run((layer,), x)
        outputs = [graph.lookup(name) for name in net.outputs] or [x]
        rows, dead = graph.ordered(outputs)
        rows = graph.freeze(rows)
    except NetdslError as err:
        err.source = source
        raise
    total = sum(r.params for r in rows)
    trainable_total = sum(r.trainable_params for r in rows)
    macs = sum(r.macs for r in rows)
    warnings = lints(net, graph, rows, dead, total, pooled=all(len(node.shape) == 1 for node in outputs))
    return Report(
        file=net.file,
        name=net.name,
        input_shape=(None, *net.input_shape),
        output_shape=(None, *outputs[0].shape),
        layers=rows,
        input_shapes=[(None, *node.shape) for node in inputs],
        output_shapes=[(None, *node.shape) for node in outputs],
        total_params=total,
        trainable_params=trainable_total,
        non_trainable_params=total - trainable_total,
        macs=macs,
        flops=2 * macs,
        param_bytes=4 * total,
        warnings=warnings,
    )


def format_shape(shape: tuple[int | None, ...]) -> str:
    """`(None, 32, 32, 3)`."""
    return fmt_shape(tuple(shape[1:]))  # type: ignore[arg-type]
