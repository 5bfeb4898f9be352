"""Provenance: lowering's record of where each layer of a Network came from, a tree that follows the
program. For each layer: its statement, the variables it was lowered with and the block use it sits in
(and for a merge or a block use, the same for the layers inside it); for each execution of a `repeat`:
its values, counts and what each iteration made. `netdsl emit` walks it to write Python loops and
helper docstrings (it never parses the source again); `Provenance.rows` is the flat table, one row
per layer at any depth, with the repeat iterations it sits in.

It keeps what it needs of each statement (`Site`, `RepeatSite`), not the parsed statements, and
shares what iterations have in common (one `Origin` for `conv 4` in every iteration of `repeat 1000`),
so a large spec costs little more than its layers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

from netdsl.ir import Command, Repeat, Span


@dataclass(frozen=True, slots=True)
class Site:
    """A layer statement as provenance keeps it: its word, where it is written, the words it mentions."""

    word: str
    span: Span  # the word's
    end: tuple[int, int, int, int]  # the whole statement's span: line, column, end line, end column
    mentions: tuple[str, ...]  # the words among its arguments' values (the variables it names)

    @classmethod
    def of(cls, cmd: Command) -> Site:
        end = (cmd.end.line, cmd.end.column, cmd.end.end_line, cmd.end.end_column)  # a Span costs 0.5 KB
        return cls(cmd.word, cmd.span, end, _words([a.value for a in cmd.args]))


@dataclass(frozen=True, slots=True)
class RepeatSite:
    """A `repeat` as provenance keeps it: where it is written, its variables, how its values and count read."""

    span: Span
    variables: tuple[str, ...]  # `for f, n in ...`; () for `repeat N [...]`
    mentions: tuple[str, ...]  # the words among its values
    count: str | None  # the count as written (a number, or a variable), None without one

    @classmethod
    def of(cls, rep: Repeat) -> RepeatSite:
        count = str(rep.count.value) if rep.count is not None else None
        return cls(rep.span, rep.variables, _words([v.value for v in rep.values]), count)


def _words(values: Iterable[Any]) -> tuple[str, ...]:
    """The words among argument values, shared with every other statement that mentions them (a large
    spec repeats a few words many times): the emitter prefers a loop variable the statement names."""
    return tuple([sys.intern(v) for v in values if isinstance(v, str)])


@dataclass(frozen=True, slots=True)
class BlockUse:
    """A use of a user block (`basic 64 s=2`): the layers of its body sit in it."""

    name: str
    span: Span
    values: tuple[tuple[str, Any], ...]  # its parameters' values


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one lowered layer came from: its statement, the variables it was lowered with (loop variables
    and block parameters), the block use it sits in, and for a merge or a block use the origins of the
    layers inside it (one trail per branch, or the block's body)."""

    site: Site
    env: Mapping[str, Any]
    block: BlockUse | None = None  # the innermost block use around it
    inside: tuple[Trail, ...] = ()


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a `repeat`: the variables around it, each value's variables and count as lowering
    bound them, and what each iteration made (empty ones too, so the runs of one statement line up)."""

    site: RepeatSite
    env: Mapping[str, Any]
    envs: tuple[Mapping[str, Any], ...]  # per value of `for ... in` (one, `env`, without)
    counts: tuple[int, ...]  # per value: the count may be a loop variable (`repeat n [...] for f, n in ...`)
    iterations: tuple[Trail, ...]  # in lowering's order: each value, then `count` times

    @property
    def values(self) -> list[Any]:
        """The values of `for ... in` (a tuple each for several variables); [None] without."""
        names = self.site.variables
        if not names:
            return [None]
        return [env[names[0]] if len(names) == 1 else tuple(env[n] for n in names) for env in self.envs]

    def bindings(self) -> Iterator[tuple[tuple[str, Any], ...]]:
        """What each iteration binds, in order."""
        for env, count in zip(self.envs, self.counts):
            bound = tuple((name, env[name]) for name in self.site.variables)
            for _ in range(count):
                yield bound


Trail = tuple[Origin | Run, ...]
"""What a body made, in order: a layer's origin, or a repeat's run holding its iterations' trails."""


@dataclass(frozen=True, slots=True)
class Pass:
    """One iteration of a `repeat`, numbered in lowering's order."""

    repeat: Span
    iteration: int  # 0-based, among the iterations of this execution of the repeat
    bindings: tuple[tuple[str, Any], ...]  # the loop variables it binds


@dataclass(frozen=True, slots=True)
class Row:
    """One layer of the table: its place, its origin, and the repeat iterations around it (outermost first,
    through block uses). (i,) is Network.layers[i]; (i, b, j) the j-th layer of branch b of layer i (b is 0
    for a block's body)."""

    place: tuple[int, ...]
    origin: Origin
    passes: tuple[Pass, ...]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Lowering's record of where each layer of a Network came from (the top level's trail), so that
    `netdsl emit` writes loops and helpers from it instead of parsing the source again."""

    trail: Trail

    def rows(self) -> list[Row]:
        """Every layer's row, a merge or block use before the layers inside it."""
        return list(_rows(self.trail, (), ()))


def flatten(trail: Trail) -> Iterator[Origin]:
    """The origins of a trail's own layers, in order, through the iterations of its repeats."""
    stack = [iter(trail)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, Run):
            stack.append(chain.from_iterable(item.iterations))
        else:
            yield item


def _level(trail: Trail, passes: tuple[Pass, ...]) -> Iterator[tuple[Origin, tuple[Pass, ...]]]:
    """`flatten`, with the iterations each origin sits in (recursing once per nested repeat)."""
    for item in trail:
        if isinstance(item, Run):
            for number, (body, bound) in enumerate(zip(item.iterations, item.bindings())):
                yield from _level(body, (*passes, Pass(item.site.span, number, bound)))
        else:
            yield item, passes


def _rows(trail: Trail, place: tuple[int, ...], passes: tuple[Pass, ...]) -> Iterator[Row]:
    for index, (origin, around) in enumerate(_level(trail, passes)):
        at = (*place, index)
        yield Row(at, origin, around)
        for branch, body in enumerate(origin.inside):
            yield from _rows(body, (*at, branch), around)
