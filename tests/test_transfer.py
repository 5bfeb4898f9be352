"""The seed's two-phase fine-tune: `phase` lines, their freezing, one `netdsl train`, the backbone's preprocessing.

Training tests use weights=none (no ImageNet download here) and VGG16 at 32x32, the quickest backbone to
build; the seed's own ResNet50 spec trains end to end when NETDSL_SLOW_TESTS=1 (1-5 minutes on 2 cores).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

import netdsl
from netdsl.cli import main
from netdsl.diagnostics import NetdslError
from netdsl.ir import PhaseConfig

ROOT = Path(__file__).resolve().parent.parent
DOGSCATS = ROOT / "specs" / "resnet50_dogscats.net"
TWO_PHASES = """input 32x32x3
pretrained vgg16 weights=none freeze=all
gap
dense 16 relu
dense 1 sigmoid
train rmsprop batch=4
phase epochs=2 lr=1e-3
phase epochs=2 lr=1e-4 freeze<15
"""


def dogs_and_cats(root: Path) -> Path:
    """The seed's layout, train/{cats,dogs} and valid/{cats,dogs}, as small PNGs (cats reddish, dogs bluish)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("valid", 4)):
        for name, tint in (("cats", (190, 70, 70)), ("dogs", (70, 70, 190))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = (rng.integers(0, 60, (40, 48, 3)) + np.array(tint)).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


# ---------------------------------------------------------------- the language


def test_phase_lines_lower_in_order() -> None:
    net = netdsl.parse(TWO_PHASES)
    first, second = net.training.phases
    assert (first.epochs, first.lr, first.freeze, first.optimizer) == (2, 1e-3, None, None)
    assert (second.epochs, second.lr, second.freeze) == (2, 1e-4, 15)
    assert second.span is not None and second.span.line == 8
    assert netdsl.parse("input 4\ndense 2\nphase 3 sgd frozen").training.phases[0].freeze == "all"


def test_phase_errors_are_located() -> None:
    with pytest.raises(NetdslError) as caught:
        netdsl.parse("input 4\ndense 2\nphase lr=0.1\nphase epochs=2 lr=0\ntrain phases=2")
    found = {(d.code, d.message, d.span.line) for d in caught.value.diagnostics}  # type: ignore[union-attr]
    assert ("E203", "phase: missing epochs", 3) in found
    assert ("E201", "phase: lr must be greater than 0.0, got 0", 4) in found
    assert any(code == "E202" and line == 5 for code, _, line in found)


def test_phase_freeze_needs_a_backbone_and_a_real_layer() -> None:
    with pytest.raises(NetdslError) as caught:
        netdsl.analyze(netdsl.parse("input 4\ndense 2\nphase epochs=1 freeze<1"))
    assert caught.value.diagnostics[0].code == "E311" and caught.value.diagnostics[0].span.line == 3  # type: ignore[union-attr]
    with pytest.raises(NetdslError) as caught:
        netdsl.analyze(netdsl.parse(TWO_PHASES.replace("freeze<15", "freeze<99")))
    assert caught.value.diagnostics[0].message == "phase freeze<99: the model has only 24 layers (model.layers[0..23])"
    assert caught.value.diagnostics[0].span.line == 8  # type: ignore[union-attr]


def test_check_reports_each_phase_like_keras_after_the_seed_freezes(runner) -> None:
    result = runner.invoke(main, ["check", str(DOGSCATS), "--json"])
    assert result.exit_code == 0, result.output
    phases = json.loads(result.output)["phases"]
    assert [(p["frozen_below"], p["trainable_params"], p["non_trainable_params"]) for p in phases] == [
        (175, 2_099_201, 23_587_712),  # phase 1: for layer in base_model.layers: layer.trainable = False
        (142, 17_075_201, 8_611_712),  # phase 2: for layer in model.layers[:142]: layer.trainable = False
    ]
    table = runner.invoke(main, ["check", str(DOGSCATS)]).output
    assert "Phase 2 (line 20, 3 epochs, model.layers[:142] frozen): trainable 17,075,201" in table


def test_epochs_option_shortens_every_phase() -> None:
    from netdsl.trainer.config import phase_sequence, resolve_config

    config = resolve_config(netdsl.load(DOGSCATS).training, {"epochs": 1})
    phases = phase_sequence(config)
    assert [(p.number, p.epochs, p.optimizer, p.lr) for p in phases] == [
        (1, 1, "rmsprop", 1e-3),
        (2, 1, "rmsprop", 1e-4),
    ]
    assert config.phases[0] == PhaseConfig(epochs=1, lr=1e-3, freeze="all", span=config.phases[0].span)


# ---------------------------------------------------------------- training


@pytest.mark.keras
def test_backbone_preprocessing_is_keras_own() -> None:
    pytest.importorskip("keras")
    from netdsl.trainer.pipeline import input_scaling

    pixel = np.array([[[[255.0, 0.0, 0.0]]]], np.float32)  # Keras's preprocess_input changes arrays in place
    caffe = np.asarray(input_scaling(netdsl.parse(TWO_PHASES))(pixel.copy()))
    np.testing.assert_allclose(caffe[0, 0, 0], [-103.939, -116.779, 255 - 123.68], rtol=1e-5)  # BGR, minus means
    tf_mode = np.asarray(
        input_scaling(netdsl.parse("input 32x32x3\npretrained mobilenetv2 weights=none\ngap"))(pixel.copy())
    )
    np.testing.assert_allclose(tf_mode[0, 0, 0], [1.0, -1.0, -1.0])
    plain = np.asarray(input_scaling(netdsl.parse("input 4\ndense 2"))(pixel.copy()))
    np.testing.assert_allclose(plain[0, 0, 0], [1.0, 0.0, 0.0])


@pytest.mark.keras
def test_two_phases_in_one_train_command(runner, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("keras")
    from keras.src.utils import file_utils

    data = dogs_and_cats(tmp_path / "dogscats")
    spec = tmp_path / "vgg_dogscats.net"
    spec.write_text(TWO_PHASES, encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(
        main, ["train", str(spec), "--data", str(data), "--epochs", "1", "--seed", "1", "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    with open(out / "history.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["epoch"], row["phase"]) for row in rows] == [("1", "1"), ("2", "2")]
    assert [float(row["lr"]) for row in rows] == pytest.approx([1e-3, 1e-4])
    assert (out / "curves.png").stat().st_size > 0
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["preprocessing"] == "keras.applications.vgg16.preprocess_input"
    predicted = netdsl.predict(out, [data / "valid" / "cats" / "0.png"], top=2)
    assert {name for name, _ in predicted[0]["top"]} == {"cats", "dogs"}

    # evaluate/predict rebuild the model, then load the run's own weights: even a spec that says
    # weights=imagenet must not need the ImageNet file for that. (A run trained so, simulated: its
    # spec and the spec's SHA-256 in config.json, which netdsl checks, are both rewritten.)
    from netdsl.runfiles import spec_hash

    imagenet = TWO_PHASES.replace("weights=none", "weights=imagenet")
    (out / "spec.net").write_text(imagenet, encoding="utf-8")
    (out / "config.json").write_text(json.dumps({**config, "spec_sha256": spec_hash(imagenet)}), encoding="utf-8")

    def offline(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download ImageNet weights")

    monkeypatch.setattr(file_utils, "get_file", offline)
    assert netdsl.evaluate(out)["images"] == 8


@pytest.mark.keras
def test_freeze_changes_between_phases(tmp_path: Path) -> None:
    """Phase 1 trains the head only; phase 2 also the layers from model.layers[15] on (block5 in VGG16)."""
    keras = pytest.importorskip("keras")
    from netdsl.trainer.fit import fit_phases

    net = netdsl.parse(TWO_PHASES)
    model = netdsl.build_model(net)
    seen: list[list[str]] = []

    def record(model, run, rows, phase, *args, **kwargs) -> str:  # stands in for fit_phase: no fitting
        seen.append([layer.name for layer in model.layers if layer.trainable and layer.weights])
        return "completed"

    import netdsl.trainer.fit as fit

    original, fit.fit_phase = fit.fit_phase, record
    try:
        fit_phases(model, net, None, [], net.training, None, None, None, 1, {}, 0)
    finally:
        fit.fit_phase = original
    assert seen[0] == ["dense", "dense_1"]
    assert seen[1] == ["block5_conv1", "block5_conv2", "block5_conv3", "dense", "dense_1"]
    assert keras.backend.backend() == "tensorflow"


@pytest.mark.keras
@pytest.mark.skipif(
    not os.environ.get("NETDSL_SLOW_TESTS"), reason="set NETDSL_SLOW_TESTS=1: trains the seed ResNet50 spec (1-5 min)"
)
def test_seed_dogscats_spec_trains_both_phases(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    data = dogs_and_cats(tmp_path / "dogscats")
    text = DOGSCATS.read_text(encoding="utf-8").replace("weights=imagenet", "weights=none")
    net = netdsl.parse(text, name="dogscats").with_input((32, 32, 3))
    result = netdsl.train(
        net, str(data), out=tmp_path / "run", epochs=1, batch=4, seed=1, verbose=0, echo=lambda s: None
    )
    assert [(row["phase"], row["lr"]) for row in result.history] == [(1, pytest.approx(1e-3)), (2, pytest.approx(1e-4))]


# ---------------------------------------------------------------- a previous run as the backbone

PRETRAIN = "input 32x32x3\nconv 16 k3 relu\nconv 32 k3 s2 relu\nconv 64 k3 s2 relu\ngmp\ndense 5 softmax\n"


def fake_run(root: Path, spec: str = PRETRAIN) -> Path:
    """A run directory's files as `netdsl train` writes them (the analyzer reads only spec.net and config.json)."""
    root.mkdir(parents=True)
    (root / "spec.net").write_text(spec, encoding="utf-8")
    (root / "config.json").write_text(json.dumps({"name": "shapes", "training": {}}), encoding="utf-8")
    (root / "model.weights.h5").write_bytes(b"")
    return root


def test_a_run_is_one_nested_layer_cut_before_its_pooling(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "shapes-a")
    report = netdsl.analyze(netdsl.parse(f'input 32x32x3\npretrained run="{run}" frozen\ngap\ndense 5 softmax'))
    row = report.layers[1]
    assert (row.name, row.type, row.output_shape) == ("pretrained_shapes_a", "Functional", (None, 8, 8, 64))
    assert row.params == 448 + 4_640 + 18_496 and row.trainable_params == 0  # the three convs, frozen
    assert report.trainable_params == 64 * 5 + 5
    assert [r.name for r in report.layers[2:]] == ["global_average_pooling2d", "dense", "activation"]


def test_run_backbone_errors(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "a")
    dense_only = fake_run(tmp_path / "b", "input 32x32x3\ndense 4\n")
    cases = [
        (f'input 28x28x3\npretrained run="{run}"\ngap', "E310",
         f'pretrained run="{run}": the run was trained on 32x32x3 inputs; this spec\'s input is 28x28x3'),
        (f'input 32x32x3\npretrained run="{dense_only}"\ngap', "E313",
         f'pretrained run="{dense_only}": the run\'s spec has no global pooling or flatten before its head, '
         "so there is no place to cut"),
        (f'input 32x32x3\npretrained run="{tmp_path / "none"}"\ngap', "E508",
         f'pretrained run="{tmp_path / "none"}": no such run directory: {tmp_path / "none"}'),
    ]  # fmt: skip
    for text, code, message in cases:
        with pytest.raises(NetdslError) as caught:
            netdsl.analyze(netdsl.parse(text))
        assert (caught.value.diagnostics[0].code, caught.value.diagnostics[0].message) == (code, message)
        assert caught.value.diagnostics[0].span.line == 2  # type: ignore[union-attr]
    with pytest.raises(NetdslError) as caught:
        netdsl.emit(netdsl.parse(f'input 32x32x3\npretrained run="{run}"\ngap\ndense 2 softmax'))
    assert caught.value.diagnostics[0].code == "E313"


@pytest.mark.keras
def test_pretraining_on_five_shapes_helps_learning_five_others(tmp_path: Path) -> None:
    """Transfer for real: a net trained on the synthetic disc/ring/square/frame/triangle images, fine-tuned on 200
    plus/cross/stripes/checker images, beats the same net from scratch at the same budget (BENCHMARKS.md)."""
    pytest.importorskip("keras")
    from netdsl.data.synthetic import generate

    x, y = generate(3_700, (32, 32, 3), 10, seed=0)
    first, second = y < 5, y >= 5
    np.savez(tmp_path / "a.npz", x_train=x[first][:1500], y_train=y[first][:1500],
             x_test=x[first][-300:], y_test=y[first][-300:])  # fmt: skip
    np.savez(tmp_path / "b.npz", x_train=x[second][:200], y_train=y[second][:200] - 5,
             x_test=x[second][-1000:], y_test=y[second][-1000:] - 5)  # fmt: skip
    quiet = {"verbose": 0, "echo": lambda line: None}
    netdsl.train(
        PRETRAIN + "train adam lr=0.003 batch=32",
        str(tmp_path / "a.npz"),
        out=tmp_path / "a",
        epochs=3,
        seed=1,
        **quiet,
    )
    head = "gmp\ndense 5 softmax\ntrain adam lr=0.003 batch=25 val=0.2\n"
    transfer = netdsl.train(f'input 32x32x3\npretrained run="{tmp_path / "a"}"\n{head}', str(tmp_path / "b.npz"),
                            out=tmp_path / "transfer", epochs=4, seed=2, **quiet)  # fmt: skip
    scratch = netdsl.train(PRETRAIN.replace("gmp\ndense 5 softmax\n", head), str(tmp_path / "b.npz"),
                           out=tmp_path / "scratch", epochs=4, seed=2, **quiet)  # fmt: skip
    gain = transfer.metrics["test_accuracy"] - scratch.metrics["test_accuracy"]
    assert gain > 0.1, (transfer.metrics["test_accuracy"], scratch.metrics["test_accuracy"])


@pytest.mark.keras
def test_train_offline_with_imagenet_weights_is_one_error(runner, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("keras")
    from keras.src.utils import file_utils

    def offline(*args: object, **kwargs: object) -> None:  # what Keras's download raises without a network
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    data = dogs_and_cats(tmp_path / "dogscats")
    spec = tmp_path / "m.net"
    spec.write_text("input 32x32x3\npretrained mobilenetv2 weights=imagenet\ngap\ndense 1 sigmoid\n", encoding="utf-8")
    result = runner.invoke(
        main, ["train", str(spec), "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert f"{spec}:2:1: error[E510]: pretrained mobilenetv2: cannot download the ImageNet weights" in result.stderr
    assert "or use weights=none" in result.stderr and "Traceback" not in result.output


@pytest.mark.keras
def test_resume_in_phase_two_skips_phase_one(monkeypatch) -> None:
    """--resume after an epoch of phase 2: phase 1 is not run again; phase 2 starts at its own first epoch,
    with its freezing applied before its checkpoint is restored."""
    pytest.importorskip("keras")
    import netdsl.trainer.fit as fit

    net = netdsl.parse(TWO_PHASES)
    model = netdsl.build_model(net)
    calls: list[tuple[int, int, bool]] = []

    def record(model, run, rows, phase, *args, first_epoch: int, **kwargs) -> str:
        calls.append((phase.number, first_epoch, model.get_layer("block5_conv1").trainable))
        return "completed"

    monkeypatch.setattr(fit, "fit_phase", record)
    fit.fit_phases(model, net, None, [], net.training, None, None, None, 1, {"phase": 2, "epoch": 3}, 0)
    assert calls == [(2, 2, True)]


def test_runs_that_name_each_other_are_one_located_error(runner, tmp_path: Path) -> None:
    """A run whose spec names itself, or two runs naming each other: E314 at the user's line, not RecursionError."""
    itself, first, second = tmp_path / "itself", tmp_path / "first", tmp_path / "second"
    fake_run(itself, f'input 32x32x3\npretrained run="{itself}"\ngap\ndense 5 softmax\n')
    fake_run(first, f'input 32x32x3\npretrained run="{second}"\ngap\ndense 5 softmax\n')
    fake_run(second, f'input 32x32x3\npretrained run="{first}"\ngap\ndense 5 softmax\n')
    for run, chain in ((itself, [itself, itself]), (first, [first, second, first])):
        spec = tmp_path / f"on_{run.name}.net"
        spec.write_text(f'input 32x32x3\npretrained run="{run}"\ngap\ndense 2 softmax\n', encoding="utf-8")
        with pytest.raises(NetdslError) as caught:
            netdsl.check(spec)
        (diagnostic,) = caught.value.diagnostics
        cycle = " -> ".join(str(p.resolve()) for p in chain)
        assert (diagnostic.code, diagnostic.span.line) == ("E314", 2)  # type: ignore[union-attr]
        assert diagnostic.message == f'pretrained run="{run}": the runs\' backbones form a cycle: {cycle}'
        result = runner.invoke(main, ["check", str(spec)])
        assert result.exit_code == 1 and f"{spec}:2:1: error[E314]" in result.output
        assert "Traceback" not in result.output and "RecursionError" not in result.output
    result = runner.invoke(main, ["evaluate", str(itself)])  # the run's own spec is where the chain starts
    assert result.exit_code == 1 and f"{itself}/spec.net:2:1: error[E314]" in result.output, result.output
