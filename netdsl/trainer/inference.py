"""Using a trained run: its model rebuilt from spec.net and given its weights (`load_run`), its test
accuracy (`evaluate`) and its classes for image files (`predict`). Nothing is unpickled."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from netdsl.data import data_error, limit
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Augment, Network, TrainConfig
from netdsl.layers.pretrained import architecture_only
from netdsl.runs import TAMPERED, RunDir, run_error
from netdsl.trainer.backends import active, choose
from netdsl.trainer.config import Phase
from netdsl.trainer.head import Head, find_head, load_for
from netdsl.trainer.optimize import compile_model
from netdsl.trainer.pipeline import input_scaling, pipeline
from netdsl.transfer import analyze, build_model, resolve


def load_run(run_dir: str | Path, backend: str | None = None) -> tuple[Network, dict[str, Any], Any]:
    """A finished (or interrupted) run's spec, config and Keras model with its weights, on `backend`
    (default: KERAS_BACKEND, else tensorflow): the weights file is the same for every backend."""
    choose(backend)  # before resolving a backbone, which may import Keras
    run = RunDir.open(run_dir)
    config = run.config()
    net = resolve(run.network())
    weights = run.weights_path()
    active(backend)  # quiets the backend's start-up logs before Keras loads it
    model = build_model(architecture_only(net))  # the run's weights replace any backbone's: no ImageNet download
    run.load_weights(model, weights)
    return net, config, model


def evaluate(
    run_dir: str | Path, data: str | None = None, batch: int | None = None, backend: str | None = None
) -> dict[str, Any]:
    """Test loss and accuracy of a run's model on its own data's test split, or on `data`'s."""
    net, config, model = load_run(run_dir, backend)
    head = find_head(net, analyze(net))
    training = TrainConfig.model_validate(config["training"])
    source = data if data is not None else config.get("data")
    dataset = load_for(net, head, source)
    if data is None:
        dataset = limit(dataset, config.get("max_images"), int(training.seed or 0))
    x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_train, dataset.y_train)
    compile_model(model, Phase.from_config(training), head, 1)
    test = pipeline(
        x, y, batch or training.batch, head, training=False, augment=Augment(), seed=0, scale=input_scaling(net)
    )
    loss, accuracy = model.evaluate(test, verbose=0)
    import keras

    return {
        "data": dataset.name, "images": len(y), "loss": float(loss), "accuracy": float(accuracy),
        "backend": keras.backend.backend(), "trained_on": config.get("backend"),
    }  # fmt: skip


def _read_images(paths: list[Path], shape: tuple[int, ...]) -> np.ndarray:
    """The image files as one uint8 batch in the input's shape (E501, E503, E509)."""
    from netdsl.data.files import read_image
    from netdsl.safeio import NotRegularFile

    batch = []
    for path in paths:
        if not path.exists():
            raise data_error("E501", f"no such image: {path}", str(path))
        try:
            image = read_image(path, shape)
        except NotRegularFile as err:  # a directory, a FIFO (which would block), a device
            raise data_error("E501", f"cannot read {path}: {err.strerror}", str(path)) from None
        except (OSError, ValueError, SyntaxError) as err:
            raise data_error("E503", f"cannot decode {path}: {err}", str(path)) from None
        if len(shape) == 1:
            if image.size != shape[0]:
                raise data_error(
                    "E509", f"{path} has {image.size:,} values; the spec's input takes {shape[0]:,}", str(path)
                )
            image = image.reshape(shape)
        batch.append(image)
    return np.stack(batch)


def probabilities(scores: np.ndarray, head: Head) -> np.ndarray:
    """The model's outputs as class probabilities: a sigmoid unit as two classes, logits through softmax."""
    if head.binary:
        positive = 1 / (1 + np.exp(-scores[:, 0])) if head.from_logits else scores[:, 0]
        return np.stack([1 - positive, positive], axis=1)
    if head.from_logits:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return scores


def predict(
    run_dir: str | Path, images: Iterable[str | Path], top: int = 3, backend: str | None = None
) -> list[dict[str, Any]]:
    """Top-`top` classes with probabilities for each image file, with the run's model."""
    paths = [Path(p) for p in images]
    net, config, model = load_run(run_dir, backend)
    head = find_head(net, analyze(net))
    scale = input_scaling(net)
    if scale is None or head.per_pixel:
        what = "takes token ids" if scale is None else "scores every pixel"
        raise NetdslError(
            [Diagnostic("E523", f"predict ranks the classes of image files; this run's network {what}", None,
                        help="use `netdsl evaluate RUN --data ...`, or load the weights with netdsl.load_run")],
            Source("", str(run_dir)),
        )  # fmt: skip
    batch = _read_images(paths, tuple(net.input_shape or ()))
    x = np.asarray(scale(batch.astype(np.float32)))
    scored = probabilities(np.asarray(model.predict(x, verbose=0), np.float64), head)
    names = config.get("classes") or [str(i) for i in range(scored.shape[1])]
    if len(names) != scored.shape[1]:
        raise run_error(f"{Path(run_dir) / 'config.json'}: classes lists {len(names)} names but the model scores "
                        f"{scored.shape[1]} classes", run_dir, help=TAMPERED)  # fmt: skip
    results = []
    for path, row in zip(paths, scored):
        order = np.argsort(-row)[: max(1, top)]
        results.append({"image": str(path), "top": [(names[i], float(row[i])) for i in order]})
    return results
