"""The head decides the loss: what the network's last layers say about the task, and whether the data fits it.

Read from the IR through the layers' own hooks (`output_activation`, `is_head_candidate`), so a new layer
kind never means editing this file. Mismatches are located E506 errors, raised before TensorFlow loads.
An output of one score per class (None, C) takes one label per example; an output with more axes
((None, H, W, C) from a U-Net) scores every position over its last axis and takes labels of (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    label_shape: tuple[int, ...] = ()  # () one label per example; (H, W) one per pixel

    @property
    def per_pixel(self) -> bool:
        """Labels per position (sparse cross-entropy over the last axis, pixel accuracy)."""
        return bool(self.label_shape)

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

    if not shape or any(not isinstance(n, int) for n in shape):
        raise fail(
            f"the network's output {report.output_shape} is not one score per class",
            "end with a global pooling or `flatten`, then `dense N softmax`",
        )
    units, label_shape = int(shape[-1]), tuple(int(n) for n in shape[:-1])  # type: ignore[arg-type]
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
    return Head(units, function, last.span if label_shape else scores.span, label_shape)


def match_head(head: Head, data: Dataset, net: Network) -> None:
    """The head must have one unit per class (one sigmoid unit for two), and score what is labelled: one
    label per example, or one per pixel of its output. E506 at the head."""
    labels = tuple(data.y_train.shape[1:])
    if labels != head.label_shape:
        raise NetdslError([_label_shape_mismatch(head, labels, data.name)], Source(net.source, net.file or "<string>"))
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


def _label_shape_mismatch(head: Head, labels: tuple[int, ...], name: str) -> Diagnostic:
    """E506 for labels shaped unlike the output: per pixel vs per example, or another size of picture."""
    have = "x".join(map(str, labels))
    scores = "x".join(map(str, head.label_shape))
    if not head.per_pixel:
        return Diagnostic(
            "E506", f"the network scores each example once, but {name} has labels of {have} per example "
            "(per pixel)", head.span, help="end with a 1x1 `conv N softmax` over the pixels, as specs/unet.net does",
        )  # fmt: skip
    if not labels:
        return Diagnostic(
            "E506", f"the network scores each of {scores} positions, but {name} has one label per example",
            head.span, help="end with a global pooling or `flatten`, then `dense N softmax`",
        )  # fmt: skip
    return Diagnostic(
        "E506", f"the network scores {scores} positions, but {name}'s labels are {have}", head.span,
        help="the output's size must be the labels' (same padding keeps it)",
    )  # fmt: skip


def vocabulary(net: Network) -> tuple[int, Span | None] | None:
    """The size and line of the embedding fed by the input (`embed V D`), whose ids the data must fit."""
    for layer in net.layers:
        size = getattr(layer, "vocabulary", None)
        if isinstance(size, int):
            return size, layer.span
    return None


def refuse_several_inputs_or_outputs(net: Network) -> None:
    """`netdsl train` feeds one input and fits one labelled output (E522, before Keras is imported)."""
    if not net.extra_inputs and len(net.outputs) <= 1:
        return
    if net.extra_inputs:
        names = ", ".join([net.input_name or "the first", *(spec.name for spec in net.extra_inputs)])
        what, span = f"{1 + len(net.extra_inputs)} inputs ({names})", net.extra_inputs[0].span
    else:
        what, span = f"{len(net.outputs)} outputs ({', '.join(net.outputs)})", None
    raise NetdslError(
        [Diagnostic("E522", f"netdsl trains a network of one input and one output; this one has {what}", span,
                    help="`netdsl check` and `netdsl emit` handle it; train the emitted Keras code yourself")],
        Source(net.source, net.file or "<string>"),
    )  # fmt: skip


def load_for(net: Network, head: Head, source: str | None) -> Dataset:
    """`source` loaded for this network and checked against it: the head (E506), the labels (E505), the
    embedding's vocabulary (E520, at the `embed` line), then adapted to the input (E509)."""
    from netdsl.data import check_labels, load_dataset
    from netdsl.data.adapt import adapt
    from netdsl.data.sequences import check_tokens

    embedding = vocabulary(net)
    data = load_dataset(
        source, net.input_shape or (), classes_hint=head.classes, dtype=net.input_dtype,
        vocabulary=embedding[0] if embedding else None,
    )  # fmt: skip
    match_head(head, data, net)
    check_labels(data, head.classes)
    if embedding:
        try:
            check_tokens(data, embedding[0])
        except NetdslError as err:
            located = [replace(d, span=embedding[1]) for d in err.diagnostics]
            raise NetdslError(located, Source(net.source, net.file or "<string>")) from None
    return adapt(data, net.input_shape or (), net.input_dtype)  # type: ignore[arg-type]
