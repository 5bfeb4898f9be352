"""Faults on the training side, with real `netdsl` processes: a run directory tampered with in every
file answers with a clear E508 (or the spec's own located error), never a traceback, and nothing
in it is executed; the debris of a write that SIGKILL cut short is discarded by `--resume`.

(SIGKILL in the middle of training followed by `--resume` is tested in tests/test_train.py.)
One tiny run is trained once for the module (a real process); the faults caught before TensorFlow
is imported run in process, the others in real processes. About a minute on 2 shared cores.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("keras")

from netdsl.cli import main
from tests.conftest import ROOT

TINY = """\
input 16x16x3
conv 8 k3 s2 same relu bn
gmp
dense 4 softmax
train adam lr=0.01 batch=32 epochs=2 seed=7
"""
DATA = "synthetic:count=240,classes=4"


def netdsl(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """The CLI in a real process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "netdsl.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    (folder / "tiny.net").write_text(TINY, encoding="utf-8")
    trained = netdsl("train", "-q", str(folder / "tiny.net"), "--data", DATA, "--out", str(folder / "run"))
    assert trained.returncode == 0, trained.stderr + trained.stdout
    return folder / "run"


@pytest.fixture
def interrupted(finished: Path, tmp_path: Path) -> Path:
    """A copy of the run as a SIGKILL after its last epoch's checkpoint would leave it: no final files."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "metrics.json").unlink()
    (run / "model.weights.h5").unlink()
    return run


def set_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def tamper(run: Path) -> None:
        data = json.loads((run / name).read_text(encoding="utf-8"))
        (run / name).write_text(json.dumps(change(data)), encoding="utf-8")

    return tamper


def write(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(content)


# Each fault is caught before TensorFlow is imported: (name, tampering, expected message after the run path).
BEFORE_TENSORFLOW = [
    ("config not JSON", write("config.json", b"{oops"), "error[E508]: cannot read {run}/config.json: Expecting"),
    ("config a list", write("config.json", b"[1, 2]"), "error[E508]: {run}/config.json is not a netdsl run configuration"),
    ("config bad lr", set_json("config.json", lambda c: {**c, "training": {**c["training"], "lr": "abc"}}),
     "error[E508]: {run}/config.json: training.lr is not valid: Input should be a valid number"),
    ("config bad epochs", set_json("config.json", lambda c: {**c, "training": {**c["training"], "epochs": -3}}),
     "error[E508]: {run}/config.json: training.epochs is not valid: Input should be greater than 0 (got -3)"),
    ("config name a list", set_json("config.json", lambda c: {**c, "name": [1]}),
     "error[E508]: {run}/config.json: name has the wrong type ([1])"),
    ("state a list", write("state.json", b"[]"), "error[E508]: {run}/state.json is not valid: not a JSON object"),
    ("state epoch text", set_json("state.json", lambda s: {**s, "epoch": "two"}),
     "error[E508]: {run}/state.json is not valid: epoch is 'two'"),
    ("state checkpoint outside the run", set_json("state.json", lambda s: {**s, "checkpoint": "../../../etc/passwd"}),
     "error[E508]: {run}/state.json is not valid: checkpoint is '../../../etc/passwd'"),
    ("history not numbers", write("history.csv", b"epoch,loss\nx,y\n"),
     "error[E508]: cannot read {run}/history.csv: invalid literal for int() with base 10: 'x'"),
    ("history ragged", write("history.csv", b"epoch,loss\n1,2,3\n"), "error[E508]: cannot read {run}/history.csv"),
    ("spec not UTF-8", write("spec.net", b"input 16x16x3\n\xff\n"),
     "error[E508]: {run}/spec.net is not UTF-8 text (byte 15)"),
    ("spec syntax error", write("spec.net", b"input 16x16x3\ndense 4 =\n"),
     "{run}/spec.net:2:9: error[E102]: unexpected '='"),
    ("spec holding Python", write("spec.net", b"input 16x16x3\nimport os\nos.system rm\ndense 4 softmax\n"),
     "{run}/spec.net:2:1: error[E101]: unknown layer 'import'"),
    ("no config", lambda run: (run / "config.json").unlink(), "error[E508]: {run} is not a netdsl run (no config.json)"),
    # every run file has a schema (netdsl/runfiles.py): issue 14, items 6 and 13
    ("config nested deeply", write("config.json", b"[" * 200_000 + b"]" * 200_000),
     "error[E508]: cannot read {run}/config.json: nested too deeply"),
    ("state nested deeply", write("state.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
     "error[E508]: cannot read {run}/state.json: nested too deeply"),
    ("config name too long", set_json("config.json", lambda c: {**c, "name": "n" * 300}),
     "error[E508]: {run}/config.json: name is not valid: String should have at most 255 characters"),
    ("config classes too few", set_json("config.json", lambda c: {**c, "classes": ["a"]}),
     "error[E508]: {run}/config.json: classes lists 1 names but the head has 4 classes"),
    ("config classes ints", set_json("config.json", lambda c: {**c, "classes": [1, 2, 3, 4]}),
     "error[E508]: {run}/config.json: classes.0 has the wrong type (1)"),
    ("config classes a dict", set_json("config.json", lambda c: {**c, "classes": {"a": 1}}),
     "error[E508]: {run}/config.json: classes has the wrong type ({{'a': 1}})"),
    ("config huge data", set_json("config.json", lambda c: {**c, "data": "synthetic:count=" + "9" * 5000}),
     "error[E508]: {run}/config.json: data is not valid: String should have at most 4096 characters"),
    ("config head of strings", set_json("config.json", lambda c: {**c, "head": {"units": "4"}}),
     "error[E508]: {run}/config.json: head.units has the wrong type ('4')"),
    ("history missing an epoch", write("history.csv", b"epoch,phase,loss\n1,1,0.5\n3,1,0.4\n"),
     "error[E508]: {run}/history.csv is not valid: its epochs are 1, 3: an epoch is missing or repeated"),
    ("history repeating an epoch", write("history.csv", b"epoch,phase,loss\n1,1,0.5\n1,1,0.4\n"),
     "error[E508]: {run}/history.csv is not valid: its epochs are 1, 1: an epoch is missing or repeated"),
    ("history shorter than the state", write("history.csv", b"epoch,phase,loss\n1,1,0.5\n"),
     "error[E508]: {run}: state.json says 2 epochs finished but history.csv has 1"),
    ("no state", lambda run: (run / "state.json").unlink(),
     "error[E508]: {run} has no state.json, so where it stopped is unknown"),
    # --resume continues on the run's own backend and devices (netdsl/trainer/distribute.py on_resume)
    ("config unknown backend", set_json("config.json", lambda c: {**c, "backend": "mxnet"}),
     "error[E508]: {run}/config.json: backend is not valid: Input should be 'tensorflow', 'jax' or 'torch' (got 'mxnet')"),
    ("config devices text", set_json("config.json", lambda c: {**c, "devices": "lots"}),
     "error[E508]: {run}/config.json: devices is not valid: a positive number of devices or 'all' (got 'lots')"),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "tamper", "expected"), BEFORE_TENSORFLOW, ids=[f[0] for f in BEFORE_TENSORFLOW])
def test_a_tampered_run_is_a_clear_error_on_resume(
    interrupted: Path, runner, fault: str, tamper, expected: str
) -> None:
    """In process (these fail before TensorFlow loads); the tests below use real processes."""
    tamper(interrupted)
    result = runner.invoke(main, ["train", "--resume", str(interrupted)])
    assert result.exit_code == 1, result.output
    assert expected.format(run=interrupted) in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (interrupted / "metrics.json").exists()  # nothing was trained on a tampered run


def test_a_tampered_metrics_file_is_a_clear_error(interrupted: Path, runner) -> None:
    for content, expected in (
        (b'{"status": "great", "epochs": 2}', "metrics.json is not valid: status is not valid: Input should be"),
        (b"[" * 200_000, "cannot read {run}/metrics.json: nested too deeply"),
    ):
        (interrupted / "metrics.json").write_bytes(content)
        result = runner.invoke(main, ["train", "--resume", str(interrupted)])
        assert result.exit_code == 1 and "error[E508]" in result.stderr, result.output
        assert expected.format(run=interrupted) in result.stderr


def test_a_tampered_config_is_a_clear_error_for_evaluate_and_predict(finished: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    set_json("config.json", lambda c: {**c, "training": {**c["training"], "batch": "many"}})(run)
    for command in (["evaluate", str(run)], ["predict", str(run), str(run / "curves.png")]):
        result = netdsl(*command)
        assert result.returncode == 1, result.stderr
        assert f"error[E508]: {run}/config.json: training.batch is not valid" in result.stderr
        assert "Traceback" not in result.stderr


def test_weights_that_are_not_weights_are_refused_not_loaded(finished: Path, tmp_path: Path) -> None:
    """A weights file replaced by anything else (here a pickle-like payload) is rejected by Keras's
    HDF5 reader with E508; a run's model is rebuilt from its spec, so nothing is ever unpickled."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "model.weights.h5").write_bytes(b"\x80\x04\x95cos\nsystem\n(S'touch pwned'\ntR.")
    result = netdsl("evaluate", str(run))
    assert result.returncode == 1, result.stderr
    assert f"error[E508]: model.weights.h5 does not fit the spec in {run}" in result.stderr
    assert "help: the weights or spec.net were changed after training" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (ROOT / "pwned").exists()


def test_resume_discards_the_debris_of_a_write_cut_short(interrupted: Path) -> None:
    """SIGKILL during an atomic write leaves `.tmp-PID-name` (never renamed into place): the real
    files are whole, and --resume deletes the debris and finishes the run."""
    rows_before = list(csv.DictReader((interrupted / "history.csv").open()))
    (interrupted / ".tmp-4242-history.csv").write_text("epoch,loss\n1,", encoding="utf-8")
    (interrupted / ".tmp-4242-checkpoint-3.weights.h5").write_bytes(b"\x89HDF\r\n")
    state = json.loads((interrupted / "state.json").read_text(encoding="utf-8"))
    set_json("state.json", lambda s: {**s, "epoch": 1, "checkpoint": s["checkpoint"]})(interrupted)  # one epoch left
    result = netdsl("train", "-q", "--resume", str(interrupted))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "resuming after epoch 1 of 2" in result.stdout
    assert not list(interrupted.glob(".tmp-*"))
    rows = list(csv.DictReader((interrupted / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[0] == rows_before[0]
    assert json.loads((interrupted / "metrics.json").read_text(encoding="utf-8"))["epochs"] == 2
    assert state["epoch"] == 2


def test_an_image_claiming_gigapixels_is_a_corrupt_image_not_a_crash(tmp_path: Path) -> None:
    """A 48 KB PNG of 20000x20000 pixels (a decompression bomb) is refused like a broken file: E503."""
    from PIL import Image

    from netdsl.data.files import read_split
    from netdsl.diagnostics import NetdslError

    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (16, 16)).save(tmp_path / name / "fine.png")
    Image.new("1", (20000, 20000)).save(tmp_path / "cats" / "bomb.png")
    with pytest.raises(NetdslError) as info:
        read_split(tmp_path, ["cats", "dogs"], (16, 16, 3))
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E503"
    assert diagnostic.message == (
        f"1 image(s) cannot be decoded: {tmp_path}/cats/bomb.png: too large to decode safely: "
        "Image size (400000000 pixels) exceeds limit of 178956970 pixels"
    )
