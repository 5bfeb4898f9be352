"""The `keras.applications` backbones netdsl knows, as data: their layer graphs, minimum input sizes and
input preprocessing.

Why data: the analyzer must give a backbone's exact shapes and counts for any input size without loading
TensorFlow, and the compiler builds the real thing with `keras.applications`. Each `<name>.json` lists
the backbone's layers in `model.layers` order (the order `freeze<N` counts in) with the configuration
their shape and parameter rules need and their inbound layers; `python -m netdsl.backbones.generate`
rewrites the files from the installed Keras, and a test checks they are current. Replaying a file calls
the same ops (`ConvOp`, `BatchNormOp`, ...) that netdsl's own layers use, so every shape rule is the
one the rest of netdsl is tested with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from netdsl.layers.activation import ActivationOp, ReLUOp
from netdsl.layers.base import Op, per_axis
from netdsl.layers.conv import ConvOp
from netdsl.layers.depthwise import DepthwiseConvOp
from netdsl.layers.merge import AddOp
from netdsl.layers.norm import BatchNormOp
from netdsl.layers.padding import ZeroPaddingOp
from netdsl.layers.pooling import PoolOp

DIRECTORY = Path(__file__).resolve().parent

Preprocessing = Literal["caffe", "tf", "torch"]


@dataclass(frozen=True)
class Application:
    """A `keras.applications` constructor and what using it needs."""

    function: str  # keras.applications.<function>
    module: str  # keras.applications.<module>.preprocess_input
    preprocessing: Preprocessing  # the mode of that preprocess_input
    min_size: int = 32  # imagenet_utils.obtain_input_shape's min_size for include_top=False
    weights_file: str = ""  # the name keras.applications downloads, for the offline message


APPLICATIONS: dict[str, Application] = {
    "resnet50": Application("ResNet50", "resnet50", "caffe",
                            weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenetv2": Application("MobileNetV2", "mobilenet_v2", "tf",
                               weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    "vgg16": Application("VGG16", "vgg16", "caffe",
                         weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}  # fmt: skip


def _pair(value: Any) -> tuple[int, ...]:
    return per_axis(value, 2)


# Keras class -> the netdsl op with the same shape and parameter rules (a table, as sqlglot dispatches).
OPS: dict[str, Callable[[dict], Op]] = {
    "Conv2D": lambda c: _conv(c),
    "DepthwiseConv2D": lambda c: DepthwiseConvOp(
        _pair(c["kernel_size"]),
        _pair(c["strides"]),
        c["padding"],
        c["use_bias"],
        c["depth_multiplier"],
        _pair(c.get("dilation_rate", 1)),
    ),
    "BatchNormalization": lambda c: _batch_norm(c),
    "Activation": lambda c: ActivationOp(c["activation"]),
    "ReLU": lambda c: ReLUOp(c["max_value"], c["negative_slope"], c["threshold"]),
    "ZeroPadding2D": lambda c: (
        ZeroPaddingOp(correct=c["correct"]) if "correct" in c else ZeroPaddingOp(tuple(map(tuple, c["padding"])))
    ),  # type: ignore[arg-type]
    "MaxPooling2D": lambda c: PoolOp("max", _pair(c["pool_size"]), _pair(c["strides"]), c["padding"]),
    "Add": lambda c: AddOp(),
}


def _batch_norm(config: dict) -> Op:
    if not (config["center"] and config["scale"]):
        raise ValueError("BatchNormalization without center or scale: BatchNormOp counts 4*C parameters")
    return BatchNormOp(config["momentum"], config["epsilon"])


def _conv(config: dict) -> Op:
    return ConvOp(
        config["filters"], _pair(config["kernel_size"]), _pair(config["strides"]), config["padding"],
        config["use_bias"], dilation=_pair(config["dilation_rate"]), groups=config["groups"],
    )  # fmt: skip


@dataclass(frozen=True)
class BackboneLayer:
    """One layer of a backbone: its Keras name, the op that has its rules, and its inbound layers."""

    name: str
    op: Op
    inbound: tuple[str, ...]  # "input" is the backbone's input


@dataclass(frozen=True)
class Backbone:
    """A backbone's layers in `model.layers` order (its input layer excluded)."""

    name: str
    application: Application
    layers: tuple[BackboneLayer, ...]
    keras_version: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def replay(self, x: Any, call: Callable[..., Any]) -> Any:
        """Run the layers on `x` with `call(op, *inputs, name=...)` (a graph's `call`); return the output."""
        tensors = {"input": x}
        for layer in self.layers:
            tensors[layer.name] = call(layer.op, *(tensors[source] for source in layer.inbound), name=layer.name)
        return tensors[self.layers[-1].name]


def raw(name: str) -> dict:
    """The JSON data of a backbone, as written by `netdsl.backbones.generate`."""
    return json.loads((DIRECTORY / f"{name}.json").read_text(encoding="utf-8"))


@cache
def load(name: str) -> Backbone:
    """The backbone called `name` (a key of APPLICATIONS)."""
    data = raw(name)
    layers = tuple(
        BackboneLayer(item["name"], OPS[item["class"]](item["config"]), tuple(item["inbound"]))
        for item in data["layers"]
    )
    return Backbone(name, APPLICATIONS[name], layers, data["keras"])
