"""`netdsl export`: a trained run's model in a format other runtimes load (ONNX, LiteRT, SavedModel, .keras),
through Keras's own `model.export` / `model.save`, and checked where it is made.

The exported model takes pixels as the data holds them (float32, 0..255), its preprocessing inside: the
run's `x / 255` as a Rescaling layer, a pretrained backbone's `preprocess_input` (per-channel affine in every
`keras.applications` mode) as a fixed Dense on the channels. PATH.json beside it says so, with the classes
and the input shape. The check loads the file with its own runtime (onnxruntime, the LiteRT interpreter,
TensorFlow, Keras) and compares its outputs on real images of the run's data with the run's own model on
its pipeline's input, within a stated tolerance. Keras runs on TensorFlow unless told otherwise; a run
trained on any backend exports the same (its weights file is backend-neutral).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netdsl.data import limit
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.runs import write_json
from netdsl.safeio import reason
from netdsl.trainer.head import find_head, load_for
from netdsl.trainer.inference import load_run
from netdsl.trainer.pipeline import INPUT_SCALE, input_scaling, preprocessing_name
from netdsl.transfer import analyze, preprocessing

TOLERANCE = 1e-4
"""Largest |exported - Keras| allowed on the outputs (probabilities or logits) of float32 models."""


def export_error(code: str, message: str, where: Path | str, help: str | None = None) -> NetdslError:
    """E527 (the export failed) or E528 (the exported model disagrees with Keras)."""
    return NetdslError([Diagnostic(code, message, None, help=help)], Source("", str(where)))


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own copy of the interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def run_saved_model(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # held: its functions reference the object's variables
    return np.asarray(loaded.serve(tf.constant(x)))


def run_keras(path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.saving.load_model(str(path), safe_mode=True).predict(x, verbose=0))


@dataclass(frozen=True)
class Format:
    """One export format: the file suffix Keras asks for, how it is written, and its own runtime."""

    suffix: str  # "" for a directory
    keras_format: str | None  # model.export(format=...), or None for model.save
    runtime: str
    run: Callable[[Path, np.ndarray], np.ndarray]


FORMATS: dict[str, Format] = {
    "onnx": Format(".onnx", "onnx", "onnxruntime", run_onnx),
    "litert": Format(".tflite", "litert", "LiteRT interpreter", run_litert),
    "saved_model": Format("", "tf_saved_model", "TensorFlow (tf.saved_model.load)", run_saved_model),
    "keras": Format(".keras", None, "Keras (keras.saving.load_model, safe mode)", run_keras),
}


@dataclass
class ExportResult:
    """What `export` wrote and how close the exported model came to Keras on real images."""

    path: Path
    format: str
    runtime: str
    backend: str
    images: int
    max_abs_diff: float
    tolerance: float
    same_class: int
    preprocessing: str
    sidecar: Path
    trained_on: str | None = None  # the run's backend (config.json); weights are the same on every backend

    def summary(self) -> str:
        """The command's report: the comparison, then what the model takes as input."""
        other = self.trained_on not in (None, self.backend)
        trained = f"; the run was trained on {self.trained_on}, its weights file is the same on every backend"
        return (
            f"exported {self.path} ({self.format}, from Keras on {self.backend}){trained if other else ''}\n"
            f"checked with {self.runtime} on {self.images} images of the run's data: max |exported - Keras| = "
            f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:g}); the same top class for "
            f"{self.same_class}/{self.images}\n"
            f"input: {self.preprocessing}; classes and shapes in {self.sidecar}"
        )


def sample_inputs(net: Any, config: dict[str, Any], count: int) -> np.ndarray:
    """Up to `count` real inputs of the run's data (float32 pixels 0..255, or int32 token ids): its test
    split, else its training images."""
    data = limit(load_for(net, find_head(net, analyze(net)), config.get("data")), count, 0)
    x = data.x_test if len(data.y_test) else data.x_train
    return np.asarray(x[:count], np.int32 if net.input_dtype == "int32" else np.float32)


def affine_preprocessing(
    function: Callable[[np.ndarray], np.ndarray], channels: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """`function` (a backbone's `preprocess_input`) as `x @ kernel + bias` on the channel axis, read from
    its answers to black and to each channel at 255, then checked on random pixels; None if it is not that.
    Every `keras.applications` mode is: "caffe" (BGR, means subtracted), "tf" (-1..1), "torch", identity."""
    probe = np.zeros((1, 1, channels + 1, channels), np.float32)
    probe[0, 0, 1:] = 255 * np.eye(channels, dtype=np.float32)
    answer = np.asarray(function(probe.copy()), np.float64)[0, 0]
    bias, kernel = answer[0], (answer[1:] - answer[0]) / 255
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 7, channels)).astype(np.float32)
    truth = np.asarray(function(pixels.copy()), np.float64)
    if truth.shape != pixels.shape or not np.allclose(pixels @ kernel + bias, truth, rtol=1e-5, atol=1e-5):
        return None
    return kernel.astype(np.float32), bias.astype(np.float32)


def with_preprocessing(keras: Any, model: Any, net: Any) -> tuple[Any, str]:
    """The model taking what the data holds: raw pixels, with its preprocessing inside as a layer (x / 255
    as Rescaling, a backbone's `preprocess_input` as a fixed Dense on the channels), or token ids as they are.
    A `preprocess_input` that is not per-channel affine stays outside (the .json beside the model says so)."""
    if net.input_dtype == "int32":
        return model, "int32 token ids, as they are"
    inputs = keras.Input(tuple(net.input_shape), name="pixels")
    if preprocessing(net) is None:
        outputs = model(keras.layers.Rescaling(INPUT_SCALE, name="scale")(inputs))
        return keras.Model(inputs, outputs, name=model.name), "float32 pixels 0..255; x / 255 is inside the model"
    affine = affine_preprocessing(input_scaling(net), int(net.input_shape[-1]))
    if affine is None:
        return model, f"float32 pixels 0..255; apply {preprocessing_name(net)} before the model"
    layer = keras.layers.Dense(len(affine[1]), name="preprocess_input", trainable=False)
    outputs = model(layer(inputs))
    layer.set_weights(list(affine))
    how = f"float32 pixels 0..255; {preprocessing_name(net)} is inside the model (a fixed per-channel Dense)"
    return keras.Model(inputs, outputs, name=model.name), how


def export(
    run_dir: str | Path, format: str, output: str | Path, *, backend: str | None = None, images: int = 64,
    tolerance: float = TOLERANCE,
) -> ExportResult:  # fmt: skip
    """Export a run's model, load the file with its format's runtime and compare it with Keras (E527, E528)."""
    if format not in FORMATS:
        raise export_error("E527", f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}", output)
    kind = FORMATS[format]
    path = Path(output)
    if path.exists():
        raise export_error("E527", f"{path} already exists; netdsl never overwrites it", path, help="choose another -o")
    if kind.suffix and path.suffix != kind.suffix:
        raise export_error("E527", f"a {format} file is named *{kind.suffix}, got {path.name}", path,
                           help=f"-o {path.with_suffix(kind.suffix)}")  # fmt: skip
    _check_writable(path)
    import keras

    keras.mixed_precision.set_global_policy("float32")  # exporters need float32 (a mixed run's weights are)
    net, config, model = load_run(run_dir, backend)

    exported, how = with_preprocessing(keras, model, net)
    pixels = sample_inputs(net, config, images)
    scale = input_scaling(net)  # the run's pipeline: what its model was trained and is evaluated on
    fed = pixels if scale is None else np.asarray(scale(pixels.copy()), np.float32)  # (preprocess_input is in place)
    expected = np.asarray(model.predict(fed, verbose=0))  # the truth: the run's own model, not the wrapper
    x = fed if exported is model else pixels  # what the exported file takes
    exported(x[:1])  # Keras's ONNX export on JAX needs a model that has been called, not only predicted with
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras's tf2onnx patch probes np.object
            if kind.keras_format is None:
                exported.save(str(path))
            else:
                exported.export(str(path), format=kind.keras_format, verbose=False)
        actual = kind.run(path, x)
    except Exception as err:  # the converters' and runtimes' own errors are of any type; report, not trace
        _remove(path)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise export_error("E527", f"cannot export to {format} on {keras.backend.backend()}: {first}", path,
                           help=_export_help(keras.backend.backend())) from None  # fmt: skip
    sidecar = Path(f"{path}.json")
    write_json(sidecar, {
        "run": str(run_dir), "format": format, "input_shape": list(net.input_shape or ()),
        "input": "int32 token ids" if net.input_dtype == "int32" else "float32 pixels 0..255, batch first",
        "preprocessing": how,
        "classes": config.get("classes"), "head": config.get("head"),
    })  # fmt: skip
    result = _compared(path, format, kind, keras.backend.backend(), expected, actual, tolerance, how, sidecar)
    result.trained_on = config.get("backend")
    return result


def _compared(
    path: Path, format: str, kind: Format, backend: str, expected: np.ndarray, actual: np.ndarray,
    tolerance: float, how: str, sidecar: Path,
) -> ExportResult:  # fmt: skip
    """The comparison as a result, or E528 when the exported model is further from Keras than `tolerance`."""
    actual = actual.reshape(expected.shape)
    diff = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    same = int(np.sum(np.argmax(actual, -1) == np.argmax(expected, -1))) if expected.shape[-1] > 1 else int(
        np.sum((actual > 0.5) == (expected > 0.5)))  # fmt: skip
    result = ExportResult(path, format, kind.runtime, backend, len(expected), diff, tolerance, same, how, sidecar)
    if not diff <= tolerance:  # NaN fails too
        raise export_error(
            "E528", f"the exported {format} model differs from Keras by {diff:.3g} (tolerance {tolerance:g}) "
            f"on {len(expected)} images; {path} is kept for inspection", path,
            help="report the spec: the format's converter changed the computation",
        )  # fmt: skip
    return result


def _export_help(backend: str) -> str:
    """What to do about a converter's error: another backend (the weights are the same on each), or the extra."""
    if backend != "tensorflow":
        return ("export from TensorFlow, the default (--backend tensorflow, or unset KERAS_BACKEND): a run's weights "
                "file is the same on every backend; litert and saved_model are TensorFlow's formats")  # fmt: skip
    return "pip install 'netdsl[export]' (onnx, tf2onnx, onnxruntime, ai-edge-litert)"


def _check_writable(path: Path) -> None:
    """E527 before Keras is imported and the model converted when `path` cannot be written (its folder is
    missing, a file, or read-only such as /proc): found by making and removing a file beside it, since
    permission bits do not tell root about read-only or virtual file systems."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise export_error("E527", f"cannot write {path}: {reason(err)}", path, help="choose another -o") from None


def _remove(path: Path) -> None:
    """Remove a half-written export (a file or a SavedModel directory)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
