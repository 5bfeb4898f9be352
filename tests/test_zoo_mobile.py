"""The mobile zoo specs (specs/zoo/: MobileNet, MobileNetV2, MobileNetV3Small, EfficientNetB0) against
keras.applications itself, built once per module with `weights=None`, its top, at 224x224x3: the totals
and, in `model.layers` order, every layer's class, output shape, parameter counts and wiring.

Names differ (keras.applications names its layers explicitly, netdsl's are a fresh session's automatic
ones), so the wiring is compared by position: each layer's inputs as indices in `model.layers`. An input
that is a Keras operation rather than a layer (MobileNetV3's `x + 3.0` and `* (1.0 / 6.0)` around its
hard sigmoid's ReLU) is compared as "op". No activation is split differently: every row lines up.
"""

from __future__ import annotations

import ast
import inspect
import re
import time
from pathlib import Path
from typing import Any

import pytest

import netdsl
from netdsl.analysis import LayerReport
from netdsl.verify import keras_layers

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"
# spec -> (keras.applications function, its module, the module's functions the model is built by)
MODELS = {
    "mobilenet": ("MobileNet", "mobilenet", ("MobileNet", "_conv_block", "_depthwise_conv_block")),
    "mobilenetv2": ("MobileNetV2", "mobilenet_v2", ("MobileNetV2", "_inverted_res_block", "_make_divisible")),
    "mobilenetv3small": (
        "MobileNetV3Small",
        "mobilenet_v3",
        (
            "MobileNetV3",
            "MobileNetV3Small",
            "relu",
            "hard_sigmoid",
            "hard_swish",
            "_depth",
            "_se_block",
            "_inverted_res_block",
        ),
    ),
    "efficientnetb0": ("EfficientNetB0", "efficientnet", ("EfficientNet", "EfficientNetB0", "block")),
}
TOTALS = {  # (total, trainable, non-trainable), as keras.applications' models print them
    "mobilenet": (4_253_864, 4_231_976, 21_888),
    "mobilenetv2": (3_538_984, 3_504_872, 34_112),
    "mobilenetv3small": (2_554_968, 2_542_856, 12_112),
    "efficientnetb0": (5_330_571, 5_288_548, 42_023),
}


@pytest.fixture(scope="module")
def applications() -> dict[str, Any]:
    """Each keras.applications model, built at most once for this module (and only when a test needs it).
    MobileNetV3Small gets its input shape given: with `weights=None` Keras otherwise leaves it (None, None)."""
    keras = pytest.importorskip("keras")
    built: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in built:
            function = getattr(keras.applications, MODELS[name][0])
            built[name] = function(weights=None, input_shape=(224, 224, 3))
        return built[name]

    return get  # type: ignore[return-value]


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
    report = netdsl.analyze(netdsl.load(ZOO / f"{name}.net"))
    ours, theirs = wiring(report.layers), wiring(keras_layers(model))
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"layer {index}: netdsl {report.layers[index].name} vs Keras {model.layers[index].name}"
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == TOTALS[name]
    assert report.total_params == model.count_params()
    assert report.output_shape == tuple(model.output.shape)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_is_short_names_its_paper_and_checks_fast(name: str) -> None:
    """At most 40 lines, opening with a comment that names the paper; analysed well under a second."""
    text = (ZOO / f"{name}.net").read_text()
    lines = text.splitlines()
    assert len(lines) <= 40 and lines[0].startswith("#")
    opening = " ".join(line for line in lines if line.startswith("#"))
    assert re.search(r'"[A-Z][^"]{10,}"', opening), "the opening comment quotes the paper's title"
    start = time.perf_counter()
    netdsl.analyze(netdsl.load(ZOO / f"{name}.net"))
    assert time.perf_counter() - start < 2.0


def source_lines(module: str, functions: tuple[str, ...]) -> int:
    """Lines of code of keras.applications' functions that build the model: no docstrings, comments or blanks."""
    keras = pytest.importorskip("keras")
    source = inspect.getsource(getattr(keras.src.applications, module))
    tree = ast.parse(source)
    count = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            doc = ast.get_docstring(node, clean=False)
            body = ast.get_source_segment(source, node) or ""
            if doc is not None:
                body = body.replace(doc, "", 1)
            count += sum(1 for line in body.splitlines() if line.strip() and not line.strip().startswith("#")
                         and line.strip() not in ('""""""', '"""', "r\"\"\"\"\"\""))  # fmt: skip
    return count


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_is_shorter_than_the_keras_source(name: str) -> None:
    spec = [
        line for line in (ZOO / f"{name}.net").read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    _, module, functions = MODELS[name]
    assert len(spec) * 4 <= source_lines(module, functions), (len(spec), source_lines(module, functions))


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(MODELS))
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
        return [w["code"] for w in netdsl.analyze(netdsl.parse(spec)).warnings]

    assert codes("input 8x8x4\nmul [ gap keepdims; conv 4 k1 sigmoid ]") == []
    assert codes("input 8x8x4\nmul [ gap keepdims; conv 1 k1 sigmoid ]") == ["W404"]
    for name in MODELS:
        assert netdsl.analyze(netdsl.load(ZOO / f"{name}.net")).warnings == [], name
