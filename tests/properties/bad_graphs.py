"""The strategy for graph programs that are wrong on purpose: a valid random prefix (graph_programs.py),
then one broken statement, and where its error must point (code, line, column of the offending token).

The mistakes: a merge of mismatched shapes (branches or names; Keras must refuse the same merge made
by hand, so the analyzer is not merely stricter), an unknown or misspelt tap, a name used before the
statement that makes it, a block used with too many values, a missing, doubled or unknown argument,
blocks that use themselves (directly or through others), and arithmetic that is not a whole number
where a whole number is needed (at the top, in a loop, in a block's body).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.properties.graph_programs import Gen, projection, statements
from tests.properties.graphs import Element, Layer, Merge, Scope, Shape, run
from tests.properties.programs import Invalid


@dataclass(frozen=True)
class BadGraph:
    """A program that must fail with `code` at `line`:`column`; `merge` is the description of a
    mismatched merge that Keras must refuse too (None for mistakes Keras has no equivalent of)."""

    text: str
    code: str
    line: int
    column: int
    mentions: tuple[str, ...] = ()  # words the message, help or notes must contain
    inputs: list[tuple[str | None, Shape]] = field(default_factory=list, repr=False)
    body: list[Element] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"BadGraph({self.code} at {self.line}:{self.column}, <<<\n{self.text}>>>)"

    def build(self, b: Any) -> Any:
        """Make the prefix and the bad merge on a backend (it must raise)."""
        scope = Scope(None)
        x = b.input(self.inputs[0][1])
        if self.inputs[0][0]:
            scope.names[self.inputs[0][0]] = x
        return run(self.body or [], b, x, scope, {})


def mismatched(kind: str, a: Shape, b: Shape) -> bool:
    """Keras refuses to merge a and b: for cat, sizes outside the channel axis differ; for the others,
    some axis differs where neither is 1 (a size-1 axis broadcasts, which Keras allows)."""
    if len(a) != len(b):
        return False
    if kind == "cat":
        return a[:-1] != b[:-1]
    return any(i != j and 1 not in (i, j) for i, j in zip(a, b))


def widen(shape: Shape, width: int) -> Layer:
    """A 1x1 conv (dense on vectors) to `width` channels, keeping the size."""
    if len(shape) == 1:
        return Layer(f"dense {width}", lambda b, x, e: b.dense(x, width, True))
    return Layer(f"conv {width} k1", lambda b, x, e: b.conv(x, width, 1, (1, 1), "same", True))


def bad_merge(g: Gen, x: Any, scope: Scope) -> tuple[Merge, str] | None:
    """`KIND [ a | b ]` whose branches end in different widths or sizes, or `KIND d1` with a tap whose
    shape does not fit the current tensor; None when this tensor allows neither."""
    draw = g.draw
    kind = draw(st.sampled_from(("add", "cat", "mul", "avg", "max", "sub")))
    names = sorted(n for n, v in scope.visible().items() if mismatched(kind, x.shape, v.shape))
    if names and draw(st.booleans()):
        return Merge(kind, [draw(st.sampled_from(names))], []), kind
    sized = len(x.shape) == 3 and max(x.shape[:2]) >= 3
    if kind == "cat" and not sized:
        return None
    first, end1 = statements(g, x, Scope(scope), {}, 1, "branch", 6, 0, 2)
    second, end2 = statements(g, x, Scope(scope), {}, 1, "branch", 6, 0, 2)
    width = draw(st.integers(2, 8))
    for body, end in ((first, end1), (second, end2)):  # both back to x's size, the first with `width` channels
        fix = projection(draw, end.shape, x.shape, False)
        if fix is None:
            return None
        body.append(fix)
        body.append(widen(x.shape, width))
    if kind == "cat" or (sized and draw(st.booleans())):  # the second branch halves the size
        axis = 0 if x.shape[0] >= 3 else 1
        stride = "s2" if axis == 0 and x.shape[1] >= 3 else ("s2x1" if axis == 0 else "s1x2")
        strides = (2 if axis == 0 or stride == "s2" else 1, 2 if axis == 1 or stride == "s2" else 1)
        second.append(Layer(f"conv 4 k1 {stride}", lambda b, x, e: b.conv(x, 4, 1, strides, "same", True)))
    else:
        other = draw(st.integers(2, 8).filter(lambda w: w != width))
        second.append(widen(x.shape, other))
    return Merge(kind, [], [first, second], broken=draw(st.booleans())), kind


@st.composite
def bad_graphs(draw: Any) -> BadGraph:
    """A valid prefix, then one mistake; the expected code and location come with it."""
    g = Gen(draw)
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 4)))
    shape = shape if draw(st.integers(0, 4)) else (draw(st.integers(1, 8)),)
    name = draw(st.sampled_from((None, "inp")))
    scope = Scope(None)
    x = g.scratch.input(shape)
    if name:
        scope.names[name] = x
    prefix, x = statements(g, x, scope, {}, 0, "top", 16, 0, 4)
    inputs = [(name, shape)]
    heads: list[str] = []  # definitions the mistake needs, written after the prefix's own blocks
    kinds = ["merge", "merge", "unknown", "before", "arity", "recursive", "fraction"]
    kind = draw(st.sampled_from(kinds))
    conv_ok = len(x.shape) == 3
    word = "conv" if conv_ok else "dense"
    mentions: tuple[str, ...] = ()
    after: list[str] = []
    keras_body = None
    made = bad_merge(g, x, scope) if kind == "merge" else None
    if kind == "merge" and made is not None:
        merge, merge_kind = made
        try:
            merge.apply(g.scratch, x, scope.copy(), {})
            raise AssertionError("the shape model accepts a merge meant to be mismatched")
        except Invalid:
            pass
        bad, column, code = merge.text(), 1, "E304"
        keras_body = [*prefix, merge]
        ends = [run(b, g.scratch, x, Scope(scope), {}).shape for b in merge.branches if not isinstance(b, str)]
        mentions = (f"{merge_kind}:", *(f"(None, {', '.join(map(str, end))})" for end in ends))
    elif kind in ("unknown", "merge"):
        visible = sorted(scope.visible())
        target = draw(st.sampled_from(visible)) if visible else "foo"
        typo = draw(st.sampled_from(("drop", "double"))) if visible else "none"
        missing = (
            target if typo == "none" else (target[:-1] if typo == "drop" and len(target) > 1 else target + target[-1])
        )
        missing = missing if missing not in (*visible, "in", "as", "id") else missing + "q"
        lead = draw(st.sampled_from(("cat ", "add ", "use ", "add [ use ")))
        tail = "; bn | id ]" if lead.startswith("add [") else ""
        bad, column, code = f"{lead}{missing}{tail}", len(lead) + 1, "E209"
        mentions = (f"'{missing}'",) + ((f"did you mean '{target}'",) if len(visible) == 1 and len(target) > 2 else ())
    elif kind == "before":
        lead = draw(st.sampled_from(("cat ", "add ", "use ")))
        bad, column, code = f"{lead}future", len(lead) + 1, "E209"  # no prefix makes `future` (TAPS)
        after = [*draw(st.lists(st.sampled_from(("bn", "relu", "dropout .1")), max_size=2)), f"{word} 8 as future"]
        mentions = ("'future' is used before it is made",)
    elif kind == "arity":
        bodies = ("conv f s=s", "bn; conv f*2") if conv_ok else ("dense f", "bn; dense f*2")
        heads.append(f"def blk2 f s=1 [ {draw(st.sampled_from(bodies))} ]")
        form = draw(st.sampled_from(("extra", "missing", "twice", "unknown")))
        if form == "extra":
            bad, column, code = "blk2 4 1 3", len("blk2 4 1 ") + 1, "E202"
            mentions = ("'3'",)
        elif form == "missing":
            bad, column, code = "blk2 s=2", 1, "E203"
            mentions = ("missing f",)
        elif form == "twice":
            bad, column, code = "blk2 4 f=4", len("blk2 4 ") + 1, "E204"
            mentions = ("f is given twice",)
        else:
            key = draw(st.sampled_from(("t", "stride", "filters")))
            bad, column, code = f"blk2 4 {key}=2", len("blk2 4 ") + 1, "E202"
            mentions = (f"'{key}'",)
    elif kind == "recursive":
        count = draw(st.integers(1, 3))
        chain = [f"rec{i}" for i in range(count)]
        defs = [(i, f"def {chain[i]} f [ {word} f; ", f"{chain[(i + 1) % count]} f ]") for i in range(count)]
        order = draw(st.permutations(range(count)))
        heads += [defs[i][1] + defs[i][2] for i in order]
        bad, code = f"{chain[0]} 4", "E210"
        mentions = (" -> ".join([*chain, chain[0]]),)
    else:
        form = draw(st.sampled_from(("top", "loop", "block")))
        if form == "top":
            bad, column, code = f"{word} 7/2", len(word) + 2, "E201"
        elif form == "loop":
            lead = f"repeat [ {word} "
            bad, column, code = lead + "f/2 ] for f in 4, 5", len(lead) + 1, "E201"
        else:
            heads.append(f"def half f [ {word} f/2 ]")
            bad, code = "half 3", "E201"
        mentions = ("whole number",)

    lines = [block.text() for block in g.blocks] + heads
    lines.append(f"input {'x'.join(map(str, shape))}" + (f" as {name}" if name else ""))
    lines += [element.text() for element in prefix]
    before = "\n".join(lines)
    line = before.count("\n") + 2
    text = before + "\n" + "\n".join([bad, *after]) + "\n"
    source = text.splitlines()
    if kind == "recursive":  # the last block of the chain calls the first: the cycle closes in its definition
        line = next(i for i, s in enumerate(source, 1) if s.startswith(f"def {chain[-1]} "))
        column = source[line - 1].rindex(f"{chain[0]} f ]") + 1
        mentions += (f"used at {before.count(chr(10)) + 2}:1",)
    elif kind == "fraction" and form == "block":
        line = next(i for i, s in enumerate(source, 1) if s.startswith("def half "))
        column = source[line - 1].index("f/2") + 1
        mentions += (f"used at {before.count(chr(10)) + 2}:1, with f=3",)
    return BadGraph(text, code, line, column, mentions, inputs, keras_body)
