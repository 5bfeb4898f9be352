"""Parser speed (issue 11, item 8): the fast parser against Lark's, on the same text in the same run.

Three specs: 100,000 written-out `dense 8` lines (one Keras layer each), the same network in repeat form,
and the seed's ResNet. For each: the CPU time of Lark's LALR parser with its tree and positions (what
netdsl used before) and of netdsl/fastparse.py, their ratio, and the whole `netdsl.parse` + `analyze`
CPU time (the target: at most 2 s for the 100,000-layer flat spec). Run: `python -m bench.parser`.
"""

from __future__ import annotations

import json
import time

import netdsl
from bench.measure import ROOT, machine
from netdsl.fastparse import parse_fast
from netdsl.quick import paused_gc
from netdsl.syntax import ToSurface, parser

FLAT = "input 32\n" + "dense 8\n" * 100_000
REPEAT = "input 32\nrepeat 100000 [ dense 8 ]\n"


def cpu(function, *args) -> float:
    """Best of three CPU times (the machine is shared: the least disturbed run is the closest to the truth)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        function(*args)
        best = min(best, time.process_time() - start)
    return best


def lark(text: str) -> list:
    with paused_gc():
        return ToSurface().transform(parser().parse(text))


def fast(text: str) -> list:
    with paused_gc():
        return parse_fast(text)


def whole(text: str) -> None:
    netdsl.analyze(netdsl.parse(text))


def main() -> None:
    specs = {"flat 100,000 x dense": FLAT, "repeat 100,000 x dense": REPEAT,
             "specs/resnet.net": (ROOT / "specs" / "resnet.net").read_text()}  # fmt: skip
    results = {"machine": machine(), "specs": {}}
    print(f"{'spec':24} {'Lark parse':>11} {'fast parse':>11} {'ratio':>6} {'parse+analyze':>14}")
    for name, text in specs.items():
        slow, quick, total = cpu(lark, text), cpu(fast, text), cpu(whole, text)
        results["specs"][name] = {"lark_s": slow, "fast_s": quick, "ratio": slow / quick, "parse_analyze_s": total}
        print(f"{name:24} {slow:10.3f}s {quick:10.3f}s {slow / quick:5.1f}x {total:13.3f}s")
    (ROOT / "bench" / "results" / "parser.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
