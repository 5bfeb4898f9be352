"""`netdsl runs`: run directories listed with their spec id, data, status, accuracy and time; each run's
config.json records the spec id, so every run of one architecture is found however its spec is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main

pytest.importorskip("keras")

TINY = "input 8x8x3\nconv 4 k3 s2 relu\ngmp\ndense 3 softmax\ntrain epochs=1 batch=32 seed=3\n"
# the same architecture, written differently and trained differently
TINY_AGAIN = "# again\ninput 8x8x3\nconv 4 kernel=3 stride=2 same relu   # one conv\ngmp\ndense 3 softmax\ntrain sgd lr=0.1 epochs=2 seed=4\n"
DATA = "synthetic:count=96,classes=3,size=8x8x3"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/ with two real runs of one architecture, a run from before spec ids, an unfinished run,
    a damaged run and a folder that is not a run."""
    from click.testing import CliRunner

    root = tmp_path_factory.mktemp("project")
    for name, text in (("tiny", TINY), ("again", TINY_AGAIN)):
        (root / f"{name}.net").write_text(text)
        result = CliRunner().invoke(main, ["train", str(root / f"{name}.net"), "--data", DATA, "--out",
                                           str(root / "runs" / name), "-q"])  # fmt: skip
        assert result.exit_code == 0, result.output
        (root / f"train-{name}.log").write_text(result.output)
    runs = root / "runs"
    shutil.copytree(runs / "tiny", runs / "old")
    config = json.loads((runs / "old" / "config.json").read_text())
    del config["spec_id"]
    (runs / "old" / "config.json").write_text(json.dumps(config))
    shutil.copytree(runs / "tiny", runs / "unfinished")
    (runs / "unfinished" / "metrics.json").unlink()
    shutil.copytree(runs / "tiny", runs / "damaged")
    (runs / "damaged" / "metrics.json").write_text("{not json")
    (runs / "notes").mkdir()
    (runs / "notes" / "todo.txt").write_text("not a run")
    return root


def test_config_json_records_the_spec_id(folder: Path) -> None:
    recorded = json.loads((folder / "runs" / "tiny" / "config.json").read_text())["spec_id"]
    assert recorded == netdsl.spec_id(folder / "tiny.net") == netdsl.spec_id(folder / "again.net")


def test_the_listing(folder: Path, runner) -> None:
    result = runner.invoke(main, ["runs", str(folder / "runs")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["Run", "Spec", "id", "Data", "Status", "Epochs", "Test", "acc.", "Time"]
    identity = netdsl.spec_id(folder / "tiny.net")
    by_run = {Path(line.split()[0]).name: line for line in lines[1:] if line.startswith(str(folder))}
    assert sorted(by_run) == ["again", "damaged", "old", "tiny", "unfinished"]  # notes/ is not a run
    accuracy = json.loads((folder / "runs" / "tiny" / "metrics.json").read_text())["test_accuracy"]
    assert by_run["tiny"].split()[1:6] == [identity, DATA, "completed", "1", f"{accuracy:.4f}"]
    assert by_run["again"].split()[1:5] == [identity, DATA, "completed", "2"]
    assert by_run["old"].split()[1] == identity + "*"
    assert lines[-1] == "* computed from the run's spec.net (trained before netdsl recorded spec ids)"
    assert by_run["unfinished"].split()[3:5] == ["unfinished", "1"]  # its history has the epoch
    assert "damaged: " in by_run["damaged"]


def test_every_run_of_one_architecture(folder: Path, runner) -> None:
    identity = netdsl.spec_id(folder / "tiny.net")
    for args in (["--spec-id", identity], ["--spec-id", identity[:5]], ["--spec", str(folder / "again.net")]):
        result = runner.invoke(main, ["runs", str(folder / "runs"), "--json", *args])
        assert result.exit_code == 0, result.output
        names = sorted(Path(run["path"]).name for run in json.loads(result.output))
        assert names == ["again", "old", "tiny", "unfinished"], args  # not the damaged run: its id is unknown
    other = runner.invoke(main, ["runs", str(folder / "runs"), "--spec-id", "0123456789ab"])
    assert other.exit_code == 0 and other.output.startswith("no runs of spec id 0123456789ab")


def test_from_python(folder: Path) -> None:
    found = netdsl.list_runs(folder / "runs", netdsl.spec_id(folder / "tiny.net"))
    tiny = next(run for run in found if run.path.endswith("tiny"))
    assert tiny.spec_id_recorded and tiny.status == "completed" and tiny.train_seconds is not None
    assert netdsl.list_runs(folder / "runs" / "again")[0].epochs == 2  # a run directory itself


def test_bad_usage(folder: Path, runner, tmp_path: Path, monkeypatch) -> None:
    assert runner.invoke(main, ["runs", str(folder / "runs"), "--spec-id", "xyz"]).exit_code == 2
    assert runner.invoke(main, ["runs", str(tmp_path / "missing")]).exit_code == 2
    bad = tmp_path / "bad.net"
    bad.write_text("input 4\ncnv 3\n")
    result = runner.invoke(main, ["runs", str(folder / "runs"), "--spec", str(bad)])
    assert result.exit_code == 1 and "error[E101]" in result.output
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["runs"])
    assert result.exit_code == 0 and result.output.startswith("no runs yet")


def test_train_prints_the_spec_id_it_records(folder: Path) -> None:
    identity = json.loads((folder / "runs" / "tiny" / "config.json").read_text())["spec_id"]
    assert identity == netdsl.spec_id(folder / "tiny.net")
    assert (folder / "train-tiny.log").read_text().count(f" Spec id: {identity}\n") == 1
