"""Timed stages inside one fresh interpreter, printed as one JSON line for the parent benchmark.

Kept apart from the benchmark drivers, and importing only the standard library's lightest
modules before the clock starts, so that the imports it times are not already loaded.

    python -m bench._stages check SPEC        # netdsl check's stages
    python -m bench._stages keras-resnet      # the hand-written Keras script's stages
    python -m bench._stages analyze SPEC [nogc]  # parse / lower / analyze of a (large) spec + peak RSS
    python -m bench._stages keras-build SPEC  # netdsl's Keras build of a (large) spec + peak RSS
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

clock = time.perf_counter


def _rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(spec: str) -> dict[str, float]:
    """Seconds in each stage of `netdsl check SPEC`. Imports are timed in dependency order, so each
    line is what that import adds to the ones above it."""
    times: dict[str, float] = {}
    t = clock()
    import click  # noqa: F401

    times["import click"], t = clock() - t, clock()
    import pydantic  # noqa: F401

    times["import pydantic"], t = clock() - t, clock()
    import lark  # noqa: F401

    times["import lark"], t = clock() - t, clock()
    import netdsl

    times["import netdsl (IR, layer classes, analyzer)"], t = clock() - t, clock()
    import netdsl.cli
    from netdsl.diagnostics import Source
    from netdsl.lower import lower
    from netdsl.render import summary_table
    from netdsl.syntax import parse_surface, parser

    times["import netdsl.cli (the rest of the CLI)"], t = clock() - t, clock()
    parser()
    times["grammar load (Lark's cache)"], t = clock() - t, clock()
    text = Path(spec).read_text(encoding="utf-8")
    source = Source(text, spec)
    statements = parse_surface(source)
    times["parse"], t = clock() - t, clock()
    net = lower(statements, source, name=Path(spec).stem)
    times["lower"], t = clock() - t, clock()
    report = netdsl.analyze(net)
    times["analyze"], t = clock() - t, clock()
    summary_table(report)
    times["render table"] = clock() - t
    return times


def keras_resnet() -> dict[str, float]:
    """Seconds spent importing Keras (and TensorFlow), building the seed ResNet, printing its summary."""
    import contextlib
    import io

    times: dict[str, float] = {}
    t = clock()
    import keras  # noqa: F401

    times["import keras + tensorflow"], t = clock() - t, clock()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import keras_resnet as script

    times["import the script"], t = clock() - t, clock()
    model = script.ResNet(script.in_shape, [10, 20, 40, 80, 160], script.n_classes, script.lr)
    times["build + compile model"], t = clock() - t, clock()
    with contextlib.redirect_stdout(io.StringIO()):
        model.summary()
    times["model.summary()"] = clock() - t
    return times


def analyze(spec: str, collector: str = "gc") -> dict[str, float]:
    """parse / lower / analyze of SPEC in CPU seconds (and wall seconds), with peak RSS after the
    imports and at the end. CPU time, because on a shared machine the wall clock mostly measures
    the other tenants; this work is single-threaded, so its CPU time is its wall time when alone.
    `nogc` as the second argument turns Python's cyclic collector off, to measure what it costs."""
    import gc

    if collector == "nogc":
        gc.disable()
    t = clock()
    import netdsl
    from netdsl.diagnostics import Source
    from netdsl.lower import lower
    from netdsl.syntax import parse_surface, parser

    parser()
    out = {"import_s": clock() - t, "rss_after_import_mb": _rss_mb()}
    text = Path(spec).read_text(encoding="utf-8")
    source = Source(text, spec)
    wall, cpu = clock(), time.process_time()
    statements = parse_surface(source)
    out["parse_s"], cpu = time.process_time() - cpu, time.process_time()
    net = lower(statements, source, name=Path(spec).stem)
    out["lower_s"], cpu = time.process_time() - cpu, time.process_time()
    report = netdsl.analyze(net)
    out["analyze_s"] = time.process_time() - cpu
    out["wall_s"] = clock() - wall
    out["keras_layers"] = len(report.layers)
    out["total_params"] = report.total_params
    out["peak_rss_mb"] = _rss_mb()
    return out


def keras_build(spec: str) -> dict[str, float]:
    """Seconds to import Keras and CPU seconds to build SPEC's keras.Model with netdsl's compiler
    (TensorFlow may use a second thread, so CPU time can exceed wall time), and peak RSS.

    Keras 3 maps a functional model's graph recursively (keras/src/ops/function.py,
    `_build_map_helper`, one Python frame per layer of depth), so past ~900 layers it raises
    RecursionError under Python's default limit of 1,000. To measure deeper builds at all, this
    raises the limit (recorded in the output as `recursion_limit`).
    """
    import netdsl

    net = netdsl.load(spec)
    limit = max(sys.getrecursionlimit(), 4 * len(net.layers) + 1_000)
    sys.setrecursionlimit(limit)
    t = clock()
    import keras  # noqa: F401

    out = {"import_keras_s": clock() - t, "rss_after_import_mb": _rss_mb()}
    t, cpu = clock(), time.process_time()
    model = netdsl.build_model(net)
    out["build_s"], out["build_wall_s"] = time.process_time() - cpu, clock() - t
    out["keras_layers"] = len(model.layers)
    out["total_params"] = model.count_params()
    out["peak_rss_mb"] = _rss_mb()
    out["recursion_limit"] = limit
    return out


STAGES = {"check": check, "keras-resnet": keras_resnet, "analyze": analyze, "keras-build": keras_build}

if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    print(json.dumps(STAGES[mode](*args)))
