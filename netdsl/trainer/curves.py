"""curves.png: a run's learning curves, drawn with matplotlib (imported only here, when a run ends)."""

from __future__ import annotations

import itertools
from typing import Any

from netdsl.runs import RunDir, atomic_write
from netdsl.terminal import printable


def plot_curves(run: RunDir, rows: list[dict[str, Any]], title: str) -> None:
    """curves.png: loss and accuracy per epoch, train vs validation, phases marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in rows]
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            points = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
            if points:
                axis.plot(*zip(*points), style, label=label, markersize=3)
        for before, row in itertools.pairwise(rows):
            if row.get("phase", 1) != before.get("phase", 1):
                axis.axvline(before["epoch"] + 0.5, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(printable(title, newlines=False))  # names from folders: no control characters
    figure.tight_layout()
    atomic_write(run.path / "curves.png", lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)
