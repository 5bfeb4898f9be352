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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from netdsl.backbones import APPLICATIONS, Backbone, load
from netdsl.diagnostics import Diagnostic, NetdslError, did_you_mean
from netdsl.ir import Layer, Network, Span
from netdsl.layers.base import Graph, Op, ReceptiveField, Shape, Syntax, Tensor, Weight
from netdsl.layers.dense import Flatten
from netdsl.layers.pooling import GlobalMaxPool

BackboneName = Literal[tuple(APPLICATIONS)]  # type: ignore[valid-type]


class Pretrained(Layer):
    """A `keras.applications` backbone (include_top=False): resnet50, mobilenetv2 or vgg16; or, with
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
        'a keras.applications backbone without its top (resnet50, mobilenetv2, vgg16), or run="runs/xyz"'
    )

    @field_validator("freeze")
    @classmethod
    def _freeze_is_meaningful(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be a layer index >= 0, all, none or a layer name")
        return value

    def apply(self, x: Tensor, graph: Graph) -> Tensor:
        return graph.application(self.source(), x)  # type: ignore[attr-defined]

    def source(self) -> Application | RunBackbone:
        """What builds this backbone: a keras.applications constructor, or a previous run."""
        return RunBackbone(self) if self.run is not None else Application(self)

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
        names = self.source().names()
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

    def output_shape(self, *inputs: Shape) -> Shape:
        return self.shape

    def weights(self, *inputs: Shape) -> list[Weight]:
        return [Weight("trainable", (self.trainable_size,)), Weight("non_trainable", (self.non_trainable_size,), False)]

    def macs(self, output: Shape, *inputs: Shape) -> int:
        return self.multiply_accumulates

    def receptive_field(self, *inputs: ReceptiveField | None) -> ReceptiveField | None:
        return None  # not tracked through a nested model


@dataclass(frozen=True)
class RunBackbone:
    """`pretrained run="runs/xyz"`: the run's spec up to (not including) its last global pooling or flatten,
    built, given the run's trained weights, and nested in the new model as one layer named after the run."""

    layer: Pretrained

    @property
    def name(self) -> str:
        cleaned = "".join(c if c.isalnum() else "_" for c in Path(self.layer.run or "run").resolve().name)
        return f"pretrained_{cleaned}".rstrip("_")

    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def fail(self, code: str, message: str, help: str | None = None) -> NetdslError:
        return NetdslError([Diagnostic(code, f"{self.layer.title}: {message}", self.layer.span, help=help)])

    def prior(self) -> tuple[Network, Network, Path]:
        """The run's whole network, the part kept as the backbone, and the run's weights file."""
        from netdsl import parse
        from netdsl.runs import RunDir

        try:
            run = RunDir.open(self.layer.run)  # type: ignore[arg-type]
            config = run.config()
            weights = run.weights_path()
            full = parse(run.spec_text(), name=config.get("name", "model"), file=str(run.path / "spec.net"))
        except NetdslError as err:
            first = err.diagnostics[0]
            raise self.fail("E508", first.message, first.help) from None
        cuts = [i for i, layer in enumerate(full.layers) if isinstance(layer, (GlobalMaxPool, Flatten))]
        if not cuts or cuts[-1] == 0:
            raise self.fail(
                "E313", "the run's spec has no global pooling or flatten before its head, so there is no place to cut",
                help="a backbone ends where its feature map is pooled (gap, gmp) or flattened",
            )  # fmt: skip
        return full, full.model_copy(update={"layers": full.layers[: cuts[-1]], "training": full.training}), weights

    def replay(self, x: Any, call: Callable[..., Any], shape: tuple[int, ...]) -> Any:
        """One row: the kept part's output shape and its trainable / non-trainable counts."""
        from netdsl.analysis import analyze  # the analyzer imports this module

        _, body, _ = self.prior()
        if tuple(shape) != tuple(body.input_shape or ()):
            given, trained = "x".join(map(str, shape)), "x".join(map(str, body.input_shape or ()))
            raise self.fail("E310", f"the run was trained on {trained} inputs; this spec's input is {given}",
                            help=f"use `input {trained}` (netdsl adapts the new data's images to it)")  # fmt: skip
        report = analyze(body, trainable=lambda index, name: True)
        op = RunBackboneOp(
            tuple(report.output_shape[1:]), report.trainable_params, report.non_trainable_params, report.macs
        )  # type: ignore[arg-type]
        return call(op, x, name=self.name)

    def source_op(self) -> Op:
        raise self.fail("E313", "netdsl emit cannot write a run's backbone as standalone source",
                        help="emit the run's own spec, or load the run with netdsl.training.load_run")  # fmt: skip

    def to_keras(self, keras: Any, x: Any) -> Any:
        """Build the run's whole model, load its weights, keep it up to the cut, and call that on `x`."""
        from netdsl.analysis import analyze
        from netdsl.compile import build_model

        full, body, weights = self.prior()
        model = build_model(architecture_only(full), check=False)  # the run's weights replace any backbone's
        try:
            model.load_weights(str(weights))
        except (ValueError, OSError, KeyError) as err:
            raise self.fail(
                "E511", f"{weights.name} does not fit the run's spec: {str(err).splitlines()[0][:200]}"
            ) from None
        kept = model.layers[len(analyze(body, trainable=lambda index, name: True).layers) - 1]
        backbone = keras.Model(model.inputs, kept.output, name=self.name)
        return backbone(x)


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


def backbone_of(net: Network) -> Pretrained | None:
    """The network's `pretrained` layer, or None; E312 when it is not the first layer."""
    found = None
    for index, layer in enumerate(net.layers):
        if isinstance(layer, Pretrained):
            if index != 0 or found is not None:
                raise NetdslError([
                    Diagnostic("E312", "pretrained must be the first layer, right after `input`", layer.span,
                               help="a backbone starts the network; write your head (gap, dense, ...) after it")
                ])  # fmt: skip
            layer.check()
            found = layer
    return found


def freezing(net: Network, freeze: int | str | None = None, where: Span | None = None) -> Freezing | None:
    """The freezing the network's `pretrained` line asks for, or `freeze` (a `phase` line's, located at
    `where`) instead; None when nothing is frozen by the spec."""
    layer = backbone_of(net)
    if layer is None:
        if freeze is not None:
            raise NetdslError([Diagnostic("E311", "phase: freeze needs a `pretrained` backbone to count layers in",
                                          where, help="remove freeze from the phase line")])  # fmt: skip
        return None
    value = layer.freeze if freeze is None else freeze
    text = f"freeze={value}" if value in ("all", "none") else f"freeze<{value!r}".replace("'", '"')
    layer = layer.model_copy(update={"freeze": value, "span": where or layer.span})
    return Freezing(layer.frozen_below(), layer.span, f"{'phase' if where else layer.title} {text}")


def phase_freezings(net: Network) -> list[Freezing | None]:
    """Each `phase` line's freezing (its own `freeze`, else the `pretrained` line's), errors located at the phase."""
    return [freezing(net, phase.freeze, phase.span) for phase in net.training.phases]


def preprocessing(net: Network) -> str | None:
    """The `keras.applications` module whose `preprocess_input` the network's images need (ResNet50's "caffe"
    mode: RGB->BGR, ImageNet's channel means subtracted, on 0..255 pixels); None for netdsl's usual 0..1."""
    layer = backbone_of(net)
    if layer is None or layer.backbone is None:  # a run's backbone was trained on netdsl's 0..1 input
        return None
    return APPLICATIONS[layer.backbone].module


def architecture_only(net: Network) -> Network:
    """`net` with its keras.applications backbone at weights=none: shapes and counts do not depend on the
    weights, so `check --verify` compares the architecture without a download (or a weights file)."""
    layers = [
        layer.model_copy(update={"weights": "none"}) if isinstance(layer, Pretrained) and layer.backbone else layer
        for layer in net.layers
    ]
    return net.model_copy(update={"layers": layers})
