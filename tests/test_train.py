"""`netdsl train`, `evaluate` and `predict`: run directories, resumption after SIGKILL, NaN,
head/data mismatches, bad data at the command line, and a real accuracy on Fashion-MNIST.

Budget: about two minutes on 2 CPU cores; every run is a few hundred tiny images for one to three
epochs. The bad-data cases fail before TensorFlow is imported, so they cost almost nothing.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from netdsl.cli import main
from netdsl.data.keras_datasets import fashion_mnist_dir
from netdsl.data.synthetic import CLASSES
from tests.conftest import ROOT

TINY = """\
input 16x16x3
conv 8 k3 s2 same relu bn
conv 16 k3 s2 same relu bn
gmp
dense 4 softmax
train adam lr=0.01 batch=32 epochs=2 seed=7
augment shift=0.1 flip
"""
TINY_DATA = "synthetic:count=480,classes=4"


def read_history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One finished run of TINY, shared by the tests that only read it."""
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("trained")
    spec = folder / "tiny.net"
    spec.write_text(TINY)
    result = CliRunner().invoke(main, ["train", str(spec), "--data", TINY_DATA, "--out", str(folder / "run")])
    assert result.exit_code == 0, result.output
    return folder / "run", result.output


def test_run_directory_holds_everything(trained: tuple[Path, str]) -> None:
    run, output = trained
    assert {"spec.net", "config.json", "history.csv", "model.weights.h5", "metrics.json", "curves.png"} <= {
        p.name for p in run.iterdir()
    }
    assert (run / "spec.net").read_text() == TINY
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["seed"] == 7 and config["training"]["augment"]["flip"] is True
    assert config["classes"] == list(CLASSES[:4]) and config["data"] == TINY_DATA
    rows = read_history(run)
    assert [r["epoch"] for r in rows] == ["1", "2"] and {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(
        rows[0]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run.glob(".tmp-*")), "temporary files must not survive"
    # the console: the analyzer's summary, the data's sizes, per-epoch lines, the final accuracy
    assert 'Model: "tiny"' in output and "Total params:" in output
    assert "data: synthetic: 360 train / 40 valid / 80 test, 16x16x3, 4 classes" in output
    assert "Epoch 2/2" in output
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in output


def test_evaluate_matches_the_final_metrics(trained: tuple[Path, str], runner) -> None:
    run, _ = trained
    metrics = json.loads((run / "metrics.json").read_text())
    result = runner.invoke(main, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["images"] == 80 and data["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    text = runner.invoke(main, ["evaluate", str(run)]).output
    assert text.startswith(f"test accuracy: {metrics['test_accuracy']:.4f}") and "80 images of synthetic" in text
    other = runner.invoke(main, ["evaluate", str(run), "--data", "synthetic:count=120,classes=4,seed=9", "--json"])
    assert other.exit_code == 0 and json.loads(other.output)["images"] == 20  # another data set's test split
    wrong = runner.invoke(main, ["evaluate", str(run), "--data", "synthetic:count=120,classes=3"])
    assert (
        wrong.exit_code == 1
        and "error[E506]: the head has 4 units (4 classes) but synthetic has 3 classes" in wrong.output
    )


def test_predict_gives_ranked_probabilities(trained: tuple[Path, str], runner, tmp_path: Path) -> None:
    from PIL import Image

    from netdsl.data.synthetic import generate

    run, _ = trained
    images, _ = generate(2, (40, 40, 3), classes=4, seed=5)  # another size: predict resizes
    paths = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    result = runner.invoke(main, ["predict", str(run), *paths, "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    assert [a["image"] for a in answers] == paths
    for answer in answers:
        (first, p1), (_, p2) = answer["top"]
        assert first in CLASSES[:4] and 1 >= p1 >= p2 >= 0
    text = runner.invoke(main, ["predict", str(run), paths[0]]).output
    assert text.startswith(f"{paths[0]}: ") and text.count(", ") == 2
    import netdsl

    assert netdsl.predict(run, paths, top=4)[0]["top"][0][1] == pytest.approx(answers[0]["top"][0][1], rel=1e-5)


def test_predict_reads_16_bit_and_float_images_by_their_range(trained: tuple[Path, str], tmp_path: Path) -> None:
    """The same grey picture as 8-bit PNG, 16-bit PNG (x257) and float TIFF (/255) gets the same answer."""
    from PIL import Image

    import netdsl
    from netdsl.data.synthetic import generate

    grey = generate(1, (16, 16, 1), classes=4, seed=3)[0][0, ..., 0]
    Image.fromarray(grey).save(tmp_path / "8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "16.png")
    Image.fromarray(grey.astype(np.float32) / 255).save(tmp_path / "f.tiff")
    answers = netdsl.predict(trained[0], [tmp_path / n for n in ("8.png", "16.png", "f.tiff")], top=4)
    assert answers[0]["top"] == answers[1]["top"] == answers[2]["top"]
    white = np.full((16, 16), 65535, np.uint16)  # saturated before: every 16-bit picture looked white
    Image.fromarray(white).save(tmp_path / "white.png")
    assert netdsl.predict(trained[0], [tmp_path / "white.png"], top=4)[0]["top"] != answers[0]["top"]


def test_predict_bad_image(trained: tuple[Path, str], runner, tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"nope")
    result = runner.invoke(main, ["predict", str(trained[0]), str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "error[E503]: cannot decode" in result.output
    result = runner.invoke(main, ["predict", str(trained[0]), str(tmp_path / "missing.png")])
    assert result.exit_code == 1 and "error[E501]: no such image" in result.output


def test_predict_refuses_a_fifo_or_a_folder_as_an_image(trained: tuple[Path, str], runner, tmp_path: Path) -> None:
    import os

    from tests.fuzz.sandbox import no_block

    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "folder.png").mkdir()
    for name, kind in (("pipe.png", "a FIFO (named pipe)"), ("folder.png", "a directory")):
        with no_block(120):  # a FIFO opened for reading blocks until a writer comes: never, here
            result = runner.invoke(main, ["predict", str(trained[0]), str(tmp_path / name)])
        assert result.exit_code == 1, result.output
        assert f"error[E501]: cannot read {tmp_path / name}: not a regular file (it is {kind})" in result.output


def test_tampered_spec_is_a_clear_error(trained: tuple[Path, str], runner, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    (copy / "spec.net").write_text(TINY.replace("conv 16", "conv 17"))
    result = runner.invoke(main, ["evaluate", str(copy)])
    assert result.exit_code == 1 and f"error[E508]: {copy}/spec.net was changed after training" in result.output
    assert "Traceback" not in result.output
    config = json.loads((copy / "config.json").read_text())  # a run from before spec.net's SHA-256 was kept:
    del config["spec_sha256"]  # the weights no longer fitting is what gives the edit away
    (copy / "config.json").write_text(json.dumps(config))
    result = runner.invoke(main, ["evaluate", str(copy)])
    assert result.exit_code == 1 and "error[E508]: model.weights.h5 does not fit the spec" in result.output


def test_an_edited_spec_whose_weights_still_fit_is_refused(trained: tuple[Path, str], runner, tmp_path: Path) -> None:
    """relu -> sigmoid keeps every weight's shape, so Keras would load the weights into another model."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    assert "relu" in TINY
    (copy / "spec.net").write_text(TINY.replace("relu", "sigmoid"))
    for command in (["evaluate", str(copy)], ["predict", str(copy), str(copy / "curves.png")],
                    ["train", "--resume", str(copy)]):  # fmt: skip
        result = runner.invoke(main, command)
        assert result.exit_code == 1, result.output
        assert f"error[E508]: {copy}/spec.net was changed after training" in result.output, command


def test_resume_of_a_finished_run_and_existing_out(trained: tuple[Path, str], runner) -> None:
    result = runner.invoke(main, ["train", "--resume", str(trained[0])])
    assert result.exit_code == 1 and "error[E508]" in result.output and "has already finished" in result.output
    result = runner.invoke(main, ["train", str(trained[0] / "spec.net"), "--out", str(trained[0])])
    assert result.exit_code == 1 and "already exists; netdsl never overwrites a run" in result.output


def test_seed_makes_runs_repeatable(tmp_path: Path) -> None:
    import netdsl

    spec = tmp_path / "tiny.net"
    spec.write_text(TINY)
    runs = [
        netdsl.train(spec, "synthetic:count=200,classes=4", out=tmp_path / f"r{i}", epochs=1, echo=lambda m: None)
        for i in range(2)
    ]
    assert runs[0].history[0]["loss"] == pytest.approx(runs[1].history[0]["loss"], rel=1e-5)
    assert runs[0].metrics["test_accuracy"] == runs[1].metrics["test_accuracy"]


# ---------------------------------------------------------------- mistakes found before training


def npz(path: Path, classes: int = 3, label: int = 0) -> Path:
    x = np.zeros((6, 16, 16, 3), np.uint8)
    y = np.arange(6) % classes
    y[0] = label or y[0]
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y, classes=np.array([f"c{i}" for i in range(classes)]))
    return path


def test_head_does_not_match_the_classes(runner, write_spec, tmp_path: Path) -> None:
    spec = write_spec(TINY)
    result = runner.invoke(main, ["train", str(spec), "--data", str(npz(tmp_path / "d.npz")), "--out", "x"])
    assert result.exit_code == 1
    assert f"{spec}:5:1: error[E506]: the head has 4 units (4 classes) but d.npz has 3 classes" in result.output
    assert "5 | dense 4 softmax" in result.output
    assert "help: write `dense 3 softmax` as the last layer" in result.output
    assert not Path("x").exists()


def missing_path(folder: Path) -> str:
    return str(folder / "nowhere")


def folder_without_images(folder: Path) -> str:
    (folder / "train" / "cats").mkdir(parents=True)
    return str(folder)


def folder_with_a_corrupt_image(folder: Path) -> str:
    (folder / "cats").mkdir()
    (folder / "cats" / "1.png").write_bytes(b"not a png")
    return str(folder)


def npz_with_wrong_keys(folder: Path) -> str:
    np.savez(folder / "k.npz", x=np.zeros(2))
    return str(folder / "k.npz")


def npz_with_a_label_out_of_range(folder: Path) -> str:
    return str(npz(folder / "l.npz", classes=4, label=9))


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (missing_path, "E501", "no such file, directory or dataset"),
        (folder_without_images, "E502", "no images in class folders"),
        (folder_with_a_corrupt_image, "E503", "1 image(s) cannot be decoded"),
        (npz_with_wrong_keys, "E504", "k.npz lacks x_train, y_train, x_test, y_test (it has: x)"),
        (npz_with_a_label_out_of_range, "E505", "y_train holds label 9, outside 0..3"),
    ],
    ids=["missing-path", "no-images", "corrupt-image", "wrong-npz-keys", "labels-out-of-range"],
)
def test_bad_data_exits_1_before_training(runner, write_spec, tmp_path: Path, make, code: str, message: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    source = make(folder)
    result = runner.invoke(main, ["train", str(write_spec(TINY)), "--data", source, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert f"error[{code}]" in result.output and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_usage_errors_exit_2(runner, write_spec) -> None:
    assert runner.invoke(main, ["train"]).exit_code == 2
    result = runner.invoke(main, ["train", str(write_spec(TINY)), "--resume", "somewhere"])
    assert result.exit_code == 2 and "--resume continues a run with its own spec" in result.output
    assert runner.invoke(main, ["train", str(write_spec(TINY)), "--optimizer", "adagrad"]).exit_code == 2


def test_nan_loss_stops_with_a_clear_message(runner, write_spec, tmp_path: Path) -> None:
    # exp() of huge pre-activations overflows to inf, and inf - inf is NaN: a guaranteed divergence.
    spec = write_spec("input 16x16x3\nflatten\ndense 64 exponential\ndense 4 softmax\ntrain sgd lr=10 batch=8\n")
    out = tmp_path / "run"
    result = runner.invoke(main, ["train", str(spec), "--data", "synthetic:count=200,classes=4", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "error[E507]: training diverged: the loss became NaN at epoch" in result.output
    assert "help: lower the learning rate (now lr=10, e.g. --lr 1)" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    good = len(read_history(out)) if (out / "history.csv").exists() else 0
    assert metrics["epochs"] == good
    again = runner.invoke(main, ["train", "--resume", str(out)])
    assert again.exit_code == 1 and "diverged (NaN loss); resuming would diverge again" in again.output
    if good:  # the last good epoch's weights are the run's weights
        assert f"the weights of epoch {good} are kept in" in result.output and (out / "model.weights.h5").exists()
    else:
        assert "no epoch had finished" in result.output and not (out / "model.weights.h5").exists()


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    """Patience counts epochs without a lower validation loss; the best epoch's weights are saved."""
    import keras

    from netdsl.runs import RunDir
    from netdsl.trainer.callbacks import recorder_class
    from netdsl.trainer.config import Phase

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    rows: list[dict] = []
    recorder = recorder_class(keras)(RunDir(tmp_path), rows, Phase(1, 10, "sgd", 0.1, patience=2), {})
    recorder.set_model(model)
    for epoch, val_loss in enumerate([1.0, 0.8, 0.9, 0.85]):
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        assert model.stop_training == (epoch == 3)
    assert recorder.stopped_early and recorder.best == 0.8 and (tmp_path / "best.weights.h5").exists()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state == {"epoch": 4, "phase": 1, "best": 0.8, "wait": 2, "stopped_early": True,
                     "checkpoint": "checkpoint-4.weights.h5"}  # fmt: skip
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and sorted(p.name for p in tmp_path.glob("checkpoint-*")) == [
        "checkpoint-4.weights.h5"
    ]


def test_resuming_an_early_stopped_run_refuses_a_fifo_as_its_best_weights(tmp_path: Path) -> None:
    """state.json says the phase stopped early, so its best weights are read: a FIFO there is E508, not a hang."""
    import keras

    from netdsl.diagnostics import NetdslError
    from netdsl.runs import RunDir
    from netdsl.trainer.config import Phase
    from netdsl.trainer.fit import fit_phase
    from netdsl.trainer.head import Head
    from tests.fuzz.sandbox import no_block

    os.mkfifo(tmp_path / "best.weights.h5")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    state = {"epoch": 2, "phase": 1, "best": 0.5, "wait": 2, "stopped_early": True, "checkpoint": None}
    with no_block(120), pytest.raises(NetdslError, match=r"best.weights.h5: not a regular file \(it is a FIFO"):
        fit_phase(model, RunDir(tmp_path), [], Phase(1, 5, "sgd", 0.1, patience=2), Head(2, "softmax", None),
                  None, None, 1, first_epoch=0, state=state, verbose=0)  # fmt: skip


# ---------------------------------------------------------------- faults: SIGKILL, then --resume


def test_sigkill_after_an_epoch_then_resume_completes_the_history(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.net"
    spec.write_text(TINY.replace("epochs=2", "epochs=3"))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "netdsl.cli", "train", "-q", "--data", "synthetic:count=1600,classes=4"]
    process = subprocess.Popen([*command, str(spec), "--out", str(run)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "state.json").exists() and json.loads((run / "state.json").read_text()).get("checkpoint"):
            break  # state.json names a checkpoint once epoch 1 is completely saved (it is rewritten atomically)
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(read_history(run))
    assert 1 <= finished < 3, "the kill must land after epoch 1 and before the end"
    assert not (run / "metrics.json").exists()
    resumed = subprocess.run([*command[:3], "train", "-q", "--resume", str(run)], cwd=ROOT, capture_output=True,
                             text=True, timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert f"resuming after epoch {finished} of 3" in resumed.stdout
    assert [r["epoch"] for r in read_history(run)] == ["1", "2", "3"]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    assert len(list(run.glob("checkpoint-*.weights.h5"))) == 1


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(fashion_mnist_dir() is None, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_reaches_a_real_accuracy(tmp_path: Path) -> None:
    import netdsl

    # No batch norm: its moving statistics (momentum 0.99) need more than these 170 steps to settle.
    spec = "input 28x28x1\nconv 16 k3 s2 same relu\nconv 32 k3 s2 same relu\nflatten\ndense 10 softmax\n"
    result = netdsl.train(
        spec, "fashion_mnist", out=tmp_path / "run", epochs=2, batch=64, lr=0.003, seed=0, max_images=6000,
        echo=lambda m: None, verbose=0,
    )  # fmt: skip
    assert result.metrics["test_images"] == 6000
    assert result.metrics["test_accuracy"] > 0.7, result.metrics  # chance is 0.1


def test_image_folder_with_a_sigmoid_head(tmp_path: Path) -> None:
    """The seed's dogs-vs-cats layout and head: one sigmoid unit, binary cross-entropy, two classes."""
    from PIL import Image

    import netdsl

    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("valid", 8)):
        for name, channel in (("cats", 0), ("dogs", 2)):
            (tmp_path / "pets" / split / name).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
                image[..., channel] += 150  # cats are red, dogs are blue
                Image.fromarray(image).save(tmp_path / "pets" / split / name / f"{i}.png")
    spec = "input 16x16x3\nconv 4 k3 s2 relu\ngap\ndense 1 sigmoid\ntrain adam lr=0.05 batch=8 epochs=3 seed=1\n"
    result = netdsl.train(spec, str(tmp_path / "pets"), out=tmp_path / "run", echo=lambda m: None, verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["classes"] == ["cats", "dogs"] and config["head"] == {"units": 1, "activation": "sigmoid"}
    assert result.metrics["test_images"] == 16 and result.metrics["test_accuracy"] >= 0.75
    (answer,) = netdsl.predict(tmp_path / "run", [tmp_path / "pets" / "valid" / "dogs" / "0.png"], top=2)
    (best, p1), (other, p2) = answer["top"]
    assert {best, other} == {"cats", "dogs"} and p1 + p2 == pytest.approx(1.0)
