"""Lowering of the graph statements: merges with branches, `as` names, `use`, `input ... as`, `output`,
and uses of user-defined blocks. A mixin of lowering's `_Lowering`, kept apart so that each file reads
on its own; it relies on `_Lowering`'s `error`, `resolve`, `bind`, `validate` and `walk`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from netdsl.diagnostics import did_you_mean
from netdsl.ir import Argument, Command, Define, InputSpec, Layer, Span, Statement
from netdsl.layers.graph import Block, Merge, Use
from netdsl.names import BAD, Binding, Scopes
from netdsl.provenance import BlockUse, Origin, Run, Trail


def signature(define: Define) -> str:
    """`basic f s=1`, for messages."""
    params = " ".join(p.name if p.default is None else f"{p.name}={p.default.text()}" for p in define.params)
    return f"{define.name} {params}".strip()


class GraphStatements:
    """The graph half of lowering (see the module docstring)."""

    scopes: Scopes
    defs: dict[str, Define]
    frames: list[BlockUse]  # the blocks being lowered: their uses locate errors inside them, and their layers
    sink: list[Layer]
    trail: list[Origin | Run]
    bodies: list[Trail]
    input_statement: Command | None

    # ------------------------------------------------------------ names

    def reference(self, name: str, span: Span) -> str | None:
        """The unique name that `name` refers to here, or None after a located error."""
        found = self.scopes.find(name)
        if found is not None:
            return found.unique
        later = self.scopes.later(name)
        if later is not None:
            self.error("E209", f"'{name}' is used before it is made", span,  # type: ignore[attr-defined]
                       help=f"it is named at line {later.line}, column {later.column}; a name refers to a tensor made earlier")  # fmt: skip
        else:
            self.error("E209", f"unknown name '{name}'", span,  # type: ignore[attr-defined]
                       help=did_you_mean(name, self.scopes.visible()) or "name a tensor with `... as NAME` before using it")  # fmt: skip
        return None

    def named(self, layer: Layer, cmd: Command) -> Layer:
        """The layer with its `as NAME` binding, if the statement has one."""
        if cmd.alias is None:
            return layer
        return layer.model_copy(update={"tap": self.scopes.bind(cmd.alias, cmd.alias_span)})

    def sequence(self, body: Sequence[Statement], env: dict[str, Any], depth: int, where: str) -> list[Layer]:
        """Lower a branch or a block's body into its own list of layers, in a scope of its own (and its
        provenance into the statement's `bodies`)."""
        outer, trail = self.sink, self.trail
        self.sink, self.trail = [], []
        self.scopes.push(body)
        try:
            self.walk(body, env, depth + 1, where)  # type: ignore[attr-defined]
            return self.sink
        finally:
            self.scopes.pop()
            self.bodies.append(tuple(self.trail))
            self.sink, self.trail = outer, trail

    # ------------------------------------------------------------ statements

    def references(self, args: Sequence[Argument], env: dict[str, Any], words: frozenset[str] = frozenset()):
        """A statement's bare words that name tensors (not variables, nor the layer's own `words`): their
        unique names, as written, the other arguments, and whether every name was found."""
        refs, names, rest, ok = [], [], [], True
        for arg in args:
            if (
                arg.key is None
                and isinstance(arg.value, str)
                and not arg.quoted
                and arg.value not in env
                and arg.value not in words
            ):
                unique = self.reference(arg.value, arg.span)
                ok &= unique is not None
                refs.append(unique)
                names.append(arg.value)
            else:
                rest.append(arg)
        return refs, names, rest, ok

    def with_names(self, cls: type[Layer], cmd: Command, env: dict[str, Any]) -> Layer | None:
        """`mha 8 64 memory`: a layer whose bare words (other than its flags) name the tensors it reads."""
        syntax = cls.syntax
        words = frozenset(syntax.flags) | (syntax.sequence[1] if syntax.sequence else frozenset())
        for arg in cmd.args:  # a misspelt flag (`casual`) that names no tensor either
            word = arg.value if arg.is_word else None
            if word and word not in env and word not in words and self.scopes.find(word) is None:
                hint = did_you_mean(word, words)
                if hint:
                    self.error("E202", f"{cmd.word}: unknown argument '{word}'", arg.span, help=hint)  # type: ignore[attr-defined]
                    return None
        refs, names, rest, ok = self.references(cmd.args, env, words)
        if len(refs) > cls.takes_names:
            self.error("E202", f"{cmd.word} reads at most {cls.takes_names} named tensors, got {len(refs)}: "  # type: ignore[attr-defined]
                       + ", ".join(names), cmd.span, help=f"for example `{syntax.example}`")  # fmt: skip
            return None
        fields = [f for f in cls.model_fields if f not in cls.internal]
        bound = self.bind(cmd.word, syntax, fields, rest, env)  # type: ignore[attr-defined]
        if bound is None or not ok:
            return None
        values, spans = bound
        data = {**values, "refs": tuple(refs), "ref_names": tuple(names), "span": cmd.span}
        return self.validate(cmd.word, cls, data, spans, cmd.span, syntax.example)  # type: ignore[attr-defined]

    def merge(self, cmd: Command, env: dict[str, Any], depth: int) -> Layer | None:
        """`add [a | b]`, `cat d1`, `cat d1 axis=1 [a]`: named tensors and options, then branches."""
        refs, names, rest, ok = self.references(cmd.args, env)
        bound = self.bind(cmd.word, Merge.syntax, ["axis", "scale"], rest, env)  # type: ignore[attr-defined]
        branches = [tuple(self.sequence(body, env, depth, "a branch")) for body in cmd.branches or ()]
        if bound is None or not ok:
            return None
        if not branches and not refs:
            self.error("E315", f"{cmd.word} needs branches or names to merge", cmd.span,  # type: ignore[attr-defined]
                       help=f"for example `{cmd.word} [conv 64 | id]` or `{cmd.word} d1` (d1 named with `as d1`)")  # fmt: skip
            return None
        values, spans = bound
        data = {"mode": cmd.word, "branches": tuple(branches), "refs": tuple(refs), "ref_names": tuple(names),
                **values, "span": cmd.span}  # fmt: skip
        return self.validate(cmd.word, Merge, data, spans, cmd.span, Merge.syntax.example)  # type: ignore[attr-defined]

    def nested(self, cls: type[Layer], cmd: Command, env: dict[str, Any], depth: int) -> Layer | None:
        """A layer holding a body that is not a merge (`seq [ ... ]`): its options, then its branches."""
        fields = [f for f in cls.model_fields if f not in cls.internal]
        bound = self.bind(cmd.word, cls.syntax, fields, cmd.args, env)  # type: ignore[attr-defined]
        branches = [tuple(self.sequence(body, env, depth, "a branch")) for body in cmd.branches or ()]
        if bound is None:
            return None
        values, spans = bound
        data = {**values, "branches": tuple(branches), "span": cmd.span}
        return self.validate(cmd.word, cls, data, spans, cmd.span, cls.syntax.example)  # type: ignore[attr-defined]

    def use(self, cmd: Command, env: dict[str, Any]) -> Layer | None:
        """`use NAME`: the current tensor becomes the named one."""
        words = [a for a in cmd.args if a.key is None and isinstance(a.value, str) and not a.quoted]
        if len(cmd.args) != 1 or len(words) != 1:
            self.error("E202", "use takes one name, such as `use image`", cmd.span)  # type: ignore[attr-defined]
            return None
        unique = self.reference(words[0].value, words[0].span)
        return None if unique is None else Use(ref=unique, ref_name=words[0].value, span=cmd.span)

    def output(self, cmd: Command, env: dict[str, Any]) -> None:
        """`output a b`: the named tensors the model returns, in that order."""
        if self.outputs:  # type: ignore[has-type]
            self.error("E204", "output is given twice", cmd.span)  # type: ignore[attr-defined]
            return
        words = [a for a in cmd.args if a.key is None and isinstance(a.value, str) and not a.quoted]
        if not cmd.args or len(words) != len(cmd.args):
            self.error("E202", "output takes the names of tensors, such as `output logits boxes`", cmd.span)  # type: ignore[attr-defined]
            return
        found = [self.reference(a.value, a.span) for a in words]
        if all(found):
            self.outputs = tuple(found)  # type: ignore[assignment]

    def extra_input(self, cmd: Command, shape: tuple[int, ...], dtype: str) -> None:
        """A second (third, ...) `input`: it must be named, so that the network can `use` it."""
        if cmd.alias is None:
            first = self.input_span  # type: ignore[attr-defined]
            self.error("E204", "input is given twice", cmd.span,  # type: ignore[attr-defined]
                       help=f"first given on line {first.line}; a network with several inputs names each: `input 10 as meta`")  # fmt: skip
            return
        unique = self.scopes.bind(cmd.alias, cmd.alias_span)
        self.input_statement = cmd  # the layers go on from the last input (lowering's provenance says so)
        self.extra_inputs.append(InputSpec(shape=shape, dtype=dtype, name=unique, span=cmd.span))  # type: ignore[attr-defined]

    # ------------------------------------------------------------ user blocks

    def block_use(self, define: Define, cmd: Command, env: dict[str, Any], depth: int) -> Layer | None:
        """`basic 64 s=2`: bind the block's parameters, then lower its body with them."""
        if any(frame.name == define.name for frame in self.frames):
            chain = " -> ".join([*(f.name for f in self.frames), define.name])
            self.error("E210", f"block '{define.name}' uses itself ({chain})", cmd.span,  # type: ignore[attr-defined]
                       help="a block cannot contain itself; use `repeat` for a stack of blocks")  # fmt: skip
            return None
        params = {p.name for p in define.params}
        shared = any(a.is_word and a.value == "shared" and a.value not in env | dict.fromkeys(params) for a in cmd.args)
        if shared:  # `tower shared`: the flag, not an argument of the block
            cmd = replace(cmd, args=tuple(a for a in cmd.args if not (a.is_word and a.value == "shared")))
        values = self.block_arguments(define, cmd, env)
        if values is None:
            return None
        tensors = self.tensor_arguments(values)
        if shared and tensors:  # one Keras model with one input: it cannot read another model's tensor
            name = next(iter(tensors))
            self.error("E216", f"shared block '{define.name}' is given the tensor '{values[name]}' as '{name}'; a "  # type: ignore[attr-defined]
                       "shared block is one model that reads only its own input", cmd.span,
                       help="drop `shared`, or pass the tensor in as the block's input (`use ...` before it)")  # fmt: skip
            return None
        self.frames.append(BlockUse(define.name, cmd.span, tuple(values.items())))
        outer, self.scopes = self.scopes, Scopes(counts=self.scopes.counts)  # a block sees only its own names
        self.scopes.stack[0].update(tensors)  # and the tensors passed to it (`normal 44 c1`: `use p` inside)
        try:
            body = self.sequence(define.body, {k: v for k, v in values.items() if k not in tensors}, depth, "a block")
        finally:
            self.scopes = outer
            self.frames.pop()
        args = tuple((k, v) for k, v in values.items() if isinstance(v, (int, float, str, tuple)))
        if shared and not self.same_as_first_use(define.name, args, cmd.span):
            return None
        return Block(name=define.name, args=args, body=tuple(body), span=cmd.span, shared=shared)

    def same_as_first_use(self, name: str, args: tuple, span: Span) -> bool:
        """A shared block is one model: each shared use must take the first one's arguments (else E317)."""
        first, where = self.shared_uses.setdefault(name, (args, span))  # type: ignore[attr-defined]
        if first != args:
            shown = lambda values: ", ".join(f"{k}={v}" for k, v in values) or "none"  # noqa: E731
            self.error("E317", f"shared uses of block '{name}' need the same arguments: {shown(args)} here, "  # type: ignore[attr-defined]
                       f"{shown(first)} at {where.line}:{where.column}", span,
                       help="one set of weights has one shape: drop `shared` for a block of other sizes")  # fmt: skip
        return first == args

    def tensor_arguments(self, values: dict[str, Any]) -> dict[str, Binding]:
        """The parameters whose value is a bare word naming a tensor visible at the use (`cell 44 prev`): inside
        the block the parameter names that tensor, as NASNet's cells read the previous cell's input."""
        found = {param: self.scopes.find(value) for param, value in values.items() if isinstance(value, str)}
        return {param: binding for param, binding in found.items() if binding is not None}

    def block_arguments(self, define: Define, cmd: Command, env: dict[str, Any]) -> dict[str, Any] | None:
        """The parameters' values at a use: positional in order, then by name, then the defaults."""
        params = [p.name for p in define.params]
        values: dict[str, Any] = {}
        ok = True
        positional = [a for a in cmd.args if a.key is None]
        for index, arg in enumerate(positional):
            if index >= len(params):
                self.error("E202", f"{define.name}: unexpected value '{arg.text()}'", arg.span,  # type: ignore[attr-defined]
                           help=f"{define.name} takes {len(params)} argument{'s' * (len(params) != 1)}: {signature(define)}")  # fmt: skip
                return None
            values[params[index]] = self.resolve(arg, env)  # type: ignore[attr-defined]
        for arg in cmd.args:
            if arg.key is None:
                continue
            if arg.key not in params or arg.op != "=":
                self.error("E202", f"{define.name} has no argument '{arg.key}'", arg.span,  # type: ignore[attr-defined]
                           help=did_you_mean(arg.key, params) or f"{define.name} takes: {signature(define)}")  # fmt: skip
                ok = False
            elif arg.key in values:
                self.error("E204", f"{define.name}: {arg.key} is given twice", arg.span)  # type: ignore[attr-defined]
                ok = False
            else:
                values[arg.key] = self.resolve(arg, env)  # type: ignore[attr-defined]
        for param in define.params:
            if param.name in values:
                continue
            if param.default is None:
                self.error("E203", f"{define.name}: missing {param.name}", cmd.span,  # type: ignore[attr-defined]
                           help=f"{define.name} takes: {signature(define)} (defined at line {define.span.line})")  # fmt: skip
                ok = False
            else:
                values[param.name] = self.resolve(param.default, dict(values))  # type: ignore[attr-defined]
        if not ok or any(v is BAD for v in values.values()):
            return None
        return {p: values[p] for p in params}
