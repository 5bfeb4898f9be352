"""`netdsl train`, `evaluate` and `predict` as library calls.

A run goes: spec -> analysis (the summary a user sees first) -> head (which loss) -> data (loaded,
adapted, checked against the head, split) -> run directory -> `fit_phase` -> test metrics, final
weights, curves. Data problems and head/data mismatches are raised as located NetdslErrors before
TensorFlow is even imported.

`fit_phase` takes one phase's optimizer, learning rate, schedule and epoch count explicitly, so a
second phase (fine-tuning with a lower learning rate, issue 5) calls it again on the same model and
run directory; the history keeps one row per epoch, numbered across phases, in one history.csv.

(The module is `training`, not `train`, because `netdsl.train` is the public function.)
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from netdsl.analysis import Report, analyze
from netdsl.data import Dataset, check_labels, limit, load_dataset, split_validation
from netdsl.data.adapt import adapt
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Augment, Network, Span, TrainConfig
from netdsl.runs import RunDir, new_run_dir, run_error, write_json, write_text

Echo = Callable[[str], None]
INPUT_SCALE = 1 / 255
"""Images are uint8 on disk and in memory; the pipeline scales them to 0..1 (the seed's x /= 255)."""


# ---------------------------------------------------------------- the head decides the loss


@dataclass(frozen=True)
class Head:
    """What the network's last layers say about the task: class count and the matching loss."""

    units: int
    activation: str | None  # softmax, sigmoid, or None for raw logits
    span: Span | None  # the statement to point at when the data does not match

    @property
    def binary(self) -> bool:
        return self.units == 1

    @property
    def classes(self) -> int:
        return 2 if self.binary else self.units

    @property
    def from_logits(self) -> bool:
        return self.activation is None


def find_head(net: Network, report: Report) -> Head:
    """Read the head from the IR: the last layer's final activation and the output's width (E506)."""
    source = Source(net.source, net.file or "<string>")
    last = net.layers[-1]
    dense = next((layer for layer in reversed(net.layers) if layer.kind == "dense"), last)
    post = [w for w in getattr(last, "post", ()) if w != "bn"]
    function = last.function if last.kind == "activation" else (post[-1] if post else None)  # type: ignore[attr-defined]
    function = None if function == "linear" else function
    shape = report.output_shape[1:]

    def fail(message: str, help: str) -> NetdslError:
        return NetdslError([Diagnostic("E506", message, last.span, help=help)], source)

    if len(shape) != 1:
        raise fail(
            f"the network's output {report.output_shape} is not one score per class",
            "end with a global pooling or `flatten`, then `dense N softmax`",
        )
    units = int(shape[0])  # type: ignore[arg-type]
    if function not in (None, "softmax", "sigmoid"):
        raise fail(
            f"the network ends in {function}; a classifier ends in softmax (or sigmoid with one unit)",
            f"write `dense {units} softmax`",
        )
    if function == "softmax" and units == 1:
        raise fail("softmax over one unit is always 1", "for two classes write `dense 1 sigmoid` or `dense 2 softmax`")
    if function == "sigmoid" and units > 1:
        raise fail(
            f"sigmoid over {units} units scores each class independently (multi-label), which netdsl does not train",
            f"write `dense {units} softmax` for one class per image",
        )
    return Head(units, function, dense.span)


def match_head(head: Head, data: Dataset, net: Network) -> None:
    """The head must have one unit per class (one sigmoid unit for two): E506 at the dense layer."""
    if data.classes is None or len(data.classes) == head.classes:
        return
    count = len(data.classes)
    fix = "dense 1 sigmoid` (or `dense 2 softmax" if count == 2 else f"dense {count} softmax"
    raise NetdslError(
        [
            Diagnostic(
                "E506",
                f"the head has {head.units} unit{'s' if head.units > 1 else ''} "
                f"({'binary' if head.binary else f'{head.units} classes'}) but {data.name} has {count} classes",
                head.span,
                help=f"write `{fix}` as the last layer",
            )
        ],
        Source(net.source, net.file or "<string>"),
    )


# ---------------------------------------------------------------- configuration


def resolve_config(base: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """The spec's training section with command-line overrides; `augment` merges field by field."""
    given = {k: v for k, v in overrides.items() if v is not None}
    augment = given.pop("augment", None)
    data = base.model_dump()
    data.update(given)
    if "epochs" in given:  # `--epochs 1` shortens every `phase` line too (a quick try of a two-phase spec)
        data["phases"] = [{**phase, "epochs": given["epochs"]} for phase in data["phases"]]
    if isinstance(augment, Augment):
        augment = augment.model_dump()
    if augment is not None:
        data["augment"] = {**data["augment"], **augment}
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"]))
        raise NetdslError(
            [Diagnostic("E201", f"train: {where} {first['msg'].removeprefix('Input ')}, got {first.get('input')}")],
            Source("", "<options>"),
        ) from None


@dataclass(frozen=True)
class Phase:
    """One stretch of training with one optimizer: what `fit_phase` needs, all explicit."""

    number: int
    epochs: int  # epochs in this phase
    optimizer: str
    lr: float
    schedule: str = "constant"
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    patience: int | None = None

    @classmethod
    def from_config(cls, config: TrainConfig, number: int = 1) -> Phase:
        return cls(
            number, config.epochs, config.optimizer, config.lr, config.schedule, config.momentum,
            config.weight_decay, config.label_smoothing, config.patience,
        )  # fmt: skip


def phase_sequence(config: TrainConfig) -> list[Phase]:
    """The `phase` lines as Phases (what a line leaves out comes from `train`), or `train` as the one phase."""
    if not config.phases:
        return [Phase.from_config(config)]
    phases = []
    for number, line in enumerate(config.phases, 1):
        shared = Phase.from_config(config, number)  # momentum, weight decay, smoothing, patience
        phases.append(replace(
            shared, epochs=line.epochs, optimizer=line.optimizer or config.optimizer, lr=line.lr or config.lr,
            schedule=line.schedule or config.schedule,
        ))  # fmt: skip
    return phases


def learning_rate(keras: Any, phase: Phase, steps_per_epoch: int) -> Any:
    """The phase's learning rate as a float or a Keras schedule over the phase's optimizer steps.

    step: x0.1 at 50% and 75% of the steps. cosine: cosine decay to 0. onecycle: linear warm-up from
    lr/25 to lr over the first 30% of the steps, then cosine decay to lr/25,000 (Smith's one-cycle)."""
    total = max(1, phase.epochs * steps_per_epoch)
    schedules = keras.optimizers.schedules
    if phase.schedule == "step":
        return schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [phase.lr, phase.lr * 0.1, phase.lr * 0.01]
        )
    if phase.schedule == "cosine":
        return schedules.CosineDecay(phase.lr, decay_steps=total)
    if phase.schedule == "onecycle":
        warmup = max(1, int(total * 0.3))
        return schedules.CosineDecay(
            phase.lr / 25, decay_steps=max(1, total - warmup), alpha=1e-3, warmup_target=phase.lr, warmup_steps=warmup
        )
    return phase.lr


def make_optimizer(keras: Any, phase: Phase, steps_per_epoch: int) -> Any:
    """adam, adamw, sgd (with momentum) or rmsprop; weight decay is Keras's decoupled one."""
    lr = learning_rate(keras, phase, steps_per_epoch)
    decay = phase.weight_decay or None
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(lr, weight_decay=decay),
        "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=phase.weight_decay or 0.004),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=phase.momentum, weight_decay=decay),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr, weight_decay=decay),
    }
    return optimizers[phase.optimizer]()


def loss_and_metric(keras: Any, head: Head, label_smoothing: float) -> tuple[Any, Any]:
    """softmax -> categorical cross-entropy, one sigmoid unit -> binary; logits when no activation."""
    if head.binary:
        loss = keras.losses.BinaryCrossentropy(from_logits=head.from_logits, label_smoothing=label_smoothing)
        return loss, keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if head.from_logits else 0.5)
    loss = keras.losses.CategoricalCrossentropy(from_logits=head.from_logits, label_smoothing=label_smoothing)
    return loss, keras.metrics.CategoricalAccuracy(name="accuracy")


def compile_model(model: Any, phase: Phase, head: Head, steps_per_epoch: int) -> None:
    """Compile `model` for one phase (a new phase means a new optimizer)."""
    import keras

    loss, metric = loss_and_metric(keras, head, phase.label_smoothing)
    model.compile(optimizer=make_optimizer(keras, phase, steps_per_epoch), loss=loss, metrics=[metric])


# ---------------------------------------------------------------- the input pipeline

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


def input_scaling(net: Network) -> Callable[[Any], Any]:
    """Pixels (float32, 0..255) -> the model's input: 0..1 (the seed's x /= 255), or under a `pretrained`
    backbone that backbone's own `keras.applications.<module>.preprocess_input`, as the seed's
    ImageDataGenerator(preprocessing_function=preprocess_input) did; in the data pipeline, never a Lambda."""
    from netdsl.layers.pretrained import preprocessing

    module = preprocessing(net)
    if module is None:
        return lambda x: x * INPUT_SCALE
    import keras

    return getattr(keras.applications, module).preprocess_input


def preprocessing_name(net: Network) -> str:
    """What `input_scaling` does, for config.json."""
    from netdsl.layers.pretrained import preprocessing

    module = preprocessing(net)
    return f"keras.applications.{module}.preprocess_input" if module else "x / 255"


def pipeline(
    x: np.ndarray, y: np.ndarray, batch: int, head: Head, *, training: bool, augment: Augment, seed: int,
    scale: Callable[[Any], Any] = lambda x: x * INPUT_SCALE,
) -> Any:  # fmt: skip
    """A tf.data pipeline: shuffled index batches gather uint8 images, which become float32 only
    here, per batch; augmentation runs in the pipeline (training only), on the CPU's spare cores."""
    import keras
    import tensorflow as tf

    images = tf.constant(x)
    labels = tf.constant(y.astype(np.int32))
    layers = augmentation(keras, augment, seed) if training else []

    def load(index: Any) -> tuple[Any, Any]:
        batch_x = scale(tf.cast(tf.gather(images, index), tf.float32))
        for layer in layers:
            batch_x = layer(batch_x, training=True)
        batch_y = tf.gather(labels, index)
        if head.binary:
            return batch_x, tf.cast(tf.reshape(batch_y, (-1, 1)), tf.float32)
        return batch_x, tf.one_hot(batch_y, head.units)

    data = tf.data.Dataset.range(len(x))
    if training:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------- the fit loop


class Diverged(Exception):
    """The loss became NaN or infinite; the last good epoch's weights are kept."""


def _recorder(keras: Any) -> type:
    """The per-epoch callback class (defined late: Keras is imported only when training)."""

    class RunRecorder(keras.callbacks.Callback):
        """After each finished epoch: a history row, history.csv, a checkpoint, early stopping.

        A non-finite loss in any batch (seen by StopOnNaN) stops the run before that epoch is
        recorded, so the last checkpoint holds the last good weights (Keras's TerminateOnNaN would
        end "cleanly")."""

        def __init__(self, run: RunDir, rows: list[dict[str, Any]], phase: Phase, state: dict[str, Any]) -> None:
            super().__init__()
            self.run, self.rows, self.phase = run, rows, phase
            self.best = state.get("best", math.inf)
            self.wait = state.get("wait", 0)
            self.nan = StopOnNaN()
            self.stopped_early = False
            self.started = 0.0

        @property
        def diverged(self) -> tuple[int, int] | None:
            """(epoch, batch) of the first non-finite loss, 1-based, or None."""
            return (len(self.rows) + 1, self.nan.batch) if self.nan.batch is not None else None

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.diverged:
                return
            logs = logs or {}
            row: dict[str, Any] = {"epoch": epoch + 1, "phase": self.phase.number}
            row.update({k: float(v) for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
            row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            row["seconds"] = time.perf_counter() - self.started
            self.rows.append(row)
            monitored = row.get("val_loss", row.get("loss", math.inf))
            if monitored < self.best:
                self.best, self.wait = monitored, 0
                if self.phase.patience:
                    self.run.save_weights(self.model, "best.weights.h5")
            else:
                self.wait += 1
            if self.phase.patience and self.wait >= self.phase.patience:
                self.stopped_early = True
                self.model.stop_training = True
            self.run.checkpoint(
                self.model,
                self.rows,
                {"epoch": epoch + 1, "phase": self.phase.number, "best": self.best, "wait": self.wait,
                 "stopped_early": self.stopped_early},
            )  # fmt: skip

    class StopOnNaN(keras.callbacks.Callback):
        """Stops training at the first non-finite batch loss.

        `async_safe`: Keras may run it off the training thread. A callback that reads every
        batch's loss otherwise makes Keras wait for each step before starting the next one, which
        cost 13% of the seed ResNet's images/s here (bench/train_throughput.py)."""

        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self.batch: int | None = None

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            if self.batch is None and loss is not None and not math.isfinite(float(loss)):
                self.batch = batch + 1
                self.model.stop_training = True

    return RunRecorder


def fit_phase(
    model: Any,
    run: RunDir,
    rows: list[dict[str, Any]],
    phase: Phase,
    head: Head,
    train_data: Any,
    valid_data: Any | None,
    steps_per_epoch: int,
    *,
    first_epoch: int,
    state: dict[str, Any] | None = None,
    verbose: int = 1,
) -> str:
    """Train one phase that starts at global epoch `first_epoch` (0-based, counted across phases)
    and lasts `phase.epochs` epochs.

    Compiles `model` with the phase's optimizer. If `state` (a run's state.json) names a checkpoint
    of this phase, its weights and optimizer state are restored and training continues after its
    epoch (a resumed run). Returns "completed" or "early_stopping"; raises Diverged on a NaN loss.
    `rows` (the whole history, all phases) grows in place and is rewritten to history.csv."""
    import keras

    compile_model(model, phase, head, steps_per_epoch)
    state = state if state and state.get("phase") == phase.number else {}
    if state.get("checkpoint"):
        model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(str(run.regular(run.path / state["checkpoint"])))
        except (ValueError, OSError, KeyError) as err:
            raise run_error(f"cannot restore {state['checkpoint']}: {err}", run.path) from None
    start = int(state.get("epoch", first_epoch))
    recorder = _recorder(keras)(run, rows, phase, state)
    if start < first_epoch + phase.epochs and not state.get("stopped_early"):
        model.fit(
            train_data,
            validation_data=valid_data,
            epochs=first_epoch + phase.epochs,
            initial_epoch=start,
            callbacks=[recorder, recorder.nan],
            shuffle=False,  # the pipeline shuffles (seeded); Keras cannot shuffle a tf.data.Dataset
            verbose=verbose,
        )
    if recorder.diverged:
        epoch, batch = recorder.diverged
        raise Diverged(f"the loss became NaN at epoch {epoch}, batch {batch}")
    if recorder.stopped_early or state.get("stopped_early"):
        if (run.path / "best.weights.h5").exists():
            model.load_weights(str(run.path / "best.weights.h5"))
        return "early_stopping"
    return "completed"


def fit_phases(
    model: Any, net: Network, run: RunDir, rows: list[dict[str, Any]], config: TrainConfig, head: Head,
    train_data: Any, valid_data: Any | None, steps_per_epoch: int, state: dict[str, Any], verbose: int,
) -> str:  # fmt: skip
    """The spec's `phase` lines in order (or the `train` line as one phase) on one model and one history.

    Before each phase its freezing is applied to `model.layers` (as the seed sets `layer.trainable`
    between its two fits); `fit_phase` then compiles with the phase's optimizer, so the new trainable
    set and learning rate take effect. A resumed run skips the phases its state.json has finished."""
    from netdsl.layers.pretrained import phase_freezings

    freezings = phase_freezings(net) if config.phases else [None]
    first_epoch, status = 0, "completed"
    for phase, freeze in zip(phase_sequence(config), freezings):
        if int(state.get("phase", 1)) > phase.number:  # finished before the run was interrupted
            first_epoch += phase.epochs
            continue
        if freeze is not None:
            for index, layer in enumerate(model.layers):
                layer.trainable = freeze.trainable(index, layer.name)
        status = fit_phase(
            model, run, rows, phase, head, train_data, valid_data, steps_per_epoch,
            first_epoch=first_epoch, state=state, verbose=verbose,
        )  # fmt: skip
        first_epoch += phase.epochs
    return status


# ---------------------------------------------------------------- train


@dataclass
class TrainResult:
    """What `netdsl.train` returns: where the run is and what it measured."""

    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _load_network(spec: str | Path | Network) -> Network:
    from netdsl import load, parse

    if isinstance(spec, Network):
        return spec
    if isinstance(spec, Path) or "\n" not in str(spec):
        return load(spec)
    return parse(str(spec))


def prepare_data(
    source: str | None, net: Network, head: Head, config: TrainConfig, seed: int, max_images: int | None
) -> Dataset:
    """Load, adapt to the input, check against the head, cap and split: all before any training."""
    data = load_dataset(source, net.input_shape or (), classes_hint=head.classes)  # type: ignore[arg-type]
    match_head(head, data, net)
    check_labels(data, head.classes)
    data = adapt(data, net.input_shape)  # type: ignore[arg-type]
    data = limit(data, max_images, seed)
    data = split_validation(data, config.validation, seed)
    if len(data.y_test) == 0 and data.x_valid is not None:
        data.x_test, data.y_test = data.x_valid, data.y_valid  # type: ignore[assignment]
        data.notes.append("no test split: the final accuracy is measured on the validation split")
    if data.classes is None:
        data.classes = tuple(str(i) for i in range(head.classes))
    return data


def _quiet_tensorflow() -> None:
    """Fewer TensorFlow C++ warnings unless the user set a level (TF 2.21 still prints absl's start-up lines)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(
    spec: str | Path | Network | None = None,
    data: str | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    max_images: int | None = None,
    echo: Echo = print,
    verbose: int | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a spec (a path, text or Network) and write a run directory; return its results.

    `overrides` are TrainConfig fields (`epochs=3`, `lr=0.1`, `seed=1`, `augment={"flip": False}`)
    that replace the spec's training section. `resume` continues an interrupted run from its last
    finished epoch with the run's own spec, data and configuration. `verbose`: Keras's progress
    (1 a bar, 2 a line per epoch, 0 none); by default a bar on a terminal, else lines."""
    from netdsl.render import summary_table

    if resume is not None:
        run = RunDir.open(resume)
        run.discard_partial_writes()
        saved = run.config()
        from netdsl import parse

        net = parse(run.spec_text(), name=saved.get("name", "model"), file=str(run.path / "spec.net"))
        config = TrainConfig.model_validate(saved["training"])
        data, max_images = saved.get("data"), saved.get("max_images")
        deterministic = bool(saved.get("deterministic"))
        state = run.state()
        run.history()  # a tampered history.csv fails here (E508), before any data is read or TensorFlow loads
        if (run.path / "metrics.json").exists():
            if _finished_status(run) == "diverged":
                raise run_error(
                    f"{run.path} diverged (NaN loss); resuming would diverge again", run.path,
                    help="start a new run with a lower --lr",
                )  # fmt: skip
            raise run_error(
                f"{run.path} has already finished", run.path, help="start a new run to train longer (--epochs)"
            )
    else:
        if spec is None:
            raise NetdslError([Diagnostic("E001", "no spec to train")], Source("", "<arguments>"))
        net = _load_network(spec)
        config = resolve_config(net.training, overrides)
        deterministic = config.seed is not None  # an explicit seed asks for repeatable runs
        if config.seed is None:
            config = config.model_copy(update={"seed": secrets.randbelow(2**31)})
        state = {}
    seed = int(config.seed)  # type: ignore[arg-type]
    report = analyze(net)
    echo(summary_table(report))
    head = find_head(net, report)
    dataset = prepare_data(data, net, head, config, seed, max_images)
    for note in dataset.notes:
        echo(note)
    echo(f"data: {dataset.name}: {dataset.sizes()}")

    if resume is None:
        run = RunDir(new_run_dir(net.name, out))
        write_text(run.path / "spec.net", net.source)
        write_json(
            run.path / "config.json",
            {
                "name": net.name, "spec": net.file, "data": data, "max_images": max_images,
                "training": config.model_dump(), "input_shape": list(net.input_shape or ()),
                "classes": list(dataset.classes or ()), "head": {"units": head.units, "activation": head.activation},
                "input_scale": INPUT_SCALE, "preprocessing": preprocessing_name(net), "deterministic": deterministic, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )  # fmt: skip
    echo(f"run directory: {run.path}")
    return _fit_and_finish(net, run, config, head, dataset, state, echo, verbose, deterministic)


def _fit_and_finish(
    net: Network,
    run: RunDir,
    config: TrainConfig,
    head: Head,
    dataset: Dataset,
    state: dict[str, Any],
    echo: Echo,
    verbose: int | None,
    deterministic: bool,
) -> TrainResult:
    _quiet_tensorflow()
    import keras
    import tensorflow as tf

    from netdsl.compile import build_model

    seed = int(config.seed)  # type: ignore[arg-type]
    keras.utils.set_random_seed(seed)
    if deterministic:
        # Same seed, same numbers: fixed reduction orders and an ordered tf.data pipeline.
        tf.config.experimental.enable_op_determinism()
    model = build_model(net, check=False)
    scale = input_scaling(net)
    train_data = pipeline(
        dataset.x_train, dataset.y_train, config.batch, head, training=True, augment=config.augment, seed=seed,
        scale=scale,
    )  # fmt: skip
    valid_data = None
    if dataset.x_valid is not None and len(dataset.x_valid):
        valid_data = pipeline(
            dataset.x_valid,
            dataset.y_valid,
            config.batch,
            head,
            training=False,
            augment=config.augment,
            seed=seed,  # type: ignore[arg-type]
            scale=scale,
        )
    steps = math.ceil(len(dataset.y_train) / config.batch)
    rows = run.history()[: int(state.get("epoch", 0))]
    resumed_after = int(state.get("epoch", 0))
    if state:
        echo(f"resuming after epoch {resumed_after} of {config.epochs}")
    if verbose is None:
        verbose = 1 if _is_terminal() else 2
    started = time.perf_counter()
    try:
        status = fit_phases(model, net, run, rows, config, head, train_data, valid_data, steps, state, verbose)
    except Diverged as err:
        _finish_diverged(run, rows, str(err), net, config)
    except KeyboardInterrupt:
        echo(f"\ninterrupted; continue with: netdsl train --resume {run.path}")
        raise
    seconds = time.perf_counter() - started
    run.save_weights(model, "model.weights.h5")
    test_data = pipeline(
        dataset.x_test, dataset.y_test, config.batch, head, training=False, augment=config.augment, seed=seed,
        scale=scale,
    )  # fmt: skip
    test_loss, test_accuracy = model.evaluate(test_data, verbose=0)
    trained_epochs = len(rows) - resumed_after
    metrics = {
        "status": status,
        "epochs": len(rows),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "test_images": len(dataset.y_test),
        "best_val_accuracy": max((r["val_accuracy"] for r in rows if "val_accuracy" in r), default=None),
        "train_seconds": round(seconds, 2),
        "images_per_second": round(len(dataset.y_train) * trained_epochs / seconds, 1) if trained_epochs else None,
        "seed": seed,
    }
    write_json(run.path / "metrics.json", metrics)
    run.plot(rows, f"{net.name} on {dataset.name}")
    if status == "early_stopping":
        echo(f"stopped early after epoch {len(rows)} (no improvement for {config.patience}); best weights kept")
    echo(f"test accuracy: {test_accuracy:.4f} (loss {test_loss:.4f}, {len(dataset.y_test):,} images)")
    echo(f"saved {run.path}/: spec.net config.json history.csv model.weights.h5 metrics.json curves.png")
    return TrainResult(run.path, rows, metrics, dataset.notes)


def _finish_diverged(run: RunDir, rows: list[dict[str, Any]], what: str, net: Network, config: TrainConfig) -> None:
    """Keep the last good epoch's weights as the run's weights, then raise E507."""
    import shutil

    checkpoint = run.state().get("checkpoint")
    kept = "no epoch had finished, so there are no weights to keep"
    if checkpoint:
        shutil.copyfile(run.path / checkpoint, run.path / ".tmp-model.weights.h5")
        os.replace(run.path / ".tmp-model.weights.h5", run.path / "model.weights.h5")
        kept = f"the weights of epoch {len(rows)} are kept in {run.path / 'model.weights.h5'}"
    write_json(run.path / "metrics.json", {"status": "diverged", "epochs": len(rows), "error": what})
    if rows:
        run.plot(rows, f"{net.name} (diverged)")
    raise NetdslError(
        [
            Diagnostic(
                "E507",
                f"training diverged: {what}; {kept}",
                None,
                help=f"lower the learning rate (now lr={config.lr:g}, e.g. --lr {config.lr / 10:g}) "
                "or add batch normalization",
            )
        ],
        Source("", str(run.path)),
    )


def _finished_status(run: RunDir) -> str | None:
    """The `status` of a run's metrics.json ("completed", "early_stopping", "diverged"), if readable."""
    import json

    from netdsl.safeio import read_text

    try:
        return json.loads(read_text(run.path / "metrics.json")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _is_terminal() -> bool:
    import sys

    return bool(getattr(sys.stdout, "isatty", lambda: False)())


# ---------------------------------------------------------------- using a trained run


def load_run(run_dir: str | Path) -> tuple[Network, dict[str, Any], Any]:
    """A finished (or interrupted) run's spec, config and Keras model with its weights."""
    from netdsl import parse

    run = RunDir.open(run_dir)
    config = run.config()
    net = parse(run.spec_text(), name=config.get("name", "model"), file=str(run.path / "spec.net"))
    weights = run.weights_path()
    _quiet_tensorflow()
    from netdsl.compile import build_model
    from netdsl.layers.pretrained import architecture_only

    model = build_model(architecture_only(net))  # the run's weights replace any backbone's: no ImageNet download
    try:
        model.load_weights(str(weights))
    except (ValueError, OSError, KeyError) as err:
        raise run_error(
            f"{weights.name} does not fit the spec in {run.path}: {str(err).splitlines()[0]}",
            run.path,
            help="the weights or spec.net were changed after training; retrain, or restore the files",
        ) from None
    return net, config, model


def evaluate(run_dir: str | Path, data: str | None = None, batch: int | None = None) -> dict[str, Any]:
    """Test loss and accuracy of a run's model on its own data's test split, or on `data`'s."""
    net, config, model = load_run(run_dir)
    head = find_head(net, analyze(net))
    training = TrainConfig.model_validate(config["training"])
    source = data if data is not None else config.get("data")
    dataset = load_dataset(source, net.input_shape or (), classes_hint=head.classes)  # type: ignore[arg-type]
    match_head(head, dataset, net)
    check_labels(dataset, head.classes)
    dataset = adapt(dataset, net.input_shape)  # type: ignore[arg-type]
    if data is None:
        dataset = limit(dataset, config.get("max_images"), int(training.seed or 0))
    x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_train, dataset.y_train)
    compile_model(model, Phase.from_config(training), head, 1)
    test = pipeline(
        x, y, batch or training.batch, head, training=False, augment=Augment(), seed=0, scale=input_scaling(net)
    )
    loss, accuracy = model.evaluate(test, verbose=0)
    return {"data": dataset.name, "images": len(y), "loss": float(loss), "accuracy": float(accuracy)}


def predict(run_dir: str | Path, images: Iterable[str | Path], top: int = 3) -> list[dict[str, Any]]:
    """Top-`top` classes with probabilities for each image file, with the run's model."""
    from netdsl.data import data_error
    from netdsl.data.files import read_image

    paths = [Path(p) for p in images]
    net, config, model = load_run(run_dir)
    head = find_head(net, analyze(net))
    shape = tuple(net.input_shape or ())
    batch = []
    for path in paths:
        if not path.is_file():
            raise data_error("E501", f"no such image: {path}", str(path))
        try:
            image = read_image(path, shape)
        except (OSError, ValueError, SyntaxError) as err:
            raise data_error("E503", f"cannot decode {path}: {err}", str(path)) from None
        if len(shape) == 1:
            if image.size != shape[0]:
                raise data_error(
                    "E509", f"{path} has {image.size:,} values; the spec's input takes {shape[0]:,}", str(path)
                )
            image = image.reshape(shape)
        batch.append(image)
    x = np.asarray(input_scaling(net)(np.stack(batch).astype(np.float32)))
    scores = np.asarray(model.predict(x, verbose=0), np.float64)
    if head.binary:
        positive = 1 / (1 + np.exp(-scores[:, 0])) if head.from_logits else scores[:, 0]
        probabilities = np.stack([1 - positive, positive], axis=1)
    elif head.from_logits:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    else:
        probabilities = scores
    names = config.get("classes") or [str(i) for i in range(probabilities.shape[1])]
    results = []
    for path, row in zip(paths, probabilities):
        order = np.argsort(-row)[: max(1, top)]
        results.append({"image": str(path), "top": [(names[i], float(row[i])) for i in order]})
    return results
