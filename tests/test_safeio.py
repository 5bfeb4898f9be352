"""FIFOs, devices and directories where a file is expected: every command refuses them at once
(exit 1, a clear message) instead of blocking forever on a pipe that has no writer.

Each command runs in process under a wall-clock alarm, so a regression fails the test instead of
hanging the suite (a blocking open() is interrupted by the alarm's exception, PEP 475).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from netdsl.cli import main
from netdsl.safeio import NotRegularFile, open_regular, read_bytes, read_text
from tests.fuzz.sandbox import no_block

SPEC = "input 8x8x3\nconv 4 k3 relu\ngap\ndense 2 softmax\n"
WAIT_SECONDS = 20  # far above the ~0.1 s an answer takes; a FIFO that blocks never answers


def invoke(*args: str) -> Result:
    with no_block(WAIT_SECONDS):
        result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(result.output) from result.exception
    assert "Traceback" not in result.output
    return result


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def fake_run(folder: Path, **fifos: str) -> Path:
    """A run directory as `netdsl train` leaves one before its first epoch, with some files replaced by FIFOs."""
    run = folder / "run"
    run.mkdir()
    (run / "spec.net").write_text(SPEC, encoding="utf-8")
    (run / "config.json").write_text(json.dumps({"name": "spec", "data": None, "training": {}}), encoding="utf-8")
    (run / "state.json").write_text(json.dumps({"epoch": 0, "phase": 1}), encoding="utf-8")  # written at the start
    for name in fifos.values():
        (run / name).unlink(missing_ok=True)
        fifo(run / name)
    return run


def test_the_helper_refuses_every_kind_of_non_regular_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("héllo", encoding="utf-8")
    assert read_text(tmp_path / "a.txt") == "héllo"
    assert read_bytes(tmp_path / "a.txt", limit=2) == b"h\xc3"
    for path, kind in (
        (fifo(tmp_path / "p"), "a FIFO"),
        (tmp_path, "a directory"),
        (Path("/dev/null"), "a character device"),
    ):
        with no_block(WAIT_SECONDS), pytest.raises(NotRegularFile, match=f"not a regular file \\(it is {kind}"):
            open_regular(path)
    with pytest.raises(OSError, match="NUL"):
        open_regular("a\0b.net")
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing")


@pytest.mark.parametrize("command", [["check"], ["check", "--json"], ["emit"], ["train", "-q"]])
def test_a_fifo_as_the_spec(tmp_path: Path, command: list[str]) -> None:
    path = fifo(tmp_path / "pipe.net")
    result = invoke(*command, str(path))
    assert result.exit_code == 1, result.output
    assert f"{path}: error[E001]: cannot read {path}: not a regular file (it is a FIFO (named pipe))" in result.output


def test_a_device_as_the_spec_is_refused_without_reading_it() -> None:
    result = invoke("check", "/dev/zero")
    assert result.exit_code == 1
    assert "error[E001]: cannot read /dev/zero: not a regular file (it is a character device)" in result.output


def test_a_fifo_as_the_data(tmp_path: Path) -> None:
    (tmp_path / "spec.net").write_text(SPEC, encoding="utf-8")
    data = fifo(tmp_path / "data.npz")
    result = invoke("train", "-q", str(tmp_path / "spec.net"), "--data", str(data), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "error[E501]: cannot read" in result.output and "not a regular file (it is a FIFO" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("command", "name"),
    [("evaluate", "state.json"), ("evaluate", "model.weights.h5"), ("resume", "state.json"), ("resume", "history.csv")],
)
def test_a_fifo_inside_a_run_directory(tmp_path: Path, command: str, name: str) -> None:
    run = fake_run(tmp_path, planted=name)
    args = ["train", "--resume", str(run)] if command == "resume" else ["evaluate", str(run)]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert "error[E508]: cannot read" in result.output, result.output
    assert f"{name}: not a regular file (it is a FIFO (named pipe))" in result.output


def test_a_fifo_named_as_the_checkpoint(tmp_path: Path) -> None:
    run = fake_run(tmp_path, checkpoint="checkpoint-1.weights.h5")
    (run / "state.json").write_text(json.dumps({"epoch": 1, "phase": 1, "checkpoint": "checkpoint-1.weights.h5"}))
    result = invoke("evaluate", str(run))
    assert result.exit_code == 1, result.output
    assert "checkpoint-1.weights.h5: not a regular file (it is a FIFO (named pipe))" in result.output
