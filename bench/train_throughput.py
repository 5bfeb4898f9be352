"""Training throughput: `netdsl train` against the hand-written Keras script, alternating runs.

Both train the same model (the seed's ConvNet2 or ResNet) on the same images (netdsl's synthetic
set, same count and seed) with the same batch (256), optimizer (Adam 0.01) and augmentation
(shift 0.1, horizontal flip), in fresh processes, run A B A B ... so load changes hit both alike.
The throughput is measured on the steady epochs (all but the first, which traces and compiles):
training images x epochs / seconds of those epochs. Peak memory is each process's kernel
high-water mark (os.wait4). netdsl runs with `--validation 0`, so neither side validates.

    python -m bench.train_throughput                   # convnet2 and resnet, 3 runs each
    python -m bench.train_throughput --quick           # convnet2, 1 run, smaller (make bench)
    python -m bench.train_throughput --backend jax     # both sides on JAX (or torch): KERAS_BACKEND for Keras
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.measure import ROOT, child_env, machine, run_once

SPECS = {"convnet2": ROOT / "specs" / "convnet2.net", "resnet": ROOT / "specs" / "resnet.net"}


def steady_rate(seconds: list[float], images: int) -> float:
    """Images per second over every epoch but the first."""
    steady = seconds[1:] or seconds
    return images * len(steady) / sum(steady)


def netdsl_run(model: str, count: int, epochs: int, backend: str = "tensorflow") -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        argv = [
            sys.executable, "-m", "netdsl.cli", "train", str(SPECS[model]), "--data", f"synthetic:count={count}",
            "--epochs", str(epochs), "--batch", "256", "--lr", "0.01", "--optimizer", "adam", "--shift", "0.1",
            "--flip", "--validation", "0", "--out", str(out), "-q", "--backend", backend,
        ]  # fmt: skip
        sample = run_once(argv)
        if sample.returncode != 0:
            raise SystemExit(f"netdsl train failed (exit {sample.returncode}): {' '.join(argv)}")
        with open(out / "history.csv", newline="") as stream:
            seconds = [float(row["seconds"]) for row in csv.DictReader(stream)]
    images = count - count // 6
    return {
        "rate": steady_rate(seconds, images),
        "seconds": seconds,
        "rss_mb": sample.max_rss_mb,
        "wall_s": sample.wall_s,
    }


def keras_run(model: str, count: int, epochs: int, backend: str = "tensorflow") -> dict:
    argv = [sys.executable, "-m", "bench.keras_train", model, "--count", str(count), "--epochs", str(epochs)]
    with tempfile.TemporaryFile("w+") as stdout:
        sample = run_once(argv, env={**child_env(), "KERAS_BACKEND": backend}, stdout=stdout)
        stdout.seek(0)
        lines = stdout.read().strip().splitlines()
    if sample.returncode != 0 or not lines:
        raise SystemExit(f"the Keras script failed (exit {sample.returncode}): {' '.join(argv)}")
    result = json.loads(lines[-1])
    rate = steady_rate(result["seconds"], result["train_images"])
    return {"rate": rate, "seconds": result["seconds"], "rss_mb": sample.max_rss_mb, "wall_s": sample.wall_s}


def compare(model: str, runs: int, count: int, epochs: int, backend: str = "tensorflow") -> dict:
    """Alternate netdsl and Keras `runs` times; medians and the throughput ratio."""
    samples: dict[str, list[dict]] = {"netdsl": [], "keras": []}
    for i in range(runs):
        for name, run in (("netdsl", netdsl_run), ("keras", keras_run)):
            sample = run(model, count, epochs, backend)
            samples[name].append(sample)
            print(f"  run {i + 1} {name:6}: {sample['rate']:7.0f} images/s, peak {sample['rss_mb']:.0f} MB, "
                  f"wall {sample['wall_s']:.1f} s", flush=True)  # fmt: skip
    medians = {
        name: {
            "images_per_s": statistics.median(s["rate"] for s in runs_),
            "peak_rss_mb": statistics.median(s["rss_mb"] for s in runs_),
        }
        for name, runs_ in samples.items()
    }
    ratio = medians["netdsl"]["images_per_s"] / medians["keras"]["images_per_s"]
    return {
        "model": model,
        "backend": backend,
        "runs": runs,
        "count": count,
        "epochs": epochs,
        **medians,
        "ratio": ratio,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.train_throughput", description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="convnet2,resnet", help="comma-separated: convnet2, resnet")
    ap.add_argument("--runs", type=int, default=3, help="alternating runs per side (median)")
    ap.add_argument("--count", type=int, default=12000, help="synthetic images (5/6 train)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed)")
    ap.add_argument("--quick", action="store_true", help="convnet2 only, 1 run, 6,000 images, 2 epochs")
    ap.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax", "torch"),
                    help="Keras backend of both sides")  # fmt: skip
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.models, args.runs, args.count, args.epochs = "convnet2", 1, 6000, 2
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average']}; keras {info['keras']}")
    results = []
    for model in args.models.split(","):
        print(
            f"{model}: {args.count:,} synthetic images, batch 256, {args.epochs} epochs, {args.runs} alternating runs"
            f" on {args.backend}"
        )
        result = compare(model, args.runs, args.count, args.epochs, args.backend)
        results.append(result)
        print(
            f"{model}: netdsl {result['netdsl']['images_per_s']:.0f} images/s (peak {result['netdsl']['peak_rss_mb']:.0f} MB)"
            f", keras {result['keras']['images_per_s']:.0f} images/s (peak {result['keras']['peak_rss_mb']:.0f} MB)"
            f", ratio {result['ratio']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
