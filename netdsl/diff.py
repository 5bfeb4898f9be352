"""`netdsl diff`: two networks aligned layer by layer, with the change of every row and of the totals.

Built on the analyzer's reports only. Keras names shift when a layer is inserted (`conv2d_3`
becomes `conv2d_4`), so rows are aligned by structure, never by name, in two passes of
difflib's SequenceMatcher (docs/tools.md):

1. on each row's signature (class, netdsl kind, output shape, params, MACs; not the receptive
   field, which grows in every row after an inserted layer): the runs of equal rows anchor the
   alignment, so an inserted block shows as inserted rows and every row after it pairs up again
   (changed, if only its receptive field moved);
2. inside each stretch that pass 1 left unmatched, on the row's structural signature (class and
   netdsl kind): rows of the same kind pair up as *changed* (a new width, stride or kernel), the
   rest are inserted or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel, ConfigDict

from netdsl.analysis import LayerReport, Report
from netdsl.layers.base import fmt_shape
from netdsl.render import human_count

Change = Literal["same", "changed", "inserted", "deleted"]
MARKS: dict[str, str] = {"same": " ", "changed": "~", "inserted": "+", "deleted": "-"}


class RowDiff(BaseModel):
    """One aligned row: the layer in A, in B, or both, and what changed between them."""

    model_config = ConfigDict(frozen=True)
    change: Change
    a: LayerReport | None = None
    b: LayerReport | None = None
    params: int = 0  # B minus A (an inserted row counts fully, a deleted one negatively)
    macs: int = 0
    receptive_field: int | None = None  # change of the receptive field's size (first spatial axis)


class Total(BaseModel):
    model_config = ConfigDict(frozen=True)
    a: int
    b: int
    delta: int


class Side(BaseModel):
    """Which network a side of the diff is."""

    model_config = ConfigDict(frozen=True)
    name: str
    file: str | None
    spec_id: str
    output_shape: tuple[int | None, ...]


class Diff(BaseModel):
    """What `netdsl diff --json` prints."""

    model_config = ConfigDict(frozen=True)
    a: Side
    b: Side
    same_architecture: bool
    rows: list[RowDiff]
    totals: dict[str, Total]  # params, trainable_params, non_trainable_params, macs, layers

    def to_dict(self) -> dict:
        return json.loads(self.model_dump_json())

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def text(self, context: int | None = 1) -> str:
        """The table `netdsl diff` prints (see `render_diff`)."""
        return render_diff(self, context)

    @property
    def counts(self) -> dict[str, int]:
        """How many rows are same, changed, inserted, deleted."""
        out = dict.fromkeys(MARKS, 0)
        for row in self.rows:
            out[row.change] += 1
        return out


def _full(row: LayerReport) -> tuple:
    return (*_sized(row), row.receptive_field)


def _sized(row: LayerReport) -> tuple:
    """Pass 1's signature: everything but the receptive field, which changes in every row after an
    inserted layer and would leave nothing to anchor on (its change is still shown, row by row)."""
    return (row.type, row.source, row.output_shape, row.params, row.macs)


def _kind(row: LayerReport) -> tuple:
    return (row.type, row.source)


def _field(row: LayerReport | None) -> int | None:
    return row.receptive_field[0] if row is not None and row.receptive_field else None


def _pair(a: LayerReport | None, b: LayerReport | None) -> RowDiff:
    fa, fb = _field(a), _field(b)
    params = (b.params if b else 0) - (a.params if a else 0)
    macs = (b.macs if b else 0) - (a.macs if a else 0)
    change: Change = "inserted" if a is None else "deleted" if b is None else "same"
    if a is not None and b is not None and _full(a) != _full(b):
        change = "changed"
    return RowDiff(
        change=change, a=a, b=b, params=params, macs=macs,
        receptive_field=fb - fa if fa is not None and fb is not None else None,
    )  # fmt: skip


MAX_MATCHED = 4_000_000
"""Largest (rows of A) x (rows of B) of a differing stretch that SequenceMatcher aligns: on the repetitive
rows of a deep network its time grows with that product (4 million: about a second). A larger stretch
is left as one differing block: pass 2 still pairs its common head and tail of kinds, and what remains
in between is shown as deleted and inserted rows (docs/tools.md)."""


def _opcodes(a: list, b: list) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes; for long sequences, after setting aside the common head and tail in linear time.

    Trimming greedily is only a fallback: where a block repeats (a stage of identical residual blocks
    with one more inserted) it would pair the inserted copy with the next, different block, while
    SequenceMatcher's longest-match-first keeps the following stretch together."""
    if len(a) * len(b) <= MAX_MATCHED:  # autojunk would treat frequent rows (every Activation) as noise
        return SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    mid_a, mid_b = a[head : len(a) - tail], b[head : len(b) - tail]
    if len(mid_a) * len(mid_b) > MAX_MATCHED:  # one differing stretch: the next pass (or the reader) sorts it out
        middle = [("replace", 0, len(mid_a), 0, len(mid_b))]
    else:
        middle = SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes()
    out = [("equal", 0, head, 0, head)] if head else []
    out += [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle if i1 < i2 or j1 < j2]
    if tail:
        out.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return out


def align(a: list[LayerReport], b: list[LayerReport]) -> Iterator[RowDiff]:
    """The rows of A and B paired by structure (the two passes of the module's docstring)."""
    for tag, i1, i2, j1, j2 in _opcodes([_sized(r) for r in a], [_sized(r) for r in b]):
        if tag == "equal":
            yield from (_pair(x, y) for x, y in zip(a[i1:i2], b[j1:j2]))
            continue
        part_a, part_b = a[i1:i2], b[j1:j2]
        kinds_a, kinds_b = [_kind(r) for r in part_a], [_kind(r) for r in part_b]
        for kind_tag, k1, k2, l1, l2 in _opcodes(kinds_a, kinds_b):
            if kind_tag == "equal":
                yield from (_pair(x, y) for x, y in zip(part_a[k1:k2], part_b[l1:l2]))
            else:
                yield from (_pair(x, None) for x in part_a[k1:k2])
                yield from (_pair(None, y) for y in part_b[l1:l2])


def diff_reports(a: Report, b: Report, a_id: str, b_id: str) -> Diff:
    """Align two analyzed networks (their spec ids given by the caller, who has the networks)."""
    rows = list(align(a.layers, b.layers))

    def total(x: int, y: int) -> Total:
        return Total(a=x, b=y, delta=y - x)

    totals = {
        "params": total(a.total_params, b.total_params),
        "trainable_params": total(a.trainable_params, b.trainable_params),
        "non_trainable_params": total(a.non_trainable_params, b.non_trainable_params),
        "macs": total(a.macs, b.macs),
        "layers": total(len(a.layers), len(b.layers)),
    }
    return Diff(
        a=Side(name=a.name, file=a.file, spec_id=a_id, output_shape=a.output_shape),
        b=Side(name=b.name, file=b.file, spec_id=b_id, output_shape=b.output_shape),
        same_architecture=a_id == b_id,
        rows=rows,
        totals=totals,
    )


def _signed(n: int | None, human: bool = False) -> str:
    if not n:
        return ""
    return ("+" if n > 0 else "-") + human_count(abs(n)) if human else f"{n:+,}"


def _cells(row: RowDiff) -> tuple[str, ...]:
    a, b = row.a, row.b
    a_text = f"{a.name} ({a.type})" if a else ""
    b_text = (b.name if a and a.type == b.type else f"{b.name} ({b.type})") if b else ""
    shape_a = fmt_shape(tuple(a.output_shape[1:])) if a else ""  # type: ignore[arg-type]
    shape_b = fmt_shape(tuple(b.output_shape[1:])) if b else ""  # type: ignore[arg-type]
    shape = shape_a if shape_a == shape_b else f"{shape_a} -> {shape_b}" if a and b else shape_a or shape_b
    field_a, field_b = _field(a), _field(b)
    field = "" if field_a == field_b or (a is None or b is None) else f"{field_a} -> {field_b}"
    params = f"{(b or a).params:,}"  # type: ignore[union-attr]
    return (MARKS[row.change], a_text, b_text, shape, params, _signed(row.params), _signed(row.macs, True), field)


def _shown(rows: list[RowDiff], context: int | None) -> list[int | None]:
    """Row indices to print; None marks a run of unchanged rows left out (all rows when context is None)."""
    if context is None:
        return list(range(len(rows)))
    changed = [i for i, row in enumerate(rows) if row.change != "same"]
    keep = {j for i in changed for j in range(i - context, i + context + 1)} | {0, len(rows) - 1}
    out: list[int | None] = []
    for i in range(len(rows)):
        if i in keep:
            out.append(i)
        elif out and out[-1] is not None:
            out.append(None)
    return out


def render_diff(diff: Diff, context: int | None = 1) -> str:
    """The aligned table (unchanged rows beyond `context` of a change folded; None: every row) and totals."""
    headers = ("", "A layer (type)", "B layer", "Output shape", "Param # (B)", "Δ params", "Δ MACs", "Receptive field")
    shown = _shown(diff.rows, context)
    cells = []
    for index in shown:
        if index is None:
            cells.append(("", "...", "", "", "", "", "", ""))
        else:
            cells.append(_cells(diff.rows[index]))
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(w) if i in (4, 5, 6) else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))
        ).rstrip()

    def side(mark: str, s: Side, total: str) -> str:
        return f"{mark} {s.file or s.name}  (spec id {s.spec_id}): {total}"

    t = diff.totals
    out = [
        side(
            "---", diff.a, f"{t['params'].a:,} params, {human_count(t['macs'].a)} MACs, {t['layers'].a:,} Keras layers"
        ),
        side(
            "+++", diff.b, f"{t['params'].b:,} params, {human_count(t['macs'].b)} MACs, {t['layers'].b:,} Keras layers"
        ),
        line(headers),
        *(line(c) for c in cells),
    ]
    for key, title in (("params", "Total params"), ("trainable_params", "Trainable params"),
                       ("non_trainable_params", "Non-trainable params"), ("macs", "MACs per example"),
                       ("layers", "Keras layers")):  # fmt: skip
        total = t[key]
        out.append(f" {title}: {total.a:,} -> {total.b:,}" + (f" ({total.delta:+,})" if total.delta else " (same)"))
    shape_a, shape_b = (fmt_shape(tuple(s.output_shape[1:])) for s in (diff.a, diff.b))  # type: ignore[arg-type]
    out.append(f" Output: {shape_a}" + (" (same)" if shape_a == shape_b else f" -> {shape_b}"))
    counts = diff.counts
    out.append(f" Rows: {counts['same']} same, {counts['changed']} changed, {counts['inserted']} inserted, "
               f"{counts['deleted']} deleted" + ("; the same architecture" if diff.same_architecture else ""))  # fmt: skip
    return "\n".join(out)
