"""The mobile zoo specs (specs/zoo/: MobileNet, MobileNetV2, MobileNetV3Small and Large, EfficientNetB0 to
B7) against keras.applications itself, each built once with `weights=None`, its top, at its default input
size (224x224 for the MobileNets, 224 to 600 for EfficientNetB0 to B7): the totals and, in `model.layers`
order, every layer's class, output shape, parameter counts and wiring.

Names differ (keras.applications names its layers explicitly, netdsl's are a fresh session's automatic
ones), so the wiring is compared by position: each layer's inputs as indices in `model.layers`. An input
that is a Keras operation rather than a layer (MobileNetV3's `x + 3.0` and `* (1.0 / 6.0)` around its
hard sigmoid's ReLU) is compared as "op". No activation is split differently: every row lines up.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import netdsl
from netdsl.analysis import LayerReport
from netdsl.verify import keras_layers
from tests.test_zoo import ZOO, analyze_with_configs, config

MODELS = {
    "mobilenet": "MobileNet",
    "mobilenetv2": "MobileNetV2",
    "mobilenetv3small": "MobileNetV3Small",
    "mobilenetv3large": "MobileNetV3Large",
    **{f"efficientnetb{i}": f"EfficientNetB{i}" for i in range(8)},
}
"""Zoo spec -> the keras.applications function it reproduces."""
INITIALIZERS = {"kernel_initializer", "depthwise_initializer"}
"""EfficientNet's convolutions and classifier are initialised with VarianceScaling (fan_out); netdsl has no
option for an initializer, so those two config keys are the only ones not compared (see docs/zoo.md)."""
TOTALS = {  # (total, trainable, non-trainable), as keras.applications' models print them
    "mobilenet": (4_253_864, 4_231_976, 21_888),
    "mobilenetv2": (3_538_984, 3_504_872, 34_112),
    "mobilenetv3small": (2_554_968, 2_542_856, 12_112),
    "mobilenetv3large": (5_507_432, 5_483_032, 24_400),
    "efficientnetb0": (5_330_571, 5_288_548, 42_023),
    "efficientnetb1": (7_856_239, 7_794_184, 62_055),
    "efficientnetb2": (9_177_569, 9_109_994, 67_575),
    "efficientnetb3": (12_320_535, 12_233_232, 87_303),
    "efficientnetb4": (19_466_823, 19_341_616, 125_207),
    "efficientnetb5": (30_562_527, 30_389_784, 172_743),
    "efficientnetb6": (43_265_143, 43_040_704, 224_439),
    "efficientnetb7": (66_658_687, 66_347_960, 310_727),
}


@pytest.fixture(scope="module")
def applications() -> Any:
    """Builds a keras.applications model (one test uses each, once: it is not kept, EfficientNetB7 alone has
    67M parameters). MobileNetV3 gets its input shape given: with `weights=None` Keras otherwise leaves it
    (None, None); the others get none, so Keras uses its default size (EfficientNetB7's 600x600)."""
    keras = pytest.importorskip("keras")

    def build(name: str) -> Any:
        keras.backend.clear_session()
        shape = (224, 224, 3) if name.startswith("mobilenetv3") else None
        return getattr(keras.applications, MODELS[name])(weights=None, input_shape=shape)

    return build


def wiring(rows: list[LayerReport]) -> list[tuple]:
    """Each row as (class, output shape, params, trainable, non-trainable, inputs by position in the list)."""
    position = {row.name: i for i, row in enumerate(rows)}
    return [
        (row.type, tuple(row.output_shape), row.params, row.trainable_params, row.non_trainable_params,
         tuple(position.get(name, "op") for name in row.inputs))
        for row in rows
    ]  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_equals_keras_applications_layer_by_layer(applications: Any, name: str) -> None:
    model = applications(name)
    report, configs = analyze_with_configs(netdsl.load(ZOO / f"{name}.net"))
    ours, theirs = wiring(report.layers), wiring(keras_layers(model))
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"layer {index}: netdsl {report.layers[index].name} vs Keras {model.layers[index].name}"
        if index:  # the whole config of the layer netdsl's compiler constructs (the input layer is no op)
            theirs_config = config(model.layers[index], len(model.layers[index].output.shape))
            ours_config = configs[report.layers[index].name]
            if name.startswith("efficientnet"):  # VarianceScaling(fan_out) initializers: netdsl has Keras's defaults
                for key in INITIALIZERS.intersection(theirs_config):
                    theirs_config[key] = ours_config[key]
            assert ours_config == theirs_config, f"config of {model.layers[index].name}"
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == TOTALS[name]
    assert report.total_params == model.count_params()
    assert report.output_shape == tuple(model.output.shape)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_is_short_names_its_paper_and_analyses(name: str) -> None:
    """At most 40 lines, opening with a comment that names the paper; it analyses (how fast is bench/zoo.py's
    job: tests do not time the analyzer)."""
    text = (ZOO / f"{name}.net").read_text()
    lines = text.splitlines()
    assert len(lines) <= 40 and lines[0].startswith("#")
    opening = " ".join(line for line in lines if line.startswith("#"))
    assert re.search(r'"[A-Z][^"]{10,}"', opening), "the opening comment quotes the paper's title"
    assert netdsl.analyze(netdsl.load(ZOO / f"{name}.net")).total_params > 0


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_is_shorter_than_the_keras_source(name: str) -> None:
    """A quarter of the lines of keras.applications' function and its helpers, at most (bench/zoo.py counts)."""
    from bench.zoo import keras_lines, netdsl_lines

    _, statements = netdsl_lines(name)
    _, keras = keras_lines(name)
    assert statements * 4 <= keras, (statements, keras)


@pytest.mark.keras
@pytest.mark.parametrize("name", ["mobilenetv2", "mobilenetv3large", "efficientnetb0", "efficientnetb3"])
def test_zoo_spec_equals_keras_applications_at_another_input_size(name: str) -> None:
    """Their paddings are `zeropad correct=k`, Keras's correct_pad of the size they are given: at 197x161 (odd,
    not square: the two axes' halvings differ in parity) the spec (`netdsl check --input 197x161x3`) is
    keras.applications' model built at 197x161, row by row."""
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    model = getattr(keras.applications, MODELS[name])(weights=None, input_shape=(197, 161, 3))
    report = netdsl.check(ZOO / f"{name}.net", input_shape=(197, 161, 3))
    assert wiring(report.layers) == wiring(keras_layers(model))
    assert report.total_params == model.count_params() and report.output_shape == tuple(model.output.shape)


VERIFIED = sorted(set(MODELS) - {f"efficientnetb{i}" for i in range(1, 7)})
"""EfficientNetB1 to B6 are B7's statements with other numbers (test_efficientnets_b1_to_b7_are_one_spec...),
so netdsl's compiler is run on B0 and B7 of the family; every layer's Keras config is compared for all."""


@pytest.mark.keras
@pytest.mark.parametrize("name", VERIFIED)
def test_zoo_spec_builds_what_the_analyzer_says(name: str) -> None:
    """`netdsl check --verify`: netdsl's own compiler builds the spec, names and inputs included (the fresh
    session is for MobileNetV3's operations, whose names the analyzer gives as a fresh session would)."""
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    verification = netdsl.verify(netdsl.load(ZOO / f"{name}.net"))
    assert verification.ok, [d.message for d in verification.differences[:5]]


def test_a_squeeze_excite_gate_is_no_broadcast_warning() -> None:
    """`mul` of an (H, W, C) map by a (1, 1, C) gate is what squeeze-and-excite means (no W404); any other
    broadcast still warns, and the zoo specs check without a warning."""

    def codes(spec: str) -> list[str]:
        return [w.code for w in netdsl.analyze(netdsl.parse(spec)).warnings]

    assert codes("input 8x8x4\nmul [ gap keepdims; conv 4 k1 sigmoid ]") == []
    assert codes("input 8x8x4\nmul [ gap keepdims; conv 1 k1 sigmoid ]") == ["W404"]
    for name in MODELS:
        assert netdsl.analyze(netdsl.load(ZOO / f"{name}.net")).warnings == [], name


def test_netdsl_check_prints_keras_s_totals(runner) -> None:
    """`netdsl check` of all these specs at once: each one's three totals lines are Keras's numbers (TOTALS,
    which the layer-by-layer test compares with the keras.applications model's own count)."""
    from netdsl.cli import main

    result = runner.invoke(main, ["check", *(str(ZOO / f"{name}.net") for name in MODELS)])
    assert result.exit_code == 0, result.output
    bodies = re.findall(r'^Model: "[^"]*"  \(([^)]*)\)\n(.*?)(?=^Model: |\Z)', result.output, re.M | re.S)
    printed = {path.rsplit("/", 1)[-1].removesuffix(".net"): body for path, body in bodies}
    for name, (total, trainable, frozen) in TOTALS.items():
        numbers = re.findall(r"^ *(?:Total|Trainable|Non-trainable) params: ([\d,]+) ", printed[name], re.M)
        assert numbers == [f"{total:,}", f"{trainable:,}", f"{frozen:,}"], name


def test_efficientnets_b1_to_b7_are_one_spec_with_keras_s_numbers() -> None:
    """EfficientNetB1 to B7 are the same statements (B0's blocks, scaled): only their numbers differ (channels,
    the block indices of each stage's loop, paddings, sizes), which the layer-by-layer test checks."""

    def shape_of(name: str) -> list[str]:
        lines = (ZOO / f"{name}.net").read_text().splitlines()
        return [re.sub(r"\d+(x\d+)*(, \d+)*", "N", line) for line in lines if not line.startswith("#")]

    for i in range(2, 8):
        assert shape_of(f"efficientnetb{i}") == shape_of("efficientnetb1"), i


def test_the_docs_show_the_mobile_zoo_as_it_is() -> None:
    """docs/zoo.md's totals and line counts for these specs are the specs' own."""
    from bench.zoo import netdsl_lines

    page = (ZOO.parent.parent / "docs" / "zoo.md").read_text()
    for name, function in MODELS.items():
        row = f"| `specs/zoo/{name}.net` | `{function}` | "
        assert row in page and " | ".join(f"{n:,}" for n in TOTALS[name]) in page.split(row)[1].splitlines()[0]
        lines, statements = netdsl_lines(name)
        assert f"| `{name}.net` | {lines} ({statements}) |" in page, name
