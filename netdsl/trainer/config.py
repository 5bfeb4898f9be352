"""A run's configuration: the spec's training section with the caller's overrides (`resolve_config`), and its
phases, each one stretch of training with one optimizer (`phase_sequence`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Augment, TrainConfig


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
