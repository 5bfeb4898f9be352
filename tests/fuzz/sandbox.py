"""What the option and data fuzzers share: a sandbox of hostile files, a CLI call bounded in CPU and
wall time, and the checks every answer must pass (exit 0/1/2, no traceback, nothing written outside
the sandbox, the inputs untouched).

Training itself is not what these fuzzers attack (tests/test_train.py and tests/test_run_faults.py
train for real): `no_fitting` replaces only the fit, so everything before it runs for real: option
parsing, spec loading, data loading and every check of it, adaptation, the run directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from netdsl.cli import main
from tests.fuzz.test_fuzz_cli import no_hang

WALL_SECONDS = 120  # a blocked open() uses no CPU: only a wall-clock alarm catches it
SPEC = "input 8x8x3\nconv 4 k3 relu\ngap\ndense 2 softmax\ntrain epochs=1 batch=8\n"
HOSTILE = "h\x1b[2J\u202e\x9b"
CODED = re.compile(r"error\[E\d{3}\]|^error: cannot write ", re.M)


@contextmanager
def no_block(seconds: int = WALL_SECONDS) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s of wall time: blocked?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_sandbox(root: Path) -> dict[str, Path]:
    """Input files of every kind the commands meet; returns them by role."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "spec": root / "s.net",
        "bad_spec": root / "bad.net",
        "hostile_spec": root / f"{HOSTILE}.net",
        "text": root / "notes.txt",
        "npz": root / "d.npz",
        "npy_as_npz": root / "a.npz",
        "image": root / "i.png",
        "dir": root / "folder",
        "fifo": root / "pipe.net",
        "run": root / "run",
    }
    files["spec"].write_text(SPEC, encoding="utf-8")
    files["bad_spec"].write_text("input 8x8x3\ncnv 4\n", encoding="utf-8")
    files["hostile_spec"].write_text(SPEC, encoding="utf-8")
    files["text"].write_text("not a spec\x00\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    y = np.arange(24) % 2
    np.savez(files["npz"], x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
    with open(files["npy_as_npz"], "wb") as stream:
        np.save(stream, x)
    from PIL import Image

    Image.fromarray(x[0]).save(files["image"])
    for label in ("a", "b"):
        (files["dir"] / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(x[i + 4 * (label == "b")]).save(files["dir"] / label / f"{i}.png")
    os.mkfifo(files["fifo"])
    files["run"].mkdir()
    (files["run"] / "spec.net").write_text(SPEC, encoding="utf-8")
    (files["run"] / "config.json").write_text(json.dumps({"name": "s", "data": None, "training": {}}))
    return files


def fingerprint(folder: Path) -> dict[str, str]:
    """Every regular file under `folder` with the hash of its content (FIFOs and others by type)."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.exists():
            continue
        if path.is_file():
            seen[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_dir():
            seen[str(path.relative_to(folder))] = "special"
    return seen


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.is_dir() else set()


def invoke(args: list[str], cwd: Path) -> Result:
    """The CLI in process, in `cwd`, bounded in CPU and wall time; the answer must be clean."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with no_block(), no_hang():
            result = CliRunner().invoke(main, args, color=True)
    finally:
        os.chdir(previous)
    shown = f"netdsl {' '.join(map(repr, args))}\n{result.output[-3000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crashed: {shown}") from result.exception
    assert result.exit_code in (0, 1, 2), shown
    assert "Traceback" not in result.output, shown
    if result.exit_code == 1:  # a coded diagnostic, not the CLI's last-resort "error: <OSError>"
        assert CODED.search(result.output), shown
    assert "\x1b[2J" not in result.output and "\u202e" not in result.output, shown  # escaped, never raw
    return result


def no_fitting(monkeypatch: object) -> list[object]:
    """Replace the fit with a recorder of the data it would have trained on (and the model and pipelines
    it would have built just before the run directory, so that no example imports TensorFlow)."""
    from netdsl.data import Dataset
    from netdsl.trainer import orchestrate

    seen: list[object] = []

    def record(*args: object, **kwargs: object) -> None:  # whatever else the fit takes, it takes the Dataset
        seen.extend(a for a in (*args, *kwargs.values()) if isinstance(a, Dataset))

    monkeypatch.setattr(orchestrate, "_fit_and_finish", record)  # type: ignore[attr-defined]
    monkeypatch.setattr(orchestrate.Session, "build", classmethod(lambda cls, *args: None))  # type: ignore[attr-defined]
    return seen
