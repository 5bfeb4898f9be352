"""Accuracy on real data: `netdsl train` on the full Fashion-MNIST (Debian's dataset-fashion-mnist).

The seed's specs are written for CIFAR-10 (32x32x3); each is trained on a copy whose `input`
line says 28x28x1, the data's own shape, so nothing is resized and the architecture is the
seed's (only the first layer's input channels change). All 60,000 training images train
(`--validation 0`; the seed validated on the test set, which here is kept for the end), and the
10,000 test images give the accuracy. Every run appends a record (command, epochs, accuracy,
wall time, machine load) to bench/results/fmnist.json, which BENCHMARKS.md quotes.

    python -m bench.fmnist specs/convnet.net [--epochs N] [--max-images N] [-- extra train options]
    python -m bench.fmnist --seed-specs         # simple, convnet, convnet2, resnet with their seed epochs
    python -m bench.fmnist --table              # print the recorded results beside the published ones
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.measure import ROOT, machine, netdsl_command, run_once

RESULTS = ROOT / "bench" / "results" / "fmnist.json"
SEED_SPECS = ("specs/simple.net", "specs/convnet.net", "specs/convnet2.net", "specs/resnet.net")
DATA_SHAPE = "28x28x1"
PUBLISHED = (
    # From the "Benchmark" table of /usr/share/doc/dataset-fashion-mnist/README.md.gz (submitted, not verified there).
    ("MLP 256-128-100", 0.8833),
    ("2 Conv+pooling (TensorFlow's doc)", 0.916),
    ("3 Conv+pooling+BN", 0.903),
    ("5 Conv+BN+pooling", 0.931),
    ("2 Conv+pooling+BN", 0.934),
    ("ResNet18 (normalization, flips, translation, rotation)", 0.949),
    ("DenseNet-BC 768K params (mean/std, crops, flips)", 0.954),
    ("WRN40-4 8.9M params (mean/std, crops, flips)", 0.967),
)
_INPUT_LINE = re.compile(r"^(\s*)input\s+\S+", re.MULTILINE)


def adapted(spec: Path, workdir: Path) -> Path:
    """The spec with its `input` line set to Fashion-MNIST's 28x28x1 (the spec itself when it already is)."""
    text = spec.read_text(encoding="utf-8")
    if not _INPUT_LINE.search(text):
        raise SystemExit(f"{spec}: no `input` line to adapt")
    new = _INPUT_LINE.sub(lambda m: f"{m.group(1)}input {DATA_SHAPE}", text, count=1)
    if new == text:
        return spec
    out = workdir / f"{spec.stem}_{DATA_SHAPE}.net"
    out.write_text(f"# {spec} with its input set to Fashion-MNIST's {DATA_SHAPE} (bench/fmnist.py)\n{new}", "utf-8")
    return out


def train(spec: Path, epochs: int | None, max_images: int | None, extra: list[str]) -> dict:
    """Train one spec on Fashion-MNIST; the record that is appended to bench/results/fmnist.json."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / "runs" / f"fmnist-{spec.stem}-{stamp}"
    run_dir.parent.mkdir(exist_ok=True)
    workdir = ROOT / "runs" / "fmnist-specs"
    workdir.mkdir(exist_ok=True)
    trained = adapted(spec, workdir)
    argv = [*netdsl_command(), "train", str(trained), "--data", "fashion_mnist", "--validation", "0"]
    argv += ["--out", str(run_dir), "--quiet"]
    argv += ["--epochs", str(epochs)] if epochs else []
    argv += ["--max-images", str(max_images)] if max_images else []
    argv += extra
    shown = " ".join(a.replace(str(ROOT) + os.sep, "") for a in argv[1:])
    print(f"netdsl {shown}", flush=True)
    load_before = os.getloadavg()
    log = run_dir.with_suffix(".log")
    with log.open("w", encoding="utf-8") as out:
        sample = run_once(argv, stdout=out)
    if sample.returncode != 0 or not (run_dir / "metrics.json").exists():
        raise SystemExit(f"training failed (exit {sample.returncode}); see {log}")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    record = {
        "spec": str(spec),
        "trained_spec_text": trained.read_text(encoding="utf-8"),
        "command": f"netdsl {shown}",
        "bench_command": "python -m bench.fmnist " + str(spec) + (f" --epochs {epochs}" if epochs else ""),
        "epochs": metrics.get("epochs"),
        "test_accuracy": metrics.get("test_accuracy"),
        "test_loss": metrics.get("test_loss"),
        "train_seconds": metrics.get("train_seconds"),
        "images_per_second": metrics.get("images_per_second"),
        "wall_s": round(sample.wall_s, 1),
        "cpu_s": round(sample.cpu_s, 1),
        "peak_rss_mb": round(sample.max_rss_mb),
        "max_images": max_images,
        "status": metrics.get("status"),
        "config": config,
        "run_dir": str(run_dir.relative_to(ROOT)),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine(),
    }
    records = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else []
    records.append(record)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    print(
        f"{spec}: test accuracy {record['test_accuracy']:.4f} after {record['epochs']} epochs, "
        f"{record['wall_s'] / 60:.1f} min wall ({record['images_per_second']} images/s)",
        flush=True,
    )
    return record


def _layers(text: str) -> str:
    """A spec's statements without comments, blank lines or `epochs=` (the table has its own column for
    epochs, and `--epochs` overrides them): what decides whether two versions of a spec differ."""
    lines = (re.sub(r"\s*epochs=\d+", "", line.split("#")[0]).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def table() -> str:
    """Every recorded full run beside the dataset's published results."""
    import netdsl

    records = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else []
    full = [r for r in records if not r.get("max_images")]  # every full run, the loaded ones beside the idle
    lines = [
        "| spec (trained at 28x28x1) | params | epochs (spec's own) | test accuracy | wall time | CPU time | images/s | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(full, key=lambda r: (r["spec"], r["epochs"], r["finished_utc"])):
        trained = netdsl.parse(r["trained_spec_text"])
        own = trained.training.epochs  # that version's own, not today's
        params = netdsl.analyze(trained).total_params
        load = (r["load_average_before"][0] + r["load_average_after"][0]) / 2
        with tempfile.TemporaryDirectory() as tmp:
            current = adapted(ROOT / r["spec"], Path(tmp)).read_text(encoding="utf-8")
        name = f"`{r['spec']}`" + (
            "" if _layers(current) == _layers(r["trained_spec_text"]) else " (an earlier version)"
        )
        lines.append(
            f"| {name} | {params:,} | {r['epochs']} ({own}) | **{r['test_accuracy']:.4f}** "
            f"| {r['wall_s'] / 60:.1f} min | {r['cpu_s'] / 60:.1f} core-min | {r['images_per_second']:.0f} | {load:.0f} |"
        )
    lines += ["", "| published (the dataset's README, submitted results) | test accuracy |", "|---|---:|"]
    lines += [f"| {name} | {acc} |" for name, acc in PUBLISHED]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Train the given specs one after another (one at a time: the machine has 2 cores)."""
    ap = argparse.ArgumentParser(prog="python -m bench.fmnist", description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="*", type=Path)
    ap.add_argument("--seed-specs", action="store_true", help="the seed's four specs, with their own epochs")
    ap.add_argument("--epochs", type=int, help="override the spec's epochs (recorded)")
    ap.add_argument("--max-images", type=int, help="a quick, partial run (not shown in --table)")
    ap.add_argument("--table", action="store_true", help="print the recorded results and exit")
    args, extra = ap.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.table:
        print(table())
        return
    specs = [Path(s) for s in SEED_SPECS] if args.seed_specs else args.specs
    if not specs:
        ap.error("give specs, or --seed-specs, or --table")
    started = time.perf_counter()
    for spec in specs:
        train(spec, args.epochs, args.max_images, extra)
    print(f"all done in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
