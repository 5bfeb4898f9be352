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

from netdsl.layers.activation import ActivationOp, ArithmeticOp, ReLUOp
from netdsl.layers.base import Op, per_axis
from netdsl.layers.conv import ConvOp
from netdsl.layers.dense import DenseOp
from netdsl.layers.depthwise import DepthwiseConvOp, SeparableConvOp
from netdsl.layers.graph import ConcatenateOp, MultiplyOp, SumOp
from netdsl.layers.merge import AddOp
from netdsl.layers.norm import BatchNormOp, DropoutOp, LayerNormOp, NormalizationOp, RescalingOp
from netdsl.layers.padding import CroppingOp, ReshapeOp, ZeroPaddingOp
from netdsl.layers.pooling import GlobalPoolOp, PoolOp
from netdsl.layers.scale import LayerScaleOp, ScaledAddOp
from netdsl.layers.sequential import SequentialOp

DIRECTORY = Path(__file__).resolve().parent

Preprocessing = Literal["caffe", "tf", "torch", "built-in"]
"""`preprocess_input`'s mode: caffe (BGR, ImageNet means subtracted), tf (-1..1), torch (0..1, then ImageNet
means and deviations), or built-in: the model rescales itself (its preprocess_input passes pixels through)."""


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
    "resnet101": Application("ResNet101", "resnet", "caffe",
                             weights_file="resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet152": Application("ResNet152", "resnet", "caffe",
                             weights_file="resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50v2": Application("ResNet50V2", "resnet_v2", "tf",
                              weights_file="resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenet": Application("MobileNet", "mobilenet", "tf", weights_file="mobilenet_1_0_224_tf_no_top.h5"),
    "mobilenetv2": Application("MobileNetV2", "mobilenet_v2", "tf",
                               weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    "mobilenetv3small": Application("MobileNetV3Small", "mobilenet_v3", "built-in",
                                    weights_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
    "densenet121": Application("DenseNet121", "densenet", "torch",
                               weights_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnetb0": Application("EfficientNetB0", "efficientnet", "built-in", weights_file="efficientnetb0_notop.h5"),
    "xception": Application("Xception", "xception", "tf", min_size=71,
                            weights_file="xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "inceptionv3": Application("InceptionV3", "inception_v3", "tf", min_size=75,
                               weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "vgg16": Application("VGG16", "vgg16", "caffe",
                         weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "vgg19": Application("VGG19", "vgg19", "caffe",
                         weights_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    **{f"resnet{n}v2": Application(f"ResNet{n}V2", "resnet_v2", "tf",
                                   weights_file=f"resnet{n}v2_weights_tf_dim_ordering_tf_kernels_notop.h5")
       for n in (101, 152)},
    **{f"densenet{n}": Application(f"DenseNet{n}", "densenet", "torch",
                                   weights_file=f"densenet{n}_weights_tf_dim_ordering_tf_kernels_notop.h5")
       for n in (169, 201)},
    "mobilenetv3large": Application("MobileNetV3Large", "mobilenet_v3", "built-in",
                                    weights_file="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"),
    **{f"efficientnetb{i}": Application(f"EfficientNetB{i}", "efficientnet", "built-in",
                                        weights_file=f"efficientnetb{i}_notop.h5")
       for i in range(1, 8)},
    "inceptionresnetv2": Application("InceptionResNetV2", "inception_resnet_v2", "tf", min_size=75,
                                     weights_file="inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "convnexttiny": Application("ConvNeXtTiny", "convnext", "built-in", weights_file="convnext_tiny_notop.h5"),
    "efficientnetv2b0": Application("EfficientNetV2B0", "efficientnet_v2", "built-in",
                                    weights_file="efficientnetv2-b0_notop.h5"),
    "nasnetmobile": Application("NASNetMobile", "nasnet", "tf", weights_file="nasnet_mobile_no_top.h5"),
}  # fmt: skip


def _pair(value: Any) -> tuple[int, ...]:
    return per_axis(value, 2)


# Keras class -> the netdsl op with the same shape and parameter rules (a table, as sqlglot dispatches).
OPS: dict[str, Callable[[dict], Op]] = {
    "Conv2D": lambda c: _conv(c),
    "DepthwiseConv2D": lambda c: DepthwiseConvOp(
        c["depth_multiplier"], kernel=_pair(c["kernel_size"]), strides=_pair(c["strides"]), padding=c["padding"],
        use_bias=c["use_bias"], dilation=_pair(c.get("dilation_rate", 1)),
    ),
    "BatchNormalization": lambda c: _batch_norm(c),
    "Activation": lambda c: ActivationOp(c["activation"]),
    "ReLU": lambda c: ReLUOp(c["max_value"], c["negative_slope"], c["threshold"]),
    "ZeroPadding2D": lambda c: (
        ZeroPaddingOp(correct=c["correct"]) if "correct" in c else ZeroPaddingOp(tuple(map(tuple, c["padding"])))
    ),  # type: ignore[arg-type]
    "SeparableConv2D": lambda c: SeparableConvOp(
        c["depth_multiplier"], c["filters"], kernel=_pair(c["kernel_size"]), strides=_pair(c["strides"]),
        padding=c["padding"], use_bias=c["use_bias"], dilation=_pair(c["dilation_rate"]),
    ),
    "MaxPooling2D": lambda c: PoolOp("max", _pair(c["pool_size"]), _pair(c["strides"]), c["padding"]),
    "AveragePooling2D": lambda c: PoolOp("avg", _pair(c["pool_size"]), _pair(c["strides"]), c["padding"]),
    "GlobalAveragePooling2D": lambda c: GlobalPoolOp("avg", c["keepdims"]),
    "Add": lambda c: AddOp(),
    "Multiply": lambda c: MultiplyOp(),
    "Concatenate": lambda c: ConcatenateOp(c["axis"]),
    "Reshape": lambda c: ReshapeOp(tuple(c["target_shape"])),
    "Rescaling": lambda c: RescalingOp(c["scale"], c["offset"]),
    "Normalization": lambda c: _normalization(c),
    "Dropout": lambda c: DropoutOp(c["rate"], tuple(c["noise_shape"][1:]) if c["noise_shape"] else None),
    "operation": lambda c: ArithmeticOp(c["operator"], c["value"]) if "value" in c else SumOp(),
    "Cropping2D": lambda c: CroppingOp(tuple(map(tuple, c["cropping"]))),  # type: ignore[arg-type]
    "LayerNormalization": lambda c: _layer_norm(c),
    "Dense": lambda c: DenseOp(c["units"], c["use_bias"], activation=None if c["activation"] == "linear" else c["activation"]),
    "CustomScaleLayer": lambda c: ScaledAddOp(c["scale"]),
    "LayerScale": lambda c: LayerScaleOp(c["init_values"], c["projection_dim"]),
    "Sequential": lambda c: SequentialOp(tuple(OPS[kind](config) for kind, config in c["layers"]), named_inside=True),
}  # fmt: skip


def _layer_norm(config: dict) -> Op:
    if config["axis"] not in (-1, [-1]) or not (config["center"] and config["scale"]):
        raise ValueError("LayerNormalization other than over the last axis with gamma and beta: LayerNormOp has those")
    return LayerNormOp(config["epsilon"])


def _batch_norm(config: dict) -> Op:
    if not config["center"]:
        raise ValueError("BatchNormalization without center: BatchNormOp always has a beta")
    return BatchNormOp(config["momentum"], config["epsilon"], config["scale"])


def _normalization(config: dict) -> Op:
    if config["axis"] not in ([-1], [3]) or (config["mean"] is None) != (config["variance"] is None):
        raise ValueError(
            "Normalization other than over the channels (axis -1 or 3 of an image): NormalizationOp normalizes channels"
        )
    tupled = lambda value: tuple(value) if isinstance(value, list) else value  # noqa: E731  (per channel)
    return NormalizationOp(tupled(config["mean"]), tupled(config["variance"]))


def _conv(config: dict) -> Op:
    return ConvOp(
        config["filters"], groups=config["groups"], kernel=_pair(config["kernel_size"]),
        strides=_pair(config["strides"]), padding=config["padding"], use_bias=config["use_bias"],
        dilation=_pair(config["dilation_rate"]),
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
        """The names of its layers (`model.layers`: the operations that are not layers left out)."""
        return tuple(layer.name for layer in self.layers if layer.op.is_layer)

    def replay(self, x: Any, call: Callable[..., Any]) -> Any:
        """Run the layers on `x` with `call(op, *inputs, name=...)` (a graph's `call`); return the output."""
        tensors = {"input": x}
        for layer in self.layers:
            tensors[layer.name] = call(layer.op, *(tensors[source] for source in layer.inbound), name=layer.name)
        return tensors[self.layers[-1].name]

    def claim(self, take: Callable[[str, str], None]) -> None:
        """Take the automatic names Keras gave while building it (it was generated in a fresh session, right
        after the input, where `pretrained` stands): `take(name, prefix)` for each layer and operation, so
        that a name Keras gives automatically (MobileNetV3's `re_lu`, InceptionV3's `activation_93`, an
        operation's `add`) is counted, and the head's layers get the names a fresh session gives them."""
        for layer in self.layers:
            take(layer.name, layer.op.prefix)


def raw(name: str) -> dict:
    """The data of a backbone, its layers as `{name, class, config, inbound}`, read from the compact JSON
    that `netdsl.backbones.generate` writes (each config once; an inbound list only where the layer does
    not read the one before it)."""
    data = json.loads((DIRECTORY / f"{name}.json").read_text(encoding="utf-8"))
    configs = data.pop("configs")
    layers, previous = [], "input"
    for name_, index, *inbound in data["layers"]:
        kind, config = configs[index]
        layers.append({"name": name_, "class": kind, "config": config, "inbound": inbound or [previous]})
        previous = name_
    return {**data, "layers": layers}


@cache
def load(name: str) -> Backbone:
    """The backbone called `name` (a key of APPLICATIONS)."""
    data = raw(name)
    layers = tuple(
        BackboneLayer(item["name"], OPS[item["class"]](item["config"]), tuple(item["inbound"]))
        for item in data["layers"]
    )
    return Backbone(name, APPLICATIONS[name], layers, data["keras"])
