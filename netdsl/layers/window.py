"""What every convolution shares (`conv`, `deconv`, `dwconv`, `sepconv`): the statement's window arguments
(kernel, stride, dilation, padding, bias, post-ops) and the op's window fields, input checks, receptive
field and Keras arguments. Each kind's own fields, shape rule, weights, MACs and builder stay in its file
(conv.py, transpose.py, depthwise.py); this is their family base, as Keras keeps `BaseConv`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from netdsl.ir import Layer
from netdsl.layers.activation import POST_WORDS, PostStep, apply_post
from netdsl.layers.base import (
    AxisSizes,
    Graph,
    RankedOp,
    ReceptiveField,
    Shape,
    ShapeError,
    Sizes,
    Tensor,
    Weight,
    check_window,
    compact,
    per_axis,
    rank_of,
    window_output,
)

SAME_HELP = "use 'same' padding, a smaller kernel or stride, or a larger input"

KERAS_ORDER = (
    "filters", "kernel_size", "strides", "padding", "depth_multiplier", "dilation_rate", "groups",
    "output_padding", "use_bias", "activation",
)  # fmt: skip
"""The convolutions' Keras arguments in the order of Keras's signatures, which emitted source follows."""


def check_dilation(name: str, strides: Sizes, dilation: Sizes) -> None:
    """Keras refuses a stride above 1 together with a dilation above 1 (E320 here, a ValueError there)."""
    if max(strides) > 1 and max(dilation) > 1:
        raise ShapeError(
            "E320", f"{name} cannot combine a stride above 1 with a dilation above 1 (Keras refuses it)",
            help="use s1 with the dilation, and downsample in another layer",
        )  # fmt: skip


def with_bias(kernels: list[Weight], units: int, use_bias: bool) -> list[Weight]:
    """An op's kernels, then its bias of `units` values unless `nobias` was written."""
    return [*kernels, Weight("bias", (units,))] if use_bias else kernels


@dataclass(frozen=True, kw_only=True)
class WindowOp(RankedOp):
    """A Keras convolution's window, per spatial axis (`rank` of them). Keyword-only, so that each kind's
    own fields (`filters`, ...) come first in its constructor."""

    kernel: Sizes
    strides: Sizes = (1, 1)
    padding: str = "same"
    use_bias: bool = True
    dilation: Sizes = (1, 1)
    rank: int = 2

    def check(self, shape: Shape, name: str, **sizes: Sizes | None) -> None:
        """E302/E320 unless `shape` has this op's rank and every per-axis size fits it (`sizes`: the kind's
        own, such as output_padding); E320 for a stride with a dilation. `name` words the messages."""
        extra = {what: value for what, value in sizes.items() if value}
        check_window(name, shape, self.rank, kernel=self.kernel, strides=self.strides, dilation=self.dilation,
                     **extra)  # fmt: skip
        check_dilation(name, self.strides, self.dilation)

    def sliding_output(self, shape: Shape, name: str) -> Sizes:
        """The output's spatial sizes of a sliding window (E303 when the map shrinks to nothing)."""
        what = f"{name} with kernel {'x'.join(map(str, self.kernel))} and '{self.padding}' padding"
        return window_output(shape, self.kernel, self.strides, self.padding, what, SAME_HELP, self.dilation)

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return inputs[0].through(self.kernel, self.strides, self.dilation) if inputs[0] else None

    def own_args(self) -> dict[str, Any]:
        """The Keras arguments of this kind alone (filters, groups, depth_multiplier, ...)."""
        return {}

    def keras_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "kernel_size": compact(self.kernel),
            "strides": compact(self.strides),
            "padding": self.padding,
            **self.own_args(),
        }
        if max(self.dilation) > 1:
            args["dilation_rate"] = compact(self.dilation)
        if not self.use_bias:
            args["use_bias"] = False
        return dict(sorted(args.items(), key=lambda item: KERAS_ORDER.index(item[0])))


WINDOW_SYNTAX: dict[str, Any] = dict(
    prefixed={"k": "kernel", "s": "stride", "d": "dilation"},
    flags={"same": ("padding", "same"), "valid": ("padding", "valid"), "causal": ("padding", "causal"),
           "nobias": ("bias", False), "bias": ("bias", True)},
    sequence=("post", POST_WORDS),
    aliases={"kernel_size": "kernel", "strides": "stride", "use_bias": "bias", "dilation_rate": "dilation",
             "depth_multiplier": "multiplier"},
)  # fmt: skip
"""The arguments every convolution shares: `k3x5 s2 d2 same nobias`, then activations and `bn`."""


class WindowLayer(Layer):
    """What every convolution statement has: kernel, stride, dilation, padding, bias and post-ops. Sizes are
    kept as written (`k3` is (3,)) and spread over the input's spatial axes when the layer is applied."""

    kernel: AxisSizes = (3,)
    stride: AxisSizes = (1,)
    dilation: AxisSizes = (1,)
    padding: Literal["same", "valid"] = "same"
    bias: bool = True
    post: tuple[PostStep, ...] = ()

    ranks: ClassVar[tuple[int, ...]] = (1, 2, 3)  # the spatial ranks Keras has this layer for

    def window(self, x: Tensor, graph: Graph) -> dict[str, Any]:
        """The window op's fields for the spatial rank this statement builds for (the input's)."""
        rank = rank_of(graph.shape(x), self.ranks)
        return dict(kernel=per_axis(self.kernel, rank), strides=per_axis(self.stride, rank), padding=self.padding,
                    use_bias=self.bias, dilation=per_axis(self.dilation, rank), rank=rank)  # fmt: skip

    def with_post(self, op: WindowOp, x: Tensor, graph: Graph) -> Tensor:
        """The op on `x`, then the activations and batch norms written after it, in that order."""
        return apply_post(graph, graph.call(op, x), self.post)
