"""Surface program -> Network: resolve variables, expand `repeat`, bind arguments to layer fields.

Binding is declarative: each layer (and directive) says in its `Syntax` which words, prefixes and
positions fill which fields, and Pydantic validates the result. Errors from every statement are
collected, so one run reports all the independent mistakes of a file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from netdsl.diagnostics import Diagnostic, NetdslError, Source, did_you_mean
from netdsl.ir import (
    OPTIMIZERS,
    SCHEDULES,
    WORDS,
    Argument,
    Augment,
    Command,
    Layer,
    Network,
    PhaseConfig,
    Repeat,
    Span,
    Statement,
    TrainConfig,
)
from netdsl.layers.base import Syntax

MAX_LAYERS = 250_000
"""Most statements a program may expand to. The analyzer is linear (about 20 us and 1.5 KB per
Keras layer), so this keeps `netdsl check` within seconds and a few hundred MB; docs/limits.md."""
MAX_ERRORS = 50
"""Errors reported per file: enough to act on, and a bound on the work a hostile spec can cause."""
MAX_DEPTH = 100
"""Deepest nesting of `repeat`: lowering recurses once per level, far below Python's stack limit."""

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
DIRECTIVES = ("input", "train", "augment", "phase")

_PREFIXED = re.compile(r"([a-z]+)([0-9]+(?:x[0-9]+)*)")


class _Lowering:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.reported: set[Diagnostic] = set()
        self.layers: list[Layer] = []
        self.input_shape: tuple[int, ...] | None = None
        self.input_span: Span | None = None
        self.train: dict[str, Any] = {}
        self.augment: dict[str, Any] = {}
        self.phases: list[PhaseConfig] = []
        self.cache: dict[tuple, Layer | None] = {}
        self.statements = 0  # statements expanded so far, layers and directives

    def error(self, code: str, message: str, span: Span | None, help: str | None = None) -> None:
        diagnostic = Diagnostic(code, message, span, help=help)
        if diagnostic in self.reported:  # a statement inside `repeat 3 [...]` is reported once, not 3 times
            return
        self.reported.add(diagnostic)
        self.diagnostics.append(diagnostic)
        if len(self.diagnostics) >= MAX_ERRORS:  # enough to act on; one statement can hold 500,000 bad arguments
            raise _Stop

    # ------------------------------------------------------------ values

    def resolve(self, arg: Argument, env: dict[str, Any]) -> Any:
        if isinstance(arg.value, str) and not arg.quoted and arg.value in env:
            return env[arg.value]
        return arg.value

    def bind(
        self, word: str, syntax: Syntax, fields: Sequence[str], args: Sequence[Argument], env: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Span]] | None:
        """Arguments -> {field: value}, by the syntax's declarations; None after an error."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        positional = list(syntax.positional)
        sequence_field, sequence_words = syntax.sequence or ("", frozenset())
        sequence: list[str] = []
        options: dict[int, list[Argument]] = {}  # sequence item -> the `key=value` written right after it
        ok = True
        open_item: int | None = None  # the sequence item that options written right after it belong to

        def put(field: str, value: Any, span: Span) -> bool:
            if field in values:
                self.error(
                    "E204", f"{word}: {field} is given twice", span, help=f"first given at column {spans[field].column}"
                )
                return False
            values[field], spans[field] = value, span
            return True

        keywords = [f for f in fields if f not in ("kind", "span", sequence_field)]
        for arg in args:
            value = self.resolve(arg, env)
            key = syntax.aliases.get(arg.key, arg.key) if arg.key is not None else None
            if open_item is not None and arg.op == "=" and key not in keywords:
                options[open_item].append(arg)  # `conv 32 bn momentum=.9`: the bn's own option
                continue
            open_item = None
            if arg.key is not None:
                field = syntax.aliases.get(arg.key, arg.key)
                if arg.op == "<" and field not in syntax.below:
                    self.error("E202", f"{word} takes no '{arg.key}<...' argument", arg.span)
                    ok = False
                elif arg.op == "=" and field not in keywords:
                    hint = did_you_mean(arg.key, [*keywords, *syntax.aliases])
                    self.error(
                        "E202", f"{word} has no argument '{arg.key}'", arg.span,
                        help=hint or (f"{word} takes: {', '.join(keywords)}" if keywords else f"{word} takes no keyword arguments"),
                    )  # fmt: skip
                    ok = False
                else:
                    ok &= put(field, value, arg.span)
            elif isinstance(value, str) and not arg.quoted:
                match = _PREFIXED.fullmatch(value)
                if value in syntax.flags:
                    field, flag_value = syntax.flags[value]
                    ok &= put(field, flag_value, arg.span)
                elif value in sequence_words:
                    sequence.append(value)
                    open_item = len(sequence) - 1
                    options[open_item] = []
                elif match and match.group(1) in syntax.prefixed:
                    numbers = tuple(int(n) for n in match.group(2).split("x"))
                    ok &= put(syntax.prefixed[match.group(1)], numbers[0] if len(numbers) == 1 else numbers, arg.span)
                else:
                    ok = False
                    self.unknown_word(word, value, arg, syntax, sequence_words, positional)
            elif positional:
                ok &= put(positional.pop(0), value, arg.span)
            else:
                taken = ", ".join(syntax.positional) or "none"
                self.error("E202", f"{word}: unexpected value '{arg.text()}' (positional arguments: {taken})", arg.span)
                ok = False
        if sequence:
            steps = [self.step(word, item, options.get(i), env) if options.get(i) else item
                     for i, item in enumerate(sequence)]  # fmt: skip
            ok &= None not in steps
            values[sequence_field] = tuple(steps)
        return (values, spans) if ok else None

    def step(self, word: str, item: str, args: list[Argument], env: dict[str, Any]) -> Layer | None:
        """A post-op word with options (`bn momentum=.9` after a conv): the node of that word's own layer
        class (BatchNorm, Activation), bound and validated by its syntax; None after an error."""
        cls = WORDS[item]
        where = f"{word}: {item}"
        bound = self.bind(where, cls.syntax, list(cls.model_fields), args, env)
        if bound is None:
            return None
        values, spans = bound
        data = {**cls.from_word(item), **values, "span": args[0].span}
        return self.validate(where, cls, data, spans, args[0].span, cls.syntax.example)  # type: ignore[return-value]

    def unknown_word(
        self,
        word: str,
        value: str,
        arg: Argument,
        syntax: Syntax,
        sequence_words: frozenset[str],
        positional: list[str],
    ) -> None:
        known = [*syntax.flags, *sequence_words, *(f"{p}N" for p in syntax.prefixed)]
        hint = did_you_mean(value, known)
        if hint is None and positional and re.fullmatch(r"[a-z]\w*", value):
            hint = f"'{value}' is not a defined variable; variables come from `repeat [...] for {value} in ...`"
            self.error("E205", f"{word}: '{value}' is not defined", arg.span, help=hint)
            return
        if hint is None and known:
            hint = f"{word} accepts: " + ", ".join(sorted(set(known) - set(sequence_words))[:12])
            if sequence_words:
                hint += ", and activations or bn"
        self.error("E202", f"{word}: unknown argument '{value}'", arg.span, help=hint)

    def validate(
        self, word: str, model: type[BaseModel], data: dict[str, Any], spans: dict[str, Span], span: Span, example: str
    ) -> BaseModel | None:
        """Build a Pydantic model, turning its validation errors into located diagnostics."""
        try:
            return model.model_validate(data)
        except ValidationError as err:
            reported: set[str] = set()
            for item in err.errors(include_url=False):
                field = str(item["loc"][0]) if item["loc"] else "?"
                if field in reported:  # one message per field (a pair reports each element)
                    continue
                reported.add(field)
                where = spans.get(field, span)
                if item["type"] == "missing":
                    example_help = f"for example: {example}" if example else None
                    self.error("E203", f"{word}: missing {field}", span, help=example_help)
                    continue
                got = data.get(field, item.get("input"))
                got_text = "x".join(map(str, got)) if isinstance(got, tuple) else got
                field_info = model.model_fields.get(field)
                integral = field_info is not None and "int" in str(field_info.annotation)
                self.error("E201", f"{word}: {field} {_expectation(item, integral)}, got {got_text}", where)
            return None

    # ------------------------------------------------------------ statements

    def command(self, cmd: Command, env: dict[str, Any]) -> None:
        self.statements += 1
        if self.statements > MAX_LAYERS:  # written out rather than repeated
            self.error(
                "E207", f"the program has more than {MAX_LAYERS:,} statements", cmd.span, help="see docs/limits.md"
            )
            raise _Stop
        if cmd.word == "input":
            return self.input(cmd, env)
        if cmd.word in ("train", "augment"):
            return self.directive(cmd, env)
        if cmd.word == "phase":
            return self.phase(cmd, env)
        cls = WORDS.get(cmd.word)
        if cls is None:
            known = [*WORDS, *DIRECTIVES, "repeat"]
            self.error(
                "E101",
                f"unknown layer '{cmd.word}'",
                cmd.span,
                help=did_you_mean(cmd.word, known) or "run `netdsl layers` for the list",
            )
            return None
        used = tuple(sorted((k, repr(v)) for k, v in env.items() if any(a.value == k for a in cmd.args)))
        key = (id(cmd), used)
        if key in self.cache:  # the same statement with the same variables: reuse the frozen node
            layer = self.cache[key]
        else:
            layer = self.layer(cls, cmd, env)
            self.cache[key] = layer
        if layer is not None:
            self.layers.append(layer)

    def layer(self, cls: type[Layer], cmd: Command, env: dict[str, Any]) -> Layer | None:
        bound = self.bind(cmd.word, cls.syntax, list(cls.model_fields), cmd.args, env)
        if bound is None:
            return None
        values, spans = bound
        data = {**cls.from_word(cmd.word), **values, "span": cmd.span}
        return self.validate(cmd.word, cls, data, spans, cmd.span, cls.syntax.example)  # type: ignore[return-value]

    def input(self, cmd: Command, env: dict[str, Any]) -> None:
        if self.layers:
            self.error("E206", "input must come before the first layer", cmd.span)
            return
        if self.input_shape is not None:
            self.error("E204", "input is given twice", cmd.span, help=f"first given on line {self.input_span.line}")  # type: ignore[union-attr]
            return
        values = [self.resolve(a, env) for a in cmd.args if a.key is None]
        if len(cmd.args) != 1 or len(values) != 1:
            self.error("E206", "input takes one shape, such as `input 32x32x3`", cmd.span)
            return
        shape = values[0]
        shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n > 0 for n in shape):
            self.error(
                "E206",
                f"input: expected a shape of positive sizes such as 32x32x3, got {cmd.args[0].text()}",
                cmd.args[0].span,
            )
            return
        self.input_shape, self.input_span = shape, cmd.span

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

    def repeat(self, rep: Repeat, env: dict[str, Any], depth: int) -> None:
        count = 1
        if rep.count is not None:
            count = self.resolve(rep.count, env)
            if isinstance(count, str) and not rep.count.quoted:
                self.error(
                    "E205", f"repeat: '{count}' is not defined", rep.count.span,
                    help=f"a count is a number, or a variable of an enclosing `repeat [...] for {count} in ...`",
                )  # fmt: skip
                return
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                self.error("E201", f"repeat: count must be a whole number >= 0, got {rep.count.text()}", rep.count.span)
                return
        values = [self.resolve(v, env) for v in rep.values] if rep.var else [None]
        body = self.size(rep.body, _sizing_env(rep, values, env))
        if body == 0:  # nothing to expand (`repeat 1000000000 []`): walk once, for its errors only
            count, values = min(count, 1), values[:1]
        size = count * len(values) * body
        if self.statements + size > MAX_LAYERS:
            self.error(
                "E207",
                f"repeat expands to {size:,} statements; netdsl handles at most {MAX_LAYERS:,}",
                rep.span,
                help="see docs/limits.md",
            )
            raise _Stop
        for value in values:
            inner = {**env, rep.var: value} if rep.var else env
            for _ in range(count):
                self.walk(rep.body, inner, depth + 1)

    def size(self, body: Sequence[Statement], env: dict[str, Any]) -> int:
        """How many statements (layers and directives) `body` expands to, without building them."""
        total = 0
        for st in body:
            if isinstance(st, Command):
                total += 1
            else:
                count = self.resolve(st.count, env) if st.count else 1
                count = count if isinstance(count, int) else 0
                values = [self.resolve(v, env) for v in st.values]
                total += count * max(1, len(st.values)) * self.size(st.body, _sizing_env(st, values, env))
            if total > MAX_LAYERS:
                return total
        return total

    def walk(self, statements: Sequence[Statement], env: dict[str, Any], depth: int = 0) -> None:
        for st in statements:
            if isinstance(st, Repeat):
                self.repeat(st, env, depth + 1)
            elif depth > 0 and st.word in DIRECTIVES:  # `repeat 3 [train ...]` would set it three times
                self.error(
                    "E208", f"{st.word} is a directive and cannot be inside repeat", st.span,
                    help=f"move `{st.word} ...` out of the repeat, to the top level",
                )  # fmt: skip
            else:
                self.command(st, env)


def _sizing_env(rep: Repeat, values: list[Any], env: dict[str, Any]) -> dict[str, Any]:
    """The variables a repeat's body is sized with: its loop variable bound to the largest of its
    whole-number values, so an inner `repeat w [...]` counts as its largest expansion (an upper
    bound, in time linear in the text) rather than as zero."""
    if not rep.var:
        return env
    counts = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return {**env, rep.var: max(counts) if counts else values[0]}


def _expectation(item: Any, integral: bool) -> str:
    """Pydantic's error as the second half of Keras's template: `stride must be a positive integer`."""
    kind, ctx = item["type"], item.get("ctx") or {}
    if kind == "greater_than" and ctx.get("gt") == 0 and integral:
        return "must be a positive integer"
    table = {
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "int_from_float": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "literal_error": "must be {expected}",
        "tuple_type": "must be a number or one size per axis such as 3x5",
        "too_long": "must be a number or one size per axis such as 3x5",
        "too_short": "must be a number or one size per axis such as 3x5",
    }
    if kind in table:
        return table[kind].format(**{k: v for k, v in ctx.items()}) if ctx else table[kind]
    return item["msg"].removeprefix("Input ").removeprefix("Value error, ").replace("should", "must")


class _Stop(Exception):
    """Abandon lowering after an error that makes going on pointless."""


def _too_deep(statements: Sequence[Statement]) -> Repeat | None:
    """The first `repeat` nested deeper than MAX_DEPTH, found without recursion (so any depth is safe)."""
    stack = [(st, 1) for st in reversed(statements) if isinstance(st, Repeat)]
    while stack:
        rep, depth = stack.pop()
        if depth > MAX_DEPTH:
            return rep
        stack.extend((st, depth + 1) for st in reversed(rep.body) if isinstance(st, Repeat))
    return None


def lower(statements: Sequence[Statement], source: Source, name: str = "model") -> Network:
    """Resolve variables and `repeat`, bind and validate every statement; raise NetdslError on errors."""
    work = _Lowering(source)
    deep = _too_deep(statements)
    if deep is not None:
        work.error("E207", f"repeat is nested more than {MAX_DEPTH} deep", deep.span, help="see docs/limits.md")
        raise NetdslError(work.diagnostics, source)
    try:
        work.walk(statements, {})
    except _Stop:
        pass
    if work.diagnostics:
        raise NetdslError(work.diagnostics, source)
    training = TrainConfig.model_validate(
        {**work.train, "augment": Augment(**work.augment), "phases": tuple(work.phases)}
    )
    return Network(
        input_shape=work.input_shape,
        input_span=work.input_span,
        layers=work.layers,
        training=training,
        name=name,
    )
