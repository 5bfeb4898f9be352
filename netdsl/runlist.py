"""`netdsl runs`: the run directories under a folder, with spec id, data, accuracy and time.

Every run's `config.json` records the spec id of the architecture it trained (netdsl/specid.py),
so `--spec-id` finds every run of one architecture however its spec was laid out or named. A run
written before spec ids were recorded gets its id from its `spec.net` (parsed, never executed).
Only netdsl's own files are read, each bounded; a directory that is not a run is skipped, and a
run whose files were damaged is listed with the reason instead of stopping the listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from netdsl.diagnostics import NetdslError
from netdsl.runs import RunDir, run_error
from netdsl.safeio import reason
from netdsl.specid import spec_id

MAX_RUNS = 10_000
"""Most run directories one listing reads: a `runs/` folder of a long project, and a bound on the work."""


class RunSummary(BaseModel):
    """One line of `netdsl runs`."""

    model_config = ConfigDict(frozen=True)
    path: str
    name: str | None = None
    spec_id: str | None = None
    spec_id_recorded: bool = False  # False: computed now from spec.net (a run from before spec ids)
    data: str | None = None
    status: str  # metrics.json's (completed, early_stopping, diverged), unfinished, or "damaged: <why>"
    epochs: int | None = None
    test_accuracy: float | None = None
    best_val_accuracy: float | None = None
    train_seconds: float | None = None
    created: str | None = None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summarize(path: Path) -> RunSummary | None:
    """The listing's line for one directory; None if it is not a netdsl run at all."""
    if not ((path / "spec.net").is_file() and (path / "config.json").is_file()):
        return None
    run = RunDir(path)
    try:
        config = run.config()
        recorded = config.get("spec_id")
        identity = recorded if isinstance(recorded, str) else spec_id(run.network())
        metrics = run.metrics()  # validated (runfiles.RunMetrics): a tampered status or accuracy is damage
    except NetdslError as err:
        return RunSummary(path=str(path), status=f"damaged: {err.diagnostics[0].message}")
    except (OSError, ValueError) as err:
        return RunSummary(path=str(path), status=f"damaged: {reason(err)}")
    epochs = metrics.get("epochs") if metrics else len(run_history(run))
    return RunSummary(
        path=str(path), name=config.get("name"), spec_id=identity, spec_id_recorded=isinstance(recorded, str),
        data=config.get("data") or "synthetic", status=str(metrics.get("status", "completed")) if metrics else "unfinished",
        epochs=epochs if isinstance(epochs, int) else None,
        test_accuracy=_number(metrics.get("test_accuracy")) if metrics else None,
        best_val_accuracy=_number(metrics.get("best_val_accuracy")) if metrics else None,
        train_seconds=_number(metrics.get("train_seconds")) if metrics else None,
        created=config.get("created") if isinstance(config.get("created"), str) else None,
    )  # fmt: skip


def run_history(run: RunDir) -> list[dict[str, Any]]:
    """The finished epochs of an unfinished run (a damaged history counts as none)."""
    try:
        return run.history()
    except NetdslError:
        return []


def list_runs(root: str | Path = "runs", spec: str | None = None) -> list[RunSummary]:
    """The runs in `root` (itself a run, or a folder of runs), oldest first; only those whose spec id
    starts with `spec` when given."""
    root = Path(root)
    try:
        is_dir = root.is_dir()
    except (OSError, ValueError) as err:  # a name too long for the OS, a NUL byte
        raise run_error(f"cannot read {root}: {reason(err)}", root) from None
    if not is_dir:
        raise run_error(f"no such folder: {root}", root, help="give the folder that holds the run directories")
    candidates = [root] if (root / "config.json").is_file() else sorted(p for p in root.iterdir() if p.is_dir())
    out = []
    for path in candidates[:MAX_RUNS]:
        summary = summarize(path)
        if summary is not None and (spec is None or (summary.spec_id or "").startswith(spec)):
            out.append(summary)
    return sorted(out, key=lambda s: (s.created or "", s.path))


def table(runs: list[RunSummary]) -> str:
    """The listing as a text table."""
    headers = ("Run", "Spec id", "Data", "Status", "Epochs", "Test acc.", "Time")
    rows = [
        (
            r.path, (r.spec_id or "-") + ("" if r.spec_id_recorded or not r.spec_id else "*"), r.data or "-",
            r.status, str(r.epochs) if r.epochs is not None else "-",
            f"{r.test_accuracy:.4f}" if r.test_accuracy is not None else "-",
            f"{r.train_seconds:,.0f} s" if r.train_seconds is not None else "-",
        )
        for r in runs
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(c.rjust(w) if i >= 4 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
             for cells in (headers, *rows)]  # fmt: skip
    if any(r.spec_id and not r.spec_id_recorded for r in runs):
        lines.append("* computed from the run's spec.net (trained before netdsl recorded spec ids)")
    return "\n".join(lines)
