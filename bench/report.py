"""Markdown tables for BENCHMARKS.md from the saved results in bench/results/*.json.

The tables in BENCHMARKS.md are this module's output, pasted, so a rerun of the benchmarks and of
`python -m bench.report` regenerates them without hand-copying numbers.

    python -m bench.report [check_speed|stages|scale|fmnist]...   # default: all
"""

from __future__ import annotations

import json
import sys

from bench import fmnist
from bench.measure import ROOT

RESULTS = ROOT / "bench" / "results"


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def check_speed() -> str:
    """Medians, ranges and ratios of the whole-process comparison."""
    d = _load("check_speed")
    lines = [
        "| command | wall, median (range) | CPU time | peak RSS |",
        "|---|---:|---:|---:|",
    ]
    for name, s in d["results"].items():
        lines.append(
            f"| `{name}` | {s['wall_s']:.2f} s ({s['wall_min_s']:.2f}–{s['wall_max_s']:.2f}) | {s['cpu_s']:.2f} s "
            f"| {s['max_rss_mb']:.0f} MB |"
        )
    lines.append(
        f"| **ratio** | **{d['speedup_wall']:.1f}x** faster | **{d['speedup_cpu']:.1f}x** less CPU "
        f"| **{d['memory_ratio']:.1f}x** less memory |"
    )
    load = ", ".join(f"{x:.1f}" for x in d["machine"]["load_average"])
    lines.append(f"\n{d['runs']} alternating runs each; load average when it ended: {load}.")
    return "\n".join(lines)


def stages() -> str:
    """Per-stage medians of netdsl check and of the Keras script, side by side."""
    d = _load("check_speed")["stages"]
    out = []
    for tool, times in d.items():
        total = sum(times.values())
        out += [f"| {tool} stage | median | share |", "|---|---:|---:|"]
        out += [f"| {name} | {1000 * s:.1f} ms | {100 * s / total:.0f}% |" for name, s in times.items()]
        out += [f"| **sum** | **{1000 * total:.0f} ms** | |", ""]
    return "\n".join(out).rstrip()


def scale() -> str:
    """One row per size and form: analyzer CPU per stage, per layer, memory, check process, Keras build."""
    d = _load("scale")
    lines = [
        "| layers | form | spec size | parse | lower | analyze | per layer | peak RSS (growth) "
        "| `netdsl check` CPU (wall) | Keras build CPU (wall) | Keras peak RSS |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["rows"]:
        a, k = r["analyzer"], r.get("keras")
        work = a["parse_s"] + a["lower_s"] + a["analyze_s"]
        keras = f"{k['build_s']:.2f} s ({k['build_wall_s']:.1f} s) | {k['peak_rss_mb']:.0f} MB" if k else "– | –"
        lines.append(
            f"| {r['layers']:,} | {r['form']} | {r['spec_bytes']:,} B | {a['parse_s']:.3f} s | {a['lower_s']:.3f} s "
            f"| {a['analyze_s']:.3f} s | {1e6 * work / r['layers']:.0f} µs | {a['peak_rss_mb']:.0f} MB "
            f"(+{a['peak_rss_mb'] - a['rss_after_import_mb']:.1f}) | {r['check_cpu_s']:.2f} s ({r['check_wall_s']:.1f} s) "
            f"| {keras} |"
        )
    load = ", ".join(f"{x:.1f}" for x in d["machine"]["load_average"])
    lines.append(f"\nMedian of {d['runs']} fresh interpreters per cell; load average when it ended: {load}.")
    return "\n".join(lines)


TABLES = {"check_speed": check_speed, "stages": stages, "scale": scale, "fmnist": fmnist.table}

if __name__ == "__main__":
    for name in sys.argv[1:] or TABLES:
        print(f"<!-- python -m bench.report {name} -->\n{TABLES[name]()}\n")
