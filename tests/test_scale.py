"""Training past one backend and one device (issue 15): `--backend jax|torch` (a run trained on one
evaluates on another), `--devices 2` on simulated CPU devices against one device, runs killed after
their first checkpoint and resumed on other devices, two processes on 127.0.0.1 training one model, and
`netdsl export` (of runs trained on any backend, and with a pretrained backbone's preprocessing)
checked against Keras with an independent runtime.

Keras fixes its backend at import, and this pytest process runs on TensorFlow, so the other backends,
the simulated devices and the cluster run `netdsl` in subprocesses. Budget: about five minutes of CPU
on 2 cores (each subprocess trains a few hundred 16x16 images for one or two epochs; VGG16 at 32x32
trains on 64 images in this process, and its ONNX conversion holds about 3 GB for a few seconds).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

import netdsl
from netdsl.cli import main
from netdsl.trainer import evaluate, load_run
from netdsl.trainer.backends import BACKENDS, choose
from netdsl.trainer.distribute import Cluster, before_import
from netdsl.trainer.speed import Speed
from tests.conftest import ROOT

SPEC = """\
input 16x16x3
conv 8 k3 s2 same relu
conv 16 k3 s2 same relu
flatten
dense 2 softmax
train adam lr=0.003 batch=32 epochs=2 seed=5
"""
TIMEOUT = 300


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_jax = pytest.mark.skipif(not installed("jax"), reason="JAX is not installed (pip install -e '.[jax]')")
needs_torch = pytest.mark.skipif(not installed("torch"), reason="PyTorch is not installed (pip install -e '.[torch]')")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec and an .npz whose class is which half of the image is brighter: learnt in two epochs."""
    folder = tmp_path_factory.mktemp("scale")
    (folder / "halves.net").write_text(SPEC)
    rng = np.random.default_rng(0)

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, count)
        x = rng.integers(0, 120, (count, 16, 16, 3)).astype(np.uint8)
        x[y == 1, :, :8] += 45
        x[y == 0, :, 8:] += 45
        return x, y

    (x_train, y_train), (x_test, y_test) = make(480), make(192)
    np.savez(folder / "halves.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return folder


def netdsl_cli(
    args: list[str], cwd: Path, *, program: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`netdsl ARGS` in a new process (its own choice of Keras backend), with this checkout's code;
    `program`: Python code that runs the CLI its own way (KILLED_AFTER_FIRST_CHECKPOINT)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    if "KERAS_BACKEND" not in env:
        full_env.pop("KERAS_BACKEND", None)
    command = ["-m", "netdsl.cli"] if program is None else ["-c", program]
    return subprocess.run(
        [sys.executable, *command, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


# ---------------------------------------------------------------- backends


def one_device_run(work: Path, backend: str, how: str) -> Path:
    """Train SPEC on one device of `backend` in a new process; `how`: by --backend, or by KERAS_BACKEND."""
    run = work / f"one-{backend}"
    if not run.exists():
        args = ["train", "halves.net", "--data", str(work / "halves.npz"), "--out", run.name, "-q"]
        if how == "flag":
            result = netdsl_cli([*args, "--backend", backend], work)
        else:  # KERAS_BACKEND is honoured as Keras itself would
            result = netdsl_cli(args, work, KERAS_BACKEND=backend)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"backend: {backend}" in result.stdout and "data parallel" not in result.stdout
    return run


@pytest.mark.parametrize(
    ("backend", "how"),
    [
        pytest.param("jax", "env", marks=needs_jax),
        pytest.param(
            "torch", "flag", marks=pytest.mark.skipif(not installed("torch"), reason="pip install -e '.[torch]'")
        ),
    ],
)
def test_training_on_a_backend_then_evaluated_on_tensorflow(work: Path, backend: str, how: str) -> None:
    run = one_device_run(work, backend, how)
    assert json.loads((run / "config.json").read_text())["backend"] == backend
    trained = metrics(run)
    assert trained["epochs"] == 2 and trained["test_accuracy"] > 0.75, trained
    # The weights file is backend-neutral: this process's TensorFlow gives the same test loss.
    evaluated = evaluate(run)
    assert evaluated["backend"] == "tensorflow" and evaluated["trained_on"] == backend
    assert evaluated["loss"] == pytest.approx(trained["test_loss"], rel=1e-3, abs=1e-5)
    assert evaluated["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1 / 192)
    if backend == "torch":  # `check --verify` under JAX: tests/test_backends.py
        verified = netdsl_cli(["check", "--verify", "--backend", backend, "halves.net"], work)
        assert verified.returncode == 0, verified.stderr[-2000:]
        assert f"({backend} backend)" in verified.stdout


def test_a_backend_is_chosen_before_keras_is_imported(work: Path) -> None:
    """This process imported Keras on TensorFlow: asking for another backend is E525, not a silent mix."""
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.train(work / "halves.net", str(work / "halves.npz"), backend="jax", out=work / "never")
    assert info.value.diagnostics[0].code == "E525"
    assert "already runs on tensorflow" in info.value.diagnostics[0].message
    assert not (work / "never").exists()
    with pytest.raises(netdsl.NetdslError, match="unknown backend 'mxnet'"):
        choose("mxnet")


# ---------------------------------------------------------------- data parallelism


def test_devices_and_clusters_need_an_engine_that_has_them() -> None:
    with pytest.raises(netdsl.NetdslError, match="no data parallelism for torch") as info:
        before_import(BACKENDS["torch"], 2, None)
    assert info.value.diagnostics[0].code == "E526"
    with pytest.raises(netdsl.NetdslError, match="needs --backend jax"):
        before_import(BACKENDS["tensorflow"], None, Cluster("127.0.0.1:1", 2, 0))


@needs_jax
def test_several_processes_need_one_seed(work: Path) -> None:
    spec = work / "unseeded.net"
    spec.write_text(SPEC.replace(" seed=5", ""))
    args = ["train", spec.name, "--data", str(work / "halves.npz"), "--backend", "jax", "--coordinator", "127.0.0.1:1",
            "--processes", "2", "--process-id", "1"]  # fmt: skip
    result = netdsl_cli(args, work)
    assert result.returncode == 1 and "error[E526]" in result.stderr and "--seed" in result.stderr
    bad = netdsl_cli([*args[:-1], "2"], work)  # a process id must be below --processes: bad usage
    assert bad.returncode == 2 and "is not below --processes 2" in bad.stderr


@pytest.mark.parametrize("backend", [pytest.param("jax", marks=needs_jax), "tensorflow"])
def test_two_simulated_devices_learn_as_well_as_one(work: Path, trained: Path, backend: str) -> None:
    single = trained if backend == "tensorflow" else one_device_run(work, backend, "env")  # same spec, data, seed
    double = netdsl_cli(["train", "halves.net", "--data", str(work / "halves.npz"), "--out", f"two-{backend}", "-q",
                         "--backend", backend, "--devices", "2"], work)  # fmt: skip
    assert double.returncode == 0, double.stderr[-3000:]
    assert "data parallel on 2 simulated CPU devices" in double.stdout
    assert "global batch 32 = 2 x 16" in double.stdout
    one, two = metrics(single), metrics(work / f"two-{backend}")
    assert one["test_accuracy"] > 0.75, one
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.05, (one, two)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_jax
def test_two_processes_on_localhost_train_one_model(work: Path) -> None:
    coordinator = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "netdsl.cli", "train", "halves.net", "--data", str(work / "halves.npz"), "--out",
               "cluster", "-q", "--backend", "jax", "--coordinator", coordinator, "--processes", "2"]  # fmt: skip
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [subprocess.Popen([*command, "--process-id", str(i)], cwd=work, env=env, **pipes) for i in (0, 1)]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT))
    finally:
        for process in processes:
            process.kill()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        assert f"process {outputs.index((out, err))} of 2 (coordinator {coordinator})" in out
    first, second = (work / "cluster" / "history.csv").read_text(), (work / "cluster.process1" / "history.csv")
    losses = [[row.split(",")[2] for row in text.splitlines()[1:]] for text in (first, second.read_text())]
    assert losses[0] == losses[1] and len(losses[0]) == 2  # one model: both processes saw the same loss
    assert metrics(work / "cluster")["test_accuracy"] > 0.75


KILLED_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from netdsl.cli import main
from netdsl.runs import RunDir

save = RunDir.checkpoint

def checkpoint(self, *args):
    save(self, *args)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 the moment epoch 1 is saved: deterministic, not timed

RunDir.checkpoint = checkpoint
main(sys.argv[1:], prog_name="netdsl")
"""


def history(run: Path) -> list[list[str]]:
    return [row.split(",")[:6] for row in (run / "history.csv").read_text().splitlines()[1:]]  # without seconds


@pytest.mark.parametrize(
    ("backend", "trained_on", "resumed_on"),
    [pytest.param("jax", 2, (None, 1), marks=needs_jax, id="jax-2-then-2-and-1"),
     pytest.param("tensorflow", 1, (2,), id="tensorflow-1-then-2")],
)  # fmt: skip
def test_a_run_killed_after_its_first_checkpoint_resumes_on_other_devices(
    work: Path, request: pytest.FixtureRequest, backend: str, trained_on: int, resumed_on: tuple[int | None, ...]
) -> None:
    """SIGKILL after epoch 1 of 2, then `--resume`: by default on the run's own backend and devices (no
    --backend: jax is config.json's, not the default tensorflow), or on as many as --devices says. The
    global batch stays 32 and the shuffle goes on where it was, so each resumed run's history is the
    uninterrupted one-device run's (same spec, data and seed), however its steps are split."""
    killed = work / f"killed-{backend}"
    args = ["train", "halves.net", "--data", str(work / "halves.npz"), "--out", killed.name, "-q", "--backend", backend]
    result = netdsl_cli([*args, *(["--devices", str(trained_on)] if trained_on > 1 else [])], work,
                        program=KILLED_AFTER_FIRST_CHECKPOINT)  # fmt: skip
    assert result.returncode == -9, result.stderr[-3000:]
    assert len(history(killed)) == 1 and not (killed / "metrics.json").exists()
    uneven = netdsl_cli(["train", "-q", "--resume", killed.name, "--devices", "3"], work)
    assert uneven.returncode == 1 and "error[E526]: the global batch 32 does not split evenly over 3" in uneven.stderr
    assert len(history(killed)) == 1 and not (killed / "metrics.json").exists()  # refused before training
    uninterrupted = (
        request.getfixturevalue("trained") if backend == "tensorflow" else one_device_run(work, backend, "env")
    )
    for devices in resumed_on:
        run = work / f"{killed.name}-on-{devices}"
        shutil.copytree(killed, run)
        resumed = netdsl_cli(["train", "-q", "--resume", run.name, *(["--devices", str(devices)] if devices else [])],
                             work)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        now = devices or trained_on
        assert (f"the run trained on {backend} with {trained_on} device{'s' * (trained_on > 1)}; it continues on "
                f"{backend} with {now} device{'s' * (now > 1)}") in resumed.stdout  # fmt: skip
        assert f"backend: {backend}" in resumed.stdout and "resuming after epoch 1 of 2" in resumed.stdout
        assert ("data parallel on 2 simulated CPU devices" in resumed.stdout) == (now == 2)
        rows = history(run)
        assert [row[0] for row in rows] == ["1", "2"] and rows[0] == history(killed)[0]
        assert metrics(run)["epochs"] == 2 and metrics(run)["test_accuracy"] > 0.75, metrics(run)
        assert len(list(run.glob("checkpoint-*.weights.h5"))) == 1
        numbers = [[float(value) for value in row] for row in rows]
        expected = [[float(value) for value in row] for row in history(uninterrupted)]
        np.testing.assert_allclose(numbers, expected, rtol=1e-4, atol=1e-6)
        assert metrics(run)["test_loss"] == pytest.approx(metrics(uninterrupted)["test_loss"], rel=1e-3, abs=1e-5)


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def trained(work: Path) -> Path:
    """A run trained in this process (TensorFlow, one device), to export and to compare with two devices."""
    result = netdsl.train(work / "halves.net", str(work / "halves.npz"), out=work / "to-export", echo=lambda _: None,
                          verbose=0)  # fmt: skip
    return result.run_dir


@pytest.mark.parametrize(("format_", "name"), [("onnx", "m.onnx"), ("litert", "m.tflite"),
                                               ("saved_model", "m_saved"), ("keras", "m.keras")])  # fmt: skip
def test_export_is_checked_with_its_own_runtime(trained: Path, runner, format_: str, name: str) -> None:
    output = trained.parent / f"export-{name}"
    result = runner.invoke(main, ["export", str(trained), "--format", format_, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert f"exported {output} ({format_}, from Keras on tensorflow)" in result.output
    assert "images of the run's data: max |exported - Keras| = " in result.output
    assert "(tolerance 0.0001); the same top class for 64/64" in result.output
    assert "x / 255 is inside the model" in result.output
    sidecar = json.loads(Path(f"{output}").with_name(f"{output.name}.json").read_text())
    assert sidecar["input_shape"] == [16, 16, 3] and sidecar["classes"] == ["0", "1"]


def test_onnx_export_equals_the_run_by_an_independent_runtime(trained: Path) -> None:
    """Truth from outside netdsl's check: onnxruntime on raw pixels against the run's model on x / 255."""
    onnxruntime = pytest.importorskip("onnxruntime")
    output = trained.parent / "independent.onnx"
    netdsl.export(trained, "onnx", output)
    pixels = np.load(trained.parent / "halves.npz")["x_test"][:50].astype(np.float32)
    _, _, model = load_run(trained)
    expected = model.predict(pixels / 255, verbose=0)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_export_refuses_to_overwrite_and_reports_a_mismatch(trained: Path) -> None:
    taken = trained.parent / "taken.onnx"
    taken.write_text("mine")
    with pytest.raises(netdsl.NetdslError, match="already exists") as info:
        netdsl.export(trained, "onnx", taken)
    assert info.value.diagnostics[0].code == "E527" and taken.read_text() == "mine"
    for unwritable in (taken / "under_a_file.onnx", Path("/proc/netdsl.onnx"), trained.parent / "no" / "x.onnx"):
        with pytest.raises(netdsl.NetdslError, match="cannot write ") as info:
            netdsl.export(trained, "onnx", unwritable)  # refused before any conversion
        assert info.value.diagnostics[0].code == "E527" and info.value.diagnostics[0].help == "choose another -o"
    with pytest.raises(netdsl.NetdslError, match=r"differs from Keras by .* \(tolerance -1\)") as info:
        netdsl.export(trained, "keras", trained.parent / "strict.keras", tolerance=-1)  # nothing is that close
    assert info.value.diagnostics[0].code == "E528"


@pytest.mark.parametrize(
    "backend", [pytest.param("jax", marks=needs_jax), pytest.param("torch", marks=needs_torch)]
)  # fmt: skip
def test_a_run_trained_on_another_backend_exports_to_onnx(work: Path, runner, backend: str) -> None:
    """The weights file is backend-neutral: a JAX (or PyTorch) run exports from this process's TensorFlow,
    and onnxruntime's probabilities give the test loss that the training backend itself measured."""
    onnxruntime = pytest.importorskip("onnxruntime")
    run = one_device_run(work, backend, "flag")
    output = work / f"trained-on-{backend}.onnx"
    result = runner.invoke(main, ["export", str(run), "--format", "onnx", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert f"(onnx, from Keras on tensorflow); the run was trained on {backend}, its weights file" in result.output
    assert "(tolerance 0.0001); the same top class for 64/64" in result.output
    data = np.load(work / "halves.npz")
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    scores = session.run(None, {session.get_inputs()[0].name: data["x_test"].astype(np.float32)})[0]
    chosen = np.clip(scores[np.arange(len(scores)), data["y_test"]], 1e-7, 1 - 1e-7)  # Keras's epsilon
    assert -np.mean(np.log(chosen)) == pytest.approx(metrics(run)["test_loss"], rel=1e-3, abs=1e-5)


@needs_jax
def test_onnx_export_from_jax_or_torch_themselves(work: Path) -> None:
    """Keras exports ONNX from JAX only with jax2onnx, which netdsl's extras do not install: E527 then says
    to export from TensorFlow (the default), which gives the same model. PyTorch exports it (torch.onnx)."""
    run = one_device_run(work, "jax", "env")
    if installed("torch"):
        on_torch = netdsl_cli(
            ["export", run.name, "--format", "onnx", "-o", "on-torch.onnx", "--backend", "torch"], work
        )
        assert on_torch.returncode == 0, on_torch.stderr[-3000:]
        assert "(onnx, from Keras on torch); the run was trained on jax" in on_torch.stdout
        assert "(tolerance 0.0001); the same top class for 64/64" in on_torch.stdout
    result = netdsl_cli(["export", run.name, "--format", "onnx", "-o", "on-jax.onnx", "--backend", "jax"], work)
    if installed("jax2onnx"):
        assert result.returncode == 0 and "(onnx, from Keras on jax)" in result.stdout, result.stderr[-3000:]
    else:
        assert result.returncode == 1, result.stdout + result.stderr[-3000:]
        assert "error[E527]: cannot export to onnx on jax: This requires the jax2onnx module" in result.stderr
        assert "help: export from TensorFlow, the default (--backend tensorflow" in result.stderr
        assert not (work / "on-jax.onnx").exists()


BACKBONE = """\
input 32x32x3
pretrained vgg16 weights=none freeze=all
gap
dense 2 softmax
train adam lr=0.003 batch=32 epochs=1 seed=3
"""


@pytest.fixture(scope="module")
def backbone_run(work: Path) -> Path:
    """VGG16 (random weights, 32x32) under a head, trained one epoch: its "caffe" preprocess_input (RGB to
    BGR, ImageNet's channel means subtracted) runs in the pipeline. MobileNets at this size and without
    ImageNet weights answer the same for every image, which would make any comparison pass."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 96)
    x = rng.integers(0, 150, (96, 32, 32, 3)).astype(np.uint8)
    x[y == 1, :, :, 0] += 100
    np.savez(work / "red.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    return netdsl.train(BACKBONE, str(work / "red.npz"), out=work / "backbone", echo=lambda _: None, verbose=0).run_dir


def test_every_backbone_preprocessing_becomes_one_fixed_layer() -> None:
    """Each keras.applications preprocess_input netdsl uses ("caffe", "tf", "torch", identity) is the Dense
    that export puts in front of the model; a function that is not per-channel affine is not."""
    import keras

    from netdsl.backbones import APPLICATIONS
    from netdsl.trainer.export import affine_preprocessing

    pixels = np.random.default_rng(2).uniform(0, 255, (3, 9, 11, 3)).astype(np.float32)
    for module in sorted({entry.module for entry in APPLICATIONS.values()}):
        function = getattr(keras.applications, module).preprocess_input
        kernel, bias = affine_preprocessing(function, 3)
        np.testing.assert_allclose(pixels @ kernel + bias, function(pixels.copy()), rtol=1e-5, atol=1e-4)
    assert affine_preprocessing(np.sqrt, 3) is None


@pytest.mark.parametrize(("format_", "name"), [("onnx", "vgg.onnx"), ("keras", "vgg.keras")])
def test_a_pretrained_backbone_exports_with_its_preprocessing_inside(
    backbone_run: Path, runner, format_: str, name: str
) -> None:
    """The exported file takes raw pixels; truth is the run's model on Keras's own vgg16.preprocess_input,
    applied here by hand. The model's answers depend on that preprocessing (x / 255 gives others)."""
    import keras

    output = backbone_run.parent / name
    result = runner.invoke(main, ["export", str(backbone_run), "--format", format_, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "keras.applications.vgg16.preprocess_input is inside the model" in result.output
    assert "(tolerance 0.0001); the same top class for 32/32" in result.output
    assert "inside the model" in json.loads(Path(f"{output}.json").read_text())["preprocessing"]
    pixels = np.load(backbone_run.parent / "red.npz")["x_test"].astype(np.float32)
    _, _, model = load_run(backbone_run)
    expected = model.predict(keras.applications.vgg16.preprocess_input(pixels.copy()), verbose=0)
    assert np.max(np.abs(model.predict(pixels / 255, verbose=0) - expected)) > 1e-3  # a wrong one would show
    if format_ == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        actual = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    else:
        actual = keras.saving.load_model(str(output), safe_mode=True).predict(pixels, verbose=0)
    np.testing.assert_allclose(actual, expected, atol=1e-5)


# ---------------------------------------------------------------- speed switches


def test_speed_switches_train_and_say_what_they_cost_on_a_cpu(work: Path) -> None:
    import keras

    lines: list[str] = []
    try:
        result = netdsl.train(
            work / "halves.net", str(work / "halves.npz"), out=work / "fast", echo=lines.append, verbose=0,
            speed=Speed("mixed", jit=True, tensorboard=True),
        )  # fmt: skip
    finally:
        keras.mixed_precision.set_global_policy("float32")
    console = "\n".join(lines)
    assert "precision: mixed_bfloat16 (weights float32, computation bfloat16)" in console
    assert "warning: --precision mixed on a CPU" in console
    assert "warning: --jit with an explicit seed" in console  # SPEC has seed=5: Keras keeps XLA off then
    assert json.loads((result.run_dir / "config.json").read_text())["speed"] == {
        "precision": "mixed", "jit": True, "tensorboard": True,
    }  # fmt: skip
    assert list((result.run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert result.metrics["test_accuracy"] > 0.75
    assert evaluate(result.run_dir)["accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=0.02)


def test_tensorboard_without_its_package_is_refused_before_training(work: Path, monkeypatch) -> None:
    from netdsl.trainer import speed

    real = speed.importlib.util.find_spec
    monkeypatch.setattr(speed.importlib.util, "find_spec", lambda name: None if name == "tensorboard" else real(name))
    with pytest.raises(netdsl.NetdslError, match="needs TensorBoard's package") as info:
        netdsl.train(work / "halves.net", str(work / "halves.npz"), out=work / "no-tb", echo=lambda _: None,
                     speed=Speed(tensorboard=True))  # fmt: skip
    assert info.value.diagnostics[0].code == "E529"
    assert not (work / "no-tb").exists()
