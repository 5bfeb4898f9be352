"""What a phase compiles with: its optimizer, learning-rate schedule, loss and metric (Keras 3, any backend).

OPTIMIZER_BUILDERS and SCHEDULE_BUILDERS are keyed by the names `netdsl.ir` spells once (OPTIMIZERS,
SCHEDULES); a test checks that they cover exactly those names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netdsl.trainer.config import Phase
from netdsl.trainer.head import Head


def _step(schedules: Any, phase: Phase, total: int) -> Any:
    """x0.1 at 50% and 75% of the steps."""
    return schedules.PiecewiseConstantDecay(
        [int(total * 0.5), int(total * 0.75)], [phase.lr, phase.lr * 0.1, phase.lr * 0.01]
    )


def _onecycle(schedules: Any, phase: Phase, total: int) -> Any:
    """Linear warm-up from lr/25 to lr over the first 30% of the steps, then cosine decay to lr/25,000 (Smith's)."""
    warmup = max(1, int(total * 0.3))
    return schedules.CosineDecay(
        phase.lr / 25, decay_steps=max(1, total - warmup), alpha=1e-3, warmup_target=phase.lr, warmup_steps=warmup
    )


SCHEDULE_BUILDERS: dict[str, Callable[[Any, Phase, int], Any]] = {
    # schedule name -> (keras.optimizers.schedules, phase, total optimizer steps) -> learning rate
    "constant": lambda schedules, phase, total: phase.lr,
    "step": _step,
    "cosine": lambda schedules, phase, total: schedules.CosineDecay(phase.lr, decay_steps=total),
    "onecycle": _onecycle,
}

OPTIMIZER_BUILDERS: dict[str, Callable[[Any, Any, Phase], Any]] = {
    # optimizer name -> (keras, learning rate, phase) -> optimizer; weight decay is Keras's decoupled one
    "adam": lambda keras, lr, phase: keras.optimizers.Adam(lr, weight_decay=phase.weight_decay or None),
    "adamw": lambda keras, lr, phase: keras.optimizers.AdamW(lr, weight_decay=phase.weight_decay or 0.004),
    "sgd": lambda keras, lr, phase: keras.optimizers.SGD(
        lr, momentum=phase.momentum, weight_decay=phase.weight_decay or None
    ),
    "rmsprop": lambda keras, lr, phase: keras.optimizers.RMSprop(lr, weight_decay=phase.weight_decay or None),
}


def learning_rate(keras: Any, phase: Phase, steps_per_epoch: int) -> Any:
    """The phase's learning rate as a float or a Keras schedule over the phase's optimizer steps
    (step: x0.1 at 50% and 75%; cosine: decay to 0; onecycle: Smith's one-cycle)."""
    total = max(1, phase.epochs * steps_per_epoch)
    return SCHEDULE_BUILDERS[phase.schedule](keras.optimizers.schedules, phase, total)


def make_optimizer(keras: Any, phase: Phase, steps_per_epoch: int) -> Any:
    """adam, adamw, sgd (with momentum) or rmsprop, at the phase's learning rate or schedule."""
    return OPTIMIZER_BUILDERS[phase.optimizer](keras, learning_rate(keras, phase, steps_per_epoch), phase)


def loss_and_metric(keras: Any, head: Head, label_smoothing: float) -> tuple[Any, Any]:
    """softmax -> categorical cross-entropy (sparse over the last axis per pixel: the metric is then pixel
    accuracy), one sigmoid unit -> binary (per pixel too); logits when no activation."""
    if head.binary:
        loss = keras.losses.BinaryCrossentropy(from_logits=head.from_logits, label_smoothing=label_smoothing)
        return loss, keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if head.from_logits else 0.5)
    if head.per_pixel:  # check_options refused label smoothing: the sparse loss has none
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=head.from_logits)
        return loss, keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    loss = keras.losses.CategoricalCrossentropy(from_logits=head.from_logits, label_smoothing=label_smoothing)
    return loss, keras.metrics.CategoricalAccuracy(name="accuracy")


def compile_model(model: Any, phase: Phase, head: Head, steps_per_epoch: int, jit: bool | str = "auto") -> None:
    """Compile `model` for one phase (a new phase means a new optimizer); `jit`: Keras's jit_compile
    ("auto" is Keras's own choice; True forces XLA, `--jit`)."""
    import keras

    loss, metric = loss_and_metric(keras, head, phase.label_smoothing)
    model.compile(optimizer=make_optimizer(keras, phase, steps_per_epoch), loss=loss, metrics=[metric], jit_compile=jit)
