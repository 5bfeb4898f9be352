"""The speed switches a GPU user expects: `--precision mixed` (Keras's mixed_float16 on GPUs, mixed_bfloat16
elsewhere), `--jit` (XLA for the train step, opt-in) and `--tensorboard` (Keras's TensorBoard callback,
logs in the run directory). float32 and Keras's own compilation choice stay the defaults.

On a CPU, half-precision math is emulated (or needs AVX512-BF16/AMX) and XLA rarely beats TensorFlow's
own CPU kernels on small convnets, so a switch that is likely slower there says so before training.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from netdsl.diagnostics import Diagnostic, NetdslError, Source

PRECISIONS = ("float32", "mixed")


@dataclass(frozen=True)
class Speed:
    """The switches of one run, as `train` takes them and config.json records them."""

    precision: str = "float32"
    jit: bool = False
    tensorboard: bool = False

    def record(self) -> dict[str, Any]:
        return {"precision": self.precision, "jit": self.jit, "tensorboard": self.tensorboard}


def accelerator(backend: str) -> str:
    """ "gpu", "tpu" or "cpu": what the backend will compute on."""
    if backend == "jax":
        import jax

        return str(jax.devices()[0].platform)
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def apply(speed: Speed, backend: str, deterministic: bool = False) -> list[str]:
    """Set the dtype policy before the model is built; the console lines (warnings on a CPU) to print."""
    import keras

    if speed.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise NetdslError(
            [Diagnostic("E529", "--tensorboard needs TensorBoard's package, which is not installed", None,
                        help="pip install 'netdsl[tensorboard]'")],
            Source("", "<options>"),
        )  # fmt: skip
    lines = []
    device = accelerator(backend) if speed.precision != "float32" or speed.jit else "cpu"
    if speed.precision == "mixed":
        policy = "mixed_float16" if device == "gpu" else "mixed_bfloat16"
        keras.mixed_precision.set_global_policy(policy)
        lines.append(f"precision: {policy} (weights float32, computation {policy.removeprefix('mixed_')})")
        if device == "cpu":
            lines.append("warning: --precision mixed on a CPU: bfloat16 math is emulated by most CPUs and is "
                         "usually slower than float32; it is meant for GPUs and TPUs")  # fmt: skip
    else:
        keras.mixed_precision.set_global_policy("float32")
    if speed.jit:
        lines.append("jit: the train step is compiled with XLA (jit_compile=True)")
        if deterministic and backend == "tensorflow":
            lines.append("warning: --jit with an explicit seed: TensorFlow's op determinism is on, and Keras "
                         "turns XLA off under it (drop --seed to compile with XLA)")  # fmt: skip
        elif device == "cpu" and backend == "tensorflow":
            lines.append("warning: --jit on a CPU: XLA is often slower than TensorFlow's own CPU kernels for "
                         "small convnets (Keras leaves it off on CPUs); compare images/s in metrics.json")  # fmt: skip
        if backend == "torch":
            lines.append("warning: --jit on torch compiles with torch.compile (Keras's jit_compile), whose first "
                         "steps are slow")  # fmt: skip
    return lines


def callbacks(speed: Speed, run_path: Any) -> list[Any]:
    """The extra Keras callbacks: TensorBoard's, writing to RUN/tensorboard."""
    if not speed.tensorboard:
        return []
    import keras

    return [keras.callbacks.TensorBoard(log_dir=str(run_path / "tensorboard"))]
