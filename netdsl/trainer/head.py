"""The head decides the loss: what the network's last layers say about the task, and whether the data fits it.

Read from the IR through the layers' own hooks (`output_activation`, `is_head_candidate`), so a new layer
kind never means editing this file. Mismatches are located E506 errors, raised before TensorFlow loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from netdsl.analysis import Report
from netdsl.data import Dataset
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network, Span


@dataclass(frozen=True)
class Head:
    """What the network's last layers say about the task: class count and the matching loss."""

    units: int
    activation: str | None  # softmax, sigmoid, or None for raw logits
    span: Span | None  # the statement to point at when the data does not match

    @property
    def binary(self) -> bool:
        return self.units == 1

    @property
    def classes(self) -> int:
        return 2 if self.binary else self.units

    @property
    def from_logits(self) -> bool:
        return self.activation is None


def find_head(net: Network, report: Report) -> Head:
    """Read the head from the IR: the last layer's final activation and the output's width (E506)."""
    source = Source(net.source, net.file or "<string>")
    last = net.layers[-1]
    scores = next((layer for layer in reversed(net.layers) if layer.is_head_candidate), last)
    function = last.output_activation()
    function = None if function == "linear" else function
    shape = report.output_shape[1:]

    def fail(message: str, help: str) -> NetdslError:
        return NetdslError([Diagnostic("E506", message, last.span, help=help)], source)

    if len(shape) != 1:
        raise fail(
            f"the network's output {report.output_shape} is not one score per class",
            "end with a global pooling or `flatten`, then `dense N softmax`",
        )
    units = int(shape[0])  # type: ignore[arg-type]
    if function not in (None, "softmax", "sigmoid"):
        raise fail(
            f"the network ends in {function}; a classifier ends in softmax (or sigmoid with one unit)",
            f"write `dense {units} softmax`",
        )
    if function == "softmax" and units == 1:
        raise fail("softmax over one unit is always 1", "for two classes write `dense 1 sigmoid` or `dense 2 softmax`")
    if function == "sigmoid" and units > 1:
        raise fail(
            f"sigmoid over {units} units scores each class independently (multi-label), which netdsl does not train",
            f"write `dense {units} softmax` for one class per image",
        )
    return Head(units, function, scores.span)


def match_head(head: Head, data: Dataset, net: Network) -> None:
    """The head must have one unit per class (one sigmoid unit for two): E506 at the dense layer."""
    if data.classes is None or len(data.classes) == head.classes:
        return
    count = len(data.classes)
    fix = "dense 1 sigmoid` (or `dense 2 softmax" if count == 2 else f"dense {count} softmax"
    raise NetdslError(
        [
            Diagnostic(
                "E506",
                f"the head has {head.units} unit{'s' if head.units > 1 else ''} "
                f"({'binary' if head.binary else f'{head.units} classes'}) but {data.name} has {count} classes",
                head.span,
                help=f"write `{fix}` as the last layer",
            )
        ],
        Source(net.source, net.file or "<string>"),
    )
