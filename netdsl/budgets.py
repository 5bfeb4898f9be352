"""Budgets: `assert params < 2M` in a spec, or `--assert 'params < 2M'` on the command line.

A budget compares one measure of the analyzed network with a limit. The measures are exact, read
from the analyzer's report (no Keras): a budget not met is a located error (E701) giving the
measured value, so `netdsl check` can guard an architecture in CI and `netdsl train` refuses to
start. The measures and units are defined once, in METRICS; docs/tools.md explains each.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from netdsl.diagnostics import Diagnostic, NetdslError, did_you_mean
from netdsl.ir import Budget, Command, Span
from netdsl.units import QuantityError, Unit, human_bytes, human_count, quantity

if TYPE_CHECKING:  # the measures read a report; budgets are parsed (by lowering) without the analyzer
    from netdsl.analysis import Report

_BUDGET = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*")
COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
}  # fmt: skip


def activation_bytes(report: Report) -> int:
    """Per-example activation memory: every Keras layer's output elements (the input's too), 4 bytes each.

    What one example's forward pass writes in float32 if nothing is freed or fused: the memory a
    batch of N multiplies by N (gradients and optimizer state come on top, parameters are apart)."""
    return 4 * sum(math.prod(d for d in row.output_shape[1:] if d is not None) for row in report.layers)


def receptive_field(report: Report) -> int:
    """The largest receptive field any layer reaches, in input pixels (the smaller of its axes)."""
    sizes = [min(row.receptive_field_axes[0]) for row in report.layers if row.receptive_field_axes]
    return max(sizes, default=0)


@dataclass(frozen=True)
class Metric:
    """One measure a budget can bound."""

    unit: Unit
    measure: Callable[[Report], int]
    summary: str


METRICS: dict[str, Metric] = {
    "params": Metric("count", lambda r: r.total_params, "all parameters (trainable or not)"),
    "trainable": Metric("count", lambda r: r.trainable_params, "trainable parameters"),
    "non_trainable": Metric("count", lambda r: r.non_trainable_params, "non-trainable parameters"),
    "macs": Metric("count", lambda r: r.macs, "multiply-accumulates per example"),
    "flops": Metric("count", lambda r: r.flops, "2 x MACs"),
    "layers": Metric("count", lambda r: len(r.layers), "Keras layers of the model (the input too)"),
    "rf": Metric("pixels", receptive_field, "the largest receptive field, in input pixels"),
    "activations": Metric("bytes", activation_bytes, "per-example activation memory, float32"),
    "weights": Metric("bytes", lambda r: r.param_bytes, "float32 parameter memory"),
}


class BudgetResult(BaseModel):
    """A budget and what the network measures."""

    model_config = ConfigDict(frozen=True)
    budget: Budget
    measured: int
    ok: bool


class BudgetError(QuantityError):
    """A budget that cannot be understood; lowering and the CLI turn it into E702. `part` is the one at
    fault (metric, op or limit), so an `assert` line's error points at it."""

    def __init__(self, message: str, help: str | None = None, part: str = "limit") -> None:
        super().__init__(message, help)
        self.part = part


def make_budget(metric: str, op: str, limit: str, text: str, span: Span | None = None) -> Budget:
    """A Budget from its three parts as written; BudgetError if one of them is not understood."""
    if metric not in METRICS:
        raise BudgetError(
            f"unknown budget '{metric}'",
            help=did_you_mean(metric, METRICS) or "budgets: " + ", ".join(METRICS),
            part="metric",
        )
    if op not in COMPARE:
        raise BudgetError(f"'{op}' is not a comparison", help="compare with <, <=, >, >= or ==", part="op")
    try:
        value = quantity(limit, METRICS[metric].unit)
    except QuantityError as err:
        raise BudgetError(str(err), help=err.help) from None
    return Budget(metric=metric, op=op, limit=value, text=text, span=span)  # type: ignore[arg-type]


class BudgetStatements:
    """`assert METRIC OP LIMIT` in a spec, for lowering: mixed into its `_Lowering` (which reports
    through `error` and registers `budget` as the `assert` directive's method)."""

    budgets: list[Budget]

    def error(self, code: str, message: str, span: Span | None, help: str | None = None) -> None: ...

    def budget(self, cmd: Command, env: dict[str, Any]) -> None:
        metric, op, limit = cmd.args  # the grammar's `assertion` rule makes exactly these three
        text = f"{metric.value} {op.value} {limit.value}"
        try:
            self.budgets.append(make_budget(metric.value, op.value, limit.value, text, cmd.end))
        except BudgetError as err:
            where = {"metric": metric, "op": op}.get(err.part, limit).span
            self.error("E702", f"assert: {err}", where, help=err.help)


def parse_budget(text: str) -> Budget:
    """`'params < 1M'` (the CLI's --assert) -> Budget; BudgetError when it is not `METRIC OP LIMIT`."""
    match = _BUDGET.fullmatch(text)
    if match is None:
        raise BudgetError(f"'{text}' is not a budget", help="write METRIC OP LIMIT, such as 'params < 2M'")
    return make_budget(*match.groups(), text=" ".join(match.groups()))


def measure(report: Report, budgets: Iterable[Budget]) -> list[BudgetResult]:
    """Each budget with the network's measured value and whether it holds."""
    results = []
    for budget in budgets:
        value = METRICS[budget.metric].measure(report)
        results.append(BudgetResult(budget=budget, measured=value, ok=COMPARE[budget.op](value, budget.limit)))
    return results


def shown(value: int, unit: Unit) -> str:
    """A measured value as a reader checks it: `2,345,678 (2.3 M)`, `75,497,472 bytes (72.0 MB)`, `45 pixels`."""
    if unit == "bytes":
        return f"{value:,} bytes ({human_bytes(value)})"
    if unit == "pixels":
        return f"{value:,} pixels"
    return f"{value:,}" + (f" ({human_count(value)})" if value >= 1000 else "")


def failures(results: Sequence[BudgetResult]) -> list[Diagnostic]:
    """E701 for each budget that does not hold, located at its `assert` (or naming --assert)."""
    out = []
    for result in results:
        if result.ok:
            continue
        budget = result.budget
        metric = METRICS[budget.metric]
        where = "" if budget.span is not None else " (--assert)"
        out.append(Diagnostic(
            "E701", f"budget not met{where}: {budget.text}, but {budget.metric} is {shown(result.measured, metric.unit)}",
            budget.span, help=f"{budget.metric}: {metric.summary}; `netdsl check` shows where it comes from",
        ))  # fmt: skip
    return out


def enforce(report: Report, budgets: Iterable[Budget]) -> list[BudgetResult]:
    """Measure the budgets; raise NetdslError (E701, every failure) unless all hold."""
    results = measure(report, budgets)
    failed = failures(results)
    if failed:
        raise NetdslError(failed)
    return results


def summary(results: Sequence[BudgetResult]) -> str:
    """One line for `netdsl check`'s totals: each budget, its measured value, ok or FAILED."""
    parts = [
        f"{r.budget.text}: {shown(r.measured, METRICS[r.budget.metric].unit)} {'ok' if r.ok else 'FAILED'}"
        for r in results
    ]
    return " Budgets: " + "; ".join(parts)


def to_dicts(results: Sequence[BudgetResult]) -> list[dict]:
    """`check --json`'s "budgets": each budget as written, its limit, the measured value, ok, and its line."""
    return [
        {"budget": r.budget.text, "metric": r.budget.metric, "op": r.budget.op, "limit": r.budget.limit,
         "measured": r.measured, "ok": r.ok, "line": r.budget.span.line if r.budget.span else None}
        for r in results
    ]  # fmt: skip
