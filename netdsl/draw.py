"""`netdsl draw`: a picture of a network, laid out by Graphviz from the analyzer's report.

Built on `Report` rows only (name, type, output shape, params, inputs, statement, line), so every
network the analyzer accepts can be drawn, branches and merges included, without TensorFlow. By
default the rows of one statement (`conv 32 relu bn`: Conv2D, Activation, BatchNormalization)
share one box; `expand=True` draws every Keras layer. Every text that reaches Graphviz comes from a
user's spec or file name, so it goes through HTML-like labels with every character escaped.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from netdsl.analysis import LayerReport, Report
from netdsl.diagnostics import Diagnostic, NetdslError
from netdsl.layers.base import fmt_shape
from netdsl.render import human_count

MAX_BOXES = 5_000
"""Most boxes one picture holds: Graphviz's layout grows faster than linearly, and a picture of more
boxes is unreadable anyway (docs/limits.md)."""

DOT_CPU_SECONDS = 20
"""CPU seconds Graphviz's `dot` may spend laying out one picture. Boxes alone do not bound it: 1,000
boxes merged four times (4,000 edges between far ranks) ran for hours; such a picture is refused (E207)."""
DOT_WALL_SECONDS = 300  # where a CPU limit cannot be set (Windows), and for a machine too busy to give dot its CPU

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
"""File extension -> Graphviz output format; `.dot`/`.gv` write the graph's source and need no `dot` binary."""

_FILL = {"input": "#e8e8e8", "merge": "#fff2b3", "layer": "#dbe9f7"}


class DrawUnavailable(RuntimeError):
    """Graphviz (the `graphviz` Python package or its `dot` program) is not installed."""


@dataclass(frozen=True)
class Box:
    """One node of the picture: one row (expanded) or the rows of one statement."""

    id: str
    rows: tuple[LayerReport, ...]


def boxes(report: Report, expand: bool = False) -> list[Box]:
    """The report's rows grouped into boxes, in the report's order."""
    groups: dict[object, list[LayerReport]] = {}
    for index, row in enumerate(report.layers):
        key = ("row", index) if expand or row.statement is None else ("statement", row.statement)
        groups.setdefault(key, []).append(row)
    return [Box(f"n{number}", tuple(rows)) for number, rows in enumerate(groups.values())]


def _groups(report: Report, drawn: list[Box]) -> list[list[Box]]:
    """The expanded boxes of each statement that made more than one Keras layer."""
    by_name = {box.rows[0].name: box for box in drawn}
    return [
        [by_name[row.name] for row in statement.rows]
        for statement in boxes(report)
        if len(statement.rows) > 1 and all(row.name in by_name for row in statement.rows)
    ]


def edges(drawn: list[Box]) -> list[tuple[str, str, bool]]:
    """(from box, to box, dashed) for each input of a row that another box made.

    A skip is dashed: a merge's inputs after its first (U-Net's `cat d4`), and a second edge between
    the same two boxes (in a collapsed residual block, the shortcut into its Add), so it stays visible."""
    owner = {row.name: box.id for box in drawn for row in box.rows}
    out: list[tuple[str, str, bool]] = []
    drawn_edges: set[tuple[str, str, bool]] = set()
    pairs: set[tuple[str, str]] = set()
    for box in drawn:
        for row in box.rows:
            for name in row.inputs:
                source = owner.get(name)
                if source is None or source == box.id:
                    continue
                skip = (source, box.id) in pairs or (len(row.inputs) > 1 and name != row.inputs[0])
                if (source, box.id, skip) not in drawn_edges:
                    drawn_edges.add((source, box.id, skip))
                    out.append((source, box.id, skip))
                pairs.add((source, box.id))
    return out


def _cell(text: str, size: int = 10, bold: bool = False, color: str = "#000000") -> str:
    content = html.escape(text, quote=True)
    content = f"<B>{content}</B>" if bold else content
    return f'<TR><TD><FONT POINT-SIZE="{size}" COLOR="{color}">{content}</FONT></TD></TR>'


def statement_title(rows: tuple[LayerReport, ...]) -> tuple[str, int | None]:
    """What the rows of one box are called, and their line: the user block they are a use of (its call's
    line), else the statement's netdsl kind."""
    outer = {(getattr(r, "blocks", ()) or ("",))[0] for r in rows}  # blocks: "name@line:column", outermost first
    if len(outer) == 1 and "" not in outer:
        name, _, where = outer.pop().partition("@")
        line = where.split(":")[0]
        return name, int(line) if line.isdigit() else rows[-1].line
    return rows[0].source or rows[0].type, rows[-1].line


def _types(rows: tuple[LayerReport, ...]) -> str:
    """`Conv2D + Activation + BatchNormalization`; repeated classes counted: `6 x Conv2D + ...`."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.type] = counts.get(row.type, 0) + 1
    parts = [f"{n} x {kind}" if n > 1 else kind for kind, n in counts.items()]
    return " + ".join(parts[:6]) + (" + ..." if len(parts) > 6 else "")


def _label(rows: tuple[LayerReport, ...], expand: bool) -> str:
    last = rows[-1]
    params = sum(r.params for r in rows)
    title, line = (f"{last.name} ({last.type})", last.line) if expand or len(rows) == 1 else statement_title(rows)
    if not expand and len(rows) > 1:
        title = f"{title}: {_types(rows)}"
    cells = [_cell(title, 11, bold=True), _cell(fmt_shape(tuple(last.output_shape[1:])))]  # type: ignore[arg-type]
    detail = f"{params:,} params" + (
        f", {human_count(sum(r.macs for r in rows))} MACs" if any(r.macs for r in rows) else ""
    )
    cells.append(_cell(detail, 9, color="#444444"))
    if not expand and len(rows) > 1:
        cells.append(_cell(f"{rows[0].name} .. {last.name}", 8, color="#666666"))
    if line:
        cells.append(_cell(f"line {line}", 8, color="#666666"))
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(cells) + "</TABLE>>"


def _fill(rows: tuple[LayerReport, ...]) -> str:
    if rows[0].type == "InputLayer":
        return _FILL["input"]
    return _FILL["merge"] if any(len(r.inputs) > 1 for r in rows) else _FILL["layer"]


def dot_source(report: Report, expand: bool = False) -> str:
    """The picture as Graphviz DOT text (needs the `graphviz` Python package, not the `dot` program)."""
    try:
        import graphviz
    except ImportError:
        raise DrawUnavailable("the 'graphviz' Python package is not installed: pip install 'netdsl[draw]'") from None
    drawn = boxes(report, expand)
    if len(drawn) > MAX_BOXES:
        raise NetdslError([Diagnostic(
            "E207", f"the picture would have {len(drawn):,} boxes; netdsl draws at most {MAX_BOXES:,}",
            None, help="draw without --expand (one box per statement), or see docs/limits.md",
        )])  # fmt: skip
    graph = graphviz.Digraph("netdsl")
    title = f"{report.name}: {report.total_params:,} params, {human_count(report.macs)} MACs"
    graph.attr(rankdir="TB", labelloc="t", fontname="Helvetica", label="<" + html.escape(title, quote=True) + ">")
    graph.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", penwidth="0.8")
    graph.attr("edge", arrowsize="0.6", color="#555555")
    if expand:  # each statement's (or block use's) layers inside a frame named like its collapsed box
        for number, group in enumerate(_groups(report, drawn)):
            title, line = statement_title(tuple(r for box in group for r in box.rows))
            frame = f"{title} (line {line})" if line else title
            with graph.subgraph(name=f"cluster_{number}") as cluster:
                cluster.attr(label="<" + html.escape(frame, quote=True) + ">", style="rounded,dashed",
                             color="#999999", fontsize="10")  # fmt: skip
                for box in group:
                    cluster.node(box.id, label=_label(box.rows, expand), fillcolor=_fill(box.rows))
        framed = {box.id for group in _groups(report, drawn) for box in group}
    else:
        framed = set()
    for box in drawn:
        if box.id not in framed:
            graph.node(box.id, label=_label(box.rows, expand), fillcolor=_fill(box.rows))
    for source, target, into_merge in edges(drawn):
        graph.edge(source, target, **({"style": "dashed"} if into_merge else {}))
    return graph.source


@dataclass(frozen=True)
class Drawing:
    """A drawn network: `svg()`, `png()`, `save(path)`; shows itself inline in Jupyter."""

    source: str  # DOT text

    def render(self, format: str) -> bytes:
        """The picture in a Graphviz output format (svg, png, pdf); DrawUnavailable without `dot`."""
        if format == "dot":
            return self.source.encode("utf-8")
        dot = shutil.which("dot")
        if dot is None:
            raise DrawUnavailable(
                "Graphviz's 'dot' program is not installed (Debian/Ubuntu: apt-get install graphviz; "
                "macOS: brew install graphviz)"
            )
        try:
            done = subprocess.run(
                [dot, f"-T{format}"], input=self.source.encode("utf-8"), capture_output=True,
                timeout=DOT_WALL_SECONDS, preexec_fn=_cpu_bound if os.name == "posix" else None,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            done = None
        if done is None or done.returncode < 0:  # killed: past its CPU (SIGXCPU) or wall time
            raise NetdslError([Diagnostic(
                "E207", f"Graphviz did not lay out the picture within {DOT_CPU_SECONDS} s of CPU", None,
                help="draw fewer boxes or merges: without --expand, or a part of the network; or write .dot",
            )])  # fmt: skip
        if done.returncode:
            said = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise DrawUnavailable(f"Graphviz's dot failed: {said[-1][:300] if said else f'exit {done.returncode}'}")
        return done.stdout

    def svg(self) -> str:
        return self.render("svg").decode("utf-8")

    def png(self) -> bytes:
        return self.render("png")

    def save(self, path: str | Path) -> Path:
        """Write the picture; its format follows the extension (.svg, .png, .pdf, .dot)."""
        path = Path(path)
        format = FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValueError(f"cannot draw to {path.name!r}: use one of {', '.join(FORMATS)}")
        path.write_bytes(self.render(format))
        return path

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except (DrawUnavailable, NetdslError):
            return None  # Jupyter then shows _repr_html_'s message

    def _repr_html_(self) -> str:
        try:
            svg = self.svg()
            return svg[svg.find("<svg") :]  # inline in HTML: without the XML prolog and DOCTYPE
        except (DrawUnavailable, NetdslError) as err:
            return f"<pre>netdsl.draw: {html.escape(str(err))}</pre>"


def _cpu_bound() -> None:
    """In the `dot` child: at most DOT_CPU_SECONDS of CPU (then SIGXCPU ends it)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (DOT_CPU_SECONDS, DOT_CPU_SECONDS))


def draw(report: Report, expand: bool = False) -> Drawing:
    """Draw an analyzed network (see `netdsl.draw` for specs and paths)."""
    return Drawing(dot_source(report, expand))
