"""Training under faults (issue 14): what `check` accepts trains, a failed start leaves no run directory,
a full disk is one error, a run is trained by one process at a time, and readers of a run still training
see a consistent snapshot. In process, with a tiny model (a few seconds each)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main
from netdsl.diagnostics import NetdslError

pytest.importorskip("keras")

TINY = "input 8x8x3\nconv 4 k3 s2 relu\ngmp\ndense 2 softmax\ntrain adam lr=0.01 batch=16 epochs=2 seed=3\n"
DATA = "synthetic:count=64,classes=2"


def train(runner, spec: Path, *args: str):
    return runner.invoke(main, ["train", "-q", str(spec), "--data", DATA, *args])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dense 2 l2=1e309 softmax", "dense: l2 must be a finite number, got inf"),
        ("train seed=4294967296", "train: seed must be at most 4294967295, got 4294967296"),
        ("train batch=99999999999999999999", "train: batch must be at most 2147483647, got 99999999999999999999"),
        ("train weight_decay=1e999", "train: weight_decay must be a finite number, got inf"),
    ],
)
def test_what_check_refuses_train_refuses_alike(runner, tmp_path: Path, line: str, message: str) -> None:
    """Values Keras or numpy cannot take (inf, a seed past 2**32 - 1, a batch past int32) fail `check`, so
    `train` fails the same way, before any run directory is made."""
    spec = tmp_path / "s.net"
    base = TINY.split("train ")[0]  # the network, without its train line
    spec.write_text(base.replace("dense 2 softmax", line) if line.startswith("dense") else base + line + "\n")
    checked = runner.invoke(main, ["check", str(spec)])
    trained = train(runner, spec, "--out", str(tmp_path / "run"))
    for result in (checked, trained):
        assert result.exit_code == 1 and f"error[E201]: {message}" in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
    assert runner.invoke(main, ["train", str(spec), "--seed", str(2**32)]).exit_code == 2  # bad usage


def test_a_spec_file_name_keras_refuses_as_a_model_name_trains(runner, tmp_path: Path) -> None:
    """TensorFlow's root scope names must match [A-Za-z0-9.][A-Za-z0-9_.-]*: `_é.net` once crashed mid-fit."""
    spec = tmp_path / "_é x.net"
    spec.write_text(TINY.replace("epochs=2", "epochs=1"), encoding="utf-8")
    result = train(runner, spec, "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"
    assert netdsl.build_model(spec).name == "x"


def full_disk_at(monkeypatch, name: str) -> None:
    """Make every fsync of a file called `name` (a checkpoint) fail as a full disk does."""
    real = os.fsync

    def fsync(descriptor: int) -> None:
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_during_a_checkpoint_is_one_error_and_leaves_the_run_consistent(
    runner, tmp_path: Path, monkeypatch
) -> None:
    spec = tmp_path / "s.net"
    spec.write_text(TINY)
    full_disk_at(monkeypatch, "checkpoint-2.weights.h5")
    result = train(runner, spec, "--out", str(tmp_path / "run"))
    assert result.exit_code == 1, result.output
    assert "error[E512]: cannot write" in result.output and "checkpoint-2.weights.h5: No space left on device" in (
        result.output
    )
    assert "Traceback" not in result.output and result.output.count("error[") == 1
    run = tmp_path / "run"
    assert not list(run.glob(".tmp-*")), "nothing half-written"
    assert json.loads((run / "state.json").read_text())["checkpoint"] == "checkpoint-1.weights.h5"
    assert (run / "checkpoint-1.weights.h5").exists() and not (run / "metrics.json").exists()
    monkeypatch.undo()
    resumed = runner.invoke(main, ["train", "-q", "--resume", str(run)])
    assert resumed.exit_code == 0 and "resuming after epoch 1 of 2" in resumed.output, resumed.output


def test_a_failure_before_the_first_epoch_leaves_no_run_directory(runner, tmp_path: Path, monkeypatch) -> None:
    """The first checkpoint cannot be written: the half-made run is removed, so the same --out works again."""
    spec = tmp_path / "s.net"
    spec.write_text(TINY.replace("epochs=2", "epochs=1"))
    full_disk_at(monkeypatch, "checkpoint-1.weights.h5")
    result = train(runner, spec, "--out", str(tmp_path / "run"))
    assert result.exit_code == 1 and "error[E512]" in result.output, result.output
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    assert train(runner, spec, "--out", str(tmp_path / "run")).exit_code == 0


@pytest.fixture
def unfinished(runner, tmp_path: Path) -> Path:
    """A run as a SIGKILL after its last checkpoint leaves it: state.json names checkpoint-2, no final files."""
    spec = tmp_path / "s.net"
    spec.write_text(TINY)
    assert train(runner, spec, "--out", str(tmp_path / "run")).exit_code == 0
    for name in ("metrics.json", "model.weights.h5"):
        (tmp_path / "run" / name).unlink()
    return tmp_path / "run"


def test_a_second_resume_of_a_run_is_refused(runner, unfinished: Path) -> None:
    from netdsl.runs import RunDir

    with RunDir(unfinished).training_lock():  # as a `netdsl train --resume` in another process holds it
        result = runner.invoke(main, ["train", "--resume", str(unfinished)])
        assert result.exit_code == 1, result.output
        assert f"error[E508]: {unfinished} is being trained by another netdsl process" in result.output
    assert runner.invoke(main, ["train", "-q", "--resume", str(unfinished)]).exit_code == 0  # the lock is free again
    with pytest.raises(NetdslError, match="has already finished"):
        netdsl.train(resume=unfinished, echo=lambda line: None)


def test_evaluate_follows_a_checkpoint_replaced_while_it_reads(unfinished: Path, monkeypatch) -> None:
    """The trainer writes checkpoint-3, then state.json, then deletes checkpoint-2, between a reader's
    read of state.json and its load of the weights: the reader loads checkpoint-3, no false E508."""
    from netdsl.runs import RunDir

    real = RunDir.weights_path
    calls = []

    def weights_path(self: RunDir) -> Path:
        found = real(self)
        if not calls:  # the trainer finishes an epoch right after this read
            shutil.copyfile(self.path / "checkpoint-2.weights.h5", self.path / "checkpoint-3.weights.h5")
            state = json.loads((self.path / "state.json").read_text())
            (self.path / "state.json").write_text(json.dumps({**state, "epoch": 3,
                                                              "checkpoint": "checkpoint-3.weights.h5"}))  # fmt: skip
            (self.path / "checkpoint-2.weights.h5").unlink()
        calls.append(found.name)
        return found

    monkeypatch.setattr(RunDir, "weights_path", weights_path)
    result = netdsl.evaluate(unfinished)
    assert result["images"] > 0 and calls == ["checkpoint-2.weights.h5", "checkpoint-3.weights.h5"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 420 KB tmpfs: room for one checkpoint of FULL's model, not for a second one beside it."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=420k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("needs permission to mount a tmpfs (root in a container does)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


FULL = "input 16x16x3\nconv 32 k3 relu\nconv 64 k3 relu\ngmp\ndense 2 softmax\ntrain adam batch=16 epochs=3 seed=1\n"


def test_a_really_full_disk_in_a_real_process(small_disk: Path, tmp_path: Path) -> None:
    """The second checkpoint does not fit: one E512, exit 1 (it was 27 tracebacks and a segfault, exit
    139, when h5py's half-written file was left open), and the run stays resumable at epoch 1."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    spec = tmp_path / "full.net"
    spec.write_text(FULL)
    run = small_disk / "run"
    result = subprocess.run(
        [sys.executable, "-m", "netdsl.cli", "train", "-q", str(spec), "--data", DATA, "--out", str(run)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"error[E512]: cannot write {run}/checkpoint-2.weights.h5: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert not list(run.glob(".tmp-*"))
    assert json.loads((run / "state.json").read_text())["checkpoint"] == "checkpoint-1.weights.h5"
