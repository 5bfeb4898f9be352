"""Network -> keras.Model, with the Keras 3 functional API and public `keras.layers` only.

It imports Keras only when a model is built (the trainer and the data loaders import it too; the
analyzer never does). It runs the same `apply` the
analyzer runs, on a graph whose tensors are Keras tensors, and names every layer as the analyzer
does, so each row of `netdsl check` matches a row of `model.summary()`. It also keeps, for each
Keras layer, the netdsl layer (and so the spec line) it came from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netdsl.analysis import Namer, Report, analyze
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Layer, Network, Span
from netdsl.layers.base import GraphBase, Op
from netdsl.layers.pretrained import Application
from netdsl.layers.scale import registered
from netdsl.lints import memory_shortfall

INSTALL_HINT = "pip install 'netdsl[keras]'"


class KerasUnavailable(ImportError):
    """Keras (or its backend) cannot be imported; the analyzer still works without it."""


def import_keras() -> Any:
    """The `keras` module, or KerasUnavailable with the command that installs it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users
    try:
        import keras
    except ImportError as err:  # keras itself, or the backend it is configured to use
        raise KerasUnavailable(f"Keras is not installed or cannot load its backend ({err}); {INSTALL_HINT}") from None
    registered(keras)  # netdsl's own Keras classes (LayerScale, ...): saved models that hold them load
    return keras


class KerasGraph(GraphBase[Any]):
    """A Graph whose tensors are Keras symbolic tensors."""

    def __init__(self, keras: Any) -> None:
        super().__init__()
        self.keras = keras
        self.namer = Namer()
        self.sources: dict[str, Layer] = {}  # Keras layer name -> the netdsl layer it came from
        self.shared: dict[str, Any] = {}  # share key -> the Keras layer (a shared block's model)

    def input(self, shape: tuple[int, ...], dtype: str = "float32", name: str | None = None) -> Any:
        tensor = self.keras.Input(shape=shape, dtype=dtype, name=self.namer("input_layer"))
        if name is not None:
            self.bind(name, tensor)
        return tensor

    def application(self, application: Application, x: Any) -> Any:
        """A whole backbone, built by keras.applications on `x`: its layers join the model one by one."""
        application.claim(self.namer)  # the automatic names its own layers took (MobileNetV3's re_lu, ...)
        return application.to_keras(self.keras, x)

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(x.shape[1:])

    def call(self, op: Op, *inputs: Any) -> Any:
        if op.share is not None and op.share in self.shared:  # shared weights: the same layer, called again
            return op.call_keras(self.shared[op.share], inputs)
        for inner in op.inner_prefixes:
            self.namer(inner)
        name = self.namer(op.prefix)
        if self.layer is not None:
            self.sources[name] = self.layer
        layer = op.to_keras(self.keras, name)
        if op.share is not None:
            self.shared[op.share] = layer
        return op.call_keras(layer, inputs)


@dataclass
class Compiled:
    """A built model and, for each of its layers, where in the spec it was written."""

    model: Any  # keras.Model
    sources: dict[str, Layer] = field(default_factory=dict)
    input_span: Span | None = None

    def span(self, name: str) -> Span | None:
        """The spec span of the Keras layer `name` (the `input` line for the input layer)."""
        if name == "input_layer":
            return self.input_span
        layer = self.sources.get(name)
        return layer.span if layer is not None else None


def refuse_if_too_big(report: Report, net: Network) -> None:
    """E306 before any weight is allocated: Keras would otherwise die of MemoryError (or the OOM killer).
    The numbers are W405's (`lints.memory_shortfall` over the report's rows)."""
    shortfall = memory_shortfall(report.layers, report.total_params)
    if shortfall is not None:
        raise NetdslError([shortfall.error()], Source(net.source, net.file or "<string>"))


def compile_network(net: Network, trainable: Callable[[int, str], bool] | None = None, check: bool = True) -> Compiled:
    """Build the Keras model and its layer -> spec-line map. The spec is analyzed first (unless
    `check=False`), so a bad spec fails with netdsl's located message rather than a Keras traceback."""
    if check:
        report = analyze(net, trainable)
        refuse_if_too_big(report, net)
        if len(report.layers) > KERAS_DEPTH_LIMIT:  # refuse before creating any Keras layer
            _functional_model(None, None, None, net, len(report.layers))
    keras = import_keras()
    graph = KerasGraph(keras)
    x = graph.input(net.input_shape, net.input_dtype, net.input_name)  # type: ignore[arg-type]
    inputs = [x, *(graph.input(spec.shape, spec.dtype, spec.name) for spec in net.extra_inputs)]
    try:
        x = graph.run(net.layers, x)
    except NetdslError as err:  # a backbone's weights that cannot be loaded
        err.source = Source(net.source, net.file or "<string>")
        raise
    outputs = [graph.lookup(name) for name in net.outputs] or [x]
    model = _functional_model(
        keras, inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0], net,
        sum(graph.namer.counts.values()),
    )  # fmt: skip
    if trainable is not None:  # freezing, e.g. the spec's own `pretrained ... freeze<N` (netdsl.transfer)
        for index, keras_layer in enumerate(model.layers):
            keras_layer.trainable = trainable(index, keras_layer.name)
    return Compiled(model, graph.sources, net.input_span)


KERAS_DEPTH_LIMIT = 20_000
"""Most Keras layers we ask Keras to wire into one functional model (its graph walk recurses per layer)."""


def _functional_model(keras: Any, inputs: Any, outputs: Any, net: Network, layers: int) -> Any:
    """`keras.Model(inputs, outputs)` over `layers` Keras layers, with room for Keras's recursion.

    Keras 3 maps a functional graph recursively (`_build_map_helper`, a few Python frames per
    layer), so Python's default recursion limit of 1,000 fails near 900 layers. The limit is raised
    for this call in proportion to the real layer count, and restored; past KERAS_DEPTH_LIMIT layers
    netdsl refuses (E207) rather than risk the interpreter's C stack.
    """
    if layers > KERAS_DEPTH_LIMIT:
        raise NetdslError(
            [Diagnostic("E207", f"the network has {layers:,} Keras layers; netdsl builds Keras models "
                        f"of at most {KERAS_DEPTH_LIMIT:,}", net.input_span,
                        help="`netdsl check` still analyzes it; see docs/limits.md")],
            Source(net.source, net.file or "<string>"),
        )  # fmt: skip
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 4 * layers + 2_000))
    try:
        return keras.Model(inputs=inputs, outputs=outputs, name=model_name(net.name))
    finally:
        sys.setrecursionlimit(previous)


def build_model(net: Network, trainable: Callable[[int, str], bool] | None = None, check: bool = True) -> Any:
    """The Keras model of a network (see `compile_network`)."""
    return compile_network(net, trainable, check).model


def model_name(name: str) -> str:
    """The spec's name as a name TensorFlow accepts for the model's root scope (`^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$`):
    ASCII letters, digits and `_`, not starting with `_` (a spec file `_x.net` or `é.net` must train)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name).lstrip("_")
    return cleaned or "model"
