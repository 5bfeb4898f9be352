"""Surface program -> Network: resolve variables, expand `repeat`, bind arguments to layer fields.

Binding is declarative: each layer (and directive) says in its `Syntax` which words, prefixes and
positions fill which fields, and Pydantic validates the result. Errors from every statement are
collected, so one run reports all the independent mistakes of a file. Along the way lowering records
where each layer came from (netdsl/provenance.py: its statement, variables, iterations, block use),
which the Network carries for `netdsl emit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netdsl.binding import MAX_ARGUMENTS, Binding  # noqa: F401  (MAX_ARGUMENTS: documented here)
from netdsl.budgets import BudgetStatements
from netdsl.diagnostics import Diagnostic, NetdslError, Source, did_you_mean
from netdsl.ir import (
    WORDS,
    Argument,
    Augment,
    Budget,
    Command,
    Define,
    Expr,
    Layer,
    Network,
    PhaseConfig,
    Repeat,
    Span,
    Statement,
    TrainConfig,
)
from netdsl.layers.graph import Merge, Use, use_note
from netdsl.lower_directives import DIRECTIVES, DirectiveStatements, register_directive  # noqa: F401
from netdsl.lower_graph import GraphStatements
from netdsl.names import BAD, Scopes, evaluate, loop_envs, names_ahead
from netdsl.nesting import MAX_DEPTH, too_deep
from netdsl.provenance import BlockUse, Origin, Provenance, RepeatSite, Run, Site, Trail

MAX_LAYERS = 250_000
"""Most statements a program may expand to. The analyzer is linear (about 20 us and 1.5 KB per
Keras layer), so this keeps `netdsl check` within seconds and a few hundred MB; docs/limits.md."""
MAX_ERRORS = 50
"""Errors reported per file: enough to act on, and a bound on the work a hostile spec can cause."""


class _Lowering(Binding, DirectiveStatements, GraphStatements, BudgetStatements):
    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.reported: set[tuple] = set()
        self.layers: list[Layer] = []
        self.sink = self.layers  # where the statement being lowered puts its layers (a branch, a block's body)
        self.scopes = Scopes()
        self.defs: dict[str, Define] = {}
        self.shared_uses: dict[str, tuple[tuple, Span]] = {}  # a shared block -> its first use's arguments, where
        self.frames: list[BlockUse] = []
        self.trail: list[Origin | Run] = []  # the provenance of what is added to `sink`
        self.bodies: list[Trail] = []  # the trails of the branches or block body of the statement being lowered
        self.made: dict[int, Origin] = {}  # id(statement) -> the origin of the layer it made last
        self.repeats: dict[int, RepeatSite] = {}  # id(repeat) -> what provenance keeps of it
        self.input_shape: tuple[int, ...] | None = None
        self.input_span: Span | None = None
        self.input_dtype = "float32"
        self.input_name: str | None = None
        self.input_statement: Command | None = None  # the last `input ... as NAME` of several
        self.extra_inputs: list = []
        self.outputs: tuple[str, ...] = ()
        self.budgets: list[Budget] = []
        self.train: dict[str, Any] = {}
        self.augment: dict[str, Any] = {}
        self.phases: list[PhaseConfig] = []
        self.cache: dict[tuple, Layer | None] = {}
        self.twins: dict[tuple, Layer] = {}  # statement text -> its node, for equal statements elsewhere
        self.statements = 0  # statements expanded so far, layers and directives

    def error(self, code: str, message: str, span: Span | None, help: str | None = None) -> None:
        key = (code, message, span)
        if key in self.reported:  # a statement inside `repeat 3 [...]` (or a block used 3 times) is reported once
            return
        self.reported.add(key)
        notes = tuple(use_note(f.name, f.span, f.values) for f in reversed(self.frames))  # inside a block: its use
        self.diagnostics.append(Diagnostic(code, message, span, notes=notes, help=help))
        if len(self.diagnostics) >= MAX_ERRORS:  # enough to act on; one statement can hold 500,000 bad arguments
            raise _Stop

    # ------------------------------------------------------------ values

    def resolve(self, arg: Argument, env: dict[str, Any]) -> Any:
        """A variable's value, arithmetic's result (BAD after a located error), or the literal."""
        return evaluate(arg, env, self.report)

    def report(self, code: str, message: str, span: Span, help: str | None) -> None:
        """`error`, as the reporter that evaluation and loop binding call."""
        self.error(code, message, span, help)

    def command(self, cmd: Command, env: dict[str, Any], depth: int = 0) -> None:
        self.statements += 1
        if self.statements > MAX_LAYERS:  # written out rather than repeated
            self.error(
                "E207", f"the program has more than {MAX_LAYERS:,} statements", cmd.span, help="see docs/limits.md"
            )
            raise _Stop
        directive = DIRECTIVES.get(cmd.word)
        if directive is not None:
            if cmd.alias is not None and cmd.word != "input":
                self.error("E202", f"{cmd.word} is a directive: it makes no tensor to name", cmd.alias_span)
            return getattr(self, directive.method)(cmd, env)
        outer, self.bodies = self.bodies, []
        try:
            if cmd.word in self.defs:
                layer = self.block_use(self.defs[cmd.word], cmd, env, depth)
            elif cmd.word == "use":
                layer = self.use(cmd, env)
            else:
                layer = self.word(cmd, env, depth)
        finally:
            bodies, self.bodies = self.bodies, outer
        if layer is not None:
            self.sink.append(self.named(layer, cmd))
            self.trail.append(self.origin(cmd, env, tuple(bodies)))

    def origin(self, cmd: Command, env: dict[str, Any], bodies: tuple[Trail, ...]) -> Origin:
        """The provenance of the layer `cmd` made in `env`: one for the iterations of a loop that make it alike."""
        block = self.frames[-1] if self.frames else None
        last = self.made.get(id(cmd))
        if last is not None and last.env is env and last.block is block and not bodies and not last.inside:
            return last
        made = self.made[id(cmd)] = Origin(last.site if last else Site.of(cmd), env, block, bodies)
        return made

    def word(self, cmd: Command, env: dict[str, Any], depth: int) -> Layer | None:
        """A layer statement (`conv 64 k3`), a merge (`add [a | b]`) or an activation."""
        cls = WORDS.get(cmd.word)
        if cls is None:
            known = [*WORDS, *DIRECTIVES, *self.defs, "repeat", "def"]
            self.error(
                "E101",
                f"unknown layer '{cmd.word}'",
                cmd.span,
                help=did_you_mean(cmd.word, known) or "run `netdsl layers` for the list",
            )
            return None
        if cmd.branches is not None and not cls.takes_branches:
            self.error("E202", f"{cmd.word} takes no branches `[ ... | ... ]`", cmd.branch_spans[0] if cmd.branch_spans else cmd.span,
                       help="branches belong to merges: add, cat, mul, avg, max, sub")  # fmt: skip
            return None
        if cls is Merge:
            return self.merge(cmd, env, depth)
        if cls.takes_branches:  # `seq [ ... ]`: options and a body, no names to merge
            return self.nested(cls, cmd, env, depth)
        if cls.takes_names:  # names resolve in the scope of each use: never cached
            return self.with_names(cls, cmd, env)
        used = tuple(sorted((k, repr(v)) for k, v in env.items() if any(_mentions(a, k) for a in cmd.args)))
        key = (id(cmd), used)
        if key in self.cache:  # the same statement with the same variables: reuse the frozen node
            return self.cache[key]
        # The same text elsewhere (a flat spec repeats its lines): the node of its first occurrence, moved
        # to this statement's span. Only nodes that lowered without error are shared, so each mistake is
        # still reported where it is written.
        same = (cmd.word, tuple((a.key, a.op, a.value, a.quoted) for a in cmd.args), used)
        twin = self.twins.get(same)
        layer = twin.model_copy(update={"span": cmd.span}) if twin is not None else self.layer(cls, cmd, env)
        if twin is None and layer is not None:
            self.twins[same] = layer
        self.cache[key] = layer
        return layer

    def layer(self, cls: type[Layer], cmd: Command, env: dict[str, Any]) -> Layer | None:
        fields = [f for f in cls.model_fields if f not in cls.internal]
        bound = self.bind(cmd.word, cls.syntax, fields, cmd.args, env)
        if bound is None:
            return None
        values, spans = bound
        data = {**cls.from_word(cmd.word), **values, "span": cmd.span}
        return self.validate(cmd.word, cls, data, spans, cmd.span, cls.syntax.example)  # type: ignore[return-value]

    def repeat(self, rep: Repeat, env: dict[str, Any], depth: int, where: str = "repeat") -> None:
        envs = self.iterations(rep, env)
        if envs is None:
            return
        counts = [self.count(rep, inner) for inner in envs]  # `repeat n [...] for f, n in ...`: per value
        if any(count is None for count in counts):
            return
        body = self.size(rep.body, _sizing_env(envs, env))
        if body == 0:  # nothing to expand (`repeat 1000000000 []`): walk once, for its errors only
            counts, envs = [min(counts[0], 1)], envs[:1]  # type: ignore[type-var]
        size = sum(counts) * body  # type: ignore[arg-type]
        if self.statements + size > MAX_LAYERS:
            self.error(
                "E207",
                f"repeat expands to {size:,} statements; netdsl handles at most {MAX_LAYERS:,}",
                rep.span,
                help="see docs/limits.md",
            )
            raise _Stop
        iterations: list[Trail] = []
        for inner, count in zip(envs, counts):
            for _ in range(count):  # type: ignore[arg-type]
                made = self.iteration(rep, inner, depth)
                same = iterations and made == iterations[-1]  # mostly by identity (origins are shared)
                iterations.append(iterations[-1] if same else made)  # equal iterations share one trail
        site = self.repeats.get(id(rep)) or self.repeats.setdefault(id(rep), RepeatSite.of(rep))
        self.trail.append(Run(site, env, tuple(envs), tuple(counts), tuple(iterations)))  # type: ignore[arg-type]

    def iteration(self, rep: Repeat, env: dict[str, Any], depth: int) -> Trail:
        """Lower one iteration of a repeat's body; the provenance of what it made."""
        outer, self.trail = self.trail, []
        self.scopes.push(rep.body)  # each iteration may rebind the names its body gives
        try:
            self.walk(rep.body, env, depth, "repeat")  # `repeat` counted this level already
            return tuple(self.trail)
        finally:
            self.scopes.pop()
            self.trail = outer

    def count(self, rep: Repeat, env: dict[str, Any]) -> int | None:
        """A repeat's count in `env`: a whole number >= 0 (None after a located error)."""
        if rep.count is None:
            return 1
        count = self.resolve(rep.count, env)
        if count is BAD:
            return None
        if isinstance(count, str) and not rep.count.quoted:
            self.error(
                "E205", f"repeat: '{count}' is not defined", rep.count.span,
                help=f"a count is a number, or a variable of this or an enclosing `repeat [...] for {count} in ...`",
            )  # fmt: skip
            return None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            self.error("E201", f"repeat: count must be a whole number >= 0, got {rep.count.text()}", rep.count.span)
            return None
        return count

    def iterations(self, rep: Repeat, env: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The variables of each iteration (names.loop_envs), its errors reported here."""
        return loop_envs(rep, env, self.report)

    def size(self, body: Sequence[Statement], env: dict[str, Any], seen: frozenset[str] = frozenset()) -> int:
        """How many statements (layers and directives) `body` expands to, without building them: an upper
        bound, in time linear in the text (a block's body is counted at its use, a loop at its largest count)."""
        total = 0
        for st in body:
            if isinstance(st, Define):
                continue
            if isinstance(st, Command):
                total += 1 + sum(self.size(branch, env, seen) for branch in st.branches or ())
                define = self.defs.get(st.word)
                if define is not None and define.name not in seen:
                    total += self.size(define.body, {}, seen | {define.name})
            else:
                envs = (self.iterations(st, env) or [env]) if st.variables else [env]
                counts = [evaluate(st.count, inner) if st.count else 1 for inner in envs]
                count = sum(c for c in counts if isinstance(c, int) and not isinstance(c, bool) and c > 0)
                total += count * self.size(st.body, _sizing_env(envs, env), seen)
            if total > MAX_LAYERS:
                return total
        return total

    def walk(self, statements: Sequence[Statement], env: dict[str, Any], depth: int = 0, where: str = "repeat") -> None:
        if depth > MAX_DEPTH and statements:  # blocks using blocks: the text alone (too_deep) cannot tell
            self.error("E207", f"blocks, repeats and branches are nested more than {MAX_DEPTH} deep, counting "
                       "the bodies of the blocks used", statements[0].span, help="see docs/limits.md")  # fmt: skip
            raise _Stop
        for st in statements:
            if isinstance(st, Repeat):
                self.repeat(st, env, depth + 1)
            elif isinstance(st, Define):
                if depth > 0:
                    self.error("E210", f"def {st.name} must be at the top level of the spec", st.span,
                               help="define blocks once, outside repeat, branches and other blocks; use them anywhere")  # fmt: skip
            elif depth > 0 and st.word in DIRECTIVES and DIRECTIVES[st.word].top_level:
                self.error(
                    "E208", f"{st.word} is a directive and cannot be inside {where}", st.span,
                    help=f"move `{st.word} ...` out of the {where.removeprefix('a ')}, to the top level",
                )  # fmt: skip
            else:
                self.command(st, env, depth)

    def define(self, statements: Sequence[Statement]) -> None:
        """Collect the top level's `def`s first, so a block may be used above its definition."""
        for st in statements:
            if not isinstance(st, Define):
                continue
            if st.name in self.defs:
                self.error("E210", f"block '{st.name}' is defined twice", st.span,
                           help=f"first defined at line {self.defs[st.name].span.line}")  # fmt: skip
            elif st.name in WORDS or st.name in DIRECTIVES or st.name in ("use", "repeat", "def"):
                self.error("E210", f"'{st.name}' is a netdsl word; a block needs a name of its own", st.span,
                           help=f"for example `def {st.name}_block ...`")  # fmt: skip
                self.defs[st.name] = st  # its uses mean the block: one error, not one per use that misfits the word
            else:
                names = [p.name for p in st.params]
                twice = next((p for i, p in enumerate(st.params) if p.name in names[:i]), None)
                if twice is not None:
                    self.error("E210", f"def {st.name}: parameter '{twice.name}' is given twice", twice.span)
                self.defs[st.name] = st


def _mentions(arg: Argument, name: str) -> bool:
    """Whether an argument uses the variable `name` (directly or in its arithmetic)."""
    if isinstance(arg.value, Expr):
        return any(_mentions(a, name) for a in arg.value.operands)
    return arg.value == name


def _sizing_env(envs: list[dict[str, Any]], env: dict[str, Any]) -> dict[str, Any]:
    """The variables a repeat's body is sized with: each loop variable bound to the largest of its
    whole-number values, so an inner `repeat w [...]` counts as its largest expansion (an upper
    bound, in time linear in the text) rather than as zero."""
    if not envs:
        return env
    sized = dict(envs[0])
    for key in set(sized) - set(env):
        counts = [e[key] for e in envs if isinstance(e.get(key), int) and not isinstance(e.get(key), bool)]
        if counts:
            sized[key] = max(counts)
    return sized


class _Stop(Exception):
    """Abandon lowering after an error that makes going on pointless."""


def lower(statements: Sequence[Statement], source: Source, name: str = "model") -> Network:
    """Resolve variables and `repeat`, bind and validate every statement; raise NetdslError on errors."""
    work = _Lowering(source)
    deep = too_deep(statements)
    if deep is not None:
        work.error("E207", deep[0], deep[1], help="see docs/limits.md")
        raise NetdslError(work.diagnostics, source)
    try:
        work.define(statements)
        work.scopes.ahead[0] = names_ahead(statements)
        work.walk(statements, {})
    except _Stop:
        pass
    if work.diagnostics:
        raise NetdslError(work.diagnostics, source)
    training = TrainConfig.model_validate(
        {**work.train, "augment": Augment(**work.augment), "phases": tuple(work.phases)}
    )
    layers, trail = work.layers, tuple(work.trail)
    if work.extra_inputs:  # the layers go on from the last `input`, as they read
        last = work.extra_inputs[-1]
        layers = [Use(ref=last.name, ref_name=last.name, span=last.span), *layers]
        trail = (Origin(Site.of(work.input_statement), {}), *trail)  # type: ignore[arg-type]
    net = Network(
        input_shape=work.input_shape,
        input_span=work.input_span,
        input_dtype=work.input_dtype,
        input_name=work.input_name,
        extra_inputs=tuple(work.extra_inputs),
        outputs=work.outputs,
        budgets=tuple(work.budgets),
        layers=layers,
        training=training,
        name=name,
    )
    return net.traced(Provenance(trail))
