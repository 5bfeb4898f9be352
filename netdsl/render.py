"""Text rendering of reports: the `netdsl check` table, in the spirit of Keras's `model.summary()`."""

from __future__ import annotations

import html

from netdsl.analysis import LayerReport, Report
from netdsl.layers.base import ReceptiveField, fmt_shape
from netdsl.terminal import printable
from netdsl.units import human_bytes, human_count

__all__ = ["html_table", "human_bytes", "human_count", "summary_table"]


def _field(layer: LayerReport) -> str:
    """`13 (jump 2)`, `9x5 (jump 2x1)`, or `-` without a spatial receptive field."""
    return ReceptiveField(*layer.receptive_field_axes).text() if layer.receptive_field_axes else "-"


def html_table(report: Report, max_rows: int = 500) -> str:
    """The `check` table as HTML for Jupyter; every text escaped (names come from specs and file names)."""
    headers = ("Layer", "Type", "Output Shape", "Param #", "Receptive field", "MACs", "Connected to", "Line")
    rows = report.layers[:max_rows]
    cells = [
        (row.name, row.type, fmt_shape(tuple(row.output_shape[1:])), f"{row.params:,}",  # type: ignore[arg-type]
         _field(row), human_count(row.macs) if row.macs else "0", ", ".join(row.inputs), str(row.line or ""))
        for row in rows
    ]  # fmt: skip
    if len(report.layers) > max_rows:
        cells.append((f"... {len(report.layers) - max_rows:,} more layers", "", "", "", "", "", "", ""))
    right = {3, 5}

    def tr(values: tuple[str, ...], tag: str) -> str:
        return "<tr>" + "".join(
            f'<{tag} style="text-align:{"right" if i in right else "left"}">{html.escape(v)}</{tag}>'
            for i, v in enumerate(values)
        ) + "</tr>"  # fmt: skip

    title = f'Model: "{report.name}"' + (f"  ({report.file})" if report.file else "")
    totals = [
        f"Total params: {report.total_params:,} ({human_bytes(report.param_bytes)})",
        f"Trainable params: {report.trainable_params:,}, non-trainable: {report.non_trainable_params:,}",
        f"MACs per example: {report.macs:,} ({human_count(report.macs)})",
        f"Output: {fmt_shape(tuple(report.output_shape[1:]))}, {len(report.layers):,} Keras layers",  # type: ignore[arg-type]
    ]
    return (
        f"<div><b>{html.escape(title)}</b><table><thead>{tr(headers, 'th')}</thead><tbody>"
        + "".join(tr(c, "td") for c in cells)
        + "</tbody></table><p>"
        + "<br>".join(html.escape(t) for t in totals)
        + "</p></div>"
    )


def is_graph(report: Report) -> bool:
    """Whether some layer is fed by more than the layer listed above it (a branch, a skip, a second input):
    then the table shows each layer's inputs, as Keras's summary does. A chain with the seed's residual
    adds keeps its old look (`add (Add) <- a + b`)."""
    return (
        any(
            layer.type != "Add" and layer.type != "InputLayer" and list(layer.inputs) != [above.name]
            for above, layer in zip(report.layers, report.layers[1:])
        )
        or len(report.input_shapes) > 1
        or len(report.output_shapes) > 1
    )


def summary_table(report: Report, max_rows: int | None = None, spec_id: str | None = None) -> str:
    """The per-layer table and Keras-style totals (and the spec id, when given)."""
    layers = report.layers
    graph = is_graph(report)
    headers = (
        "Layer (type)",
        "Output Shape",
        "Param #",
        "Receptive field",
        "MACs",
        "Line",
        *(("Connected to",) if graph else ()),
    )
    rows = []
    skipped = 0
    if max_rows is not None and len(layers) > max_rows:
        head = max_rows // 2
        skipped = len(layers) - max_rows
        layers = [*layers[:head], *layers[-(max_rows - head) :]]
    for i, layer in enumerate(layers):
        rows.append(_table_row(layer, graph))
        if skipped and i == (max_rows or 0) // 2 - 1:
            rows.append((f"... {skipped:,} more layers ...", "", "", "", "", "", *(("",) if graph else ())))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {2, 4}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    total_width = sum(widths) + 2 * (len(widths) - 1)
    title = f'Model: "{report.name}"' + (f"  ({report.file})" if report.file else "")
    out = [printable(title, newlines=False), "━" * total_width, line(headers), "━" * total_width]
    out += [line(r) for r in rows]
    out.append("━" * total_width)
    return "\n".join([*out, *_totals(report, spec_id)])


def _table_row(layer: LayerReport, graph: bool) -> tuple[str, ...]:
    """One layer's cells: name (type), shape, params (frozen / non-trainable), field, MACs, line, inputs."""
    name = f"{layer.name} ({layer.type})"
    if layer.type == "Add" and not graph:  # the seed's residual blocks: which tensors are added
        name += " <- " + " + ".join(layer.inputs)
    params = f"{layer.params:,}"
    if layer.params and layer.non_trainable_params:
        frozen = layer.trainable_params == 0
        params += f" ({layer.non_trainable_params:,} {'frozen' if frozen else 'non-tr.'})"
    return (
        printable(name, newlines=False), fmt_shape(tuple(layer.output_shape[1:])), params, _field(layer),  # type: ignore[arg-type]
        human_count(layer.macs) if layer.macs else "0", str(layer.line) if layer.line else "",
        *((", ".join(layer.inputs) or "-",) if graph else ()),
    )  # fmt: skip


def _totals(report: Report, spec_id: str | None) -> list[str]:
    """The lines under the table: Keras's three totals, MACs, the output, the spec id, each phase's counts."""
    out = [
        f" Total params: {report.total_params:,} ({human_bytes(report.param_bytes)})",
        f" Trainable params: {report.trainable_params:,} ({human_bytes(4 * report.trainable_params)})",
        f" Non-trainable params: {report.non_trainable_params:,} ({human_bytes(4 * report.non_trainable_params)})",
        f" MACs per example: {report.macs:,} ({human_count(report.macs)}; FLOPs ~ 2 x MACs = {human_count(report.flops)})",
        f" Output: {fmt_shape(tuple(report.output_shape[1:]))}, {len(report.layers):,} Keras layers",  # type: ignore[arg-type]
    ]
    if spec_id is not None:
        out.append(f" Spec id: {spec_id}")
    for phase in report.phases:
        frozen = f"model.layers[:{phase.frozen_below}] frozen" if phase.frozen_below else "nothing frozen"
        out.append(
            f" Phase {phase.phase} (line {phase.line}, {phase.epochs} epochs, {frozen}): "
            f"trainable {phase.trainable_params:,}, non-trainable {phase.non_trainable_params:,}"
        )
    return out
    return "\n".join(out)
