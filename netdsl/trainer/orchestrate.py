"""`netdsl train` as a library call, from spec to finished run directory.

A run goes: spec -> analysis (the summary a user sees first) -> head (which loss) -> data (loaded,
adapted, checked against the head, split) -> run directory -> `fit_phases` -> test metrics, final
weights, curves. Data problems and head/data mismatches are raised as located NetdslErrors before
TensorFlow is even imported.
"""

from __future__ import annotations

import math
import secrets
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdsl.data import Dataset, limit, split_validation
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network, TrainConfig
from netdsl.runfiles import spec_hash
from netdsl.runs import TAMPERED, RunDir, atomic_write, new_run_dir, run_error, write_json, write_text
from netdsl.spec import SpecLike, as_network
from netdsl.specid import spec_id
from netdsl.trainer.backends import Backend, active, choose
from netdsl.trainer.callbacks import Diverged
from netdsl.trainer.config import resolve_config
from netdsl.trainer.curves import plot_curves
from netdsl.trainer.distribute import Cluster, Parallel, before_import, check_splits, on_resume, parallel_error, setup
from netdsl.trainer.fit import fit_phases
from netdsl.trainer.head import Head, find_head, load_for, refuse_several_inputs_or_outputs
from netdsl.trainer.pipeline import check_options, input_scale, input_scaling, pipeline, preprocessing_name
from netdsl.trainer.speed import Speed
from netdsl.trainer.speed import apply as apply_speed
from netdsl.trainer.speed import callbacks as speed_callbacks
from netdsl.transfer import analyze, build_model, resolve

Echo = Callable[[str], None]


@dataclass
class TrainResult:
    """What `netdsl.train` returns: where the run is and what it measured."""

    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class Settings:
    """Everything a run trains with, from a new spec and options or from a run being resumed."""

    net: Network
    config: TrainConfig
    data: str | None
    max_images: int | None
    deterministic: bool
    state: dict[str, Any]
    run: RunDir | None = None  # set when resuming
    backend: Backend | None = None  # the Keras backend chosen for this process (netdsl/trainer/backends.py)
    devices: int | str | None = None  # --devices: a count, "all", or None for one device
    cluster: Cluster | None = None  # --coordinator/--processes/--process-id
    replicas: int = 1  # the devices each batch is split over, once they are set up
    speed: Speed = field(default_factory=Speed)  # --precision, --jit, --tensorboard (netdsl/trainer/speed.py)

    @property
    def seed(self) -> int:
        return int(self.config.seed)  # type: ignore[arg-type]


def prepare_data(
    source: str | None, net: Network, head: Head, config: TrainConfig, seed: int, max_images: int | None
) -> Dataset:
    """Load, adapt to the input, check against the head, cap and split: all before any training."""
    data = load_for(net, head, source)
    data = limit(data, max_images, seed)
    data = split_validation(data, config.validation, seed)
    if len(data.y_test) == 0 and data.x_valid is not None:
        data.x_test, data.y_test = data.x_valid, data.y_valid  # type: ignore[assignment]
        data.notes.append("no test split: the final accuracy is measured on the validation split")
    if data.classes is None:
        data.classes = tuple(str(i) for i in range(head.classes))
    return data


def resumed_settings(run: RunDir) -> Settings:
    """A run to continue, with its own spec, data and configuration; E508 if it finished or is damaged."""
    run.discard_partial_writes()
    saved = run.config()
    net = run.network()
    config = TrainConfig.model_validate(saved["training"])
    metrics = run.metrics()
    if metrics is not None:
        if metrics["status"] == "diverged":
            raise run_error(
                f"{run.path} diverged (NaN loss); resuming would diverge again", run.path,
                help="start a new run with a lower --lr",
            )  # fmt: skip
        raise run_error(f"{run.path} has already finished", run.path, help="start a new run to train longer (--epochs)")
    if not (run.path / "state.json").exists():  # written when the run starts: restarting would overwrite history
        raise run_error(f"{run.path} has no state.json, so where it stopped is unknown", run.path, help=TAMPERED)
    state = run.state()
    rows = run.history()  # a tampered history.csv fails here (E508), before any data is read or TensorFlow loads
    if len(rows) < int(state.get("epoch", 0)):
        raise run_error(f"{run.path}: state.json says {state['epoch']} epochs finished but history.csv has "
                        f"{len(rows)}", run.path, help=TAMPERED)  # fmt: skip
    return Settings(net, config, saved.get("data"), saved.get("max_images"), bool(saved.get("deterministic")),
                    state, run)  # fmt: skip


def new_settings(spec: SpecLike | None, data: str | None, max_images: int | None, overrides: dict) -> Settings:
    """A new run of `spec` with the caller's overrides; a fresh seed unless one is given."""
    if spec is None:
        raise NetdslError([Diagnostic("E001", "no spec to train")], Source("", "<arguments>"))
    net = as_network(spec)
    refuse_several_inputs_or_outputs(net)
    config = resolve_config(net.training, overrides)
    deterministic = config.seed is not None  # an explicit seed asks for repeatable runs
    if config.seed is None:
        config = config.model_copy(update={"seed": secrets.randbelow(2**31)})
    return Settings(net, config, data, max_images, deterministic, {})


def train(
    spec: SpecLike | None = None,
    data: str | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    max_images: int | None = None,
    echo: Echo = print,
    verbose: int | None = None,
    backend: str | None = None,
    devices: int | str | None = None,
    cluster: Cluster | None = None,
    speed: Speed | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a spec (a path, text or Network) and write a run directory; return its results.

    `overrides` are TrainConfig fields (`epochs=3`, `lr=0.1`, `seed=1`, `augment={"flip": False}`)
    that replace the spec's training section. `resume` continues an interrupted run from its last
    finished epoch with the run's own spec, data and configuration. `verbose`: Keras's progress
    (1 a bar, 2 a line per epoch, 0 none); by default a bar on a terminal, else lines. `backend`:
    tensorflow, jax or torch (default: KERAS_BACKEND, else tensorflow), chosen before Keras is imported;
    `devices` (a count or "all") and `cluster` train data-parallel (netdsl/trainer/distribute.py);
    `speed`: mixed precision, XLA and TensorBoard logs (netdsl/trainer/speed.py). A resumed run continues
    on its own backend and devices unless others are asked for (`distribute.on_resume`).

    A run is locked while it trains (a second `--resume` of it is refused), and a new run's directory
    is created only once its model and data are ready, and removed again if training fails before
    its first epoch: a failed start never leaves a directory that blocks that `--out`."""
    with ExitStack() as held:
        settings = _settings(held, (spec, data, max_images, overrides), resume, backend, devices, cluster, echo)
        settings.speed = speed or Speed()
        out = process_out(out, settings)
        net, head, dataset = _prepare(settings, echo)
        parallel = _parallel(settings, echo)
        if parallel is not None:  # the model is built, compiled, fit and tested in the distribution's scope
            check_splits(parallel, {name: len(y) for name, (_, y) in dataset.splits().items()})
            settings.replicas = len(parallel.devices)
            held.enter_context(parallel.scope())
        held.enter_context(warnings.catch_warnings())
        # Sharded over processes, a dataset's length is unknown to Keras, which warns at each epoch's end
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        session = Session.build(net, settings, head, dataset)
        if settings.run is not None:
            echo(f"run directory: {settings.run.path}")
            return _fit_and_finish(net, settings.run, settings, head, dataset, session, echo, verbose)
        run = start_run(net, settings, head, dataset, out)
        held.enter_context(run.training_lock())
        echo(f"run directory: {run.path}")
        try:
            return _fit_and_finish(net, run, settings, head, dataset, session, echo, verbose)
        except (Exception, KeyboardInterrupt) as err:
            if not _started(run, err):
                shutil.rmtree(run.path, ignore_errors=True)
            raise


def _settings(
    held: ExitStack, new: tuple[SpecLike | None, str | None, int | None, dict], resume: str | Path | None,
    backend: str | None, devices: int | str | None, cluster: Cluster | None, echo: Echo,
) -> Settings:  # fmt: skip
    """A new run's settings (`new`: spec, data, max_images, overrides), or a resumed run's, locked in `held`
    while it trains and by default on its own backend and devices; the backend is chosen first (loading a
    Keras data set imports Keras) and the devices prepared before Keras is imported."""
    run = RunDir.open(resume) if resume is not None else None
    continues = ""
    if run is not None:
        backend, devices, continues = on_resume(run.config(), backend, devices)
    engine = choose(backend)
    before_import(engine, devices, cluster)
    if run is not None:
        held.enter_context(run.training_lock())
        settings = resumed_settings(run)
        echo(continues)
    else:
        settings = new_settings(*new)
    settings.backend, settings.devices, settings.cluster = engine, devices, cluster
    return settings


def process_out(out: str | Path | None, settings: Settings) -> str | Path | None:
    """Where this process writes its run: process 0 the run itself, the others a copy of their own
    beside it (`RUN.process1`), so that processes sharing a file system never write one file twice.
    Every process needs the same seed (the same initial weights), E526 otherwise."""
    cluster = settings.cluster
    if cluster is not None and not settings.deterministic:
        raise parallel_error(
            "training on several processes needs the same --seed in every process (the same initial weights)",
            help="add e.g. --seed 1 to every process's command",
        )
    if cluster is None or cluster.process_id == 0:
        return out
    if out is not None:
        return f"{out}.process{cluster.process_id}"
    return Path("runs") / f"{settings.net.name}-{time.strftime('%Y%m%d-%H%M%S')}.process{cluster.process_id}"


def _parallel(settings: Settings, echo: Echo) -> Parallel | None:
    """Keras on the chosen backend, then the devices (and cluster) it trains on, as the console says."""
    backend = active(settings.backend.name if settings.backend else None)
    parallel = setup(backend, settings.devices, settings.cluster, settings.config.batch)  # before any computation
    echo(f"backend: {backend.name}")
    if parallel is not None:
        echo(parallel.describe(settings.config.batch))
    for line in apply_speed(
        settings.speed, backend.name, settings.deterministic
    ):  # the dtype policy, before the model is built
        echo(line)
    if settings.cluster is not None:
        echo(f"several processes: each split is used in whole batches of {settings.config.batch}; "
             "a last partial batch is left out")  # fmt: skip
    return parallel


def _prepare(settings: Settings, echo: Echo) -> tuple[Network, Head, Dataset]:
    """The analysis a user sees first, the head, and the data loaded and checked against it."""
    from netdsl.render import summary_table

    net = resolve(settings.net)
    report = analyze(net)
    echo(summary_table(report, spec_id=spec_id(net)))  # the id `netdsl runs --spec-id` finds this run by
    head = find_head(net, report)
    check_options(net, head, settings.config)
    dataset = prepare_data(settings.data, net, head, settings.config, settings.seed, settings.max_images)
    for note in dataset.notes:
        echo(note)
    echo(f"data: {dataset.name}: {dataset.sizes()}")
    return net, head, dataset


def _started(run: RunDir, err: BaseException) -> bool:
    """Whether a failed new run is worth keeping: an epoch finished (resumable), it diverged (E507 says
    so in its metrics), or it was interrupted (the message says how to resume it)."""
    if isinstance(err, KeyboardInterrupt) or (run.path / "metrics.json").exists():
        return True
    try:
        return int(run.state().get("epoch", 0)) > 0
    except NetdslError:
        return True


def start_run(net: Network, settings: Settings, head: Head, dataset: Dataset, out: str | Path | None) -> RunDir:
    """A new run directory holding the spec as trained and the resolved configuration."""
    run = RunDir(new_run_dir(net.name, out))
    try:
        write_text(run.path / "spec.net", net.source)
        write_json(run.path / "state.json", {"epoch": 0, "phase": 1})  # --resume tells a started run from a damaged one
        write_json(
            run.path / "config.json",
            {
                "name": net.name, "spec": net.file, "spec_id": spec_id(net), "data": settings.data,
                "max_images": settings.max_images, "training": settings.config.model_dump(), "input_shape": list(net.input_shape or ()),
                "classes": list(dataset.classes or ()), "head": {"units": head.units, "activation": head.activation},
                "input_scale": input_scale(net), "preprocessing": preprocessing_name(net),
                "deterministic": settings.deterministic, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "spec_sha256": spec_hash(net.source),
                "backend": settings.backend.name if settings.backend else None, "devices": settings.devices,
                "processes": settings.cluster.processes if settings.cluster else 1,
                "speed": settings.speed.record(),
            },
        )  # fmt: skip
    except NetdslError:
        shutil.rmtree(run.path, ignore_errors=True)
        raise
    return run


@dataclass
class Session:
    """The model and its input pipelines, built before any run directory exists (a backbone's weights that
    cannot be fetched, or a model Keras refuses, fail here and leave nothing behind)."""

    model: Any
    batches: Callable[[Any, Any, bool], Any]
    train_data: Any
    valid_data: Any | None
    steps: int

    @classmethod
    def build(cls, net: Network, settings: Settings, head: Head, dataset: Dataset) -> Session:
        config, seed = settings.config, settings.seed
        backend = active(settings.backend.name if settings.backend else None)
        backend.seed(seed, settings.deterministic)
        model = build_model(net, check=False)
        scale = input_scaling(net)

        def batches(x: Any, y: Any, training: bool, epochs_done: int = 0) -> Any:
            return pipeline(x, y, config.batch, head, training=training, augment=config.augment, seed=seed,
                            scale=scale, backend=backend, sharded=settings.cluster is not None,
                            epochs_done=epochs_done, replicas=settings.replicas)  # fmt: skip

        has_valid = dataset.x_valid is not None and len(dataset.x_valid)
        return cls(
            model, batches, batches(dataset.x_train, dataset.y_train, True, int(settings.state.get("epoch", 0))),
            batches(dataset.x_valid, dataset.y_valid, False) if has_valid else None,
            math.ceil(len(dataset.y_train) / config.batch),
        )  # fmt: skip


def _fit_and_finish(
    net: Network, run: RunDir, settings: Settings, head: Head, dataset: Dataset, session: Session, echo: Echo,
    verbose: int | None,
) -> TrainResult:  # fmt: skip
    """Fit every phase, then test and write the final weights, metrics and curves."""
    config, state, model = settings.config, settings.state, session.model
    resumed_after = int(state.get("epoch", 0))
    rows = run.history()[:resumed_after]
    if settings.run is not None:
        echo(f"resuming after epoch {resumed_after} of {config.epochs}")
    if verbose is None:
        verbose = 1 if bool(getattr(sys.stdout, "isatty", lambda: False)()) else 2
    started = time.perf_counter()
    try:
        status = fit_phases(model, net, run, rows, config, head, session.train_data, session.valid_data,
                            session.steps, state, verbose, jit=True if settings.speed.jit else "auto",
                            extra_callbacks=speed_callbacks(settings.speed, run.path))  # fmt: skip
    except Diverged as err:
        _finish_diverged(run, rows, str(err), net, config)
    except KeyboardInterrupt:
        echo(f"\ninterrupted; continue with: netdsl train --resume {run.path}")
        raise
    seconds = time.perf_counter() - started
    run.save_weights(model, "model.weights.h5")
    test_loss, test_accuracy = model.evaluate(session.batches(dataset.x_test, dataset.y_test, False), verbose=0)
    tested = len(dataset.y_test) - (len(dataset.y_test) % config.batch if settings.cluster is not None else 0)
    trained = len(dataset.y_train) * (len(rows) - resumed_after)
    metrics = {
        "status": status, "epochs": len(rows), "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
        "test_images": tested,
        "best_val_accuracy": max((r["val_accuracy"] for r in rows if "val_accuracy" in r), default=None),
        "train_seconds": round(seconds, 2), "images_per_second": round(trained / seconds, 1) if trained else None,
        "seed": settings.seed,
    }  # fmt: skip
    write_json(run.path / "metrics.json", metrics)
    plot_curves(run, rows, f"{net.name} on {dataset.name}")
    if status == "early_stopping":
        echo(f"stopped early after epoch {len(rows)} (no improvement for {config.patience}); best weights kept")
    echo(f"test accuracy: {test_accuracy:.4f} (loss {test_loss:.4f}, {tested:,} images)")
    echo(f"saved {run.path}/: spec.net config.json history.csv model.weights.h5 metrics.json curves.png")
    return TrainResult(run.path, rows, metrics, dataset.notes)


def _finish_diverged(run: RunDir, rows: list[dict[str, Any]], what: str, net: Network, config: TrainConfig) -> None:
    """Keep the last good epoch's weights as the run's weights, then raise E507."""
    checkpoint = run.state().get("checkpoint")
    kept = "no epoch had finished, so there are no weights to keep"
    if checkpoint:
        atomic_write(run.path / "model.weights.h5", lambda temporary: shutil.copyfile(run.path / checkpoint, temporary))
        kept = f"the weights of epoch {len(rows)} are kept in {run.path / 'model.weights.h5'}"
    write_json(run.path / "metrics.json", {"status": "diverged", "epochs": len(rows), "error": what})
    if rows:
        plot_curves(run, rows, f"{net.name} (diverged)")
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
