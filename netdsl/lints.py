"""Lints: likely mistakes that Keras accepts, as warnings beside the analysis (W401, W403, W405, W406,
W407). Each asks the layers through their hooks (`activations`, `keeps_predictions`, `raw_input_note`,
`restarts_path`), never by testing kinds."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netdsl.diagnostics import Diagnostic
from netdsl.ir import Network, Span

if TYPE_CHECKING:  # the analyzer's types, for annotations only (the analyzer imports this module)
    from netdsl.analysis import LayerReport, ShapeGraph


def physical_memory() -> int | None:
    """The machine's RAM in bytes, or None where the OS cannot tell (then no memory warning is given)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def gigabytes(n: int) -> str:
    """`1.5 GB` (1024-based, like Keras's summary), for memory messages."""
    return f"{n / 1024**3:,.1f} GB"


FINAL = frozenset({"softmax", "sigmoid", "log_softmax"})


def _trailing_warnings(net: Network) -> Iterable[Diagnostic]:
    """W401: layers after the activation that ends a classifier (Keras accepts them)."""
    seen_final = False
    for layer in net.layers:
        if layer.restarts_path:
            seen_final = False
            continue
        if seen_final and not layer.keeps_predictions:
            yield Diagnostic(
                "W401",
                f"{layer.kind} comes after the final softmax/sigmoid; the classifier's probabilities are changed again",
                layer.span,
                severity="warning",
                help="move the softmax/sigmoid to the last layer",
            )
            return
        if FINAL.intersection(layer.activations()):
            seen_final = True


def _first_layer_warnings(net: Network) -> Iterable[Diagnostic]:
    """W403: dropout or an activation straight on the input acts on raw pixels, seldom what was meant."""
    first = net.layers[0]
    what = first.raw_input_note()
    if what is not None:
        yield Diagnostic(
            "W403",
            f"{what} is the very first layer: it acts on the raw input, not on learned features",
            first.span,
            severity="warning",
            help=f"put {what} after a conv or dense layer (or remove it)",
        )


@dataclass(frozen=True)
class MemoryShortfall:
    """The estimate behind W405 (and E306, when a model is built): float32 parameters beyond this machine's RAM."""

    params: int  # the model's parameters
    memory: int  # this machine's RAM, in bytes
    largest: str  # the layer with the most parameters
    largest_params: int
    span: Span | None  # where the largest layer is written

    @property
    def needed(self) -> int:
        """Bytes of the float32 parameters alone."""
        return 4 * self.params

    def _what(self) -> str:
        return (f"the {self.params:,} float32 parameters need {gigabytes(self.needed)}, more than this machine's "
                f"{gigabytes(self.memory)} of memory")  # fmt: skip

    def _help(self) -> str:
        return f"the largest layer is {self.largest} with {self.largest_params:,} parameters"

    def warning(self) -> Diagnostic:
        """W405, beside the analysis."""
        message = f"{self._what()}; building or training this model would fail"
        return Diagnostic("W405", message, self.span, severity="warning", help=self._help())

    def error(self) -> Diagnostic:
        """E306, before any weight is allocated."""
        return Diagnostic("E306", f"cannot build the model: {self._what()}", self.span, help=self._help())


def memory_shortfall(rows: list[LayerReport], total: int) -> MemoryShortfall | None:
    """How far the float32 parameters exceed this machine's RAM, or None if they fit (or the OS cannot tell)."""
    memory = physical_memory()
    if memory is None or 4 * total <= memory:
        return None
    largest = max(rows, key=lambda r: r.params)
    span = Span(line=largest.line, column=largest.column) if largest.line and largest.column else None
    return MemoryShortfall(total, memory, largest.name, largest.params, span)


def _memory_warnings(rows: list[LayerReport], total: int) -> Iterable[Diagnostic]:
    """W405: the float32 parameters alone exceed this machine's RAM, so building the model would fail."""
    shortfall = memory_shortfall(rows, total)
    if shortfall is not None:
        yield shortfall.warning()


def _graph_warnings(graph: ShapeGraph, dead: list[LayerReport]) -> Iterable[Diagnostic]:
    """W407: a name given with `as` and never used; W406: layers whose output reaches no output of the model
    (Keras leaves them out of the model, so netdsl does too)."""
    seen: set[tuple[str, Span | None]] = set()
    for name, span in graph.bound.items():
        shown = name.split("#")[0]
        if name not in graph.looked_up and (shown, span) not in seen:
            seen.add((shown, span))
            yield Diagnostic("W407", f"'{shown}' is named but never used", span, severity="warning",
                             help=f"use it (`use {shown}`, `add {shown}`, `cat {shown}`, `output {shown}`) or drop `as {shown}`")  # fmt: skip
    real = [row for row in dead if row.type != "InputLayer"]
    if real:
        first = real[0]
        span = Span(line=first.line, column=first.column) if first.line and first.column else None
        names = ", ".join(row.name for row in real[:5]) + (", ..." if len(real) > 5 else "")
        yield Diagnostic("W406", f"{len(real)} layer{'s' * (len(real) != 1)} {'reach' if len(real) != 1 else 'reaches'} no output and {'are' if len(real) != 1 else 'is'} left out of the model: {names}",
                         span, severity="warning", help="name the tensor and list it in `output`, or merge it into the network")  # fmt: skip


def lints(
    net: Network, graph: ShapeGraph, rows: list[LayerReport], dead: list[LayerReport], total: int, pooled: bool = False
) -> list[Diagnostic]:
    """Every warning of one analysis, in a stable order. `pooled`: every output of the model is a vector."""
    return [
        *_first_layer_warnings(net), *_op_warnings(graph, pooled), *_trailing_warnings(net),
        *_memory_warnings(rows, total), *_graph_warnings(graph, dead),
    ]  # fmt: skip


def _op_warnings(graph: ShapeGraph, pooled: bool) -> list[Diagnostic]:
    """The ops' own warnings. W402 (a dense on an unpooled map) is for a classifier that forgot its pooling:
    once the model's outputs are vectors, a dense per position is on purpose (ConvNeXt's pointwise layers)."""
    return [w for w in graph.warnings if not (pooled and w.code == "W402")]
