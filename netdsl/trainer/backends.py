"""What differs per Keras backend, behind one table: quieting the framework's start-up logs, seeding
(and deterministic ops), and the input pipeline that feeds `model.fit`.

Everything else in the trainer is Keras 3 and backend-neutral. A JAX or PyTorch path is one more
entry in BACKENDS (issue 15); until then the tf.data pipeline feeds whichever backend Keras runs on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from netdsl.trainer.head import Head


class Backend(Protocol):
    """One backend's entry: how training talks to the framework under Keras."""

    name: str

    def silence(self) -> None:
        """Fewer framework start-up messages (before the framework is imported)."""

    def seed(self, seed: int, deterministic: bool) -> None:
        """Seed every generator; `deterministic` also asks for fixed reduction orders."""

    def batches(
        self, x: np.ndarray, y: np.ndarray, batch: int, head: Head, *, training: bool,
        layers: list[Any], seed: int, scale: Callable[[Any], Any] | None,
    ) -> Any:  # fmt: skip
        """Batches of (scaled, augmented images or int32 token ids when `scale` is None, encoded labels)
        that `model.fit` accepts."""


@dataclass(frozen=True)
class TensorFlowBackend:
    """TensorFlow: a tf.data pipeline, TF's op determinism, TF_CPP_MIN_LOG_LEVEL."""

    name: str = "tensorflow"

    def silence(self) -> None:
        """Fewer TensorFlow C++ warnings unless the user set a level (TF 2.21 still prints absl's start-up lines)."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def seed(self, seed: int, deterministic: bool) -> None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        if deterministic:
            # Same seed, same numbers: fixed reduction orders and an ordered tf.data pipeline.
            tf.config.experimental.enable_op_determinism()

    def batches(
        self, x: np.ndarray, y: np.ndarray, batch: int, head: Head, *, training: bool,
        layers: list[Any], seed: int, scale: Callable[[Any], Any] | None,
    ) -> Any:  # fmt: skip
        """Shuffled index batches gather uint8 images, which become float32 only here, per batch (token ids
        stay int32); augmentation runs in the pipeline (training only), on the CPU's spare cores. Labels:
        one-hot for a softmax over classes, as they are (sparse) per pixel, floats for sigmoid units."""
        import tensorflow as tf

        images = tf.constant(x)
        labels = tf.constant(y.astype(np.int32))

        def load(index: Any) -> tuple[Any, Any]:
            batch_x = tf.gather(images, index)
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
        return data.batch(batch).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


BACKENDS: dict[str, Backend] = {"tensorflow": TensorFlowBackend()}
DEFAULT = "tensorflow"


def active() -> Backend:
    """The entry for the backend Keras is configured to use (imports Keras, quietly)."""
    for entry in BACKENDS.values():
        entry.silence()  # before Keras imports its backend, whichever that turns out to be
    import keras

    return BACKENDS.get(keras.backend.backend(), BACKENDS[DEFAULT])
