"""Process-level measurement: wall time, CPU time and peak RSS of one child process, and the machine.

Peak RSS comes from `os.wait4`, i.e. the kernel's own high-water mark of that one child (the
same number `/usr/bin/time -f %M` prints), so imports, interpreter and everything else count.
The child is started by a small launcher process so that our own size never leaks into its figure.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: benchmarks run from here so specs/ and the venv resolve."""


def child_env() -> dict[str, str]:
    """The environment for measured children: ours, but with bytecode caching allowed.

    Some sandboxes set PYTHONDONTWRITEBYTECODE=1, which makes every run recompile netdsl's own
    modules from source (~40 ms a run here); a pip-installed netdsl, or any ordinary checkout, has
    its .pyc files. The Keras side lives in site-packages, already compiled at install time.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    wall_s: float
    cpu_s: float  # user + system
    max_rss_mb: float
    returncode: int


# Linux folds the high-water RSS of the address space a process *execs from* into its ru_maxrss.
# A child forked (or vforked) from a large process, such as pytest after loading TensorFlow,
# would report at least the parent's size. So the measured command is started from this small
# launcher (`python -S`, ~10 MB), which times it, waits for it and reports its own rusage.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)], out)
"""


def run_once(
    argv: Sequence[str], env: dict[str, str] | None = None, stdout: int | IO[str] = subprocess.DEVNULL
) -> Sample:
    """Run `argv` to completion; its wall time, CPU time and peak resident memory (its own, see _LAUNCHER)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "sample.json"
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(report), *argv]
        subprocess.run(
            launcher, stdout=stdout, stderr=subprocess.DEVNULL, cwd=ROOT, env=env or child_env(), check=False
        )
        wall, cpu, rss, code = json.loads(report.read_text())
    return Sample(wall, cpu, rss, code)


@dataclass(frozen=True)
class Summary:
    """Medians over several runs (and the spread, so a noisy machine shows)."""

    runs: int
    wall_s: float
    wall_min_s: float
    wall_max_s: float
    cpu_s: float
    max_rss_mb: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples: Sequence[Sample]) -> Summary:
    """Median wall, CPU and RSS of `samples`, with the wall-time range."""
    walls = [s.wall_s for s in samples]
    return Summary(
        runs=len(samples),
        wall_s=statistics.median(walls),
        wall_min_s=min(walls),
        wall_max_s=max(walls),
        cpu_s=statistics.median(s.cpu_s for s in samples),
        max_rss_mb=statistics.median(s.max_rss_mb for s in samples),
    )


def alternate(commands: dict[str, Sequence[str]], runs: int, env: dict[str, str] | None = None) -> dict[str, Summary]:
    """Run each command `runs` times, interleaved (A B A B ...), so load changes hit all alike.

    A failing run stops the benchmark: timing a command that errors out measures nothing.
    """
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            sample = run_once(argv, env=env)
            if sample.returncode != 0:
                raise SystemExit(f"benchmark command failed (exit {sample.returncode}): {' '.join(argv)}")
            samples[name].append(sample)
    return {name: summarize(s) for name, s in samples.items()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, object]:
    """What the figures were measured on: CPU, cores, memory, load, Python and library versions."""
    try:
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024**2, 1),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: _version(name) for name in ("keras", "tensorflow-cpu", "lark", "pydantic", "click", "netdsl")},
    }


def python() -> str:
    """The interpreter running the benchmark (the project's venv when run via `make bench`)."""
    return sys.executable


def netdsl_command() -> list[str]:
    """The installed `netdsl` script next to this interpreter, as a user would run it."""
    script = Path(sys.executable).with_name("netdsl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "netdsl.cli"]
