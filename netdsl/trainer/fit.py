"""The fit loops: one phase on one model (`fit_phase`), and the spec's phases in order with each one's
freezing applied between them (`fit_phases`), all on one history numbered across phases."""

from __future__ import annotations

from typing import Any

from netdsl.ir import Network, TrainConfig
from netdsl.runs import RunDir, run_error
from netdsl.trainer.callbacks import Diverged, recorder_class
from netdsl.trainer.config import Phase, phase_sequence
from netdsl.trainer.head import Head
from netdsl.trainer.optimize import compile_model
from netdsl.transfer import phase_freezings


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
    jit: bool | str = "auto",
    extra_callbacks: list[Any] | None = None,
) -> str:
    """Train one phase that starts at global epoch `first_epoch` (0-based, counted across phases)
    and lasts `phase.epochs` epochs.

    Compiles `model` with the phase's optimizer. If `state` (a run's state.json) names a checkpoint
    of this phase, its weights and optimizer state are restored and training continues after its
    epoch (a resumed run). Returns "completed" or "early_stopping"; raises Diverged on a NaN loss.
    `rows` (the whole history, all phases) grows in place and is rewritten to history.csv. `jit` and
    `extra_callbacks` (TensorBoard's) come from the run's speed switches (netdsl/trainer/speed.py)."""
    import keras

    compile_model(model, phase, head, steps_per_epoch, jit)
    state = state if state and state.get("phase") == phase.number else {}
    if state.get("checkpoint"):
        model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(str(run.regular(run.path / state["checkpoint"])))
        except (ValueError, OSError, KeyError) as err:
            raise run_error(f"cannot restore {state['checkpoint']}: {err}", run.path) from None
    start = int(state.get("epoch", first_epoch))
    recorder = recorder_class(keras)(run, rows, phase, state)
    if start < first_epoch + phase.epochs and not state.get("stopped_early"):
        model.fit(
            train_data,
            validation_data=valid_data,
            epochs=first_epoch + phase.epochs,
            initial_epoch=start,
            callbacks=[recorder, recorder.nan, *(extra_callbacks or [])],
            shuffle=False,  # the pipeline shuffles (seeded); Keras cannot shuffle a tf.data.Dataset
            verbose=verbose,
        )
    if recorder.diverged:
        epoch, batch = recorder.diverged
        raise Diverged(f"the loss became NaN at epoch {epoch}, batch {batch}")
    if recorder.stopped_early or state.get("stopped_early"):
        if (run.path / "best.weights.h5").exists():
            model.load_weights(str(run.regular(run.path / "best.weights.h5")))  # a FIFO would block h5py
        return "early_stopping"
    return "completed"


def fit_phases(
    model: Any, net: Network, run: RunDir, rows: list[dict[str, Any]], config: TrainConfig, head: Head,
    train_data: Any, valid_data: Any | None, steps_per_epoch: int, state: dict[str, Any], verbose: int,
    jit: bool | str = "auto", extra_callbacks: list[Any] | None = None,
) -> str:  # fmt: skip
    """The spec's `phase` lines in order (or the `train` line as one phase) on one model and one history.

    Before each phase its freezing is applied to `model.layers` (as the seed sets `layer.trainable`
    between its two fits); `fit_phase` then compiles with the phase's optimizer, so the new trainable
    set and learning rate take effect. A resumed run skips the phases its state.json has finished."""
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
            first_epoch=first_epoch, state=state, verbose=verbose, jit=jit, extra_callbacks=extra_callbacks,
        )  # fmt: skip
        first_epoch += phase.epochs
    return status
