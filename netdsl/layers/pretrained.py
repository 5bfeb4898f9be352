"""`pretrained NAME [weights=imagenet|none|"PATH"] [freeze<N | freeze<"layer" | freeze=all | freeze=none]`:
a `keras.applications` backbone without its top, as the first layer of a network, followed by the user's head.

The analyzer replays the backbone's layer graph from `netdsl/backbones/<name>.json` with netdsl's own ops,
so shapes and counts are exact for any input size without TensorFlow; the compiler calls
`keras.applications.<Backbone>(include_top=False, weights=..., input_tensor=x)`, so the combined model's
`model.layers` are the input, the backbone's layers, then the head's, exactly as in the seed.

Freezing counts in that combined `model.layers`: `freeze<142` is the seed's
`for layer in model.layers[:142]: layer.trainable = False`; `freeze=all` freezes the input and every
backbone layer (the seed's `for layer in base_model.layers`); `freeze<"conv5_block1_1_conv"` freezes
everything before that layer, which survives Keras versions that renumber layers.

`pretrained run="runs/xyz"` takes a previous netdsl run instead (`RunBackbone`): its spec up to the last
global pooling or flatten, with its trained weights, nested as one layer. docs/transfer.md has the whole story.

This file holds the layer's fields, its ops and the data they replay; the policy (which freezing applies
when, phases, preprocessing, reading a run into a `RunBackbone`) is netdsl/transfer.py, above the analyzer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator

from netdsl.backbones import APPLICATIONS, Backbone, load
from netdsl.diagnostics import Diagnostic, NetdslError, did_you_mean
from netdsl.ir import Layer, Network, Span
from netdsl.layers.base import Graph, Op, Shape, Syntax, Tensor, Weight

BackboneName = Literal[tuple(APPLICATIONS)]  # type: ignore[valid-type]


class Pretrained(Layer):
    """A `keras.applications` backbone (include_top=False), one of netdsl.backbones.APPLICATIONS; or, with
    `run="runs/xyz"`, the network of a previous netdsl run up to its last global pooling or flatten,
    with that run's trained weights (pretrain on one dataset, fine-tune on another)."""

    kind: Literal["pretrained"] = "pretrained"
    backbone: BackboneName | None = None
    run: str | None = Field(None, min_length=1)  # a run directory made by `netdsl train`
    weights: str | None = Field(None, min_length=1)  # imagenet (default), none, or a .h5 path; not with run=
    freeze: int | str = "none"  # N: model.layers[:N]; "all"; "none"; or a layer name (frozen before it)

    syntax: ClassVar[Syntax] = Syntax(
        flags={
            **{name: ("backbone", name) for name in APPLICATIONS},
            "frozen": ("freeze", "all"),
            "trainable": ("freeze", "none"),
        },
        below=("freeze",),
        example="pretrained resnet50 weights=imagenet freeze=all",
    )
    summary: ClassVar[str] = (
        'a keras.applications backbone without its top (resnet50, mobilenetv2, efficientnetb0, ...), or run="runs/xyz"'
    )

    @field_validator("freeze")
    @classmethod
    def _freeze_is_meaningful(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be a layer index >= 0, all, none or a layer name")
        return value

    _resolved_run: RunBackbone | None = PrivateAttr(None)  # set by netdsl.transfer.resolve (run= only)

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.application(self.source(), x)  # type: ignore[attr-defined]

    def source(self) -> Application | RunBackbone:
        """What builds this backbone: a keras.applications constructor, or a previous run (resolved above)."""
        if self.run is None:
            return Application(self)
        if self._resolved_run is None:
            raise self.fail(
                "E313", "the run has not been read (analyze through netdsl.analyze, which resolves run=)",
                help="call netdsl.transfer.resolve(net) before the analyzer or the compiler",
            )  # fmt: skip
        return self._resolved_run

    @property
    def is_resolved(self) -> bool:
        """Whether netdsl.transfer has attached this `pretrained run=` layer's run."""
        return self._resolved_run is not None

    def with_run(self, resolved: RunBackbone) -> Pretrained:
        """A copy of this `pretrained run=` layer that carries its resolved run."""
        copy = self.model_copy()
        copy._resolved_run = resolved
        return copy

    @property
    def run_name(self) -> str:
        """The nested model's name: `pretrained_` and the run directory's name, as an identifier."""
        cleaned = "".join(c if c.isalnum() else "_" for c in Path(self.run or "run").resolve().name)
        return f"pretrained_{cleaned}".rstrip("_")

    def names(self) -> tuple[str, ...]:
        """The backbone's layer names in `model.layers` order (its input excluded): a run is one layer."""
        return (self.run_name,) if self.run is not None else load(self.backbone).names  # type: ignore[arg-type]

    def fail(self, code: str, message: str, help: str | None = None) -> NetdslError:
        """A diagnostic at this line, its message prefixed with the line's title."""
        return NetdslError([Diagnostic(code, f"{self.title}: {message}", self.span, help=help)])

    @property
    def title(self) -> str:
        return f'pretrained run="{self.run}"' if self.run is not None else f"pretrained {self.backbone}"

    def check(self) -> None:
        """A backbone or a run, not both; `weights=` only with a keras.applications backbone (E203, E202)."""
        if (self.backbone is None) == (self.run is None):
            what = "missing backbone" if self.backbone is None else "give a backbone or run=, not both"
            raise NetdslError([
                Diagnostic("E203", f"pretrained: {what}", self.span,
                           help=f'name one of {", ".join(APPLICATIONS)}, or a previous run: run="runs/xyz"')
            ])  # fmt: skip
        if self.run is not None and self.weights is not None:
            raise NetdslError([
                Diagnostic("E202", f"{self.title}: takes no weights= (the run's own trained weights are loaded)",
                           self.span, help="remove weights=")
            ])  # fmt: skip

    def frozen_below(self) -> int:
        """The `model.layers` index before which layers are frozen (0: none), or NetdslError (E311)."""
        names = self.names()
        if self.freeze == "none":
            return 0
        if self.freeze == "all":
            return 1 + len(names)  # the input layer and every backbone layer
        if isinstance(self.freeze, int):
            return self.freeze
        if self.freeze in names:
            return 1 + names.index(self.freeze)
        raise NetdslError([
            Diagnostic(
                "E311", f"{self.title}: freeze<\"{self.freeze}\" names no layer of {self.backbone or 'the backbone'}",
                self.span,
                help=did_you_mean(self.freeze, names)
                or f"use a layer name from `netdsl check` (e.g. {names[len(names) // 2]}), an index, all or none",
            )
        ])  # fmt: skip


@dataclass(frozen=True)
class Application:
    """What a graph's `application` receives: the analyzer replays it, the compiler builds it with Keras."""

    layer: Pretrained

    @property
    def structure(self) -> Backbone:
        return load(self.layer.backbone)  # type: ignore[arg-type]

    @property
    def weights(self) -> str:
        return self.layer.weights or "imagenet"

    def names(self) -> tuple[str, ...]:
        """The backbone's layer names, in `model.layers` order (its input excluded)."""
        return self.structure.names

    def claim(self, namer: Any) -> None:
        """Count the automatic names the backbone's own layers and operations took (see `Backbone.claim`)."""
        self.structure.claim(namer.take)

    def replay(self, x: Any, call: Callable[..., Any], shape: tuple[int, ...]) -> Any:
        """Check the input against Keras's rules for this backbone, then run its layers through `call`."""
        app = APPLICATIONS[self.layer.backbone]  # type: ignore[index]
        name = f"pretrained {self.layer.backbone}"
        if len(shape) != 3:
            raise NetdslError([Diagnostic("E310", f"{name} needs an image input HxWxC, got {'x'.join(map(str, shape))}",
                                          self.layer.span)])  # fmt: skip
        if min(shape[:2]) < app.min_size:
            raise NetdslError([
                Diagnostic(
                    "E310", f"{name}: the input must be at least {app.min_size}x{app.min_size} "
                    f"(Keras's minimum for {app.function}), got {shape[0]}x{shape[1]}",
                    self.layer.span, help=f"use `input {app.min_size}x{app.min_size}x3` or larger; {app.function} was trained at 224x224",
                )
            ])  # fmt: skip
        if shape[2] != 3 and self.weights != "none":
            raise NetdslError([
                Diagnostic(
                    "E310", f"{name}: pretrained weights expect 3 (RGB) channels, got {shape[2]}", self.layer.span,
                    help="use an RGB input (HxWx3), or weights=none to train the backbone from scratch",
                )
            ])  # fmt: skip
        return self.structure.replay(x, call)

    def source_op(self) -> Op:
        """For `netdsl emit`: one call that builds the backbone on the tensor, as the compiler does."""
        weights = self.weights
        function = APPLICATIONS[self.layer.backbone].function  # type: ignore[index]
        return ApplicationSourceOp(function, None if weights == "none" else weights)

    def to_keras(self, keras: Any, x: Any) -> Any:
        """`keras.applications.<Backbone>(include_top=False, weights=..., input_tensor=x)`'s output tensor."""
        app = APPLICATIONS[self.layer.backbone]  # type: ignore[index]
        weights = self.weights
        if weights not in ("imagenet", "none") and not Path(weights).is_file():
            raise NetdslError([Diagnostic("E511", f'{self.layer.title}: weights file "{weights}" does not exist', self.layer.span,
                                          help="give the path of a .h5 file saved from keras.applications, or weights=none")])  # fmt: skip
        constructor = getattr(keras.applications, app.function)
        try:
            model = constructor(
                include_top=False, weights=None if weights == "none" else weights,
                input_tensor=x, input_shape=tuple(x.shape[1:]),
            )  # fmt: skip
        except Exception as err:  # Keras raises bare Exception/ValueError for download and file errors
            if weights == "none":  # nothing was loaded: Keras refusing the architecture is a netdsl bug (E601)
                raise
            raise weights_error(self.layer, app, str(err)) from None
        return model.output


@dataclass(frozen=True)
class ApplicationSourceOp(Op):
    """The emitted source of a backbone: a function of the input tensor, so its layers join the model flat."""

    function: str
    weights: str | None
    keras_class: ClassVar[str] = "Functional"

    def to_source(self, name: str | None = None) -> str:
        call = f"keras.applications.{self.function}(include_top=False, weights={self.weights!r}, input_tensor=tensor)"
        return f"(lambda tensor: {call}.output)"


@dataclass(frozen=True)
class RunBackboneOp(Op):
    """A previous run's network up to its head, as Keras sees it: one nested model (one row, one layer)."""

    shape: Shape
    trainable_size: int
    non_trainable_size: int
    multiply_accumulates: int
    keras_class: ClassVar[str] = "Functional"
    prefix: ClassVar[str] = "functional"
    keeps_positions: ClassVar[bool] = False  # not tracked through a nested model

    def output_shape(self, *inputs: Shape) -> Shape:
        return self.shape

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("trainable", (self.trainable_size,)), Weight("non_trainable", (self.non_trainable_size,), False)]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return self.multiply_accumulates


@dataclass(frozen=True)
class RunBackbone:
    """`pretrained run="runs/xyz"` once `netdsl.transfer.resolve` has read the run: the run's spec up to (not
    including) its last global pooling or flatten, as one nested layer named after the run.

    The layer file holds only what the graphs need; reading the run, analysing the kept part and building
    it with the run's weights is transfer policy, done above the analyzer and handed in as `op` and `build`."""

    layer: Pretrained
    input_shape: Shape  # what the run was trained on
    op: RunBackboneOp  # the kept part's output shape and counts, from its own analysis
    build: Callable[[Any, Any], Any]  # (keras, x) -> the kept part, with the run's weights, called on x

    @property
    def name(self) -> str:
        return self.layer.run_name

    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def claim(self, namer: Any) -> None:
        """Its one layer carries the run's name: no automatic name is taken."""

    def fail(self, code: str, message: str, help: str | None = None) -> NetdslError:
        return self.layer.fail(code, message, help)

    def replay(self, x: Any, call: Callable[..., Any], shape: tuple[int, ...]) -> Any:
        """One row: the kept part's output shape and its trainable / non-trainable counts."""
        if tuple(shape) != tuple(self.input_shape):
            given, trained = "x".join(map(str, shape)), "x".join(map(str, self.input_shape))
            raise self.fail("E310", f"the run was trained on {trained} inputs; this spec's input is {given}",
                            help=f"use `input {trained}` (netdsl adapts the new data's images to it)")  # fmt: skip
        return call(self.op, x, name=self.name)

    def source_op(self) -> Op:
        raise self.fail("E313", "netdsl emit cannot write a run's backbone as standalone source",
                        help="emit the run's own spec, or load the run with netdsl.trainer.load_run")  # fmt: skip

    def to_keras(self, keras: Any, x: Any) -> Any:
        """The run's model up to the cut, with its trained weights, called on `x`."""
        return self.build(keras, x)


def weights_error(layer: Pretrained, app: Any, reason: str) -> NetdslError:
    """E510 (ImageNet weights cannot be fetched) or E511 (the file does not fit the backbone)."""
    where = f"pretrained {layer.backbone}"
    reason = reason.strip().splitlines()[0][:300] if reason.strip() else "no reason given"
    if (layer.weights or "imagenet") == "imagenet":
        return NetdslError([
            Diagnostic(
                "E510", f"{where}: cannot download the ImageNet weights ({app.weights_file})", layer.span,
                notes=(f"Keras said: {reason}",),
                help=f"fetch {app.weights_file} where there is a network (Keras keeps it in ~/.keras/models/), "
                f'then write weights="path/to/{app.weights_file}"; or use weights=none to start from random weights',
            )
        ])  # fmt: skip
    return NetdslError([
        Diagnostic(
            "E511", f'{where}: the weights file "{layer.weights}" does not fit {app.function} (include_top=False)',
            layer.span, notes=(f"Keras said: {reason}",),
            help=f"use the file keras.applications.{app.function}(include_top=False) saves, such as {app.weights_file}",
        )
    ])  # fmt: skip


@dataclass(frozen=True)
class Freezing:
    """Layers `model.layers[:below]` do not train; `where` locates the setting for messages."""

    below: int
    where: Span | None = None
    text: str = ""

    def trainable(self, index: int, name: str) -> bool:
        """The `trainable(index, name)` callback of `analysis.analyze` and `compile.build_model`."""
        return index >= self.below

    def check(self, layer_count: int) -> None:
        """E311 unless the index is within the combined model's `model.layers`."""
        if self.below > layer_count:
            raise NetdslError([
                Diagnostic(
                    "E311", f"{self.text}: the model has only {layer_count} layers (model.layers[0..{layer_count - 1}])",
                    self.where, help=f"use an index up to {layer_count}, a layer name, all or none",
                )
            ])  # fmt: skip


def architecture_only(net: Network) -> Network:
    """`net` with its keras.applications backbone at weights=none: shapes and counts do not depend on the
    weights, so `check --verify` compares the architecture without a download (or a weights file)."""
    layers = [
        layer.model_copy(update={"weights": "none"}) if isinstance(layer, Pretrained) and layer.backbone else layer
        for layer in net.layers
    ]
    return net.model_copy(update={"layers": layers})
