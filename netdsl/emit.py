"""Network -> a standalone, readable Python module that builds the same Keras model (`netdsl emit`).

The module reads like the seed's own code: one helper function per repeated block (a `conv`
statement with its activations and batch norm, a `res` block), and a Python `for` loop wherever
the spec has a `repeat`. It never passes `name=`: Keras's automatic names in a fresh session are
exactly the analyzer's names, so running the file prints the summary `netdsl check` predicts.

How it works. Every layer is traced into its ops (the same `apply` the analyzer and the compiler
run); layers with the same op structure share a helper whose parameters are the constructor
arguments that differ between them. Lowering's provenance (netdsl/provenance.py) says which
statement made each layer, with which variables, in which iteration of which `repeat`, so each
statement inside a loop is known with all the values it takes; an argument becomes a loop
variable when it follows that variable, and a loop that cannot be written that way is unrolled.
The source is never parsed again. Nothing here imports Keras.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from netdsl.analysis import analyze
from netdsl.compile import model_name
from netdsl.diagnostics import Source
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
from netdsl.ir import Layer, Network
from netdsl.layers.base import Code, fmt_shape
from netdsl.layers.pretrained import Freezing
from netdsl.layers.scale import emitted_definitions
from netdsl.provenance import Origin, Run, Site, Trail, flatten

# ---------------------------------------------------------------- walking the program


@dataclass
class Call:
    """One execution of a layer statement: the layer it produced, where it sits, and where it came from."""

    origin: Origin | None  # None for a network built in Python
    layer: Layer
    index: int  # the layer's position in the network

    @property
    def site(self) -> Site | None:
        return self.origin.site if self.origin is not None else None

    @property
    def env(self) -> Mapping[str, Any]:
        return self.origin.env if self.origin is not None else {}


@dataclass
class Loop:
    """One execution of a `repeat` (lowering's Run), with the executions of each of its iterations."""

    run: Run
    iterations: list[list[Call | Loop]]


class _Inexpressible(Exception):
    """A statement inside a loop takes values no loop variable explains, or the loops nest deeper than
    Python can indent (MAX_LOOPS): unroll the loop."""


MAX_LOOPS = 90
"""Deepest nesting of `for` in build_model: Python's tokenizer refuses a 100th level of indentation
(`repeat [dense f; repeat [...]] for f in 2`, 100 deep, was emitted as a module Python could not read)."""


def _program(net: Network, layers: list[Layer]) -> tuple[list[Call | Loop], list[Call]]:
    """The executions of the spec's statements as lowering's provenance records them (so loops are kept),
    and the calls in layer order; one call per layer without provenance (a Network built in Python, or
    one given other layers than lowering made)."""
    origins = list(flatten(net.provenance.trail)) if net.provenance is not None else []
    if len(origins) != len(layers):
        calls = [Call(None, layer, index) for index, layer in enumerate(layers)]
        return list(calls), calls
    calls = [Call(origin, layer, index) for index, (origin, layer) in enumerate(zip(origins, layers))]
    return _executions(net.provenance.trail, iter(calls)), calls  # type: ignore[union-attr]


def _executions(trail: Trail, calls: Iterator[Call]) -> list[Call | Loop]:
    """A trail with each layer's origin replaced by its call (they come in the same order)."""
    return [
        Loop(item, [_executions(body, calls) for body in item.iterations]) if isinstance(item, Run) else next(calls)
        for item in trail
    ]


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
        self.loops = 0  # the `for` statements around the lines being written

    def value(
        self, values: list[Any], envs: list[dict[str, Any]], scope: dict[str, str], mentioned: Collection[str]
    ) -> str:
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
        mentioned = first.site.mentions if first.site else frozenset()

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
        repeat = loops[0].run.site
        bodies = [body for loop in loops for body in loop.iterations]
        if not bodies or not bodies[0]:
            return []  # `repeat 0 [...]`, or a body without layers
        try:
            return self._for(loops, bodies, scope)
        except _Inexpressible:
            if len(loops) > 1:
                raise  # an enclosing loop shares this code: it has to unroll instead
        lines = []
        run = loops[0].run
        for index, body in enumerate(loops[0].iterations):
            starts = [sum(run.counts[:i]) for i in range(len(run.counts))]
            value = run.values[max(i for i, start in enumerate(starts) if start <= index)] if repeat.variables else None
            note = f"{repeat.variables[0]} = {value!r}" if repeat.variables else "repeat"
            lines.append(f"# {note} (iteration {index + 1} of {len(loops[0].iterations)})")
            lines += self.block([body], scope)
        return lines

    def _for(self, loops: list[Loop], bodies: list[list[Call | Loop]], scope: dict[str, str]) -> list[str]:
        runs = [loop.run for loop in loops]
        repeat, envs = runs[0].site, [run.env for run in runs]
        header: list[str] = []
        inner = dict(scope)
        if repeat.variables:
            values = [
                self.value([run.values[i] for run in runs], envs, scope, repeat.mentions)
                for i in range(len(runs[0].values))
            ]
            names = []
            for var in repeat.variables:
                inner[var] = python_name(var, set(inner.values()))
                names.append(inner[var])
            name = ", ".join(names)
            header.append(f"for {name} in ({', '.join(values)}{',' if len(values) == 1 else ''}):")
        if repeat.count is not None:
            counts = [count for run in runs for count in run.counts]
            count_envs = [inner for run in runs for inner in run.envs]
            count = self.value(counts, count_envs, inner, {repeat.count})
            if count != "1":
                header.append(f"for _ in range({count}):")
        if self.loops + len(header) > MAX_LOOPS:
            raise _Inexpressible
        self.loops += len(header)
        try:
            body = self.block(bodies, inner)
        finally:
            self.loops -= len(header)
        if not body:  # `repeat [id] for f in 4`: iterations that make no layer and bind no name write no loop
            return []
        used = "\n".join([*header[1:], *body])  # the count may be the loop's own variable: `repeat f [...] for f in`
        var = repeat.variables[0] if repeat.variables else None
        if len(repeat.variables) == 1 and not re.search(rf"\b{inner[var]}\b", used):
            header[0] = header[0].replace(f"for {inner[var]} in", "for _ in", 1)  # values kept, for the reader
        return [*(INDENT * depth + line for depth, line in enumerate(header)), *indent(body, len(header))]


# ---------------------------------------------------------------- the module


def _statement_text(source: Source, site: Site | None, layer: Layer) -> str:
    """The statement as written (for helper docstrings), or its kind."""
    if site is None or layer.span is None or not source.text:
        return layer.kind
    number, column, end_line, end_column = site.end
    line = source.line(number)
    end = end_column - 1 if end_line == number else len(line)
    text = " ".join(line[column - 1 : end].split())
    where = f"{source.name}, line {number}" if source.name != "<string>" else f"line {number}"
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
    program, calls = _program(net, layers)
    sites = {id(call.layer): call.site for call in calls}

    helpers = make_helpers(layers, traces, lambda layer: _statement_text(source, sites.get(id(layer)), layer))
    keys = [(layer.kind, signature(calls)) for layer, calls in zip(layers, traces)]
    body = Emitter(helpers, keys, traces, outputs, names).block([program], {}) if program else []

    title = f"{net.name}: the Keras model of {net.file}" if net.file else f"{net.name}: a Keras model"
    trainable = f"{report.trainable_params:,} trainable" if report.non_trainable_params else "all trainable"
    code = [*body, *(line for helper in helpers.values() for line in helper.source())]
    uses_regularizers = any("regularizers." in line for line in code)
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
    definitions = emitted_definitions(code)  # netdsl's own Keras classes (CustomScaleLayer, LayerScale), if used
    out += ["", "", *definitions] if definitions else []
    for helper in helpers.values():
        out += ["", "", *helper.source()]
    shared, clear = _shared_models(traces)
    out += shared
    out += [
        "",
        "",
        "def build_model():",
        f'{INDENT}"""The model, built with the Keras functional API."""',
        *clear,
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


def _shared_models(traces: list[tuple[OpCall, ...]]) -> tuple[list[str], list[str]]:
    """The module's models of shared blocks (`SHARED`, then a function per block, in the order of their first
    use), and build_model()'s first line, which forgets the models of an earlier call."""
    found = {call.op.share: call.op for calls in traces for call in calls if call.op.share is not None}
    if not found:
        return [], []
    lines = ["", "", "SHARED = {}  # the models of shared blocks, made at their first use in build_model()"]
    for op in found.values():
        lines += ["", "", *op.model_source(lambda calls: _op_lines(tuple(OpCall(o, i) for o, i in calls), _literal))]
    return lines, [f"{INDENT}SHARED.clear()  # a new model, new shared blocks"]


def _literal(index: int, name: str, value: Any) -> str:
    return repr(value)


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


__all__ = ["Code", "emit_network", "trace_all"]
