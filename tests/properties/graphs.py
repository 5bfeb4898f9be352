"""Hypothesis strategies that write netdsl GRAPH programs as text: branches and merges, named taps,
`use`, user blocks with arguments and defaults, arithmetic in arguments, nested repeats over several
loop variables, several inputs and outputs.

A program is kept as the generator's own small description (the `Element`s below), which is
interpreted by two backends that know nothing of netdsl: `Shapes`, an independent model of Keras's
shape rules (equal shapes for add/mul/..., equal sizes outside the channel axis for cat), and
`HandKeras`, which makes the same graph with plain `keras.layers` calls. The shape model keeps every
drawn program valid by construction (a merge's later branches get a 1x1 projection with the stride
that lands on the first branch's size; a `repeat` is cut back to the iterations that fit) and
predicts the output shapes and the number of layers Keras keeps (layers that reach no output after a
`use` are dropped by Keras, so they are not counted). The hand-made Keras model is the truth the
analyzer is compared with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from tests.properties.programs import Invalid, window

Shape = tuple[int, ...]
Env = dict[str, int]
MAX_LAYERS = 36  # Keras layers made per program (dead ones included): keeps each build well under a second
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "swish", "elu", "linear")
MERGES = {"add": "Add", "cat": "Concatenate", "mul": "Multiply", "avg": "Average", "max": "Maximum", "sub": "Subtract"}
TAPS = ("d1", "d2", "skip", "t", "later")
BLOCK_NAMES = ("blk", "unit", "stage")


# ---------------------------------------------------------------- arithmetic


@dataclass(frozen=True)
class Expr:
    """An argument as written (`f*2`, `(f+8)`, `16`) and its exact value in an environment."""

    text: str
    value: Callable[[Env], Fraction] = field(repr=False, compare=False)

    def whole(self, env: Env) -> int:
        """The value for an integer field; Invalid (netdsl's E201) unless it is a positive whole number."""
        value = self.value(env)
        if value.denominator != 1 or value < 1:
            raise Invalid
        return int(value)


def literal(n: int) -> Expr:
    return Expr(str(n), lambda env: Fraction(n))


def variable(name: str) -> Expr:
    return Expr(name, lambda env: Fraction(env[name]))


@st.composite
def int_expr(draw: Any, env: Env, low: int = 1, high: int = 16) -> Expr:
    """A literal, a variable, or arithmetic on a variable: `f*2`, `2*f`, `f/2`, `(f+8)`, `f+4`, `3*f/2`."""
    names = sorted(env)
    if not names or draw(st.integers(0, 2)) == 0:
        return literal(draw(st.integers(low, high)))
    name = draw(st.sampled_from(names))
    form = draw(st.sampled_from(("v", "v", "v*2", "2*v", "v/2", "(v+8)", "v+4", "3*v/2")))
    if form == "v/2" and env[name] % 2:  # drawn for the first iteration; later ones are cut if they do not divide
        form = "v*2"
    ops: dict[str, Callable[[Fraction], Fraction]] = {
        "v": lambda v: v,
        "v*2": lambda v: v * 2,
        "2*v": lambda v: 2 * v,
        "v/2": lambda v: v / 2,
        "(v+8)": lambda v: v + 8,
        "v+4": lambda v: v + 4,
        "3*v/2": lambda v: 3 * v / 2,
    }
    op = ops[form]
    return Expr(form.replace("v", name), lambda env: op(Fraction(env[name])))


# ---------------------------------------------------------------- the two backends


@dataclass(frozen=True)
class Node:
    """A tensor of the shape model: its index and its shape (batch axis left out)."""

    index: int
    shape: Shape


class Shapes:
    """The independent shape model: Keras's rules, written from its documentation, and the graph of
    layers made so far (to count the ones that reach an output)."""

    def __init__(self) -> None:
        self.parents: list[list[int]] = []
        self.inputs: list[int] = []

    def _node(self, shape: Shape, parents: list[Node]) -> Node:
        self.parents.append([p.index for p in parents])
        return Node(len(self.parents) - 1, shape)

    def input(self, shape: Shape) -> Node:
        node = self._node(shape, [])
        self.inputs.append(node.index)
        return node

    def conv(self, x: Node, filters: int, kernel: int, stride: tuple[int, int], padding: str, bias: bool) -> Node:
        if len(x.shape) != 3:
            raise Invalid
        out = tuple(window(n, kernel, s, padding) for n, s in zip(x.shape[:2], stride))
        return self._node((*out, filters), [x])

    def dense(self, x: Node, units: int, bias: bool) -> Node:
        return self._node((*x.shape[:-1], units), [x])

    def pool(self, x: Node, word: str, size: int, padding: str) -> Node:
        if len(x.shape) != 3:
            raise Invalid
        return self._node((*(window(n, size, size, padding) for n in x.shape[:2]), x.shape[2]), [x])

    def simple(self, x: Node, word: str) -> Node:
        """bn, dropout, an activation (same shape); gap/gmp and flatten (to a vector)."""
        if word in ("gap", "gmp"):
            if len(x.shape) != 3:
                raise Invalid
            return self._node((x.shape[2],), [x])
        if word == "flatten":
            size = 1
            for n in x.shape:
                size *= n
            return self._node((size,), [x])
        return self._node(x.shape, [x])

    def merge(self, kind: str, xs: list[Node]) -> Node:
        if len(xs) < 2 or (kind == "sub" and len(xs) != 2):
            raise Invalid
        first = xs[0].shape
        if kind == "cat":
            if any(len(x.shape) != len(first) or x.shape[:-1] != first[:-1] for x in xs):
                raise Invalid
            return self._node((*first[:-1], sum(x.shape[-1] for x in xs)), xs)
        if any(x.shape != first for x in xs):
            raise Invalid
        return self._node(first, xs)

    def kept(self, outputs: list[Node]) -> int:
        """Layers Keras keeps in the model: those that reach an output, and every input."""
        seen = set(self.inputs)
        stack = [o.index for o in outputs]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.parents[node])
            else:
                stack.extend(p for p in self.parents[node] if p not in seen)
        return len(seen)

    @property
    def made(self) -> int:
        return len(self.parents)


class HandKeras:
    """The same graph from plain Keras calls (not netdsl's compiler): the truth for the analyzer."""

    def __init__(self, keras: Any) -> None:
        self.keras, self.L = keras, keras.layers

    def input(self, shape: Shape) -> Any:
        return self.keras.Input(shape)

    def conv(self, x: Any, filters: int, kernel: int, stride: tuple[int, int], padding: str, bias: bool) -> Any:
        return self.L.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=bias)(x)

    def dense(self, x: Any, units: int, bias: bool) -> Any:
        return self.L.Dense(units, use_bias=bias)(x)

    def pool(self, x: Any, word: str, size: int, padding: str) -> Any:
        layer = self.L.MaxPooling2D if word == "maxpool" else self.L.AveragePooling2D
        return layer(size, padding=padding)(x)

    def simple(self, x: Any, word: str) -> Any:
        L = self.L
        made = {"gap": L.GlobalAveragePooling2D, "gmp": L.GlobalMaxPooling2D, "flatten": L.Flatten}
        if word in made:
            return made[word]()(x)
        if word == "bn":
            return L.BatchNormalization()(x)
        if word.startswith("dropout"):
            return L.Dropout(float(word.split()[1]))(x)
        return L.Activation(word)(x)

    def merge(self, kind: str, xs: list[Any]) -> Any:
        return getattr(self.L, MERGES[kind])()(xs)


# ---------------------------------------------------------------- the program description


class Scope:
    """Tensor names of one scope (a repeat iteration, a branch, a block use); a block sees no outer names."""

    def __init__(self, parent: Scope | None) -> None:
        self.parent, self.names = parent, {}

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        raise KeyError(name)

    def visible(self) -> dict[str, Any]:
        outer = self.parent.visible() if self.parent else {}
        return {**outer, **self.names}

    def copy(self) -> Scope:
        twin = Scope(self.parent)
        twin.names = dict(self.names)
        return twin


class Element:
    """A statement of the generated program: its text and how it acts on a backend."""

    tap: str | None = None

    def text(self) -> str:
        raise NotImplementedError

    def act(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        raise NotImplementedError

    def apply(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        y = self.act(b, x, scope, env)
        if self.tap:
            scope.names[self.tap] = y
        return y

    def suffix(self) -> str:
        return f" as {self.tap}" if self.tap else ""


def run(body: list[Element], b: Any, x: Any, scope: Scope, env: Env) -> Any:
    for element in body:
        x = element.apply(b, x, scope, env)
    return x


def inline(body: list[Element]) -> str:
    return "; ".join(e.text() for e in body)


@dataclass(eq=False)
class Layer(Element):
    """`conv 8 k3 s2 relu bn`, `dense f*2`, `maxpool 3 same`, `bn`, ...: one layer, then its post-ops."""

    words: str
    op: Callable[[Any, Any, Env], Any] = field(repr=False)
    post: tuple[str, ...] = ()
    tap: str | None = None

    def text(self) -> str:
        return " ".join([self.words, *self.post]) + self.suffix()

    def act(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        x = self.op(b, x, env)
        for word in self.post:
            x = b.simple(x, word)
        return x


@dataclass(eq=False)
class Use(Element):
    name: str

    def text(self) -> str:
        return f"use {self.name}"

    def act(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        return scope.lookup(self.name)


ID = "id"


@dataclass(eq=False)
class Merge(Element):
    """`add [a | b]`, `cat [f]` (x first), `add d1` (x, then d1), `cat d1 [f]`, `add d1 [a | b]` (no x)."""

    kind: str
    names: list[str]
    branches: list[list[Element] | str]
    tap: str | None = None
    broken: bool = False  # a line break before each `|`

    def text(self) -> str:
        words = [self.kind, *self.names]
        if self.branches:
            bar = "\n    | " if self.broken else " | "
            words.append("[ " + bar.join(b if isinstance(b, str) else inline(b) for b in self.branches) + " ]")
        return " ".join(words) + self.suffix()

    def act(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        xs = [x] if len(self.branches) < 2 else []
        xs += [scope.lookup(name) for name in self.names]
        for branch in self.branches:
            xs.append(x if branch == ID else run(branch, b, x, Scope(scope), env))  # type: ignore[arg-type]
        return b.merge(self.kind, xs)


@dataclass(eq=False)
class Repeat(Element):
    """`repeat [n] [ body ] [for f, n in (8, 1), (16, 2)]`: one scope per iteration."""

    count: Expr | None
    names: tuple[str, ...]
    rows: list[tuple[int, ...]]
    body: list[Element]
    multiline: bool = False

    def text(self) -> str:
        count = f" {self.count.text}" if self.count else ""
        loop = ""
        if len(self.names) == 1:
            loop = f" for {self.names[0]} in {', '.join(str(r[0]) for r in self.rows)}"
        elif self.names:
            rows = ", ".join("(" + ", ".join(map(str, r)) + ")" for r in self.rows)
            loop = f" for {', '.join(self.names)} in {rows}"
        if self.multiline:
            lines = "\n".join("    " + line for e in self.body for line in e.text().splitlines())
            return f"repeat{count} [\n{lines}\n]{loop}"
        return f"repeat{count} [ {inline(self.body)} ]{loop}"

    def act(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        for row in self.rows or [()]:
            inner = {**env, **dict(zip(self.names, row))}
            for _ in range(self.count.whole(inner) if self.count else 1):
                x = run(self.body, b, x, Scope(scope), inner)
        return x


@dataclass(eq=False)
class BlockDef:
    """`def blk f s=1 [ body ]`."""

    name: str
    params: list[tuple[str, int | None]]
    body: list[Element] = field(default_factory=list)

    def text(self) -> str:
        params = " ".join(p if d is None else f"{p}={d}" for p, d in self.params)
        return f"def {self.name} {params} [ {inline(self.body)} ]"


@dataclass(eq=False)
class Call(Element):
    """`blk 8`, `blk f*2 2`, `blk 8 s=2`, `blk s=2 f=8`: arguments evaluated where the block is used."""

    block: BlockDef
    positional: list[Expr]
    keywords: list[tuple[str, Expr]]
    tap: str | None = None

    def text(self) -> str:
        words = [self.block.name, *(e.text for e in self.positional), *(f"{k}={e.text}" for k, e in self.keywords)]
        return " ".join(words) + self.suffix()

    def arguments(self, env: Env) -> Env:
        values = {p: d for p, d in self.block.params if d is not None}
        values.update({p: e.whole(env) for (p, _), e in zip(self.block.params, self.positional)})
        values.update({k: e.whole(env) for k, e in self.keywords})
        return values  # type: ignore[return-value]

    def act(self, b: Any, x: Any, scope: Scope, env: Env) -> Any:
        return run(self.block.body, b, x, Scope(None), self.arguments(env))
