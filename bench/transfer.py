"""`python -m bench.transfer`: does pretraining with `pretrained run=...` beat training from scratch?

The built-in synthetic images (netdsl.data.synthetic) are split by class: a small convnet is pretrained on
disc / ring / square / frame / triangle (classes 0-4), then a new spec takes that run as its backbone
(`pretrained run="..."`) and learns plus / cross / hstripes / vstripes / checker (classes 5-9) from a few
hundred images. The same network trained from scratch on the same images, with the same optimizer, batch and
epochs, is the baseline; `frozen` trains only the new head on the pretrained features. Test accuracy is
measured on 1,500 held-out images of classes 5-9. Writes bench/results/transfer.json and prints the table
BENCHMARKS.md quotes. Takes about 10 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import netdsl
from netdsl.data.synthetic import generate

ROOT = Path(__file__).resolve().parent.parent
BODY = "input 32x32x3\nconv 16 k3 relu\nconv 32 k3 s2 relu\nconv 64 k3 s2 relu\n"
PRETRAIN = BODY + "gmp\ndense 5 softmax\ntrain adam lr=0.003 batch=32 val=0.1\n"
HEAD = "gmp\ndense 5 softmax\ntrain adam lr=0.003 batch=25 val=0.2\n"


def specs(run: Path) -> dict[str, str]:
    """The three ways to learn classes 5-9, each with the same head and training settings."""
    return {
        "pretrained": f'input 32x32x3\npretrained run="{run}"\n{HEAD}',
        "pretrained, frozen": f'input 32x32x3\npretrained run="{run}" frozen\n{HEAD}',
        "scratch": BODY + HEAD,
    }


def trial(folder: Path, seed: int, pretrain_images: int, sizes: list[int], epochs: int, pretrain_epochs: int) -> dict:
    """One pretraining run and, for each fine-tuning set size, the three ways; test accuracies."""
    x, y = generate(pretrain_images * 2 + 2 * max(sizes) + 4_000, (32, 32, 3), 10, seed=100 + seed)
    first, second = y < 5, y >= 5
    xa, ya, xb, yb = x[first], y[first], x[second], y[second] - 5
    np.savez(folder / "a.npz", x_train=xa[:pretrain_images], y_train=ya[:pretrain_images],
             x_test=xa[-1000:], y_test=ya[-1000:])  # fmt: skip
    quiet = {"verbose": 0, "echo": lambda line: None}
    started = time.perf_counter()
    pretrained = netdsl.train(
        PRETRAIN, str(folder / "a.npz"), out=folder / f"pretrain-{seed}", epochs=pretrain_epochs, seed=seed, **quiet
    )
    out: dict = {
        "seed": seed,
        "pretrain_accuracy": pretrained.metrics["test_accuracy"],
        "pretrain_seconds": round(time.perf_counter() - started, 1),
        "finetune": {},
    }
    for size in sizes:
        np.savez(folder / "b.npz", x_train=xb[:size], y_train=yb[:size], x_test=xb[-1500:], y_test=yb[-1500:])
        for name, spec in specs(folder / f"pretrain-{seed}").items():
            result = netdsl.train(
                spec, str(folder / "b.npz"), out=folder / f"{name}-{size}-{seed}".replace(", ", "-"),
                epochs=epochs, seed=seed, **quiet,
            )  # fmt: skip
            out["finetune"].setdefault(str(size), {})[name] = result.metrics["test_accuracy"]
            print(f"seed {seed}, {size} images, {name}: {result.metrics['test_accuracy']:.3f}", flush=True)
    return out


def table(trials: list[dict], sizes: list[int]) -> str:
    """Markdown: mean (min-max) test accuracy per fine-tuning set size and way."""
    names = list(specs(Path("run")))
    lines = ["| fine-tuning images (classes 5-9) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for size in sizes:
        cells = []
        for name in names:
            values = [t["finetune"][str(size)][name] for t in trials]
            cells.append(f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-images", type=int, default=4_000)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1_000])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args(argv)
    trials = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(1, args.seeds + 1):
            trials.append(
                trial(Path(folder), seed, args.pretrain_images, args.sizes, args.epochs, args.pretrain_epochs)
            )
    result = {"settings": vars(args), "trials": trials, "table": table(trials, args.sizes)}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "transfer.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(result["table"])


if __name__ == "__main__":
    main()
