"""The static analyzer: shapes, parameter counts, MACs and receptive fields, without Keras.

It runs every layer's `apply` on a graph whose tensors are shape records. Each op contributes
one row, named as Keras would name it, so `netdsl check` and `model.summary()` line up.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Layer, Network, Span
from netdsl.layers.base import Op, ReceptiveField, Shape, ShapeError, fmt_shape
from netdsl.layers.pretrained import Application

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


def physical_memory() -> int | None:
    """The machine's RAM in bytes, or None where the OS cannot tell (then no memory warning is given)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def gigabytes(n: int) -> str:
    """`1.5 GB` (1024-based, like Keras's summary), for memory messages."""
    return f"{n / 1024**3:,.1f} GB"


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


class Report(BaseModel):
    """What `netdsl check --json` prints for one file."""

    model_config = ConfigDict(frozen=True)
    file: str | None = None
    name: str
    input_shape: tuple[int | None, ...]
    output_shape: tuple[int | None, ...]
    layers: list[LayerReport]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int  # 2 * MACs, the usual convention
    param_bytes: int  # float32 storage of all parameters
    warnings: list[dict] = []
    phases: list[dict] = []  # per `phase` line: its freezing and what trains then

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


class Namer:
    """Keras's automatic layer names for a fresh session: conv2d, conv2d_1, conv2d_2, ..."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return prefix if n == 0 else f"{prefix}_{n}"


class ShapeGraph:
    """A Graph whose tensors are `Node`s; records one `LayerReport` per op."""

    def __init__(self, trainable: Callable[[int, str], bool] | None = None) -> None:
        self.rows: list[LayerReport] = []
        self.warnings: list[Diagnostic] = []
        self.namer = Namer()
        self.layer: Layer | None = None
        self.statement: int | None = None  # index of `self.layer` in the lowered network
        self.trainable = trainable or (lambda index, name: True)

    def input(self, shape: Shape, span: Span | None) -> Node:
        if math.prod(shape) > MAX_ELEMENTS:
            raise too_large(f"the input {fmt_shape(shape)}", math.prod(shape), span)
        name = "input_layer"
        self.namer.counts["input_layer"] = 1
        field = ReceptiveField.of_input(shape)
        self.rows.append(_row(name, "InputLayer", shape, 0, 0, 0, field, (), span, "input"))
        return Node(shape, field, name)

    def application(self, application: Application, x: Node) -> Node:
        """A whole keras.applications backbone: replay its layers, each under its own Keras name."""
        return application.replay(x, self.call, x.shape)

    def shape(self, x: Node) -> Shape:
        return x.shape

    def call(self, op: Op, *inputs: Node, name: str | None = None) -> Node:
        layer = self.layer
        span = layer.span if layer else None
        if len(self.rows) >= MAX_KERAS_LAYERS:  # a statement can expand to many ops: bound the rows too
            raise NetdslError(
                [Diagnostic("E207", f"the network has more than {MAX_KERAS_LAYERS:,} Keras layers", span,
                            help="see docs/limits.md")]
            )  # fmt: skip
        shapes = [node.shape for node in inputs]
        try:
            shape = op.output_shape(*shapes)
        except ShapeError as err:
            raise NetdslError(
                [Diagnostic(err.code, f"{layer.kind if layer else op.prefix}: {err.message}", span, help=err.help)]
            ) from None
        kind = layer.kind if layer else op.prefix
        if math.prod(shape) > MAX_ELEMENTS:
            raise too_large(f"{kind}: the output {fmt_shape(shape)}", math.prod(shape), span)
        for inner in op.inner_prefixes:  # layers the constructor creates inside this one take names too
            self.namer(inner)
        name = name or self.namer(op.prefix)  # a backbone's layers carry Keras's explicit names
        trainable = self.trainable(len(self.rows), name)
        params = trainable_count = 0
        for weight in op.weights(*shapes):
            if weight.size > MAX_ELEMENTS:
                raise too_large(f"{kind}: the {weight.name} {tuple(weight.shape)}", weight.size, span)
            params += weight.size
            trainable_count += weight.size if (weight.trainable and trainable) else 0
        for code, message in op.warnings(*shapes):
            self.warnings.append(Diagnostic(code, message, span, severity="warning"))
        field = op.receptive_field(*(node.receptive_field for node in inputs))
        row = _row(
            name, op.keras_class, shape, params, trainable_count, op.macs(shape, *shapes), field,
            tuple(node.name for node in inputs), span, layer.kind if layer else "", self.statement,
        )  # fmt: skip
        self.rows.append(row)
        return Node(shape, field, name)


def _row(
    name: str, type_: str, shape: Shape, params: int, trainable: int, macs: int,
    field: ReceptiveField | None, inputs: tuple[str, ...], span: Span | None, source: str, statement: int | None = None,
) -> LayerReport:  # fmt: skip
    return LayerReport.model_construct(
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
    )


FINAL = frozenset({"softmax", "sigmoid", "log_softmax"})


def _trailing_warnings(net: Network) -> Iterable[Diagnostic]:
    """W401: layers after the activation that ends a classifier (Keras accepts them)."""
    seen_final = False
    for layer in net.layers:
        post = getattr(layer, "post", ()) or ((getattr(layer, "function", None),) if layer.kind == "activation" else ())
        if seen_final and layer.kind not in ("dropout",):
            yield Diagnostic(
                "W401",
                f"{layer.kind} comes after the final softmax/sigmoid; the classifier's probabilities are changed again",
                layer.span,
                severity="warning",
                help="move the softmax/sigmoid to the last layer",
            )
            return
        if FINAL.intersection(post):
            seen_final = True


def _first_layer_warnings(net: Network) -> Iterable[Diagnostic]:
    """W403: dropout or an activation straight on the input acts on raw pixels, seldom what was meant."""
    first = net.layers[0]
    if first.kind in ("dropout", "activation"):
        what = "dropout" if first.kind == "dropout" else getattr(first, "function", first.kind)
        yield Diagnostic(
            "W403",
            f"{what} is the very first layer: it acts on the raw input, not on learned features",
            first.span,
            severity="warning",
            help=f"put {what} after a conv or dense layer (or remove it)",
        )


def _memory_warnings(rows: list[LayerReport], total: int) -> Iterable[Diagnostic]:
    """W405: the float32 parameters alone exceed this machine's RAM, so building the model would fail."""
    memory = physical_memory()
    if memory is None or 4 * total <= memory:
        return
    largest = max(rows, key=lambda r: r.params)
    span = Span(line=largest.line, column=largest.column) if largest.line and largest.column else None
    yield Diagnostic(
        "W405",
        f"the {total:,} float32 parameters need {gigabytes(4 * total)}, more than this machine's "
        f"{gigabytes(memory)} of memory; building or training this model would fail",
        span,
        severity="warning",
        help=f"the largest layer is {largest.name} with {largest.params:,} parameters",
    )


def analyze(net: Network, trainable: Callable[[int, str], bool] | None = None) -> Report:
    """Shapes, counts, MACs and receptive fields of every layer; raise NetdslError if it cannot build.

    `trainable(index, name)` says whether the layer at that position of `model.layers` trains
    (freezing; by default all do). The spec's own freezing and its `phase` lines are policy, applied
    by `netdsl.transfer.analyze` (what `netdsl.analyze` is), which also resolves `pretrained run=`.
    """
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
        x = graph.input(net.input_shape, net.input_span)
        for index, layer in enumerate(net.layers):
            graph.layer, graph.statement = layer, index
            x = layer.apply(x, graph)
    except NetdslError as err:
        err.source = source
        raise
    rows = graph.rows
    total = sum(r.params for r in rows)
    trainable_total = sum(r.trainable_params for r in rows)
    macs = sum(r.macs for r in rows)
    warnings = [*_first_layer_warnings(net), *graph.warnings, *_trailing_warnings(net), *_memory_warnings(rows, total)]
    return Report(
        file=net.file,
        name=net.name,
        input_shape=(None, *net.input_shape),
        output_shape=(None, *x.shape),
        layers=rows,
        total_params=total,
        trainable_params=trainable_total,
        non_trainable_params=total - trainable_total,
        macs=macs,
        flops=2 * macs,
        param_bytes=4 * total,
        warnings=[w.to_dict() for w in warnings],
    )
