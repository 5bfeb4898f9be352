"""The input pipeline's backend-neutral half: how pixels become the model's input (scaling, or a
backbone's own preprocessing; token ids for an `int` input stay int32, unscaled) and which augmentation
layers run; `backends` turns them into batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Augment, Network, TrainConfig
from netdsl.trainer.backends import Backend, active
from netdsl.trainer.head import Head
from netdsl.transfer import preprocessing

INPUT_SCALE = 1 / 255
"""Images are uint8 on disk and in memory; the pipeline scales them to 0..1 (the seed's x /= 255)."""

AUGMENT_LAYERS: dict[str, Callable[[Any, float, int], Any]] = {
    # Augment field -> Keras preprocessing layer. fill_mode="nearest" is ImageDataGenerator's default.
    "shift": lambda keras, v, seed: keras.layers.RandomTranslation(v, v, fill_mode="nearest", seed=seed),
    "flip": lambda keras, v, seed: keras.layers.RandomFlip("horizontal", seed=seed),
    "vflip": lambda keras, v, seed: keras.layers.RandomFlip("vertical", seed=seed),
    "shear": lambda keras, v, seed: keras.layers.RandomShear(x_factor=v, y_factor=v, fill_mode="nearest", seed=seed),
    "zoom": lambda keras, v, seed: keras.layers.RandomZoom(v, v, fill_mode="nearest", seed=seed),
    "rotation": lambda keras, v, seed: keras.layers.RandomRotation(v, fill_mode="nearest", seed=seed),
}


def augmentation(keras: Any, augment: Augment, seed: int) -> list[Any]:
    """The Keras preprocessing layers for the spec's `augment` (rotation is a fraction of a turn)."""
    return [
        AUGMENT_LAYERS[name](keras, float(value), seed + i)
        for i, (name, value) in enumerate(augment.model_dump().items())
        if value
    ]


def input_scaling(net: Network) -> Callable[[Any], Any] | None:
    """Pixels (float32, 0..255) -> the model's input: 0..1 (the seed's x /= 255), or under a `pretrained`
    backbone that backbone's own `keras.applications.<module>.preprocess_input`, as the seed's
    ImageDataGenerator(preprocessing_function=preprocess_input) did; in the data pipeline, never a Lambda.
    None for an `input L int` network: token ids are indices, fed as int32 and never scaled."""
    if net.input_dtype == "int32":
        return None
    module = preprocessing(net)
    if module is None:
        return lambda x: x * INPUT_SCALE
    import keras

    return getattr(keras.applications, module).preprocess_input


def input_scale(net: Network) -> float | None:
    """The factor `input_scaling` applies to pixels, for config.json (None: token ids, not scaled)."""
    return None if net.input_dtype == "int32" else INPUT_SCALE


def preprocessing_name(net: Network) -> str:
    """What `input_scaling` does, for config.json."""
    if net.input_dtype == "int32":
        return "none (int32 token ids)"
    module = preprocessing(net)
    return f"keras.applications.{module}.preprocess_input" if module else "x / 255"


def pipeline(
    x: np.ndarray, y: np.ndarray, batch: int, head: Head, *, training: bool, augment: Augment, seed: int,
    scale: Callable[[Any], Any] | None = lambda x: x * INPUT_SCALE, backend: Backend | None = None,
    sharded: bool = False, epochs_done: int = 0, replicas: int = 1,
) -> Any:  # fmt: skip
    """Batches for `model.fit`/`evaluate` from uint8 images (scaled per batch, augmented when training) or
    int32 token ids (`scale` None: passed as they are); `epochs_done`: a resumed run's finished epochs."""
    backend = backend or active()
    import keras

    layers = augmentation(keras, augment, seed) if training else []
    return backend.batches(x, y, batch, head, training=training, layers=layers, seed=seed, scale=scale,
                           sharded=sharded, epochs_done=epochs_done, replicas=replicas)  # fmt: skip


def check_options(net: Network, head: Head, config: TrainConfig) -> None:
    """E521 for options that do not fit the data: augmentation moves pixels, which token ids are not and
    per-pixel labels would not follow; label smoothing has no sparse (per-pixel) cross-entropy in Keras."""
    source = Source(net.source, net.file or "<string>")
    augments = [name for name, value in config.augment.model_dump().items() if value]
    what = "token ids" if net.input_dtype == "int32" else "per-pixel labels" if head.per_pixel else None
    if augments and what:
        raise NetdslError(
            [Diagnostic("E521", f"augment {', '.join(augments)} moves pixels; a network trained on {what} "
                        "cannot be augmented that way", None, help="remove the `augment` line or pass --no-augment")],
            source,
        )  # fmt: skip
    if head.per_pixel and config.label_smoothing:
        raise NetdslError(
            [Diagnostic("E521", f"label_smoothing={config.label_smoothing:g} needs one-hot labels; per-pixel labels "
                        "are trained with sparse cross-entropy, which has none", None,
                        help="drop label_smoothing for a network that scores every pixel")],
            source,
        )  # fmt: skip
