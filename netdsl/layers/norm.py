"""Normalisation, scaling and regularising noise, layers that keep their input's shape: `bn`, `layernorm`,
`groupnorm`, `rescale`, `normalize`, `dropout`, `sdropout`, `noise`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt, ValidationInfo, field_validator

from netdsl.ir import Layer
from netdsl.layers.base import (
    ElementWise,
    FieldArgs,
    Graph,
    Op,
    RankedOp,
    Shape,
    ShapeError,
    Syntax,
    Tensor,
    Weight,
    check_window,
    fmt_shape,
    rank_of,
)


@dataclass(frozen=True)
class BatchNormOp(FieldArgs):
    momentum: float = 0.99
    epsilon: float = 0.001
    scale: bool = True  # False: no gamma (InceptionV3's conv2d_bn), 3*C parameters
    keras_class: ClassVar[str] = "BatchNormalization"
    prefix: ClassVar[str] = "batch_normalization"

    def output_shape(self, *inputs: Shape) -> Shape:
        if not inputs[0]:
            raise ShapeError("E302", "batch_normalization needs an input with a channel axis")
        return inputs[0]

    def weights(self, *inputs: Shape) -> list[Weight]:
        # 4*C parameters: gamma and beta are learnt, the moving statistics are not.
        channels = (inputs[0][-1],)
        return [
            *([Weight("gamma", channels)] if self.scale else []),
            Weight("beta", channels),
            Weight("moving_mean", channels, trainable=False),
            Weight("moving_variance", channels, trainable=False),
        ]


class BatchNorm(Layer):
    """`bn [momentum=0.99] [epsilon=0.001] [scale=0]`: Keras BatchNormalization over the last axis; `scale=0`
    drops the learnt scale gamma (Keras's `scale=False`, as InceptionV3 has it before a ReLU)."""

    kind: Literal["bn"] = "bn"
    momentum: float = Field(0.99, ge=0, lt=1)
    epsilon: float = Field(0.001, gt=0)
    scale: bool = True

    syntax: ClassVar[Syntax] = Syntax(aliases={"eps": "epsilon"}, example="bn momentum=0.9")
    summary: ClassVar[str] = "batch normalization (4*C parameters, 2*C of them non-trainable)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(BatchNormOp(self.momentum, self.epsilon, self.scale), x)


@dataclass(frozen=True)
class DropoutOp(Op):
    rate: float
    noise_shape: tuple[int, ...] | None = None  # batch axis excluded; Keras's has None first
    keras_class: ClassVar[str] = "Dropout"
    prefix: ClassVar[str] = "dropout"

    def output_shape(self, *inputs: Shape) -> Shape:
        noise = self.noise_shape
        if noise is not None and (
            len(noise) != len(inputs[0]) or any(n not in (1, m) for n, m in zip(noise, inputs[0]))
        ):
            raise ShapeError(
                "E320", f"dropout noise_shape {'x'.join(map(str, noise))} does not fit the input {fmt_shape(inputs[0])}",
                help="give one size per axis (batch excluded), each 1 (shared) or the input's size",
            )  # fmt: skip
        return inputs[0]

    def keras_args(self) -> dict[str, Any]:
        if self.noise_shape is None:
            return {"rate": self.rate}
        return {"rate": self.rate, "noise_shape": (None, *self.noise_shape)}


class Dropout(Layer):
    """`dropout P [noise_shape=1x1x1]`: zero a fraction P (0 <= P < 1) of activations while training;
    `noise_shape` (batch axis excluded; 1 shares the mask along that axis) drops whole examples' branches,
    as EfficientNet's drop-connect `Dropout(rate, noise_shape=(None, 1, 1, 1))` does."""

    kind: Literal["dropout"] = "dropout"
    rate: float = Field(ge=0, lt=1)
    noise_shape: tuple[PositiveInt, ...] | None = None

    syntax: ClassVar[Syntax] = Syntax(positional=("rate",), example="dropout .1")
    summary: ClassVar[str] = "dropout with rate P in [0, 1)"

    @field_validator("noise_shape", mode="before")
    @classmethod
    def _one_size_is_a_shape(cls, value: Any) -> Any:
        return (value,) if isinstance(value, int) and not isinstance(value, bool) else value

    keeps_predictions: ClassVar[bool] = True

    def raw_input_note(self) -> str | None:
        return "dropout"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(DropoutOp(self.rate, self.noise_shape), x)


@dataclass(frozen=True)
class LayerNormOp(ElementWise, FieldArgs):
    epsilon: float = 0.001
    keras_class: ClassVar[str] = "LayerNormalization"
    prefix: ClassVar[str] = "layer_normalization"

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("gamma", inputs[0][-1:]), Weight("beta", inputs[0][-1:])]


class LayerNorm(Layer):
    """`layernorm [epsilon=0.001]`: Keras LayerNormalization over the last axis (2*C parameters)."""

    kind: Literal["layernorm"] = "layernorm"
    epsilon: float = Field(0.001, gt=0)

    syntax: ClassVar[Syntax] = Syntax(aliases={"eps": "epsilon"}, example="layernorm epsilon=1e-6")
    summary: ClassVar[str] = "layer normalization over the last axis (2*C parameters)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(LayerNormOp(self.epsilon), x)


@dataclass(frozen=True)
class GroupNormOp(ElementWise):
    groups: int = 32
    epsilon: float = 0.001
    keras_class: ClassVar[str] = "GroupNormalization"
    prefix: ClassVar[str] = "group_normalization"

    def output_shape(self, *inputs: Shape) -> Shape:
        if not inputs[0] or inputs[0][-1] % self.groups:
            raise ShapeError(
                "E320", f"group_normalization of {self.groups} groups needs channels divisible by {self.groups}, "
                f"got {inputs[0][-1] if inputs[0] else 0}",
            )  # fmt: skip
        return inputs[0]

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("gamma", inputs[0][-1:]), Weight("beta", inputs[0][-1:])]

    def keras_args(self) -> dict[str, Any]:
        return {"groups": self.groups, **({"epsilon": self.epsilon} if self.epsilon != 0.001 else {})}


class GroupNorm(Layer):
    """`groupnorm [G] [epsilon=0.001]`: Keras GroupNormalization with G groups of channels (default 32, as
    Keras's), 2*C parameters."""

    kind: Literal["groupnorm"] = "groupnorm"
    groups: PositiveInt = 32
    epsilon: float = Field(0.001, gt=0)

    syntax: ClassVar[Syntax] = Syntax(positional=("groups",), aliases={"eps": "epsilon"}, example="groupnorm 8")
    summary: ClassVar[str] = "group normalization over G groups of channels (2*C parameters)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(GroupNormOp(self.groups, self.epsilon), x)


@dataclass(frozen=True)
class RescalingOp(ElementWise, FieldArgs):
    scale: float
    offset: float = 0.0
    keras_class: ClassVar[str] = "Rescaling"
    prefix: ClassVar[str] = "rescaling"


class Rescale(Layer):
    """`rescale S [offset=O]`: Keras Rescaling, x * S + O (`rescale 0.00392` maps 0..255 to 0..1)."""

    kind: Literal["rescale"] = "rescale"
    scale: float
    offset: float = 0.0

    syntax: ClassVar[Syntax] = Syntax(positional=("scale",), example="rescale 0.0078431 offset=-1")
    summary: ClassVar[str] = "x * scale + offset (Keras Rescaling)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(RescalingOp(self.scale, self.offset), x)


@dataclass(frozen=True)
class NormalizationOp(ElementWise):
    """Keras Normalization over the last axis. Given mean and variance it holds no weights; otherwise it
    has the statistics `adapt()` fills as non-trainable weights: mean (C), variance (C) and a count."""

    mean: float | tuple[float, ...] | None = None
    variance: float | tuple[float, ...] | None = None
    keras_class: ClassVar[str] = "Normalization"
    prefix: ClassVar[str] = "normalization"

    def output_shape(self, *inputs: Shape) -> Shape:
        for what, value in (("mean", self.mean), ("variance", self.variance)):
            if isinstance(value, tuple) and (not inputs[0] or len(value) != inputs[0][-1]):
                raise ShapeError(
                    "E320", f"normalization {what} has {len(value)} values for the {inputs[0][-1] if inputs[0] else 0} "
                    f"channels of {fmt_shape(inputs[0])}", help="give one value per channel, or one for all",
                )  # fmt: skip
        return inputs[0]

    def weights(self, *inputs: Shape) -> list[Weight]:
        if self.mean is not None:
            return []
        channels = inputs[0][-1:]
        return [Weight("mean", channels, False), Weight("variance", channels, False), Weight("count", (), False)]

    def keras_args(self) -> dict[str, Any]:
        if self.mean is None:
            return {}
        listed = lambda value: list(value) if isinstance(value, tuple) else value  # noqa: E731  (as Keras's config has it)
        return {"mean": listed(self.mean), "variance": listed(self.variance)}


PerChannel = float | tuple[float, ...]
"""One value for every channel (`mean=0.5`), or one per channel (`mean=(123.675, 116.28, 103.53)`)."""


class Normalize(Layer):
    """`normalize [mean=M variance=V]`: Keras Normalization, (x - mean) / sqrt(variance), as EfficientNet's
    stem; M and V are one number or one per channel (`mean=(123.675, 116.28, 103.53)`, ConvNeXt's). Without
    them it carries the per-channel statistics Keras's `adapt()` computes (2*C+1 non-trainable weights;
    netdsl does not adapt them: load them with the weights)."""

    kind: Literal["normalize"] = "normalize"
    mean: PerChannel | None = None
    variance: PerChannel | None = Field(None, validate_default=True)

    syntax: ClassVar[Syntax] = Syntax(example="normalize mean=0.5 variance=0.25")
    summary: ClassVar[str] = "(x - mean) / sqrt(variance), Keras Normalization (or its adapted statistics)"

    @field_validator("variance")
    @classmethod
    def _both_or_neither(cls, value: PerChannel | None, info: ValidationInfo) -> PerChannel | None:
        if (value is None) != (info.data.get("mean") is None):
            raise ValueError("must be given together with mean= (or neither, for adapted statistics)")
        if value is not None and min(value if isinstance(value, tuple) else (value,)) <= 0:
            raise ValueError("must be greater than 0")
        return value

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(NormalizationOp(self.mean, self.variance), x)


@dataclass(frozen=True)
class SpatialDropoutOp(ElementWise, RankedOp):
    rate: float = 0.0
    rank: int = 2
    keras_template: ClassVar[str] = "SpatialDropout{}D"
    prefix_template: ClassVar[str] = "spatial_dropout{}d"

    def output_shape(self, *inputs: Shape) -> Shape:
        check_window(self.prefix, inputs[0], self.rank)
        return inputs[0]

    def keras_args(self) -> dict[str, Any]:
        return {"rate": self.rate}


class SpatialDropout(Layer):
    """`sdropout P`: drops whole channels (SpatialDropout2D; 1-D/3-D by rank) with rate P."""

    kind: Literal["sdropout"] = "sdropout"
    rate: float = Field(ge=0, lt=1)

    syntax: ClassVar[Syntax] = Syntax(positional=("rate",), example="sdropout .2")
    summary: ClassVar[str] = "spatial dropout: whole channels (SpatialDropout1D/2D/3D by rank)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(SpatialDropoutOp(self.rate, rank_of(graph.shape(x))), x)


@dataclass(frozen=True)
class GaussianNoiseOp(ElementWise, FieldArgs):
    stddev: float
    keras_class: ClassVar[str] = "GaussianNoise"
    prefix: ClassVar[str] = "gaussian_noise"


class Noise(Layer):
    """`noise S`: Keras GaussianNoise with standard deviation S, while training only."""

    kind: Literal["noise"] = "noise"
    stddev: float = Field(ge=0)

    syntax: ClassVar[Syntax] = Syntax(positional=("stddev",), example="noise 0.1")
    summary: ClassVar[str] = "additive Gaussian noise while training (Keras GaussianNoise)"

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.call(GaussianNoiseOp(self.stddev), x)
