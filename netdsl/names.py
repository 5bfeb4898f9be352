"""What lowering needs beyond binding arguments: arithmetic in arguments and the scopes of tensor names.

Arithmetic (`4*f`, `f/2`, `(f+1)*2`) is evaluated once the variables are known; `/` gives a whole
number when the division is exact, so `f/2` is a valid filter count and `f/3` is refused by the
field it fills. Tensor names (`... as d1`) are lexically scoped: a `repeat` iteration, a branch and a
block use each open a scope, so they can rebind a name without disturbing the enclosing one. Each
binding gets a name unique in the network (`d1`, `d1#2`, ...), which is all the graphs ever see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from netdsl.ir import Argument, Command, Expr, Repeat, Span

BAD = object()
"""The value of an argument whose evaluation failed (the error has been reported)."""

Report = Callable[[str, str, Span, "str | None"], None]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ignore(code: str, message: str, span: Span, help: str | None) -> None:
    """For callers that evaluate again what lowering has checked (and reported) already."""


def evaluate(arg: Argument, env: dict[str, Any], error: Report = _ignore) -> Any:
    """The value of an argument: a variable's value, an arithmetic result, or the literal itself."""
    value = arg.value
    if isinstance(value, str) and not arg.quoted:
        return env.get(value, value)
    if not isinstance(value, Expr):
        return value
    operands = [evaluate(a, env, error) for a in value.operands]
    if any(o is BAD for o in operands):
        return BAD
    if value.op == "tuple":
        return tuple(operands)
    for operand, source in zip(operands, value.operands):
        if not _number(operand):
            if isinstance(operand, str) and not source.quoted:
                error("E205", f"'{operand}' is not defined", source.span,
                      f"arithmetic works on numbers and on variables of `repeat ... for {operand} in ...` or a block's parameters")  # fmt: skip
            else:
                error("E211", f"cannot compute {value.text()}: '{source.text()}' is not a number", source.span, None)
            return BAD
    if value.op == "neg":
        return -operands[0]
    left, right = operands
    if value.op == "+":
        return left + right
    if value.op == "-":
        return left - right
    if value.op == "*":
        result = left * right
        return result if abs(result) < 2**64 or isinstance(result, float) else _too_big(value, arg, error)
    if right == 0:
        error("E211", f"cannot compute {value.text()}: division by zero", arg.span, None)
        return BAD
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right  # exact: a whole number, usable as a filter count
    return left / right


def _too_big(value: Expr, arg: Argument, error: Report) -> Any:
    error("E211", f"{value.text()} is too large", arg.span, "see docs/limits.md")
    return BAD


def loop_envs(rep: Repeat, env: dict[str, Any], error: Report = _ignore) -> list[dict[str, Any]] | None:
    """The variables of each iteration of a repeat: `for f in 1,2` binds one, `for f, n in (64,3), (128,4)`
    several; None after an error (E212 when a tuple does not fit the variables). Lowering binds loops through
    this and records each iteration's variables in its provenance, which the emitter reads."""
    names = rep.variables
    if not names:
        return [env]
    envs = []
    for arg in rep.values:
        value = evaluate(arg, env, error)
        if value is BAD:
            return None
        if len(names) == 1:
            envs.append({**env, names[0]: value})
            continue
        is_tuple = isinstance(arg.value, Expr) and arg.value.op == "tuple"
        if not is_tuple or len(value) != len(names):
            got = len(value) if is_tuple else 1
            error("E212", f"repeat: {len(names)} variables ({', '.join(names)}) but {got} value{'s' * (got != 1)} in {arg.text()}",
                  arg.span, f"write one ({', '.join(names)}) tuple per iteration, such as ({', '.join(['1'] * len(names))})")  # fmt: skip
            return None
        envs.append({**env, **dict(zip(names, value))})
    return envs


@dataclass
class Binding:
    """One `as NAME`: the unique name the graphs use, and where it was given (the analyzer, which follows the
    tensors, says which names are never read: W407)."""

    unique: str
    span: Span | None


@dataclass
class Scopes:
    """The stack of name scopes, innermost last, and the names each scope binds further down its body
    (so that a reference to one of those says 'used before it is made' rather than 'unknown')."""

    stack: list[dict[str, Binding]] = field(default_factory=lambda: [{}])
    ahead: list[dict[str, Span]] = field(default_factory=lambda: [{}])
    counts: dict[str, int] = field(default_factory=dict)

    def push(self, statements: Sequence[Any] = ()) -> None:
        self.stack.append({})
        self.ahead.append(names_ahead(statements))

    def pop(self) -> None:
        self.stack.pop()
        self.ahead.pop()

    def bind(self, name: str, span: Span | None) -> str:
        n = self.counts.get(name, 0) + 1
        self.counts[name] = n
        unique = name if n == 1 else f"{name}#{n}"  # '#' cannot be written in a name, so no clash
        self.stack[-1][name] = Binding(unique, span)
        self.ahead[-1].pop(name, None)
        return unique

    def find(self, name: str) -> Binding | None:
        for scope in reversed(self.stack):
            if name in scope:
                return scope[name]
        return None

    def later(self, name: str) -> Span | None:
        """Where `name` is bound further down an enclosing body, if it is."""
        for ahead in reversed(self.ahead):
            if name in ahead:
                return ahead[name]
        return None

    def visible(self) -> list[str]:
        return [name for scope in self.stack for name in scope]


def names_ahead(statements: Sequence[Any]) -> dict[str, Span]:
    """The names that `statements` bind with `as`, at this level and in nested repeats."""
    found: dict[str, Span] = {}
    stack = list(statements)
    while stack:
        st = stack.pop()
        if isinstance(st, Command) and st.alias is not None and st.alias_span is not None:
            found.setdefault(st.alias, st.alias_span)
        elif isinstance(st, Repeat):
            stack.extend(st.body)
    return found
