"""`netdsl emit`'s first half: each layer traced into its ops (the same `apply` the analyzer runs), and the
helper functions of the emitted module, one per layer structure (a user block, a `res`, a `conv ... bn
relu` that recurs), whose parameters are the constructor arguments that differ between their uses.
Nothing here imports Keras."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netdsl.analysis import Node, ShapeGraph
from netdsl.ir import Layer, Network
from netdsl.layers.base import GraphBase, Op, Shape
from netdsl.layers.pretrained import Application

INDENT = "    "
WRAP = 88  # constructor calls longer than this get one argument per line
RESERVED = frozenset({"x", "y", "z", "inputs", "keras", "layers", "regularizers", "build_model", "model", "range"})


# ---------------------------------------------------------------- tracing layers into ops


@dataclass(frozen=True)
class OpCall:
    """One op of a traced layer: the op and where its inputs come from (-1: the layer's input, a string:
    the Python variable of a tensor named earlier with `as`)."""

    op: Op
    inputs: tuple[int | str, ...]


def variable(name: str) -> str:
    """The Python variable of a tensor named in the spec (`d1`, a rebinding `d1#2` is `d1` again)."""
    return python_name(name.split("#")[0], set())


class TraceGraph(GraphBase[int | str]):
    """A Graph whose tensors are op indices, or the variables of tensors named outside the traced layer:
    records a layer's ops and their wiring. A ShapeGraph runs alongside, so rank-generic layers (`conv`
    on a sequence is Conv1D) see their inputs' shapes."""

    def __init__(self, shapes: ShapeGraph, x: Node, named: dict[str, Node], reads: set[str]) -> None:
        super().__init__()
        self.calls: list[OpCall] = []
        self.shapes = shapes
        self.nodes: dict[int | str, Node] = {-1: x, **named}
        self.reads = reads  # the names made earlier that this layer reads

    def shape(self, x: int | str) -> Shape:
        return self.nodes[x].shape

    def call(self, op: Op, *inputs: int | str) -> int:
        self.calls.append(OpCall(op, tuple(inputs)))
        self.nodes[len(self.calls) - 1] = self.shapes.call(op, *(self.nodes[i] for i in inputs))
        return len(self.calls) - 1

    def lookup(self, name: str) -> int | str:
        if name in self.names:
            return self.names[name]
        self.reads.add(name)
        return name  # the unique name; trace_all replaces it with its Python variable

    def application(self, application: Application, x: int) -> int:
        """A keras.applications backbone: one call that builds it on the tensor (see ApplicationSourceOp)."""
        self.calls.append(OpCall(application.source_op(), (x,)))
        self.nodes[len(self.calls) - 1] = self.shapes.application(application, self.nodes[x])
        return len(self.calls) - 1


def trace_all(net: Network) -> tuple[list[tuple[OpCall, ...]], list[int | str], dict[str, str]]:
    """The ops each layer of `net` stands for, in order, what each layer's output is (an op index, -1
    for its input, or a named tensor's variable), and each unique name's Python variable; the spec has
    been analyzed, so shapes are valid."""
    shapes = ShapeGraph(lambda index, name: True)
    node = shapes.input(net.input_shape or (), net.input_span)
    named: dict[str, Node] = {}  # unique name -> its node, for the tensors named so far
    if net.input_name:
        named[net.input_name] = node
    for spec in net.extra_inputs:
        named[spec.name] = shapes.input(spec.shape, spec.span)
    traces, outputs, reads = [], [], []
    for layer in net.layers:
        shapes.layer = layer
        reads.append(set())
        graph = TraceGraph(shapes, node, named, reads[-1])
        output = layer.apply(-1, graph)
        traces.append(tuple(graph.calls))
        outputs.append(output)
        node = graph.nodes[output]
        if layer.tap is not None:
            named[layer.tap] = node
    names = tensor_variables(net, reads)
    python = lambda i: names.get(i, variable(i)) if isinstance(i, str) else i  # noqa: E731
    traces = [tuple(OpCall(c.op, tuple(map(python, c.inputs))) for c in calls) for calls in traces]
    return traces, [python(o) for o in outputs], names


def tensor_variables(net: Network, reads: list[set[str]]) -> dict[str, str]:
    """Each unique name's Python variable. Rebindings (`d1#2`: a loop's iterations) share their name's
    variable, except while an older binding is still to be read: a name shadowed inside a repeat or a
    branch and read after it keeps its variable, the shadowing one gets another (Python has no block scope)."""
    last_read = {name: index for index, names in enumerate(reads) for name in names}
    last_read.update({name: len(reads) for name in net.outputs})
    made = [(-1, name) for name in (net.input_name, *(spec.name for spec in net.extra_inputs)) if name]
    made += [(index, layer.tap) for index, layer in enumerate(net.layers) if layer.tap is not None]
    taken = {variable(name) for _, name in made}
    slots: dict[str, list[list[str]]] = {}  # base name -> [variable, its current binding] per variable
    names: dict[str, str] = {}
    for index, name in made:
        base = name.split("#")[0]
        mine = slots.setdefault(base, [])
        free = next((slot for slot in mine if last_read.get(slot[1], -1) <= index), None)
        if free is None:
            free = [variable(base) if not mine else python_name(f"{base}_{len(mine) + 1}", taken), name]
            taken.add(free[0])
            mine.append(free)
        free[1] = name
        names[name] = free[0]
    return names


def _is_opaque(op: Op) -> bool:
    """An op that writes its own source (overrides `to_source`): emitted verbatim, never parametrized."""
    return type(op).to_source is not Op.to_source


def op_arguments(op: Op) -> dict[str, Any]:
    """The constructor arguments that may vary between layers sharing a helper."""
    return {} if _is_opaque(op) else op.source_args()


def op_constructor(op: Op) -> str:
    return op.to_source(None) if _is_opaque(op) else f"layers.{op.keras_class}"


def signature(calls: tuple[OpCall, ...]) -> tuple:
    """Layers with equal signatures can share a helper: same ops, same wiring, same argument names."""
    return tuple((op_constructor(c.op), tuple(op_arguments(c.op)), c.inputs) for c in calls)


def _same(a: Any, b: Any) -> bool:
    """Equal as emitted values: 1 and True, or 2 and 2.0, are not interchangeable in source."""
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- helpers


@dataclass
class Helper:
    """A function of the emitted module: the ops of one layer structure, with varying arguments as parameters."""

    name: str
    calls: tuple[OpCall, ...]
    params: list[str]  # parameter names, in order
    slots: dict[tuple[int, str], str]  # (op index, argument) -> parameter name
    doc: str

    @property
    def externals(self) -> list[str]:
        """Tensors named outside the helper that it reads (`cat [conv 8] d1`): passed as parameters."""
        return list(dict.fromkeys(i for c in self.calls for i in c.inputs if isinstance(i, str)))

    def source(self) -> list[str]:
        """The `def` of this helper."""
        lines = [f"def {self.name}({', '.join(['x', *self.externals, *self.params])}):", INDENT + docstring(self.doc)]
        body = _op_lines(self.calls, lambda index, key, value: self.slots.get((index, key), repr(value)))
        return [*lines, *indent([*body[:-1], "return " + body[-1].split(" = ", 1)[1]])]


def indent(lines: Iterable[str], depth: int = 1) -> list[str]:
    """Indent logical lines (which may span several physical ones) by `depth` levels."""
    prefix = INDENT * depth
    return [prefix + line.replace("\n", "\n" + prefix) for line in lines]


def _op_lines(calls: tuple[OpCall, ...], argument: Any) -> list[str]:
    """`var = layers.Op(args)(inputs)` per op, `x` being the layer's input and reused once it is dead."""
    names = {-1: "x"}
    spare = ["y", "z", *(f"t{i}" for i in range(len(calls)))]
    last_use = {}
    for index, call in enumerate(calls):
        for source in call.inputs:
            last_use[source] = index
    lines = []
    for index, call in enumerate(calls):
        first = call.inputs[0]
        if index == len(calls) - 1:  # the statement's result is the current tensor (`add d1 [id | id]` too)
            target = "x"
        elif not isinstance(first, str) and last_use.get(first, -2) <= index:  # the first input dies here: reuse it
            target = names[first]
        else:
            used = set(names.values()) | {i for c in calls for i in c.inputs if isinstance(i, str)}
            target = next(name for name in spare if name not in used)
        args = [f"{key}={argument(index, key, value)}" for key, value in op_arguments(call.op).items()]
        constructor = op_constructor(call.op)
        construct = constructor if _is_opaque(call.op) else f"{constructor}({', '.join(args)})"
        if len(construct) > WRAP and not _is_opaque(call.op):  # one argument per line, as a formatter would
            construct = f"{constructor}(\n" + "".join(f"{INDENT}{arg},\n" for arg in args) + ")"
        inputs = [i if isinstance(i, str) else names[i] for i in call.inputs]
        names[index] = target
        lines.append(f"{target} = {construct}({call.op.call_source(inputs)})")
    return lines


def _helper_name(kind: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", kind).lower()
    name, n = base, 2
    while name in taken or name in RESERVED or keyword.iskeyword(name):
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def make_helpers(layers: list[Layer], traces: list[tuple[OpCall, ...]], describe: Any) -> dict[tuple, Helper]:
    """One helper per layer structure that has several ops and either occurs more than once or
    merges branches (a `res` block): single ops and one-off chains read better inline."""
    groups: dict[tuple, list[int]] = {}
    for index, (layer, calls) in enumerate(zip(layers, traces)):
        groups.setdefault((layer.kind, signature(calls)), []).append(index)
    helpers: dict[tuple, Helper] = {}
    taken: set[str] = set()
    for key, members in groups.items():
        calls = traces[members[0]]
        branching = any(len(c.inputs) > 1 or c.inputs[0] != i - 1 for i, c in enumerate(calls))
        own = type(layers[members[0]]).own_function  # a user block is a function of its own
        if len(calls) == 1 and calls[0].op.share is not None:  # a shared block's use: `x = tower_model()(x)`
            continue
        if not calls or (not own and (len(calls) < 2 or (len(members) < 2 and not branching))):
            continue
        params: list[str] = []
        slots: dict[tuple[int, str], str] = {}
        columns: dict[str, list[Any]] = {}  # parameter -> its value in each member
        for op_index, call in enumerate(calls):
            for argument in op_arguments(call.op):
                values = [op_arguments(traces[m][op_index].op)[argument] for m in members]
                if all(_same(v, values[0]) for v in values):
                    continue
                shared = next(
                    (p for p in params if p.rstrip("_0123456789") == argument and all(map(_same, columns[p], values))),
                    None,
                )  # two ops of the layer taking the same value in every member share one parameter
                if shared is None:
                    shared = argument if argument not in params else f"{argument}_{len(params) + 1}"
                    params.append(shared)
                    columns[shared] = values
                slots[(op_index, argument)] = shared
        first = layers[members[0]]
        helpers[key] = Helper(_helper_name(first.emit_name(), taken), calls, params, slots, describe(first))
    return helpers


def python_name(var: str, taken: set[str]) -> str:
    """A loop variable's Python name: the spec's when it is a usable identifier, else a cleaned one."""
    base = re.sub(r"\W", "_", var)
    base = base if base.isidentifier() else f"v_{base}"
    name, n = base, 2
    while name in taken or name in RESERVED or keyword.iskeyword(name) or name == "_":
        name, n = f"{base}_{n}", n + 1
    return name


_PLAIN = re.compile(r"(?:[ !#-\[\]-~]|\n)*")  # printable ASCII and line breaks, without a quote or a backslash


def docstring(text: str) -> str:
    """A string literal whose value is exactly `text`, by construction: a readable triple-quoted one when the
    text is plain (printable ASCII and line breaks, no quote, no backslash), else `repr`. Spec lines, file and
    model names reach emitted modules only through here or through `repr`, so no file name can end a string
    and write code (`a\"\"\"; __import__('os').system(...); \"\"\".net`), and no control character is written."""
    return f'"""{text}"""' if _PLAIN.fullmatch(text) else repr(text)
