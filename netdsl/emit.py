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

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netdsl.analysis import analyze
from netdsl.compile import model_name
from netdsl.diagnostics import NetdslError, Source
from netdsl.emit_ops import (  # noqa: F401  (OpCall, TraceGraph: re-exported for callers of netdsl.emit)
    INDENT,
    RESERVED,
    Helper,
    OpCall,
    TraceGraph,
    _op_lines,
    _same,
    docstring,
    indent,
    make_helpers,
    op_arguments,
    python_name,
    signature,
    trace_all,
    variable,
)
from netdsl.ir import Command, Layer, Network, Repeat, Statement
from netdsl.layers.base import Code, fmt_shape
from netdsl.layers.pretrained import Freezing
from netdsl.names import evaluate, loop_envs
from netdsl.syntax import parse_surface

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
    values = [evaluate(v, env) for v in statement.values] if statement.variables else [None]
    envs = loop_envs(statement, env) or []  # the spec lowered: the loop binds as lowering bound it
    counts = [evaluate(statement.count, inner) if statement.count else 1 for inner in envs]
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
        names: dict[str, str],
    ) -> None:
        self.helpers = helpers
        self.keys = keys  # per layer index: its helper key
        self.traces = traces  # per layer index: its ops
        self.outputs = outputs  # per layer index: its output (a variable, for `use`)
        self.names = names  # unique tensor name -> its Python variable

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
        taps = {self.names[c.layer.tap] for c in calls if c.layer.tap is not None}
        if len(taps) > 1 or any(self.outputs[c.index] != self.outputs[first.index] for c in calls):
            raise _Inexpressible  # iterations name or use different variables (see tensor_variables)
        tap = [f"{taps.pop()} = x"] if taps else []
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
    return f"{text}  ({where})"  # written through emit_ops.docstring, which escapes whatever it must


def emit_network(net: Network, freeze: Freezing | None = None) -> str:
    """The Python source of a module whose `build_model()` returns the Keras model of `net`, with
    `freeze` (the spec's own, chosen by netdsl.transfer) written as the seed's freezing loop.

    The spec is analyzed first, so a bad spec raises NetdslError instead of emitting broken code.
    """
    from netdsl import __version__

    report = analyze(net, freeze.trainable if freeze is not None else None)
    source = Source(net.source, net.file or "<string>")
    layers = list(net.layers)
    traces, outputs, names = trace_all(net)
    program = _program(net, source, layers)
    commands = _commands(program)

    helpers = make_helpers(layers, traces, lambda layer: _statement_text(source, commands.get(id(layer)), layer))
    keys = [(layer.kind, signature(calls)) for layer, calls in zip(layers, traces)]
    body = Emitter(helpers, keys, traces, outputs, names).block([program], {}) if program else []

    title = f"{net.name}: the Keras model of {net.file}" if net.file else f"{net.name}: a Keras model"
    trainable = f"{report.trainable_params:,} trainable" if report.non_trainable_params else "all trainable"
    uses_regularizers = any("regularizers." in line for line in body) or any(
        "regularizers." in line for helper in helpers.values() for line in helper.source()
    )
    doc = "\n".join([
        f"{title}, emitted by netdsl {__version__} (`netdsl emit`).",
        "",
        f"build_model() returns {len(report.layers)} layers and {report.total_params:,} parameters ({trainable}),",
        f"output {fmt_shape(report.output_shape[1:])}. In a fresh Keras session (as when this file runs) the layer",
        "names are the ones `netdsl check` prints.",
        "",
    ])  # fmt: skip
    out = [
        docstring(doc),
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
        *_model_with_freezing(net, freeze, names),
        "",
        "",
        'if __name__ == "__main__":',
        f"{INDENT}build_model().summary()",
        "",
    ]
    return "\n".join(out)


def _program(net: Network, source: Source, layers: list[Layer]) -> list[Call | Loop]:
    """The executions of the spec's statements, walked alongside its lowered layers (so loops are kept);
    one call per layer when there is no usable source (a Network built in Python)."""
    try:
        statements = parse_surface(source) if net.source else []
        cursor = [0]
        program = expand(statements, {}, layers, cursor)
        if cursor[0] != len(layers):
            raise _Misaligned
        return program
    except (NetdslError, _Misaligned):
        return [Call(None, layer, {}, index) for index, layer in enumerate(layers)]


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


def _model_with_freezing(net: Network, freeze: Freezing | None, names: dict[str, str]) -> list[str]:
    """The return of build_model(): the model, with the spec's `pretrained ... freeze` applied as the seed does."""
    python = [names.get(name, variable(name)) for name in net.outputs]
    outputs = "x" if not python else python[0] if len(python) == 1 else "[" + ", ".join(python) + "]"
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
