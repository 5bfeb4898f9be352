"""`netdsl check --verify`: build the model with Keras and compare it, layer by layer, with the analyzer.

The analyzer promises Keras's exact shapes and counts without loading TensorFlow; this is how a
user checks that promise on their own spec. Every disagreement becomes a located `Diagnostic`
(E601) at the spec line the layer came from, so the CLI renders it like any other error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netdsl.analysis import LayerReport, Report, analyze
from netdsl.diagnostics import Diagnostic
from netdsl.ir import Network, Span
from netdsl.layers.base import fmt_shape


@dataclass(frozen=True)
class Verification:
    """The outcome of comparing the analyzer's report with the Keras model built from the same spec."""

    report: Report
    keras_version: str
    backend: str
    layers: int  # Keras layers compared
    differences: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        """One line for the CLI: what was compared, and whether it agrees."""
        what = f"Keras {self.keras_version} ({self.backend} backend), {self.layers} layers"
        if self.ok:
            return f"verified against {what}: every output shape and parameter count agrees"
        return f"verification against {what} found {len(self.differences)} difference(s)"

    def to_dict(self) -> dict:
        return {
            "keras_version": self.keras_version,
            "backend": self.backend,
            "layers": self.layers,
            "ok": self.ok,
            "differences": [d.to_dict() for d in self.differences],
        }


def _weights_size(weights: list[Any]) -> int:
    return sum(math.prod(w.shape) for w in weights)


def _input_names(layer: Any) -> tuple[str, ...]:
    """Names of the layers feeding `layer` (none for the input layer)."""
    if type(layer).__name__ == "InputLayer":
        return ()
    nodes = getattr(layer, "_inbound_nodes", None)  # its first call's (a model's own `input` is its inner one)
    tensors = list(nodes[0].input_tensors) if nodes else layer.input
    tensors = tensors if isinstance(tensors, list | tuple) else [tensors]
    names = []
    for tensor in tensors:
        history = getattr(tensor, "_keras_history", None)  # Keras 3: (operation, node index, tensor index)
        names.append(history[0].name if history else "?")
    return tuple(names)


def keras_layers(model: Any) -> list[LayerReport]:
    """Every layer of a built model in the analyzer's row type: name, class, output shape, counts and
    input layers (Keras knows no MACs or receptive fields; those stay empty)."""
    return [
        LayerReport(
            name=layer.name,
            type=type(layer).__name__,
            output_shape=tuple(layer.output.shape),
            params=layer.count_params(),
            trainable_params=_weights_size(layer.trainable_weights),
            non_trainable_params=_weights_size(layer.non_trainable_weights),
            macs=0,
            inputs=_input_names(layer),
        )
        for layer in model.layers
    ]


def _differ(what: str, layer: str, ours: Any, theirs: Any, span: Span | None) -> Diagnostic:
    return Diagnostic(
        "E601",
        f"{layer}: {what} differs: netdsl says {ours}, Keras builds {theirs}",
        span,
        help="the analyzer is wrong here; please report this spec as a netdsl bug",
    )


def compare(report: Report, model: Any, span_of: Callable[[str], Span | None] = lambda name: None) -> list[Diagnostic]:
    """Every difference between the analyzer's report and a built Keras model, as diagnostics.

    Layers are matched by position; each row compares name, class, output shape, inputs and the
    three parameter counts, then the model's totals are compared with the report's.
    """
    ours, theirs = report.layers, keras_layers(model)
    found: list[Diagnostic] = []

    def span(row: LayerReport) -> Span | None:
        return span_of(row.name) or (Span(line=row.line, column=row.column or 1) if row.line else None)

    for row, layer in zip(ours, theirs):
        label = f"{row.name} ({row.type})"
        checks = [
            ("layer name", row.name, layer.name),
            ("layer class", row.type, layer.type),
            ("output shape", fmt_shape(row.output_shape[1:]), fmt_shape(layer.output_shape[1:])),
            ("inputs", ", ".join(row.inputs) or "-", ", ".join(layer.inputs) or "-"),
            ("parameter count", f"{row.params:,}", f"{layer.params:,}"),
            ("trainable parameter count", f"{row.trainable_params:,}", f"{layer.trainable_params:,}"),
            ("non-trainable parameter count", f"{row.non_trainable_params:,}", f"{layer.non_trainable_params:,}"),
        ]
        found += [_differ(what, label, a, b, span(row)) for what, a, b in checks if a != b]
    if len(ours) != len(theirs):
        extra = [r.name for r in ours[len(theirs) :]] or [k.name for k in theirs[len(ours) :]]
        found.append(
            _differ(
                "the number of layers", "the model", len(ours), f"{len(theirs)} (unmatched: {', '.join(extra)})", None
            )
        )
    trainable = _weights_size(model.trainable_weights)
    totals = [
        ("total parameters", report.total_params, model.count_params()),
        ("trainable parameters", report.trainable_params, trainable),
        ("non-trainable parameters", report.non_trainable_params, _weights_size(model.non_trainable_weights)),
    ]
    found += [_differ(what, "the model", f"{a:,}", f"{b:,}", None) for what, a, b in totals if a != b]
    return found


def verify_network(net: Network, trainable: Callable[[int, str], bool] | None = None) -> Verification:
    """Analyze `net`, build it with Keras, and compare the two (raises NetdslError for a bad spec,
    KerasUnavailable without Keras). A model Keras refuses to build is reported as a difference."""
    from netdsl.compile import compile_network, import_keras, refuse_if_too_big
    from netdsl.layers.pretrained import architecture_only

    report = analyze(net, trainable)
    refuse_if_too_big(report, net)  # E306 before Keras tries to allocate more than the machine has
    keras = import_keras()
    version, backend = keras.__version__, keras.backend.backend()
    try:
        compiled = compile_network(architecture_only(net), trainable, check=False)
    except (ValueError, TypeError) as err:  # Keras's own refusal: the analyzer accepted what Keras cannot build
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        diagnostic = Diagnostic(
            "E601",
            f"the analyzer accepts this spec but Keras cannot build it: {first_line}",
            net.input_span,
            help="the analyzer is wrong here; please report this spec as a netdsl bug",
        )
        return Verification(report, version, backend, 0, [diagnostic])
    differences = compare(report, compiled.model, compiled.span)
    return Verification(report, version, backend, len(compiled.model.layers), differences)
