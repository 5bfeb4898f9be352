"""`python -m bench` (and `make bench`): the quick benchmarks, a few minutes on a 2-core machine.

Runs check speed (netdsl check vs hand-written Keras, with the stage breakdown), the scale sweep
up to 10,000 layers (Keras builds up to 1,000), and the trainer's throughput benchmark when
bench/train_throughput.py exists. `--full` adds 100,000 layers and Keras builds up to 10,000, and
rewrites bench/scale.png and bench/results/*.json, the files BENCHMARKS.md quotes. The accuracy
runs on Fashion-MNIST take tens of minutes each and run only on their own: `python -m bench.fmnist`.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

from bench import check_speed, scale
from bench.measure import ROOT, child_env, machine

RESULTS = ROOT / "bench" / "results"


def _section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def train_throughput(quick: bool) -> int | None:
    """Run the trainer's benchmark (bench/train_throughput.py) if it exists; its exit status."""
    if importlib.util.find_spec("bench.train_throughput") is None:
        print("bench/train_throughput.py is not there yet; skipped")
        return None
    argv = [sys.executable, "-m", "bench.train_throughput"]
    if quick:
        help_text = subprocess.run([*argv, "--help"], cwd=ROOT, env=child_env(), capture_output=True, text=True).stdout
        argv += ["--quick"] if "--quick" in help_text else []
    return subprocess.run(argv, cwd=ROOT, env=child_env()).returncode


def main(argv: list[str] | None = None) -> int:
    """Run the suite and print every table; exit 1 if a benchmark failed to run."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="also 100,000 layers and 10,000-layer Keras builds; save files")
    ap.add_argument("--runs", type=int, default=5, help="runs per command for check speed (median); default 5")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average']}")
    print(f"python {info['python']}, keras {info['keras']}, tensorflow-cpu {info['tensorflow-cpu']}")

    _section(f"check speed: netdsl check specs/resnet.net vs bench/keras_resnet.py ({args.runs} alternating runs)")
    save = RESULTS if args.full else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    check_speed.main(
        ["--runs", str(args.runs), "--stages", *(["--json", str(save / "check_speed.json")] if save else [])]
    )

    sizes = "10,100,1000,10000,100000" if args.full else "10,100,1000,10000"
    keras_max = "10000" if args.full else "1000"
    _section(f"scale: layers {sizes}, Keras builds up to {keras_max}")
    scale_args = ["--sizes", sizes, "--keras-max", keras_max, "--runs", "3" if args.full else "1"]
    if save:
        scale_args += ["--plot", str(ROOT / "bench" / "scale.png"), "--json", str(save / "scale.json")]
    scale.main(scale_args)

    _section("training throughput")
    status = train_throughput(quick=not args.full)
    print(f"\nbench done in {time.perf_counter() - started:.0f} s")
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
