"""Check speed: `netdsl check specs/resnet.net` against the hand-written Keras script, whole processes.

Both commands answer the same question (the seed ResNet's shapes and parameter counts): netdsl
by analysis, the Keras script (bench/keras_resnet.py) by building the model and printing
`model.summary()`. Runs alternate (netdsl, keras, netdsl, ...) and the medians are compared.
`--stages` also times each stage of both inside fresh interpreters, to show what dominates.

    python -m bench.check_speed [--runs 7] [--spec specs/resnet.net] [--stages] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.measure import ROOT, alternate, child_env, machine, netdsl_command, run_once

KERAS_SCRIPT = ROOT / "bench" / "keras_resnet.py"


def _stage_medians(mode: str, spec: str, runs: int) -> dict[str, float]:
    """Run `bench._stages MODE` `runs` times in fresh interpreters; median seconds per stage."""
    collected: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-m", "bench._stages", *([mode, spec] if mode == "check" else [mode])],
            cwd=ROOT, env=child_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        for name, seconds in json.loads(out.stdout.strip().splitlines()[-1]).items():
            collected.setdefault(name, []).append(seconds)
    return {name: statistics.median(values) for name, values in collected.items()}


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, print a table, return the numbers (for `python -m bench`)."""
    ap = argparse.ArgumentParser(prog="python -m bench.check_speed", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each command (median reported); default 7")
    ap.add_argument("--spec", default="specs/resnet.net")
    ap.add_argument("--stages", action="store_true", help="also time each stage inside fresh interpreters")
    ap.add_argument("--json", type=Path, help="write the numbers to this file")
    args = ap.parse_args(argv)
    if args.spec != "specs/resnet.net":
        print("note: the Keras script builds the seed ResNet; it is compared against", args.spec)
    commands = {
        "netdsl check": [*netdsl_command(), "check", args.spec],
        "keras summary": [sys.executable, str(KERAS_SCRIPT)],
    }
    # Warm both once (Lark's grammar cache, .pyc files, the page cache) so no run pays first-time costs.
    for argv_ in commands.values():
        run_once(argv_)
    results = alternate(commands, args.runs)
    ours, theirs = results["netdsl check"], results["keras summary"]
    out: dict = {
        "machine": machine(),
        "runs": args.runs,
        "spec": args.spec,
        "results": {name: s.as_dict() for name, s in results.items()},
        "speedup_wall": theirs.wall_s / ours.wall_s,
        "speedup_cpu": theirs.cpu_s / ours.cpu_s,
        "memory_ratio": theirs.max_rss_mb / ours.max_rss_mb,
    }
    print(f"{'command':16} {'wall (median)':>14} {'range':>15} {'CPU':>8} {'peak RSS':>10}")
    for name, s in results.items():
        span = f"{s.wall_min_s:.2f}-{s.wall_max_s:.2f} s"
        print(f"{name:16} {s.wall_s:12.3f} s {span:>15} {s.cpu_s:6.2f} s {s.max_rss_mb:7.1f} MB")
    print(
        f"netdsl check is {out['speedup_wall']:.1f}x faster (wall; {out['speedup_cpu']:.1f}x in CPU time) "
        f"and uses {out['memory_ratio']:.1f}x less memory, median of {args.runs} alternating runs"
    )
    if args.stages:
        python_start = alternate({"python -c pass": [sys.executable, "-c", "pass"]}, args.runs)["python -c pass"]
        stages = {
            "netdsl": {"interpreter start": python_start.wall_s, **_stage_medians("check", args.spec, args.runs)},
            "keras": {"interpreter start": python_start.wall_s, **_stage_medians("keras-resnet", args.spec, args.runs)},
        }
        out["stages"] = stages
        for tool, times in stages.items():
            total = sum(times.values())
            print(f"\n{tool} stages (median of {args.runs} fresh interpreters; sum {1000 * total:.0f} ms):")
            for name, seconds in times.items():
                print(f"  {name:36} {1000 * seconds:8.1f} ms  {100 * seconds / total:5.1f}%")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
