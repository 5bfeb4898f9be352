"""Regenerate netdsl/backbones/*.json from keras.applications: `python -m netdsl.backbones.generate`.

Each backbone (without its top) is built twice, at 224x224 and 225x225, with `weights=None`. Layers are
recorded in `model.layers` order, which is the order `freeze<N` counts in. The second build finds the
ZeroPadding2D layers whose padding depends on the input size (MobileNetV2's `correct_pad`): they are
stored as `{"correct": k//2}` so the analyzer can recompute them for any input size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from netdsl.backbones import APPLICATIONS, DIRECTORY

# The configuration keys each Keras class needs for its shape and parameter rules (see netdsl.backbones.OPS).
KEYS: dict[str, tuple[str, ...]] = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "use_bias", "dilation_rate", "groups"),
    "DepthwiseConv2D": ("kernel_size", "strides", "padding", "use_bias", "depth_multiplier", "dilation_rate"),
    "BatchNormalization": ("epsilon", "momentum", "center", "scale"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "ZeroPadding2D": ("padding",),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "Add": (),
}


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the JSON is stable."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def describe(keras: Any, name: str, size: tuple[int, int] = (224, 224)) -> dict:
    """One backbone as data: its Keras function, minimum input size, preprocessing mode and layers."""
    app = APPLICATIONS[name]
    model = getattr(keras.applications, app.function)(include_top=False, weights=None, input_shape=(*size, 3))
    layers = []
    for layer in model.layers[1:]:  # [0] is the InputLayer; a combined model has its own
        kind = type(layer).__name__
        if kind not in KEYS:
            raise SystemExit(f"{name}: layer {layer.name} is a {kind}, which netdsl has no op for; add one")
        config = layer.get_config()
        inbound = []
        for node in layer._inbound_nodes:  # one node per call; backbones call each layer once
            inbound += [tensor._keras_history.operation.name for tensor in node.input_tensors]
        first = model.layers[0].name
        layers.append({
            "name": layer.name,
            "class": kind,
            "config": {key: _plain(config[key]) for key in KEYS[kind]},
            "inbound": ["input" if source == first else source for source in inbound],
        })  # fmt: skip
    return {"name": name, "function": app.function, "keras": keras.__version__, "layers": layers}


def generate(keras: Any, name: str) -> dict:
    """`describe` at two input sizes; paddings that change between them are stored as Keras's `correct_pad`."""
    even, odd = describe(keras, name, (224, 224)), describe(keras, name, (225, 225))
    for layer, other in zip(even["layers"], odd["layers"]):
        if layer["class"] == "ZeroPadding2D" and layer["config"] != other["config"]:
            (top, bottom), (left, right) = layer["config"]["padding"]
            # correct_pad(k): (k//2 - 1, k//2) on an even side, (k//2, k//2) on an odd one.
            if not (top == bottom - 1 and left == right - 1 and other["config"]["padding"] == [[bottom] * 2] * 2):
                raise SystemExit(f"{name}: {layer['name']}'s padding changes with the input size in an unknown way")
            layer["config"] = {"correct": bottom}
    return even


def dumps(data: dict) -> str:
    """The JSON text of a backbone: one layer per line, so a diff shows which layers changed."""
    head = json.dumps({key: value for key, value in data.items() if key != "layers"})[:-1]
    layers = ",\n".join(json.dumps(layer) for layer in data["layers"])
    return f'{head}, "layers": [\n{layers}\n]}}\n'


def main(argv: list[str] | None = None) -> None:
    """Write one JSON file per backbone (or only those named on the command line)."""
    from netdsl.compile import import_keras

    keras = import_keras()
    names = (argv if argv is not None else sys.argv[1:]) or list(APPLICATIONS)
    for name in names:
        path = Path(DIRECTORY) / f"{name}.json"
        path.write_text(dumps(generate(keras, name)), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
