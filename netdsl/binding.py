"""Binding a statement's arguments to a layer's (or directive's) fields, declaratively.

Each layer class (and directive) says in its `Syntax` which words, prefixes and positions fill which
fields; Pydantic validates the result, and its errors become located diagnostics in Keras's template
(`conv: stride must be a positive integer, got 0`). A mixin of lowering's `_Lowering`, which provides
`error` and `resolve`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from netdsl.diagnostics import did_you_mean
from netdsl.ir import WORDS, Argument, Layer, Span
from netdsl.layers.base import Syntax
from netdsl.names import BAD

MAX_ARGUMENTS = 10_000
"""Most arguments one statement may take (`dense 8 relu relu ...`): far more than any real layer needs, and
a 2 MB one-line spec is answered in a second instead of building half a million activations."""

_PREFIXED = re.compile(r"([a-z]+)([0-9]+(?:x[0-9]+)*)")


class Binding:
    """`bind`, `step`, `unknown_word` and `validate` (see the module docstring)."""

    def error(self, code: str, message: str, span: Span | None, help: str | None = None) -> None: ...

    def resolve(self, arg: Argument, env: dict[str, Any]) -> Any: ...

    def bind(
        self, word: str, syntax: Syntax, fields: Sequence[str], args: Sequence[Argument], env: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Span]] | None:
        """Arguments -> {field: value}, by the syntax's declarations; None after an error."""
        if self.too_many(word, args):
            return None
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
            key = syntax.aliases.get(arg.key, syntax.prefixed.get(arg.key, arg.key)) if arg.key is not None else None
            if open_item is not None and arg.op == "=" and key not in keywords:
                options[open_item].append(arg)  # `conv 32 bn momentum=.9`: the bn's own option
                continue
            open_item = None
            if value is BAD:
                ok = False
            elif arg.key is not None:  # `s=2` as `s2`: a prefix is a keyword too
                ok &= self.known_key(word, arg, key, syntax, keywords) and put(key, value, arg.span)  # type: ignore[arg-type]
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
            values[sequence_field] = self.steps(word, sequence, options, env)
        return (values, spans) if ok and None not in values.get(sequence_field, ()) else None

    def too_many(self, word: str, args: Sequence[Argument]) -> bool:
        """E207 for a statement of more than MAX_ARGUMENTS arguments."""
        if len(args) <= MAX_ARGUMENTS:
            return False
        self.error("E207", f"{word} has {len(args):,} arguments; netdsl reads at most {MAX_ARGUMENTS:,} per statement",
                   args[MAX_ARGUMENTS].span, help="see docs/limits.md")  # fmt: skip
        return True

    def steps(self, word: str, sequence: list[str], options: dict[int, list[Argument]], env: dict[str, Any]) -> tuple:
        """The post-op words, each with its own options made into its layer's node (None after an error)."""
        return tuple(
            self.step(word, item, options[i], env) if options.get(i) else item for i, item in enumerate(sequence)
        )

    def known_key(self, word: str, arg: Argument, field: str | None, syntax: Syntax, keywords: list[str]) -> bool:
        """Whether `key=value` / `key<value` names a field the statement takes (else a located E202)."""
        if arg.op == "<" and field not in syntax.below:
            self.error("E202", f"{word} takes no '{arg.key}<...' argument", arg.span)
            return False
        if arg.op == "=" and field not in keywords:
            hint = did_you_mean(arg.key or "", [*keywords, *syntax.aliases, *syntax.prefixed])
            self.error(
                "E202", f"{word} has no argument '{arg.key}'", arg.span,
                help=hint or (f"{word} takes: {', '.join(keywords)}" if keywords else f"{word} takes no keyword arguments"),
            )  # fmt: skip
            return False
        return True

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
