"""Hypothesis strategies that write netdsl programs as TEXT, valid or invalid on purpose.

Programs are generated statement by statement while a small, independent model of Keras's shape
rules (written here from Keras's documentation, not imported from netdsl) tracks the tensor, so a
valid program stays valid: a 'valid'-padded conv or pool is only drawn when the spatial size
allows it, `res` only with the current channel count, and a `repeat` is cut back to the
iterations that still fit. The text goes through `netdsl.parse`, so the grammar, the lowering of
`repeat` and loop variables, and the argument binding are all exercised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

Shape = tuple[int, ...]
MAX_KERAS_LAYERS = 30  # keeps each Keras build well under a second
ACTIVATIONS = ("relu", "tanh", "sigmoid", "softmax", "gelu", "elu", "selu", "swish", "linear", "relu6", "softplus")


class Invalid(Exception):
    """The independent shape model says Keras cannot build this."""


def window(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Keras's output length of a conv/pool window (keras/src/ops/operation_utils.py)."""
    if padding == "same":
        return -(-size // stride)
    kernel = (kernel - 1) * dilation + 1
    if size < kernel:
        raise Invalid
    return (size - kernel) // stride + 1


def transposed(size: int, kernel: int, stride: int, padding: str, output_padding: int | None) -> int:
    """Keras's output length of a transposed convolution (Conv2DTranspose's documentation); Invalid at 0."""
    if padding == "same" and output_padding is not None and (size - 1) * stride + kernel % 2 + output_padding < 1:
        raise Invalid
    if padding == "valid":
        return (
            size * stride + max(kernel - stride, 0)
            if output_padding is None
            else (size - 1) * stride + kernel + output_padding
        )
    return size * stride if output_padding is None else (size - 1) * stride + kernel % 2 + output_padding


# ---------------------------------------------------------------- the program model


@dataclass
class Statement:
    """A layer statement: its text, its shape rule and how many Keras layers it makes."""

    text: str
    rule: Any  # (shape, env) -> shape, raising Invalid
    keras_layers: int


@dataclass
class Block:
    """`repeat [count] [ body ] [for var in values]`; count may name an enclosing loop's variable."""

    body: list[Statement | Block]
    count: int | str | None = None
    var: str | None = None
    values: list[Any] = field(default_factory=list)
    multiline: bool = False

    @property
    def text(self) -> str:
        count = f" {self.count}" if self.count is not None else ""
        loop = f" for {self.var} in {', '.join(map(str, self.values))}" if self.var else ""
        if self.multiline:
            inner = "\n".join("    " + line for s in self.body for line in s.text.splitlines())
            return f"repeat{count} [\n{inner}\n]{loop}"
        return f"repeat{count} [{'; '.join(s.text for s in self.body)}]{loop}"


def run(statements: list[Statement | Block], shape: Shape, env: dict[str, Any]) -> tuple[Shape, int]:
    """Shape after `statements` and the number of Keras layers they make (Invalid if Keras would refuse)."""
    layers = 0
    for statement in statements:
        if isinstance(statement, Statement):
            shape = statement.rule(shape, env)
            layers += statement.keras_layers
            continue
        count = env[statement.count] if isinstance(statement.count, str) else (statement.count or 1)
        for value in statement.values if statement.var else [None]:
            inner = {**env, statement.var: value} if statement.var else env
            for _ in range(count):
                shape, n = run(statement.body, shape, inner)
                layers += n
    return shape, layers


# ---------------------------------------------------------------- layer statements


def _value(token: int | str, env: dict[str, Any]) -> Any:
    return env[token] if isinstance(token, str) else token


@st.composite
def post_ops(draw: Any) -> list[str]:
    """Activations and bn after a conv/dense, in any order (`relu bn`, `bn relu`, `tanh tanh`)."""
    return draw(st.lists(st.sampled_from((*ACTIVATIONS, "bn", "bn")), max_size=3))


@st.composite
def filters_token(draw: Any, env: dict[str, Any]) -> int | str:
    """A channel count, or a loop variable that holds one."""
    names = [name for name, value in env.items() if isinstance(value, int)]
    if names and draw(st.booleans()):
        return draw(st.sampled_from(names))
    return draw(st.integers(1, 8))


@st.composite
def pair(draw: Any, low: int, high: int, limit: Shape | None = None) -> tuple[int, int]:
    """A (height, width) pair, square most of the time, each at most `limit` when given."""
    top = (high, high) if limit is None else (min(high, limit[0]), min(high, limit[1]))
    first = draw(st.integers(low, top[0]))
    if draw(st.integers(0, 3)) == 0:
        return first, draw(st.integers(low, top[1]))
    if first > top[1]:
        return top[1], top[1]
    return first, first


def pair_text(prefix: str, value: tuple[int, int], keyword: str) -> list[str]:
    """`k3`, `k3x5` or `kernel=3`: the spellings the syntax accepts."""
    if value[0] == value[1]:
        return [f"{prefix}{value[0]}"] if prefix else [f"{keyword}={value[0]}"]
    return [f"{prefix or keyword + '='}{value[0]}x{value[1]}"]


def axes(draw: Any, low: int, high: int, shape: Shape, limit: bool = False) -> tuple[int, ...]:
    """One size per spatial axis of `shape` (a pair on an image, one size on a sequence)."""
    if len(shape) == 3:
        return draw(pair(low, high, shape[:2] if limit else None))
    return (draw(st.integers(low, min(high, shape[0]) if limit else high)),)


def axes_text(prefix: str, value: tuple[int, ...], keyword: str) -> list[str]:
    return pair_text(prefix, (value[0], value[-1]) if len(value) == 2 else (value[0], value[0]), keyword)


@st.composite
def conv(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    """`conv` on an image (Conv2D) or a sequence (Conv1D, sometimes causal), with stride or dilation, and
    sometimes groups."""
    padding = draw(st.sampled_from(("same", "same", "valid", None, *(("causal",) if len(shape) == 2 else ()))))
    valid = padding == "valid"
    dilation = draw(st.sampled_from((1, 1, 1, 2, 3)))
    kernel = axes(draw, 1, 7, shape, valid)
    if valid and any((k - 1) * dilation + 1 > n for k, n in zip(kernel, shape)):
        dilation = 1  # the dilated window would not fit
    stride = axes(draw, 1, 3, shape) if dilation == 1 else (1,) * len(kernel)
    filters = draw(filters_token(env))
    groups = (
        draw(st.sampled_from([g for g in (2, 3, 4) if shape[-1] % g == 0] or [1]))
        if isinstance(filters, int) and draw(st.integers(0, 3)) == 0
        else 1
    )
    filters = filters * groups if groups > 1 else filters
    post = draw(post_ops())
    options = [*axes_text(draw(st.sampled_from(("k", "k", ""))), kernel, "kernel")]
    if max(stride) > 1 or draw(st.booleans()):
        options += axes_text(draw(st.sampled_from(("s", "s", ""))), stride, "stride")
    options += [draw(st.sampled_from((f"d{dilation}", f"dilation={dilation}")))] if dilation > 1 else []
    options += [f"groups={groups}"] if groups > 1 else []
    options += [padding] if padding else []
    options += [draw(st.sampled_from(("nobias", "bias")))] if draw(st.booleans()) else []
    options += [f"l2={draw(st.sampled_from(('1e-6', '0.001', '0')))}"] if draw(st.booleans()) else []
    options = draw(st.permutations(options))

    def rule(shape: Shape, env: dict[str, Any]) -> Shape:
        width = _value(filters, env)
        if len(shape) != len(kernel) + 1 or shape[-1] % groups or width % groups:
            raise Invalid
        mode = "same" if padding in (None, "causal") else padding  # causal pads the start: the length of 'same'
        out = tuple(window(n, k, s, mode, dilation) for n, k, s in zip(shape[:-1], kernel, stride))
        return (*out, width)

    return Statement(" ".join(["conv", str(filters), *options, *post]), rule, 1 + len(post))


@st.composite
def depthwise(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    """`dwconv` or `sepconv` (DepthwiseConv/SeparableConv 1-D or 2-D), with a depth multiplier."""
    word = draw(st.sampled_from(("dwconv", "sepconv")))
    padding = draw(st.sampled_from(("same", "valid", None)))
    kernel = axes(draw, 1, 5, shape, padding == "valid")
    stride = axes(draw, 1, 2, shape)
    multiplier = draw(st.sampled_from((1, 1, 2, 3)))
    filters = draw(st.integers(1, 8))
    post = draw(post_ops())
    options = [*axes_text("k", kernel, "kernel"), *axes_text("s", stride, "stride")]
    options += [f"multiplier={multiplier}"] if multiplier > 1 else []
    options += [padding] if padding else []
    options += ["nobias"] if draw(st.booleans()) else []

    def rule(shape: Shape, env: dict[str, Any]) -> Shape:
        if len(shape) != len(kernel) + 1:
            raise Invalid
        out = tuple(window(n, k, s, padding or "same") for n, k, s in zip(shape[:-1], kernel, stride))
        return (*out, filters if word == "sepconv" else shape[-1] * multiplier)

    head = [word, str(filters)] if word == "sepconv" else [word]
    return Statement(" ".join([*head, *draw(st.permutations(options)), *post]), rule, 1 + len(post))


@st.composite
def resample(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    """`deconv`, `upsample`, `zeropad` or `crop` on an image or a sequence."""
    word = draw(st.sampled_from(("deconv", "upsample", "zeropad", "crop")))
    rank = len(shape) - 1
    if word == "deconv":
        padding = draw(st.sampled_from(("same", "valid", None)))
        kernel = axes(draw, 1, 4, shape)
        stride = axes(draw, 1, 3, shape)
        extra = draw(st.one_of(st.none(), st.integers(0, min(stride) - 1)))
        if any(n == 1 and k % 2 == 0 for n, k in zip(shape, kernel)):
            extra = None  # 'same' with output_padding=0 would give that axis length 0 (E303)
        filters = draw(st.integers(1, 6))
        options = [
            *axes_text("k", kernel, "kernel"),
            *axes_text("s", stride, "stride"),
            *([padding] if padding else []),
        ]
        options += [f"output_padding={extra}"] if extra is not None else []

        def rule(shape: Shape, env: dict[str, Any]) -> Shape:
            if len(shape) != rank + 1:
                raise Invalid
            out = tuple(transposed(n, k, s, padding or "same", extra) for n, k, s in zip(shape[:-1], kernel, stride))
            return (*out, filters)

        return Statement(" ".join(["deconv", str(filters), *draw(st.permutations(options))]), rule, 1)
    if word == "upsample":
        size = axes(draw, 1, 3, shape)
        bilinear = rank == 2 and draw(st.booleans())
        text = " ".join(
            [
                "upsample",
                "x".join(map(str, size)) if len(set(size)) > 1 else str(size[0]),
                *(["bilinear"] if bilinear else []),
            ]
        )
        return Statement(text, lambda shape, env: _scaled(shape, rank, size, 1), 1)
    limit = tuple((n - 1) // 2 for n in shape[:-1]) if word == "crop" else (3,) * rank
    if min(limit) < 0 or (word == "crop" and min(limit) < 1):
        return Statement("bn", _same_shape, 1)
    counts = tuple(draw(st.integers(0 if word == "zeropad" else 1, max(1, m) if word == "crop" else m)) for m in limit)
    text = f"{word} {'x'.join(map(str, counts)) if len(set(counts)) > 1 else counts[0]}"
    return Statement(text, lambda shape, env: _padded(shape, rank, counts, 1 if word == "zeropad" else -1), 1)


def _scaled(shape: Shape, rank: int, size: tuple[int, ...], _: int) -> Shape:
    if len(shape) != rank + 1:
        raise Invalid
    return (*(n * s for n, s in zip(shape[:-1], size)), shape[-1])


def _padded(shape: Shape, rank: int, counts: tuple[int, ...], sign: int) -> Shape:
    if len(shape) != rank + 1:
        raise Invalid
    out = tuple(n + sign * 2 * c for n, c in zip(shape[:-1], counts))
    if min(out) < 1:
        raise Invalid
    return (*out, shape[-1])


@st.composite
def res(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    channels = shape[-1]
    same_var = [name for name, value in env.items() if value == channels and not isinstance(value, bool)]
    filters: int | str = draw(st.sampled_from(same_var)) if same_var and draw(st.booleans()) else channels
    kernel = draw(st.integers(1, 7))
    options = [f"k{kernel}"]
    post = (draw(post_ops()) if draw(st.integers(0, 2)) == 0 else None) or None  # none written: relu, bn
    options += [draw(st.sampled_from(("nobias", "bias", "l2=0", "l2=1e-4")))] if draw(st.booleans()) else []
    words = post if post is not None else []

    def rule(shape: Shape, env: dict[str, Any]) -> Shape:
        width = _value(filters, env)
        if len(shape) != 3 or (width != shape[-1] and 1 not in (width, shape[-1])):
            raise Invalid
        return (*shape[:2], max(width, shape[-1]))

    count = 2 + (len(post) if post is not None else 2)
    return Statement(" ".join(["res", str(filters), *options, *words]), rule, count)


@st.composite
def dense(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    units = draw(filters_token(env))
    post = draw(post_ops())
    options = [draw(st.sampled_from(("nobias", "bias", "l2=1e-5")))] if draw(st.booleans()) else []

    def rule(shape: Shape, env: dict[str, Any]) -> Shape:
        return (*shape[:-1], _value(units, env))

    return Statement(" ".join(["dense", str(units), *options, *post]), rule, 1 + len(post))


@st.composite
def pool(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    word = draw(st.sampled_from(("maxpool", "avgpool")))
    padding = draw(st.sampled_from(("same", "valid", None)))  # pools default to 'valid'
    mode = padding or "valid"
    size = axes(draw, 1, 4, shape, mode == "valid")
    stride = draw(st.one_of(st.none(), st.just(axes(draw, 1, 3, shape))))
    options: list[str] = []
    if set(size) != {2} or draw(st.booleans()):
        options += [str(size[0])] if len(set(size)) == 1 and draw(st.booleans()) else axes_text("k", size, "pool")
    options += axes_text("s", stride, "stride") if stride else []
    options += [padding] if padding else []

    def rule(shape: Shape, env: dict[str, Any]) -> Shape:
        if len(shape) != len(size) + 1:
            raise Invalid
        strides = stride or size
        out = tuple(window(n, k, s, mode) for n, k, s in zip(shape[:-1], size, strides))
        return (*out, shape[-1])

    return Statement(" ".join([word, *draw(st.permutations(options))]), rule, 1)


def _spatial_only(shape: Shape, env: dict[str, Any]) -> Shape:
    if len(shape) not in (2, 3):
        raise Invalid
    return (shape[-1],)


def _grouped(shape: Shape, groups: int) -> Shape:
    """groupnorm's rule: the channels split into equal groups (inside a repeat they may change)."""
    if shape[-1] % groups:
        raise Invalid
    return shape


def _kept_dims(shape: Shape, env: dict[str, Any]) -> Shape:
    if len(shape) not in (2, 3):
        raise Invalid
    return (*(1,) * (len(shape) - 1), shape[-1])


def _same_shape(shape: Shape, env: dict[str, Any]) -> Shape:
    return shape


def _flat(shape: Shape, env: dict[str, Any]) -> Shape:
    return (math.prod(shape),)


@st.composite
def simple(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    """Statements without shape arithmetic: global pools, flatten, dropout, norms, scaling, activations."""
    choices = ["flatten", "dropout", "bn", "activation", "norm", "scale"] + (
        ["gmp", "gap", "sdropout"] if len(shape) in (2, 3) else []
    )
    kind = draw(st.sampled_from(choices))
    if kind in ("gmp", "gap"):
        keep = draw(st.booleans())
        return Statement(f"{kind} keepdims" if keep else kind, _kept_dims if keep else _spatial_only, 1)
    if kind == "sdropout":
        return Statement(f"sdropout {draw(st.sampled_from(('0', '.2')))}", _same_shape, 1)
    if kind == "norm":
        groups = [g for g in (1, 2, 3, 4) if shape[-1] % g == 0]
        text = draw(
            st.sampled_from(("layernorm", "layernorm epsilon=1e-6", f"groupnorm {draw(st.sampled_from(groups))}"))
        )
        groups_of = int(text.split()[-1]) if text.startswith("groupnorm") else 1
        return Statement(text, lambda shape, env: _grouped(shape, groups_of), 1)
    if kind == "scale":
        text = draw(
            st.sampled_from(
                (
                    "rescale 0.5",
                    "rescale 2 offset=-1",
                    "normalize",
                    "normalize mean=0.5 variance=0.25",
                    "noise 0.1",
                    "prelu",
                    "prelu shared",
                    "leaky_relu alpha=0.1",
                    "elu alpha=0.5",
                )
            )
        )
        return Statement(text, _same_shape, 1)
    if kind == "flatten":
        return Statement("flatten", _flat, 1)
    if kind == "dropout":
        return Statement(f"dropout {draw(st.sampled_from(('0', '.1', '0.25', '.5')))}", _same_shape, 1)
    if kind == "bn":
        options = draw(st.lists(st.sampled_from(("momentum=0.9", "epsilon=1e-5", "eps=0.01")), max_size=1))
        return Statement(" ".join(["bn", *options]), _same_shape, 1)
    return Statement(draw(st.sampled_from(ACTIVATIONS)), _same_shape, 1)


@st.composite
def layer_statement(draw: Any, shape: Shape, env: dict[str, Any]) -> Statement:
    """One layer statement that the current shape accepts."""
    makers = [dense, simple] + ([conv, conv, conv, res, pool, depthwise, resample] if len(shape) == 3 else [])
    makers += [conv, pool, depthwise, resample] if len(shape) == 2 else []
    return draw(draw(st.sampled_from(makers))(shape, env))


# ---------------------------------------------------------------- programs


LOOP_NAMES = ("w", "f", "width", "n_2", "w")  # "w" twice: nested loops sometimes shadow it


@st.composite
def block(draw: Any, shape: Shape, env: dict[str, Any], depth: int, budget: int) -> Block | None:
    """A `repeat`, cut back to the iterations that keep the program valid and within budget."""
    looped = draw(st.booleans())
    var = draw(st.sampled_from(LOOP_NAMES)) if looped else None
    values = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)) if looped else []
    small_vars = [name for name, value in env.items() if isinstance(value, int) and 0 < value <= 3]
    count: int | str | None
    if small_vars and draw(st.integers(0, 4)) == 0:
        count = draw(st.sampled_from(small_vars))
    else:
        count = draw(st.sampled_from((None, 1, 2, 3))) if looped else draw(st.integers(1, 3))
    inner = {**env, var: values[0]} if var else env
    body = draw(statements(shape, inner, depth + 1, budget, min_size=1, max_size=3))
    repeat = Block(body, count, var, values, multiline=draw(st.booleans()))
    while True:  # the first iteration is valid by construction; drop later ones until it all fits
        try:
            _, layers = run([repeat], shape, env)
            if layers <= budget:
                return repeat
        except Invalid:
            pass
        if repeat.var and len(repeat.values) > 1:
            repeat.values = repeat.values[:-1]
        elif repeat.count not in (None, 1):
            repeat.count = 1 if isinstance(repeat.count, str) else repeat.count - 1  # type: ignore[operator]
        else:
            return None


@st.composite
def statements(
    draw: Any, shape: Shape, env: dict[str, Any], depth: int, budget: int, min_size: int = 1, max_size: int = 8
) -> list[Statement | Block]:
    """A list of statements valid from `shape`, making at most `budget` Keras layers."""
    out: list[Statement | Block] = []
    for _ in range(draw(st.integers(min_size, max_size))):  # attempts: one that does not fit is skipped
        current, used = run(out, shape, env)
        if used >= budget:
            break
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            made = draw(block(current, env, depth, budget - used))
            if made is not None:
                out.append(made)
            continue
        statement = draw(layer_statement(current, env))
        if statement.keras_layers + used <= budget:
            out.append(statement)
    if not out:  # one layer always fits
        out.append(Statement("dropout .1", _same_shape, 1))
    return out


@st.composite
def input_shape(draw: Any) -> Shape:
    """Mostly images with odd sizes; sometimes a vector or a sequence (length, channels)."""
    rank = draw(st.sampled_from((3, 3, 3, 3, 1, 2)))
    if rank == 3:
        return (draw(st.integers(1, 24)), draw(st.integers(1, 24)), draw(st.integers(1, 4)))
    return tuple(draw(st.integers(1, 12)) for _ in range(rank))


@dataclass(frozen=True)
class Program:
    """A generated program and what the independent shape model expects of it."""

    text: str
    output_shape: Shape
    keras_layers: int


@st.composite
def valid_programs(draw: Any) -> Program:
    """A random valid program over the whole language, as text."""
    shape = draw(input_shape())
    body = draw(statements(shape, {}, 0, MAX_KERAS_LAYERS))
    out, layers = run(body, shape, {})
    separator = draw(st.sampled_from(("\n", "; ", "\n\n", "  # a comment\n")))
    lines = [f"input {'x'.join(map(str, shape))}", *(s.text for s in body)]
    if draw(st.booleans()):
        lines.append("train adam lr=0.01 batch=32 epochs=1")
    return Program(separator.join(lines) + "\n", out, layers + 1)


# ---------------------------------------------------------------- invalid programs


@dataclass(frozen=True)
class BadProgram:
    """A program that must fail: the code the analyzer must give and the line it must point at."""

    text: str
    code: str
    line: int


@st.composite
def invalid_programs(draw: Any) -> BadProgram:
    """A valid image prefix, then one statement that Keras cannot build on it."""
    shape = draw(st.tuples(st.integers(1, 16), st.integers(1, 16), st.integers(2, 6)))
    prefix = draw(statements(shape, {}, 1, 12, min_size=0, max_size=4))
    current, _ = run(prefix, shape, {})
    lines = [f"input {'x'.join(map(str, shape))}", *(s.text for s in prefix)]
    kinds = ["rank"] + (["collapse"] if len(current) == 3 else []) + (["res"] if current[-1] != 1 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "res" and len(current) == 3:  # the branch's width differs from the input's, neither being 1
        width = draw(st.integers(2, 12).filter(lambda w: w != current[-1]))
        bad, code = f"res {width} k{draw(st.integers(1, 5))}", "E304"
    elif kind == "collapse":  # a valid-padded window larger than the feature map
        axis = draw(st.integers(0, 1))
        size = current[axis] + draw(st.integers(1, 3))
        word = draw(st.sampled_from(("conv 4", "maxpool", "avgpool")))
        option = f"k{size}x1" if axis == 0 else f"k1x{size}"
        bad, code = f"{word} {option} valid", "E303"
    else:  # a feature-map layer once the tensor is a vector (or a res on a vector)
        if len(current) == 3:
            lines.append(draw(st.sampled_from(("gmp", "gap", "flatten", "gmp; dense 5", "flatten; dense 3 relu"))))
        bad = draw(st.sampled_from(("conv 4 k3", "maxpool", "avgpool k2 same", "gmp", "gap", "res 4")))
        code = "E302"
    lines.append(bad)
    text = "\n".join(lines) + "\n"
    return BadProgram(text, code, text.count("\n"))
