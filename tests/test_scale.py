"""Training past one backend and one device (issue 15): `--backend jax|torch` (a run trained on one
evaluates on another), `--devices 2` on simulated CPU devices against one device, two processes on
127.0.0.1 training one model, and `netdsl export` checked against Keras with an independent runtime.

Keras fixes its backend at import, and this pytest process runs on TensorFlow, so the other backends,
the simulated devices and the cluster run `netdsl` in subprocesses. Budget: about three minutes on 2
cores (each subprocess trains a few hundred 16x16 images for one or two epochs).
"""

from __future__ import annotations

import importlib.util
import json
import os
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


def netdsl_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`netdsl ARGS` in a new process (its own choice of Keras backend), with this checkout's code."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    if "KERAS_BACKEND" not in env:
        full_env.pop("KERAS_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "netdsl.cli", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=TIMEOUT,
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
    with pytest.raises(netdsl.NetdslError, match=r"differs from Keras by .* \(tolerance -1\)") as info:
        netdsl.export(trained, "keras", trained.parent / "strict.keras", tolerance=-1)  # nothing is that close
    assert info.value.diagnostics[0].code == "E528"


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
