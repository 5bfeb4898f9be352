"""The strategy for random valid DAG programs (see graphs.py for the description they are drawn as).

Statements are drawn one at a time and tried on a scratch `Shapes` model with the current tensor,
names and variables: one that Keras would refuse, or that overspends the layer budget, is dropped.
Bodies of repeats and blocks are drawn for their first iteration or first use; the other iterations
and uses are then tried, and a repeat is cut back until it fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.properties.graphs import (
    ACTIVATIONS,
    BLOCK_NAMES,
    ID,
    MAX_LAYERS,
    MERGES,
    TAPS,
    BlockDef,
    Call,
    Element,
    Env,
    Expr,
    Layer,
    Merge,
    Node,
    Repeat,
    Scope,
    Shape,
    Shapes,
    Use,
    int_expr,
    literal,
    run,
    variable,
)
from tests.properties.programs import Invalid

LOOPS = (("f",), ("w",), ("f", "n"), ("f", "s"), ("f", "n", "s"))
LOOP_VALUES = {"f": (1, 16), "w": (1, 12), "n": (1, 2), "s": (1, 2)}


@dataclass
class Gen:
    """What drawing a program needs besides the current tensor: `draw`, the scratch model, the blocks."""

    draw: Any
    scratch: Shapes = field(default_factory=Shapes)
    blocks: list[BlockDef] = field(default_factory=list)  # those whose body is drawn: a body never uses its own block
    named: int = 0  # block names handed out (a block's body may define another block first)


def post_ops(draw: Any) -> tuple[str, ...]:
    return tuple(draw(st.lists(st.sampled_from((*ACTIVATIONS, "bn")), max_size=2)))


def conv(draw: Any, shape: Shape, env: Env) -> Layer:
    filters = draw(int_expr(env))
    kernel = draw(st.integers(1, 5))
    padding = draw(st.sampled_from((None, None, "same", "valid")))
    options = [f"k{kernel}"]
    stride_text = draw(st.sampled_from(("", "", "s2", "s2x1", "s1x2") + (("s=s",) if "s" in env else ())))
    stride: Expr | tuple[int, int] = (1, 1)
    if stride_text == "s=s":
        stride = variable("s")
    elif stride_text:
        parts = stride_text[1:].split("x")
        stride = (int(parts[0]), int(parts[-1]))
    options += [stride_text] if stride_text else []
    options += [padding] if padding else []
    bias = not draw(st.booleans())
    options += [] if bias else ["nobias"]
    options = draw(st.permutations(options))

    def op(b: Any, x: Any, env: Env) -> Any:
        strides = stride if isinstance(stride, tuple) else (stride.whole(env),) * 2
        return b.conv(x, filters.whole(env), kernel, strides, padding or "same", bias)

    return Layer(" ".join(["conv", filters.text, *options]), op, post_ops(draw))


def dense(draw: Any, shape: Shape, env: Env) -> Layer:
    units = draw(int_expr(env))
    bias = not draw(st.booleans())
    return Layer(
        f"dense {units.text}" + ("" if bias else " nobias"),
        lambda b, x, e: b.dense(x, units.whole(e), bias),
        post_ops(draw),
    )


def pool(draw: Any, shape: Shape, env: Env) -> Layer:
    word = draw(st.sampled_from(("maxpool", "avgpool")))
    size = draw(st.sampled_from((None, 1, 2, 3)))
    padding = draw(st.sampled_from((None, "same", "valid")))
    words = " ".join([word, *([str(size)] if size else []), *([padding] if padding else [])])
    return Layer(words, lambda b, x, e: b.pool(x, word, size or 2, padding or "valid"))


def simple(draw: Any, shape: Shape, env: Env, top: bool) -> Layer:
    words = ["bn", "dropout .25", "dropout .1", *ACTIVATIONS] + (["gap", "gmp", "flatten"] if top else [])
    word = draw(st.sampled_from(words))
    return Layer(word, lambda b, x, e: b.simple(x, word))


def projection(draw: Any, shape: Shape, target: Shape, same_width: bool) -> Layer | None:
    """A layer from `shape` to `target` (all of it, or its size outside the channel axis for a cat):
    a 1x1 conv with the stride that lands on the target's size, or a dense on vectors."""
    if len(shape) != len(target):
        return None
    width = target[-1] if same_width else draw(st.integers(1, 8))
    if len(shape) == 1:
        return Layer(f"dense {width}", lambda b, x, e: b.dense(x, width, True))
    strides = []
    for size, goal in zip(shape[:2], target[:2]):
        stride = next((s for s in range(1, size + 1) if -(-size // s) == goal), None)
        if stride is None:
            return None
        strides.append(stride)
    text = f"s{strides[0]}" if strides[0] == strides[1] else f"s{strides[0]}x{strides[1]}"
    post = ("bn",) if draw(st.booleans()) else ()
    stride = (strides[0], strides[1])
    return Layer(f"conv {width} k1 {text}", lambda b, x, e: b.conv(x, width, 1, stride, "same", True), post)


def fits(kind: str, shape: Shape, target: Shape) -> bool:
    if kind == "cat":
        return len(shape) == len(target) and shape[:-1] == target[:-1]
    return shape == target


def merge(g: Gen, x: Node, scope: Scope, env: Env, depth: int, budget: int) -> Merge | None:
    """A merge whose inputs agree by construction, or None when no projection can make them agree."""
    draw = g.draw
    kind = draw(st.sampled_from(sorted(MERGES)))
    names = sorted(n for n, v in scope.visible().items() if fits(kind, v.shape, x.shape))
    forms = ["branches", "branches", "one"] + (["names"] if names else [])
    forms += ["names+one", "names+branches"] if names and kind != "sub" else []
    form = draw(st.sampled_from(forms))
    chosen = []
    if form.startswith("names"):
        many = kind != "sub" and len(names) > 1 and draw(st.booleans())
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2 if many else 1, unique=True))
    count = {"branches": 2 if kind == "sub" else draw(st.integers(2, 3)), "one": 1, "names": 0}
    count.update({"names+one": 1, "names+branches": 2})
    target: Shape | None = None if form == "branches" else x.shape
    branches: list[list[Element] | str] = []
    for _ in range(count[form]):
        if draw(st.integers(0, 3)) == 0 and (target is None or fits(kind, x.shape, target)):
            branches.append(ID)
            target = target or x.shape
            continue
        body, end = statements(g, x, Scope(scope), env, depth + 1, "branch", budget // 3, 1, 3)
        if target is not None and not fits(kind, end.shape, target):
            fix = projection(draw, end.shape, target, kind != "cat")
            if fix is None:
                return None
            body.append(fix)
        target = target or end.shape
        branches.append(body)
    return Merge(kind, chosen, branches, broken=len(branches) > 1 and draw(st.integers(0, 3)) == 0)


def repeat(g: Gen, x: Node, scope: Scope, env: Env, depth: int, budget: int) -> Repeat | None:
    """A repeat over 0-3 loop variables, its count a number, a variable or none; cut back until it fits."""
    draw = g.draw
    names = draw(st.sampled_from(((), *LOOPS)))
    rows = [tuple(draw(st.integers(*LOOP_VALUES[n])) for n in names) for _ in range(draw(st.integers(1, 3)))]
    inner = {**env, **dict(zip(names, rows[0]))}
    small = sorted(n for n, v in inner.items() if 1 <= v <= 2)
    counts: list[Expr | None] = [None, literal(2), literal(1)] + [variable(n) for n in small]
    count = draw(st.sampled_from(counts)) if names else draw(st.sampled_from([literal(2), literal(3), *counts[3:]]))
    body, _ = statements(g, x, Scope(scope), inner, depth + 1, "body", budget, 1, 3)
    made = Repeat(count, names, rows if names else [], body, multiline=draw(st.integers(0, 3)) == 0)
    while True:
        start = g.scratch.made
        try:
            made.apply(g.scratch, x, scope.copy(), env)
            if g.scratch.made - start <= budget:
                return made
        except (Invalid, KeyError):
            pass
        if len(made.rows) > 1:
            made.rows = made.rows[:-1]
        elif made.count is not None and made.count.text != "1":
            made.count = literal(1)
        else:
            return None


def call(g: Gen, x: Node, env: Env, depth: int, budget: int) -> Call | None:
    """A use of a block (a new one, its body drawn for these arguments, or an earlier one)."""
    draw = g.draw
    fresh = g.named < len(BLOCK_NAMES) and (not g.blocks or draw(st.booleans()))
    if fresh:
        default = draw(st.integers(1, 2))
        block = BlockDef(BLOCK_NAMES[g.named], [("f", None), ("s", default)])
        g.named += 1
    elif not g.blocks:
        return None
    else:
        block = draw(st.sampled_from(g.blocks))
    f = draw(int_expr(env))
    form = draw(st.sampled_from(("f", "f s", "f s=", "f= s=", "s= f=")))
    s = draw(st.sampled_from([literal(1), literal(2)] + ([variable("s")] if "s" in env else [])))
    positional = [f] + ([s] if form == "f s" else [])
    keywords = {"f": [], "f s": [], "f s=": [("s", s)], "f= s=": [("f", f), ("s", s)], "s= f=": [("s", s), ("f", f)]}
    made = Call(block, positional if "=" not in form.split()[0] else [], keywords[form])
    if fresh:
        try:
            arguments = made.arguments(env)
        except Invalid:
            return None
        block.body, _ = statements(g, x, Scope(None), arguments, depth + 1, "block", budget, 1, 4)
        g.blocks.append(block)
    return made


def statements(
    g: Gen, x: Node, scope: Scope, env: Env, depth: int, where: str, budget: int, low: int, high: int
) -> tuple[list[Element], Node]:
    """Statements from `x` in `scope` that Keras accepts, making at most `budget` layers; `where` is
    top, body (of a repeat), branch (keeps the rank, so that projections can join it) or block."""
    draw = g.draw
    out: list[Element] = []
    used = 0
    for _ in range(draw(st.integers(low, high))):
        if used >= budget:
            break
        element = element_at(g, x, scope, env, depth, where, budget - used)
        if element is None:
            continue
        if element.tap is None and draw(st.integers(0, 3)) == 0 and not isinstance(element, (Use, Repeat)):
            free = [t for t in TAPS if t not in scope.names]
            element.tap = draw(st.sampled_from(free)) if free else None
        trial, start = scope.copy(), g.scratch.made
        try:
            y = element.apply(g.scratch, x, trial, env)
        except (Invalid, KeyError):
            continue
        if used + g.scratch.made - start > budget or (where == "branch" and len(y.shape) != len(x.shape)):
            continue
        used += g.scratch.made - start
        scope.names, x = trial.names, y
        out.append(element)
    if not out:
        out.append(Layer("bn", lambda b, x, e: b.simple(x, "bn")))
        x = out[0].apply(g.scratch, x, scope, env)
    return out, x


def element_at(g: Gen, x: Node, scope: Scope, env: Env, depth: int, where: str, budget: int) -> Element | None:
    draw = g.draw
    kinds = ["layer", "layer", "layer", "merge", "merge"]
    kinds += ["repeat"] * (2 if where == "body" else 1) if depth < 2 else []  # nested repeats too
    kinds += ["call"] if depth < 3 and where != "block" else []
    names = sorted(scope.visible())
    kinds += ["use"] if names and where in ("top", "body") else []
    kind = draw(st.sampled_from(kinds))
    if kind == "merge":
        return merge(g, x, scope, env, depth, budget)
    if kind == "repeat":
        return repeat(g, x, scope, env, depth, budget)
    if kind == "call":
        return call(g, x, env, depth, budget)
    if kind == "use":
        return Use(draw(st.sampled_from(names)))
    rank3 = len(x.shape) == 3
    makers = ["dense", "simple"] + (["conv", "conv", "conv", "pool"] if rank3 else [])
    maker = draw(st.sampled_from(makers))
    if maker == "simple":
        return simple(draw, x.shape, env, where == "top")
    return {"conv": conv, "dense": dense, "pool": pool}[maker](draw, x.shape, env)


# ---------------------------------------------------------------- programs


@dataclass(frozen=True)
class GraphProgram:
    """A drawn program's text, what the shape model expects of it, and its description (for Keras)."""

    text: str
    output_shapes: list[Shape]
    keras_layers: int
    inputs: list[tuple[str | None, Shape]] = field(repr=False)
    body: list[Element] = field(repr=False)
    outputs: list[str] = field(repr=False)

    def __repr__(self) -> str:  # what Hypothesis prints for a failing example: the program itself
        return f"GraphProgram(<<<\n{self.text}>>>)"

    def build(self, b: Any) -> tuple[list[Any], list[Any]]:
        """Run the description on a backend: (input tensors, output tensors)."""
        scope = Scope(None)
        tensors = []
        for name, shape in self.inputs:
            tensors.append(b.input(shape))
            if name:
                scope.names[name] = tensors[-1]
        x = run(self.body, b, tensors[-1], scope, {})
        return tensors, [scope.lookup(name) for name in self.outputs] if self.outputs else [x]


def image(draw: Any) -> Shape:
    return (draw(st.integers(1, 16)), draw(st.integers(1, 16)), draw(st.integers(1, 6)))


@st.composite
def graph_programs(draw: Any) -> GraphProgram:
    """A random valid graph program, as text, with the shape model's expectations."""
    g = Gen(draw)
    if draw(st.integers(0, 4)) == 0:  # two inputs of one spatial size; the second starts by joining the first
        first = image(draw)
        inputs = [("a", first), ("b", (*first[:2], draw(st.integers(1, 6))))]
    else:
        shape = image(draw) if draw(st.integers(0, 5)) else (draw(st.integers(1, 12)),)
        inputs = [(draw(st.sampled_from((None, "inp"))), shape)]
    scope = Scope(None)
    for name, shape in inputs:
        x = g.scratch.input(shape)
        if name:
            scope.names[name] = x
    body: list[Element] = []
    if len(inputs) == 2:
        body.append(Merge("cat", ["a"], []))
        x = body[0].apply(g.scratch, x, scope, {})
    more, x = statements(g, x, scope, {}, 0, "top", MAX_LAYERS, 2, 9)
    body += more
    if isinstance(body[-1], Use) or x.index in g.scratch.inputs:  # the output must be a layer's
        body.append(Layer("dropout .1", lambda b, x, e: b.simple(x, "dropout .1")))
        x = body[-1].apply(g.scratch, x, scope, {})
    outputs: list[str] = []
    others = sorted(n for n, v in scope.names.items() if v != x and n not in ("a", "b", "inp"))
    if others and isinstance(body[-1], (Layer, Merge, Call)) and draw(st.integers(0, 3)) == 0:
        if body[-1].tap is None:
            body[-1].tap = "out"
        outputs = draw(st.permutations([body[-1].tap, draw(st.sampled_from(others))]))
    lines = [block.text() for block in g.blocks]
    lines += [f"input {'x'.join(map(str, s))}" + (f" as {n}" if n else "") for n, s in inputs]
    lines += [element.text() for element in body]
    lines += [f"output {' '.join(outputs)}"] if outputs else []
    program = GraphProgram("\n".join(lines) + "\n", [], 0, inputs, body, outputs)
    shapes = Shapes()
    _, ends = program.build(shapes)
    return GraphProgram(program.text, [e.shape for e in ends], shapes.kept(ends), inputs, body, outputs)
