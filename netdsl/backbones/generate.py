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
    "Cropping2D": ("cropping",),
    "LayerNormalization": ("axis", "epsilon", "center", "scale"),
    "Dense": ("units", "use_bias", "activation"),
    "CustomScaleLayer": ("scale",),
    "LayerScale": ("init_values", "projection_dim"),
}  # fmt: skip
OPERATIONS = {"Add": "+", "Multiply": "*"}
"""Keras operations that are not layers (MobileNetV3's `x + 3.0`, `* (1.0 / 6.0)`; ConvNeXt's `inputs + x`):
class -> operator."""


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
        return {"name": operation.name, "class": "operation", "config": _operation(name, operation, kind),
                "inbound": inbound}  # fmt: skip
    if isinstance(operation, keras.Sequential):  # ConvNeXt's stem: its layers' configs, in order
        return {"name": operation.name, "class": "Sequential", "inbound": inbound,
                "config": {"layers": [[type(layer).__name__, _config(name, layer)] for layer in operation.layers]}}  # fmt: skip
    return {"name": operation.name, "class": kind, "config": _config(name, operation), "inbound": inbound}


def _config(name: str, layer: Any) -> dict:
    """The config keys the layer's op needs (KEYS)."""
    kind = type(layer).__name__
    if kind not in KEYS:
        raise SystemExit(f"{name}: layer {layer.name} is a {kind}, which netdsl has no op for; add one")
    config = layer.get_config()
    return {key: _plain(config[key]) for key in KEYS[kind]}


def _operation(name: str, operation: Any, kind: str) -> dict:
    """A Keras operation that is no layer: a tensor and a number (`x + 3.0`), or two tensors added (`x + y`)."""
    (node,) = operation._inbound_nodes
    constant = [a for a in node.arguments.args if isinstance(a, (int, float))]
    if kind in OPERATIONS and len(constant) == 1:
        return {"operator": OPERATIONS[kind], "value": float(constant[0])}
    if kind == "Add" and len(node.input_tensors) == 2:
        return {"operator": "+"}
    raise SystemExit(f"{name}: operation {operation.name} ({kind}) is neither x + y nor a tensor-and-number + or *")


def describe(keras: Any, name: str, size: tuple[int, int] = (224, 224)) -> tuple[dict, dict[int, tuple[int, int]]]:
    """One backbone as data, in a fresh Keras session (so its operations have a fresh session's names):
    its layers and operations in the functional model's order (`model.layers` is that, less the operations);
    and the input height and width of each ZeroPadding2D, by position, for `generate`."""
    app = APPLICATIONS[name]
    keras.backend.clear_session()
    model = getattr(keras.applications, app.function)(include_top=False, weights=None, input_shape=(*size, 3))
    first = model.layers[0].name
    layers = [_entry(keras, name, operation, first) for operation in model.operations[1:]]  # [0]: its InputLayer
    sizes = {
        i: tuple(operation.input.shape[1:3])
        for i, operation in enumerate(model.operations[1:])
        if type(operation).__name__ == "ZeroPadding2D"
    }
    return {"name": name, "function": app.function, "keras": keras.__version__, "layers": layers}, sizes


SIZES = tuple((224 + n, 224 + n) for n in (0, 1, 3, 7, 15, 31))
"""The input sizes a backbone may be built at: 224, then sizes that flip the parity of ever deeper maps (NASNet
halves 225 to an even 112, so its deeper maps are 56, 28, 14 as at 224; 227 makes them 57, 29, 15)."""


def _correct_pad(size: tuple[int, int], padding: list) -> int | None:
    """k//2 when `padding` is Keras's correct_pad(k) on a map of `size`, else None."""
    (top, bottom), (left, right) = padding
    fits = all(before == after - (1 - n % 2) for n, (before, after) in zip(size, padding))
    return bottom if fits and bottom == right and top >= 0 and left >= 0 else None


def generate(keras: Any, name: str) -> dict:
    """`describe` at two input sizes (more while they cannot tell, SIZES): a ZeroPadding2D that is Keras's
    `correct_pad` at every size, and changes between them, is stored as `{"correct": k//2}`; one that stays
    the same is fixed, unless the parity of its input never changed (then it could be either)."""
    builds = [describe(keras, name, size) for size in SIZES[:2]]
    for size in SIZES[2:]:  # more sizes only while some padding is undecided (MobileNet's fixed ones are, deep down)
        if not _undecided(builds):
            break
        builds.append(describe(keras, name, size))
    first, undecided = builds[0][0], _undecided(builds)
    for i, layer in enumerate(first["layers"]):
        if layer["class"] != "ZeroPadding2D":
            continue
        seen = [(sizes[i], data["layers"][i]["config"]["padding"]) for data, sizes in builds]
        corrects = {_correct_pad(size, padding) for size, padding in seen}
        if len({json.dumps(padding) for _, padding in seen}) > 1:
            if len(corrects) != 1 or None in corrects:
                raise SystemExit(f"{name}: {layer['name']}'s padding changes with the input size in an unknown way")
            layer["config"] = {"correct": corrects.pop()}
        elif i in undecided:
            raise SystemExit(f"{name}: cannot tell whether {layer['name']}'s padding follows the input size")
    return first


def _undecided(builds: list[tuple[dict, dict[int, tuple[int, int]]]]) -> set[int]:
    """The ZeroPadding2D layers equal in every build, each a correct_pad of its input, whose input's parity
    never changed: fixed or following the size, the builds cannot tell."""
    sizes = builds[0][1]
    found = set()
    for i in sizes:
        seen = [(others[i], data["layers"][i]["config"]["padding"]) for data, others in builds]
        same = len({json.dumps(padding) for _, padding in seen}) == 1
        parities = {tuple(n % 2 for n in size) for size, _ in seen}
        if same and len(parities) == 1 and _correct_pad(*seen[0]) is not None:
            found.add(i)
    return found


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
