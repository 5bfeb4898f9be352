"""The per-epoch callbacks of `model.fit`: a history row, history.csv, a checkpoint and early stopping after
each finished epoch, and a stop at the first non-finite loss. Defined late (`recorder_class(keras)`),
because Keras is imported only when training."""

from __future__ import annotations

import math
import time
from typing import Any

from netdsl.runs import RunDir
from netdsl.trainer.config import Phase


class Diverged(Exception):
    """The loss became NaN or infinite; the last good epoch's weights are kept."""


def stop_on_nan_class(keras: Any) -> type:
    """The callback that stops at the first non-finite batch loss (defined late, like the recorder)."""

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

    return StopOnNaN


def recorder_class(keras: Any) -> type:
    """The per-epoch callback class (defined late: Keras is imported only when training)."""
    StopOnNaN = stop_on_nan_class(keras)

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

    return RunRecorder
