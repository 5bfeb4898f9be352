"""The directives: statements that configure rather than add a layer (`input`, `train`, `augment`, `phase`,
`output`, `assert`), registered in one table as layers register themselves, so lowering, `netdsl layers`
and the did-you-mean list all read it. The handlers are a mixin of lowering's `_Lowering`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netdsl.ir import OPTIMIZERS, SCHEDULES, Augment, Command, PhaseConfig, TrainConfig
from netdsl.layers.base import Syntax

TRAIN_SYNTAX = Syntax(
    flags={
        **{name: ("optimizer", name) for name in OPTIMIZERS},
        **{name: ("schedule", name) for name in SCHEDULES},
    },
    aliases={
        "learning_rate": "lr", "batch_size": "batch", "smoothing": "label_smoothing",
        "early_stopping": "patience", "wd": "weight_decay", "validation_split": "validation", "val": "validation",
    },
    example="train adam lr=0.01 batch=256 epochs=10",
)  # fmt: skip
AUGMENT_SYNTAX = Syntax(
    flags={"flip": ("flip", True), "hflip": ("flip", True), "vflip": ("vflip", True)},
    aliases={"rotate": "rotation", "horizontal_flip": "flip", "vertical_flip": "vflip"},
    example="augment shift=0.1 flip",
)  # fmt: skip
PHASE_SYNTAX = Syntax(
    positional=("epochs",),
    flags={
        **{name: ("optimizer", name) for name in OPTIMIZERS},
        **{name: ("schedule", name) for name in SCHEDULES},
        "frozen": ("freeze", "all"), "trainable": ("freeze", "none"),
    },
    below=("freeze",),
    aliases={"learning_rate": "lr"},
    example="phase epochs=3 rmsprop lr=1e-4 freeze<142",
)  # fmt: skip


@dataclass(frozen=True)
class Directive:
    """A statement that configures rather than adds a layer: registered here as layers register themselves,
    so lowering, `netdsl layers` and the did-you-mean list all read one table."""

    word: str
    method: str  # the _Lowering method that handles it
    example: str
    summary: str
    top_level: bool = True  # refused inside repeat, a branch or a block (E208)


DIRECTIVES: dict[str, Directive] = {}


def register_directive(directive: Directive) -> Directive:
    DIRECTIVES[directive.word] = directive
    return directive


for _directive in (
    Directive(
        "input",
        "input",
        "input 32x32x3  |  input 200 int  |  input 10 as meta",
        "the input shape (several, each named, for several inputs)",
    ),
    Directive("train", "directive", TRAIN_SYNTAX.example, "training defaults; the CLI overrides them"),
    Directive("augment", "directive", AUGMENT_SYNTAX.example, "training-time augmentation"),
    Directive("phase", "phase", PHASE_SYNTAX.example, "one training phase (docs/transfer.md)"),
    Directive("output", "output", "output logits boxes", "the named tensors the model returns"),
    Directive("assert", "budget", "assert params < 2M", "a budget that check and train hold the network to"),
):
    register_directive(_directive)


class DirectiveStatements:
    """The handlers of `input`, `train`/`augment` and `phase` (`output` and `assert` live with the graph
    and budget statements)."""

    def input(self, cmd: Command, env: dict[str, Any]) -> None:
        """`input 32x32x3`, `input 200 int` (token ids), `input 10 as meta` (one of several inputs)."""
        if self.layers:
            self.error("E206", "input must come before the first layer", cmd.span)
            return
        dtypes = {"int": "int32", "float": "float32"}
        flags = [
            a for a in cmd.args if a.key is None and not a.quoted and isinstance(a.value, str) and a.value in dtypes
        ]
        args = [a for a in cmd.args if a not in flags]
        values = [self.resolve(a, env) for a in args if a.key is None]
        if len(args) != 1 or len(values) != 1 or len(flags) > 1:
            self.error("E206", "input takes one shape, such as `input 32x32x3` (and `int` for token ids)", cmd.span)
            return
        shape = values[0]
        shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
        if not isinstance(shape, tuple) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            self.error(
                "E206",
                f"input: expected a shape of positive sizes such as 32x32x3, got {args[0].text()}",
                args[0].span,
            )
            return
        dtype = dtypes[flags[0].value] if flags else "float32"
        if self.input_shape is not None:
            return self.extra_input(cmd, shape, dtype)
        self.input_shape, self.input_span, self.input_dtype = shape, cmd.span, dtype
        if cmd.alias is not None:
            self.input_name = self.scopes.bind(cmd.alias, cmd.alias_span)

    def directive(self, cmd: Command, env: dict[str, Any]) -> None:
        model, syntax, target = (
            (TrainConfig, TRAIN_SYNTAX, self.train) if cmd.word == "train" else (Augment, AUGMENT_SYNTAX, self.augment)
        )
        fields = [f for f in model.model_fields if f not in ("augment", "phases")]
        bound = self.bind(cmd.word, syntax, fields, cmd.args, env)
        if bound is None:
            return
        values, spans = bound
        for field, _value in values.items():
            if field in target:
                self.error("E204", f"{cmd.word}: {field} is given twice", spans[field])
                return
        if self.validate(cmd.word, model, {**target, **values}, spans, cmd.span, syntax.example) is not None:
            target.update(values)

    def phase(self, cmd: Command, env: dict[str, Any]) -> None:
        """`phase epochs=3 rmsprop lr=1e-4 freeze<142`: one more stretch of training, in the order written."""
        fields = [f for f in PhaseConfig.model_fields if f != "span"]
        bound = self.bind(cmd.word, PHASE_SYNTAX, fields, cmd.args, env)
        if bound is None:
            return
        values, spans = bound
        data = {**values, "span": cmd.span}
        phase = self.validate(cmd.word, PhaseConfig, data, spans, cmd.span, PHASE_SYNTAX.example)
        if phase is not None:
            self.phases.append(phase)  # type: ignore[arg-type]
