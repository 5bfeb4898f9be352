"""How deep a surface program nests, measured without recursion.

Lowering, the formatter, the analyzer and the emitter all recurse once per level of a `repeat`, a
branch, a block's body or an arithmetic operator. Python's stack holds about a thousand frames, so
a spec nested deeper than these limits is refused (E207) before any of them runs: `1+1+...+1` with
9,000 terms, or 300 `add [` inside each other, used to end in a RecursionError.
"""

from __future__ import annotations

from collections.abc import Sequence

from netdsl.ir import Argument, Command, Define, Expr, Repeat, Span, Statement

MAX_DEPTH = 100
"""Deepest nesting of `repeat`, branches and block bodies (each recursed into once per level)."""
MAX_EXPRESSION_DEPTH = 100
"""Deepest arithmetic: operators applied to the result of other operators (`1+1+1` is 2 deep, as is
`-(-1)`). Every operator of a left-to-right chain counts: `f*f*...*f` with 101 factors is refused."""


def expression_depth(arg: Argument) -> int:
    """How many operators deep an argument's arithmetic goes (0 for a plain value)."""
    deepest, stack = 0, [(arg, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item.value, Expr):
            deepest = max(deepest, depth + 1)
            stack.extend((operand, depth + 1) for operand in item.value.operands)
    return deepest


def _arguments(st: Statement) -> list[Argument]:
    if isinstance(st, Command):
        return list(st.args)
    if isinstance(st, Repeat):
        return [*([st.count] if st.count is not None else []), *st.values]
    return [p.default for p in st.params if p.default is not None]


def _inner(st: Statement) -> list[Statement]:
    if isinstance(st, (Repeat, Define)):
        return list(st.body)
    return [s for branch in st.branches or () for s in branch]


def too_deep(statements: Sequence[Statement]) -> tuple[str, Span] | None:
    """The first construct nested past MAX_DEPTH or arithmetic past MAX_EXPRESSION_DEPTH, as a message
    and its span; None when the program is within both limits. Any depth is safe to measure."""
    stack = [(st, 1) for st in reversed(statements)]
    while stack:
        st, depth = stack.pop()
        inner = _inner(st)
        if depth > MAX_DEPTH and (inner or isinstance(st, (Repeat, Define))):
            what = "repeat" if isinstance(st, Repeat) else "def" if isinstance(st, Define) else "a branch"
            return f"{what} is nested more than {MAX_DEPTH} deep", st.span
        for arg in _arguments(st):
            if expression_depth(arg) > MAX_EXPRESSION_DEPTH:
                return (f"arithmetic nested more than {MAX_EXPRESSION_DEPTH} operators deep (each of `+ - * /` "
                        "and a unary minus counts)"), arg.span  # fmt: skip
        stack.extend((s, depth + 1) for s in reversed(inner))
    return None
