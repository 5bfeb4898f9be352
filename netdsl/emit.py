"""Network -> a standalone, readable Python module that builds the same Keras model (`netdsl emit`).

The module reads like the seed's own code: one helper function per repeated block (a `conv`
statement with its activations and batch norm, a `res` block), and a Python `for` loop wherever
the spec has a `repeat`. It never passes `name=`: Keras's automatic names in a fresh session are
exactly the analyzer's names, so running the file prints the summary `netdsl check` predicts.

How it works. Every layer is traced into its ops (the same `apply` the analyzer and the compiler
run); layers with the same op structure share a helper whose parameters are the constructor
arguments that differ between them. The surface program is walked alongside the lowered layers,
so each statement inside a `repeat` is known with all the values it takes; an argument becomes a
loop variable when it follows that variable, and a loop that cannot be written that way is
unrolled. Nothing here imports Keras.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netdsl.analysis import Node, ShapeGraph, analyze
from netdsl.compile import model_name
from netdsl.diagnostics import NetdslError, Source
from netdsl.ir import Command, Layer, Network, Repeat, Statement
from netdsl.layers.base import Code, GraphBase, Op, Shape, fmt_shape
from netdsl.layers.pretrained import Application, Freezing
from netdsl.names import evaluate
from netdsl.syntax import parse_surface

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

    def __init__(self, shapes: ShapeGraph, x: Node, named: dict[str, Node]) -> None:
        super().__init__()
        self.calls: list[OpCall] = []
        self.shapes = shapes
        self.nodes: dict[int | str, Node] = {-1: x, **named}

    def shape(self, x: int | str) -> Shape:
        return self.nodes[x].shape

    def call(self, op: Op, *inputs: int | str) -> int:
        self.calls.append(OpCall(op, tuple(inputs)))
        self.nodes[len(self.calls) - 1] = self.shapes.call(op, *(self.nodes[i] for i in inputs))
        return len(self.calls) - 1

    def lookup(self, name: str) -> int | str:
        return self.names[name] if name in self.names else variable(name)

    def application(self, application: Application, x: int) -> int:
        """A keras.applications backbone: one call that builds it on the tensor (see ApplicationSourceOp)."""
        self.calls.append(OpCall(application.source_op(), (x,)))
        self.nodes[len(self.calls) - 1] = self.shapes.application(application, self.nodes[x])
        return len(self.calls) - 1


def trace_all(net: Network) -> tuple[list[tuple[OpCall, ...]], list[int | str]]:
    """The ops each layer of `net` stands for, in order, and what each layer's output is (an op index, -1
    for its input, or a named tensor's variable); the spec has been analyzed, so shapes are valid."""
    shapes = ShapeGraph(lambda index, name: True)
    node = shapes.input(net.input_shape or (), net.input_span)
    named: dict[str, Node] = {}  # variable -> its node, for the tensors named so far
    if net.input_name:
        named[variable(net.input_name)] = node
    for spec in net.extra_inputs:
        named[variable(spec.name)] = shapes.input(spec.shape, spec.span)
    traces, outputs = [], []
    for layer in net.layers:
        shapes.layer = layer
        graph = TraceGraph(shapes, node, named)
        output = layer.apply(-1, graph)
        traces.append(tuple(graph.calls))
        outputs.append(output)
        node = graph.nodes[output]
        if layer.tap is not None:
            named[variable(layer.tap)] = node
    return traces, outputs


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
        lines = [f"def {self.name}({', '.join(['x', *self.externals, *self.params])}):", f'{INDENT}"""{self.doc}"""']
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
        applied = inputs[0] if len(inputs) == 1 else "[" + ", ".join(inputs) + "]"
        names[index] = target
        lines.append(f"{target} = {construct}({applied})")
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


# ---------------------------------------------------------------- walking the program


@dataclass
class Call:
    """One execution of a layer statement: the layer it produced and the loop variables' values."""

    command: Command | None
    layer: Layer
    env: dict[str, Any]
    index: int  # the layer's position in the network


@dataclass
class Loop:
    """One execution of a `repeat`: its resolved count and values, and the body of each iteration."""

    repeat: Repeat
    env: dict[str, Any]
    counts: list[int]  # per value: the count may be one of the loop's own variables (`repeat n [...] for f, n in ...`)
    values: list[Any]
    iterations: list[list[Call | Loop]] = field(default_factory=list)
    envs: list[dict[str, Any]] = field(default_factory=list)  # the variables of each value


class _Misaligned(Exception):
    """The surface program does not expand to the network's layers (edited or built in Python)."""


class _Inexpressible(Exception):
    """A statement inside a loop takes values no loop variable explains: unroll the loop."""


def _iterations(statement: Repeat, env: dict[str, Any]) -> tuple[int, list[Any], list[dict[str, Any]]]:
    """A repeat's count per value, its values and each value's variables, as lowering computed them."""
    quiet = lambda *args: None  # noqa: E731  (lowering has reported any error already)
    names = statement.variables
    values = [evaluate(v, env, quiet) for v in statement.values] if names else [None]
    envs = [{**env, **(dict(zip(names, v)) if len(names) > 1 else {names[0]: v})} if names else env for v in values]
    counts = [evaluate(statement.count, inner, quiet) if statement.count else 1 for inner in envs]
    return counts, values, envs


def expand(statements: Iterable[Statement], env: dict[str, Any], layers: list[Layer], cursor: list[int]) -> list:
    """The executions of `statements`, consuming `layers` in the order lowering produced them."""
    out: list[Call | Loop] = []
    for statement in statements:
        if isinstance(statement, Repeat):
            counts, values, envs = _iterations(statement, env)
            loop = Loop(statement, env, counts, values, envs=envs)
            for inner, count in zip(envs, counts):  # lowering's order: each value, then `count` times
                loop.iterations += [expand(statement.body, inner, layers, cursor) for _ in range(count)]
            out.append(loop)
        elif isinstance(statement, Command) and cursor[0] < len(layers) and layers[cursor[0]].span == statement.span:
            out.append(Call(statement, layers[cursor[0]], env, cursor[0]))
            cursor[0] += 1
    return out


class Emitter:
    """Writes the module's `build_model` body from the executions of the program."""

    def __init__(
        self,
        helpers: dict[tuple, Helper],
        keys: list[tuple],
        traces: list[tuple[OpCall, ...]],
        outputs: list[int | str],
    ) -> None:
        self.helpers = helpers
        self.keys = keys  # per layer index: its helper key
        self.traces = traces  # per layer index: its ops
        self.outputs = outputs  # per layer index: its output (a variable, for `use`)

    def value(self, values: list[Any], envs: list[dict[str, Any]], scope: dict[str, str], mentioned: set[str]) -> str:
        """A constant, or the loop variable every execution's value equals (preferring ones the spec names)."""
        candidates = sorted(scope, key=lambda var: var not in mentioned)
        for var in candidates:
            if var in mentioned and all(_same(env.get(var), v) for env, v in zip(envs, values)):
                return scope[var]
        if all(_same(v, values[0]) for v in values):
            return repr(values[0])
        for var in candidates:
            if all(_same(env.get(var), v) for env, v in zip(envs, values)):
                return scope[var]
        raise _Inexpressible

    def call(self, calls: list[Call], scope: dict[str, str]) -> list[str]:
        """The line(s) for one layer statement executed as `calls`."""
        first = calls[0]
        key = self.keys[first.index]
        if any(self.keys[c.index] != key for c in calls):
            raise _Inexpressible
        traces = [self.traces[c.index] for c in calls]
        envs = [c.env for c in calls]
        mentioned = {str(a.value) for a in first.command.args} if first.command else set()

        def argument(op_index: int, name: str) -> str:
            values = [op_arguments(t[op_index].op)[name] for t in traces]
            return self.value(values, envs, scope, mentioned)

        helper = self.helpers.get(key)
        tap = [f"{variable(first.layer.tap)} = x"] if first.layer.tap is not None else []
        if not traces[0]:  # `use d1`, `id`: no Keras layer, only a change of the current tensor
            output = self.outputs[first.index]
            return [*([f"x = {output}"] if isinstance(output, str) else []), *tap]
        if helper is None:
            return [*_op_lines(traces[0], lambda index, name, value: argument(index, name)), *tap]
        arguments = {}
        for (op_index, name), param in helper.slots.items():
            arguments.setdefault(param, argument(op_index, name))
        args = "".join(f", {param}={arguments[param]}" for param in helper.params)
        externals = "".join(f", {name}" for name in helper.externals)
        return [f"x = {helper.name}(x{externals}{args})", *tap]

    def block(self, group: list[list[Call | Loop]], scope: dict[str, str]) -> list[str]:
        """Lines valid for every execution in `group` (all executions of the same statements)."""
        lines: list[str] = []
        for position in range(len(group[0])):
            items = [execution[position] for execution in group]
            if isinstance(items[0], Call):
                lines += self.call(items, scope)  # type: ignore[arg-type]
            else:
                lines += self.loop(items, scope)  # type: ignore[arg-type]
        return lines

    def loop(self, loops: list[Loop], scope: dict[str, str]) -> list[str]:
        """A Python `for` for a `repeat`, or its iterations one after another when it is not expressible."""
        repeat = loops[0].repeat
        bodies = [body for loop in loops for body in loop.iterations]
        if not bodies or not bodies[0]:
            return []  # `repeat 0 [...]`, or a body without layers
        try:
            return self._for(loops, bodies, scope)
        except _Inexpressible:
            if len(loops) > 1:
                raise  # an enclosing loop shares this code: it has to unroll instead
        lines = []
        for index, body in enumerate(loops[0].iterations):
            starts = [sum(loops[0].counts[:i]) for i in range(len(loops[0].counts))]
            value = loops[0].values[max(i for i, start in enumerate(starts) if start <= index)] if repeat.var else None
            note = f"{repeat.var} = {value!r}" if repeat.var else "repeat"
            lines.append(f"# {note} (iteration {index + 1} of {len(loops[0].iterations)})")
            lines += self.block([body], scope)
        return lines

    def _for(self, loops: list[Loop], bodies: list[list[Call | Loop]], scope: dict[str, str]) -> list[str]:
        repeat = loops[0].repeat
        envs = [loop.env for loop in loops]
        header: list[str] = []
        inner = dict(scope)
        if repeat.var:
            mentioned = {str(v.value) for v in repeat.values}
            values = [
                self.value([loop.values[i] for loop in loops], envs, scope, mentioned)
                for i in range(len(repeat.values))
            ]
            names = []
            for var in repeat.variables:
                inner[var] = python_name(var, set(inner.values()))
                names.append(inner[var])
            name = ", ".join(names)
            header.append(f"for {name} in ({', '.join(values)}{',' if len(values) == 1 else ''}):")
        if repeat.count is not None:
            mentioned = {str(repeat.count.value)}
            counts = [count for loop in loops for count in loop.counts]
            count_envs = [inner for loop in loops for inner in loop.envs]
            count = self.value(counts, count_envs, inner, mentioned)
            if count != "1":
                header.append(f"for _ in range({count}):")
        body = self.block(bodies, inner)
        used = "\n".join([*header[1:], *body])  # the count may be the loop's own variable: `repeat f [...] for f in`
        if len(repeat.variables) == 1 and not re.search(rf"\b{inner[repeat.var]}\b", used):
            header[0] = header[0].replace(f"for {inner[repeat.var]} in", "for _ in", 1)  # values kept, for the reader
        return [*(INDENT * depth + line for depth, line in enumerate(header)), *indent(body, len(header))]


def python_name(var: str, taken: set[str]) -> str:
    """A loop variable's Python name: the spec's when it is a usable identifier, else a cleaned one."""
    base = re.sub(r"\W", "_", var)
    base = base if base.isidentifier() else f"v_{base}"
    name, n = base, 2
    while name in taken or name in RESERVED or keyword.iskeyword(name) or name == "_":
        name, n = f"{base}_{n}", n + 1
    return name


# ---------------------------------------------------------------- the module


def _statement_text(source: Source, command: Command | None, layer: Layer) -> str:
    """The statement as written (for helper docstrings), or its kind."""
    if command is None or layer.span is None:
        return layer.kind
    span = command.end
    line = source.line(span.line)
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    text = " ".join(line[span.column - 1 : end].split())
    where = f"{source.name}, line {span.line}" if source.name != "<string>" else f"line {span.line}"
    return f"{text}  ({where})".replace('"""', "'''").replace("\\", "\\\\")


def emit_network(net: Network, freeze: Freezing | None = None) -> str:
    """The Python source of a module whose `build_model()` returns the Keras model of `net`, with
    `freeze` (the spec's own, chosen by netdsl.transfer) written as the seed's freezing loop.

    The spec is analyzed first, so a bad spec raises NetdslError instead of emitting broken code.
    """
    from netdsl import __version__

    report = analyze(net, freeze.trainable if freeze is not None else None)
    source = Source(net.source, net.file or "<string>")
    layers = list(net.layers)
    traces, outputs = trace_all(net)
    try:
        statements = parse_surface(source) if net.source else []
        cursor = [0]
        program = expand(statements, {}, layers, cursor)
        if cursor[0] != len(layers):
            raise _Misaligned
    except (NetdslError, _Misaligned):  # no usable source (e.g. a Network built in Python): no loops
        program = [Call(None, layer, {}, index) for index, layer in enumerate(layers)]
    commands = _commands(program)

    helpers = make_helpers(layers, traces, lambda layer: _statement_text(source, commands.get(id(layer)), layer))
    keys = [(layer.kind, signature(calls)) for layer, calls in zip(layers, traces)]
    body = Emitter(helpers, keys, traces, outputs).block([program], {}) if program else []

    title = f"{net.name}: the Keras model of {net.file}" if net.file else f"{net.name}: a Keras model"
    trainable = f"{report.trainable_params:,} trainable" if report.non_trainable_params else "all trainable"
    uses_regularizers = any("regularizers." in line for line in body) or any(
        "regularizers." in line for helper in helpers.values() for line in helper.source()
    )
    out = [
        f'"""{title}, emitted by netdsl {__version__} (`netdsl emit`).',
        "",
        f"build_model() returns {len(report.layers)} layers and {report.total_params:,} parameters ({trainable}),",
        f"output {fmt_shape(report.output_shape[1:])}. In a fresh Keras session (as when this file runs) the layer",
        "names are the ones `netdsl check` prints.",
        '"""',
        "",
        "import keras",
        "from keras import layers" + (", regularizers" if uses_regularizers else ""),
    ]
    for helper in helpers.values():
        out += ["", "", *helper.source()]
    out += [
        "",
        "",
        "def build_model():",
        f'{INDENT}"""The model, built with the Keras functional API."""',
        *indent(_inputs(net)),
        *indent(body),
        *_model_with_freezing(net, freeze),
        "",
        "",
        'if __name__ == "__main__":',
        f"{INDENT}build_model().summary()",
        "",
    ]
    return "\n".join(out)


def _inputs(net: Network) -> list[str]:
    """`inputs = keras.Input(...)`, or one named variable per input of a multi-input network."""
    dtype = lambda d: "" if d == "float32" else f", dtype={d!r}"  # noqa: E731
    first = f"keras.Input(shape={tuple(net.input_shape or ())!r}{dtype(net.input_dtype)})"
    if not net.extra_inputs and net.input_name is None:
        return [f"inputs = {first}", "x = inputs"]
    names = [variable(net.input_name or "inputs"), *(variable(spec.name) for spec in net.extra_inputs)]
    lines = [f"{names[0]} = {first}"]
    lines += [
        f"{variable(spec.name)} = keras.Input(shape={spec.shape!r}{dtype(spec.dtype)})" for spec in net.extra_inputs
    ]
    return [*lines, f"inputs = [{', '.join(names)}]" if len(names) > 1 else f"inputs = {names[0]}", f"x = {names[0]}"]


def _model_with_freezing(net: Network, freeze: Freezing | None) -> list[str]:
    """The return of build_model(): the model, with the spec's `pretrained ... freeze` applied as the seed does."""
    outputs = "x" if not net.outputs else variable(net.outputs[0]) if len(net.outputs) == 1 else (
        "[" + ", ".join(map(variable, net.outputs)) + "]")  # fmt: skip
    model = f"keras.Model(inputs, {outputs}, name={model_name(net.name)!r})"
    if freeze is None or freeze.below == 0:
        return [f"{INDENT}return {model}"]
    return [
        f"{INDENT}model = {model}",
        f"{INDENT}for layer in model.layers[:{freeze.below}]:  # {freeze.text}",
        f"{INDENT}{INDENT}layer.trainable = False",
        f"{INDENT}return model",
    ]


def _commands(program: list[Call | Loop]) -> dict[int, Command | None]:
    """id(layer) -> the statement that produced it."""
    found: dict[int, Command | None] = {}
    stack: list[Call | Loop] = list(program)
    while stack:
        item = stack.pop()
        if isinstance(item, Call):
            found.setdefault(id(item.layer), item.command)
        else:
            stack += [inner for body in item.iterations for inner in body]
    return found


__all__ = ["Code", "emit_network", "trace_all"]
