"""The schemas of a run directory's files (config.json, state.json, metrics.json, history.csv's rows).

Every file is validated before any of it is used, so a tampered run directory is one E508 naming the
file and the field, never a traceback further on (issue 14). The models accept what `netdsl train`
writes and what older runs wrote (fields added later are optional); they refuse wrong types, values
out of range, names that do not match the head, paths out of the run, and absurd sizes. Names and paths
may hold any characters (a spec file or class folder can be called anything): everything printed is escaped.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from netdsl.ir import TrainConfig

CHECKPOINT_NAME = re.compile(r"checkpoint-[0-9]+\.weights\.h5")

Count = Annotated[StrictInt, Field(ge=0)]
Fraction = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1)]
Number = StrictInt | StrictFloat
Text = Annotated[str, Field(max_length=4096)]  # paths and names: any characters (printing escapes them), bounded


def spec_hash(text: str) -> str:
    """The SHA-256 of a spec's text, as config.json records it: any edit of spec.net changes it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HeadRecord(BaseModel):
    """The head the run trained: its units and final activation (None: logits)."""

    model_config = ConfigDict(extra="forbid")
    units: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
    activation: Literal["softmax", "sigmoid"] | None = None

    @property
    def classes(self) -> int:
        return 2 if self.units == 1 else self.units


class RunConfig(BaseModel):
    """config.json: what the run trained, on what, and how its inputs were prepared."""

    model_config = ConfigDict(extra="ignore")
    training: TrainConfig
    name: Annotated[str, Field(min_length=1, max_length=255)] = "model"
    spec: Text | None = None
    data: Text | None = None
    max_images: Annotated[StrictInt, Field(ge=1)] | None = None
    input_shape: list[Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]] = Field(default_factory=list, max_length=8)
    classes: list[Annotated[str, Field(max_length=1000)]] | None = Field(None, max_length=1_000_000)
    head: HeadRecord | None = None
    input_scale: Number | None = None
    preprocessing: Text | None = None
    deterministic: StrictBool = False
    created: Text | None = None
    spec_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    spec_id: Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")] | None = None  # netdsl.specid: `netdsl runs --spec-id`
    backend: Literal["tensorflow", "jax", "torch"] | None = None  # netdsl/trainer/backends.py BACKENDS
    devices: StrictInt | str | None = None  # --devices: a count or "all"

    @field_validator("devices")
    @classmethod
    def _a_count_or_all(cls, devices: int | str | None) -> int | str | None:
        if devices is not None and devices != "all" and not (isinstance(devices, int) and 1 <= devices <= 2**20):
            raise ValueError("a positive number of devices or 'all'")
        return devices

    @model_validator(mode="after")
    def _classes_fit_the_head(self) -> RunConfig:
        if self.head is not None and self.classes is not None and len(self.classes) != self.head.classes:
            raise ValueError(f"classes lists {len(self.classes)} names but the head has {self.head.classes} classes")
        return self


class RunState(BaseModel):
    """state.json: the last finished epoch and the checkpoint holding its weights, written after it."""

    model_config = ConfigDict(extra="forbid")
    epoch: Count = 0
    phase: Annotated[StrictInt, Field(ge=1)] = 1
    wait: Count = 0
    best: Number = float("inf")
    stopped_early: StrictBool = False
    checkpoint: Annotated[str, Field(pattern=CHECKPOINT_NAME.pattern + "$")] | None = None


class RunMetrics(BaseModel):
    """metrics.json: how the run ended and what it measured."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    status: Literal["completed", "early_stopping", "diverged"]
    epochs: Count
    test_accuracy: Fraction | None = None  # `netdsl runs` lists these three: a tampered one is damage, not a row
    best_val_accuracy: Fraction | None = None
    train_seconds: Annotated[Number, Field(ge=0)] | None = None


class HistoryRow(BaseModel):
    """One row of history.csv: an epoch's numbers (absent cells are absent keys)."""

    model_config = ConfigDict(extra="forbid")
    epoch: Annotated[StrictInt, Field(ge=1)]
    phase: Annotated[StrictInt, Field(ge=1)] = 1
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float | None = None
    seconds: float | None = None


def problem(err: ValidationError, prefix: str = "") -> str:
    """The first validation error as `field is not valid: why (got x)`, or `field has the wrong type (x)`."""
    first = err.errors(include_url=False)[0]
    where = ".".join([*([prefix] if prefix else []), *map(str, first["loc"])])
    received = first.get("input")
    shown = repr(received) if len(repr(received)) <= 200 else repr(received)[:200] + "..."
    if first["type"] == "model_type" and not first["loc"]:
        return "not a JSON object"
    if first["type"].endswith("_type") and first["loc"]:
        return f"{where} has the wrong type ({shown})"
    if not where:
        return first["msg"].removeprefix("Value error, ")
    return f"{where} is not valid: {first['msg'].removeprefix('Value error, ')} (got {shown})"


def check_epochs(rows: list[dict[str, Any]]) -> str | None:
    """What is wrong with the history's epoch numbers (they must be 1, 2, ..., n), or None."""
    epochs = [row["epoch"] for row in rows]
    if epochs == list(range(1, len(epochs) + 1)):
        return None
    shown = ", ".join(map(str, epochs[:20])) + (", ..." if len(epochs) > 20 else "")
    return f"its epochs are {shown}: an epoch is missing or repeated"
