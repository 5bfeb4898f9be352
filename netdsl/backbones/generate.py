"""Regenerate netdsl/backbones/*.json from keras.applications: `python -m netdsl.backbones.generate`.

Each backbone (without its top) is built twice, at 224x224 and 225x225, with `weights=None`. Layers are
recorded in `model.layers` order, which is the order `freeze<N` counts in, with the Keras operations that
are not layers (MobileNetV3's `x + 3.0`) where the functional model has them. The second build finds the
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
    "SeparableConv2D": ("filters", "kernel_size", "strides", "padding", "use_bias", "depth_multiplier",
                        "dilation_rate"),
    "BatchNormalization": ("epsilon", "momentum", "center", "scale"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "ZeroPadding2D": ("padding",),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "GlobalAveragePooling2D": ("keepdims",),
    "Add": (),
    "Multiply": (),
    "Concatenate": ("axis",),
    "Reshape": ("target_shape",),
    "Rescaling": ("scale", "offset"),
    "Normalization": ("axis", "mean", "variance"),
    "Dropout": ("rate", "noise_shape"),
}  # fmt: skip
OPERATIONS = {"Add": "+", "Multiply": "*"}
"""Keras operations that are not layers (MobileNetV3's `x + 3.0`, `* (1.0 / 6.0)`): class -> operator."""


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the JSON is stable."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _entry(keras: Any, name: str, operation: Any, first: str) -> dict:
    """One layer (or operation) as data: name, class, the config its rules need, inbound layers."""
    kind = type(operation).__name__
    inbound = []
    for node in operation._inbound_nodes:  # one node per call; backbones call each layer once
        inbound += [tensor._keras_history.operation.name for tensor in node.input_tensors]
    inbound = ["input" if source == first else source for source in inbound]
    if not isinstance(operation, keras.layers.Layer):
        (node,) = operation._inbound_nodes
        constant = [a for a in node.arguments.args if isinstance(a, (int, float))]
        if kind not in OPERATIONS or len(constant) != 1:
            raise SystemExit(f"{name}: operation {operation.name} ({kind}) is not a tensor-and-number + or *")
        config = {"operator": OPERATIONS[kind], "value": float(constant[0])}
        return {"name": operation.name, "class": "operation", "config": config, "inbound": inbound}
    if kind not in KEYS:
        raise SystemExit(f"{name}: layer {operation.name} is a {kind}, which netdsl has no op for; add one")
    config = operation.get_config()
    return {"name": operation.name, "class": kind, "config": {key: _plain(config[key]) for key in KEYS[kind]},
            "inbound": inbound}  # fmt: skip


def describe(keras: Any, name: str, size: tuple[int, int] = (224, 224)) -> dict:
    """One backbone as data, in a fresh Keras session (so its operations have a fresh session's names):
    its layers and operations in the functional model's order (`model.layers` is that, less the operations)."""
    app = APPLICATIONS[name]
    keras.backend.clear_session()
    model = getattr(keras.applications, app.function)(include_top=False, weights=None, input_shape=(*size, 3))
    first = model.layers[0].name
    layers = [_entry(keras, name, operation, first) for operation in model.operations[1:]]  # [0]: its InputLayer
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
    """The JSON text of a backbone, kept small (it is committed): each distinct (class, config) once, in
    `configs`; then one line per layer, `[name, config index, inbound...]`, where the inbound list is left
    out when it is the layer just before (or the input, for the first). `netdsl.backbones.raw` reads it."""
    configs: list[list] = []
    index: dict[str, int] = {}
    rows = []
    previous = "input"
    for layer in data["layers"]:
        key = json.dumps([layer["class"], layer["config"]])
        if key not in index:
            index[key] = len(configs)
            configs.append([layer["class"], layer["config"]])
        inbound = [] if layer["inbound"] == [previous] else layer["inbound"]
        rows.append(json.dumps([layer["name"], index[key], *inbound]))
        previous = layer["name"]
    head = json.dumps({key: value for key, value in data.items() if key != "layers"})[:-1]
    return (f'{head}, "configs": [\n' + ",\n".join(json.dumps(c) for c in configs) + '\n], "layers": [\n'
            + ",\n".join(rows) + "\n]}\n")  # fmt: skip


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
