"""What differs per Keras backend, behind one table: choosing it (before Keras is imported), quieting
the framework's start-up logs, seeding (and deterministic ops), the input pipeline that feeds
`model.fit`, and which engine trains data-parallel (netdsl/trainer/distribute.py).

Everything else in the trainer is Keras 3 and backend-neutral. The input pipeline is tf.data on every
backend: Keras's dataset adapter hands its batches to JAX or PyTorch as NumPy arrays, and the
augmentation layers run inside tf.data (on the CPU's spare cores), never in the compiled train step.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.trainer.head import Head

Batches = Callable[..., Any]


def tf_batches(
    x: np.ndarray, y: np.ndarray, batch: int, head: Head, *, training: bool,
    layers: list[Any], seed: int, scale: Callable[[Any], Any] | None, sharded: bool = False, epochs_done: int = 0,
    replicas: int = 1,
) -> Any:  # fmt: skip
    """Shuffled index batches gather uint8 images, which become float32 only here, per batch (token ids
    stay int32, `scale` None); augmentation runs in the pipeline (training only), on the CPU's spare cores.
    Labels: one-hot for a softmax over classes, as they are (sparse) per pixel, floats for sigmoid units.
    `sharded`: Keras splits the batches over processes, and must see their size, so the last step is a
    batch of full batches only (the images of a last partial batch are left out, in every process alike).
    `epochs_done`: a resumed run's shuffle is advanced past the orders its finished epochs used (indices
    only, no images read), so its next epoch sees the images in the order an uninterrupted run would.
    `replicas`: the devices each batch is split over; a last partial batch is cut to a multiple of them
    (JAX cannot split 5 images over 2 devices, TensorFlow failed on 1), leaving out fewer images than devices."""
    import tensorflow as tf

    gather = _gatherer(tf, x)
    labels = tf.constant(y.astype(np.int32))

    def load(index: Any) -> tuple[Any, Any]:
        batch_x = gather(index)
        batch_x = tf.cast(batch_x, tf.int32) if scale is None else scale(tf.cast(batch_x, tf.float32))
        for layer in layers:
            batch_x = layer(batch_x, training=True)
        batch_y = tf.gather(labels, index)
        if head.binary:
            return batch_x, tf.cast(tf.reshape(batch_y, (-1, *head.label_shape, 1)), tf.float32)
        return batch_x, batch_y if head.per_pixel else tf.one_hot(batch_y, head.units)

    data = tf.data.Dataset.range(len(x))
    if training:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        for _ in range(epochs_done if len(x) else 0):  # each pass draws the next order from the shuffle's seed
            for _ in data.batch(len(x)):
                pass
    data = data.batch(batch)
    if replicas > 1:
        data = data.map(lambda index: index[: tf.shape(index)[0] // replicas * replicas])
        data = data.filter(lambda index: tf.shape(index)[0] > 0)
    data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if sharded:  # a map hides the batch size from tf.data's compute_batch_size; every process takes
        data = data.unbatch().batch(batch, drop_remainder=True)  # as many steps: a partial batch would hang one
    options = tf.data.Options()  # tf.data's autotuner may buffer up to half the free memory by default:
    options.autotune.ram_budget = PIPELINE_RAM_BUDGET  # a streamed folder must stay a few batches in memory
    return data.prefetch(tf.data.AUTOTUNE).with_options(options)


PIPELINE_RAM_BUDGET = 512 * 2**20
"""Bytes tf.data's autotuner may use for prefetched batches: on an idle machine its default (half the
free memory) let a streamed 3 GB folder grow to 2 GB resident; docs/limits.md."""


def _gatherer(tf: Any, x: Any) -> Callable[[Any], Any]:
    """index batch -> uint8 image batch: from a tensor when `x` is in memory; from disk (an image
    folder's ImageFiles, decoded here) or a memory-mapped array otherwise, so memory holds batches only."""
    if isinstance(x, np.ndarray) and not isinstance(x, np.memmap):
        images = tf.constant(x)
        return lambda index: tf.gather(images, index)
    read = x.read if hasattr(x, "read") else (lambda index: np.asarray(x[np.asarray(index)]))
    shape = tuple(x.shape[1:])

    def gather(index: Any) -> Any:
        batch = tf.numpy_function(read, [index], tf.as_dtype(x.dtype), stateful=False)
        return tf.ensure_shape(batch, (None, *shape))

    return gather


@dataclass(frozen=True)
class Backend:
    """One Keras backend's entry: its module, its extra, how it is seeded and which engine runs
    `--devices` (None: Keras has no data parallelism for it)."""

    name: str
    module: str  # what must be importable (the framework itself)
    extra: str  # `pip install 'netdsl[EXTRA]'`
    parallel: str | None  # "mirrored" (tf.distribute) or "keras" (keras.distribution)
    batches: Batches = tf_batches

    def silence(self) -> None:
        """Fewer TensorFlow C++ warnings (tf.data runs on every backend) unless the user set a level."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def seed(self, seed: int, deterministic: bool) -> None:
        """Seed Python, NumPy, TensorFlow (the pipeline) and the backend; `deterministic` also fixes
        reduction orders where the framework can."""
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()  # the tf.data pipeline, and TF's own kernels
            if self.name == "torch":
                import torch

                torch.use_deterministic_algorithms(True, warn_only=True)


BACKENDS: dict[str, Backend] = {
    "tensorflow": Backend("tensorflow", "tensorflow", "keras", "mirrored"),
    "jax": Backend("jax", "jax", "jax", "keras"),
    "torch": Backend("torch", "torch", "torch", None),
}
DEFAULT = "tensorflow"


def backend_error(message: str, help: str | None = None) -> NetdslError:
    """A backend that cannot be used here (E525)."""
    return NetdslError([Diagnostic("E525", message, None, help=help)], Source("", "<backend>"))


def running() -> str | None:
    """The backend of a Keras this process has imported already (it cannot switch), or None."""
    loaded = sys.modules.get("keras")
    return loaded.backend.backend() if loaded is not None and hasattr(loaded, "backend") else None


def choose(name: str | None = None) -> Backend:
    """The backend to run on: `name`, else KERAS_BACKEND, else TensorFlow. Sets KERAS_BACKEND so that
    Keras, imported after this, picks it; E525 if it is not installed or Keras already runs another."""
    wanted = (name or os.environ.get("KERAS_BACKEND") or DEFAULT).strip().lower()
    if wanted not in BACKENDS:
        raise backend_error(f"unknown backend {wanted!r}; choose one of {', '.join(BACKENDS)}")
    entry = BACKENDS[wanted]
    current = running()
    if current is not None:  # Keras fixed its backend already: only that one now
        if current != wanted:
            raise backend_error(
                f"Keras already runs on {current} in this process; it cannot switch to {wanted}",
                help=f"choose the backend before Keras is imported (KERAS_BACKEND={wanted}, or a new process)",
            )
        return entry
    if importlib.util.find_spec(entry.module) is None:
        raise backend_error(f"the {wanted} backend is not installed", help=f"pip install 'netdsl[{entry.extra}]'")
    os.environ["KERAS_BACKEND"] = wanted
    return entry


def active(name: str | None = None) -> Backend:
    """The chosen backend's entry, with Keras imported on it (quietly)."""
    entry = choose(name)
    entry.silence()  # before Keras imports its backend and TensorFlow
    import keras

    if keras.backend.backend() != entry.name:  # Keras read a keras.json or another setting
        raise backend_error(f"Keras runs on {keras.backend.backend()}, not {entry.name}")
    return entry
