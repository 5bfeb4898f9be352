"""The zoo's specs of the families that keras.applications builds with Keras classes of its own or with
Keras operations between layers (InceptionResNetV2's CustomScaleLayer; ConvNeXt's LayerScale, Sequential
stem and downsamplings and `inputs + x` residuals), against keras.applications itself, each model built
once per module (`weights=None`, with its top, at its default input size): totals, and for every layer in
`model.layers` order its class, output shape, counts, wiring by position and its whole Keras config.

A Sequential's config lists the configs of the layers inside it, compared without their names (automatic
in netdsl, explicit in keras.applications). Each of netdsl's layers is called on inputs of its shapes
before its config is read, as keras.applications' have been: a called layer's config can differ from a
constructed one's (a Sequential's records its InputLayer and build shapes, a LayerNormalization's axis
becomes a list).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import netdsl
from netdsl.verify import keras_layers
from tests.test_zoo import ZOO, analyze_with_configs, config
from tests.test_zoo_mobile import wiring

MODELS = {
    "inception_resnet_v2": "InceptionResNetV2",
    "convnext_tiny": "ConvNeXtTiny",
    "efficientnetv2b0": "EfficientNetV2B0",
    "nasnet_mobile": "NASNetMobile",
}
"""Zoo spec -> the keras.applications function it reproduces."""
TOTALS = {  # (total, trainable, non-trainable), as keras.applications' models print them
    "inception_resnet_v2": (55_873_736, 55_813_192, 60_544),
    "convnext_tiny": (28_589_128, 28_589_128, 0),
    "efficientnetv2b0": (7_200_312, 7_139_704, 60_608),
    "nasnet_mobile": (5_326_716, 5_289_978, 36_738),
}
LAYERS = {"inception_resnet_v2": 782, "convnext_tiny": 135, "efficientnetv2b0": 273, "nasnet_mobile": 771}
"""len(model.layers), the InputLayer included."""


INITIALIZED = {
    "efficientnetv2b0": ("kernel_initializer", "depthwise_initializer"),  # VarianceScaling (fan_out)
    "nasnet_mobile": ("kernel_initializer",),  # its Conv2D layers' he_normal (its separable ones have the defaults)
}
"""Initializers keras.applications sets and netdsl cannot (it has no option for one): these keys are not
compared, nor a Dense bias initialised with Constant(0.0) (EfficientNetV2's), which is netdsl's Zeros in value."""


def without_initializers(theirs: dict, ours: dict, keys: tuple[str, ...]) -> dict:
    """`theirs` with the initializers netdsl cannot write (`keys`, see INITIALIZED) taken from `ours`."""
    found = {**theirs}
    for key in set(keys) & set(found):
        found[key] = ours[key]
    bias = found.get("bias_initializer") or {}
    if bias.get("class_name") == "Constant" and bias["config"].get("value") == 0.0:
        found["bias_initializer"] = ours["bias_initializer"]
    return found


def nameless(found: dict) -> dict:
    """A layer's config without its name, nor the names of the layers inside it (a Sequential's)."""
    if "layers" not in found:
        return found
    inner = [
        {**entry, "config": {k: v for k, v in entry["config"].items() if k != "name"}} for entry in found["layers"]
    ]
    return {**found, "layers": inner}


@pytest.fixture(scope="module")
def applications() -> Any:
    """Each keras.applications model, built at most once for this module (and only when a test needs it)."""
    keras = pytest.importorskip("keras")
    built: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in built:
            built[name] = getattr(keras.applications, MODELS[name])(weights=None)
        return built[name]

    return get


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_equals_keras_applications_layer_by_layer(applications: Any, name: str) -> None:
    model = applications(name)
    report, configs = analyze_with_configs(netdsl.load(ZOO / f"{name}.net"), called=True)
    ours, theirs = wiring(report.layers), wiring(keras_layers(model))
    assert len(ours) == len(theirs) == LAYERS[name]
    for index, (a, b) in enumerate(zip(ours, theirs)):
        layer = model.layers[index]
        assert a == b, f"layer {index}: netdsl {report.layers[index].name} vs Keras {layer.name}"
        if index:  # the whole config of the layer netdsl's compiler constructs (the input layer is no op)
            ours_config, theirs_config = (
                nameless(configs[report.layers[index].name]),
                nameless(config(layer, len(layer.output.shape))),
            )
            if name in INITIALIZED:
                theirs_config = without_initializers(theirs_config, ours_config, INITIALIZED[name])
            assert ours_config == theirs_config, f"config of {layer.name}"
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == TOTALS[name]
    assert report.total_params == model.count_params()
    assert report.output_shape == tuple(model.output.shape)


BY_COUNTS = {
    "convnext_small": "ConvNeXtSmall",
    "convnext_base": "ConvNeXtBase",
    "convnext_large": "ConvNeXtLarge",
    "convnext_xlarge": "ConvNeXtXLarge",
    "efficientnetv2b1": "EfficientNetV2B1",
    "efficientnetv2b2": "EfficientNetV2B2",
    "efficientnetv2b3": "EfficientNetV2B3",
    "efficientnetv2s": "EfficientNetV2S",
    "efficientnetv2m": "EfficientNetV2M",
    "efficientnetv2l": "EfficientNetV2L",
    "nasnet_large": "NASNetLarge",
}
"""Larger members of ConvNeXt's, EfficientNetV2's and NASNet's families, written with the lines of
convnext_tiny.net, efficientnetv2b0.net and nasnet_mobile.net (ConvNeXt's differ only in widths and counts):
compared with keras.applications row by row (class, shape, counts, wiring) and in total, not config by config
(the configs of those lines are compared whole for the smallest; CI time). Each is built once, its rows kept and
the model freed (ConvNeXtXLarge's 350 M weights take 1.4 GB)."""
BY_COUNTS_TOTALS = {  # (total, trainable, non-trainable, layers)
    "convnext_small": (50_223_688, 50_223_688, 0, 261),
    "convnext_base": (88_591_464, 88_591_464, 0, 261),
    "convnext_large": (197_767_336, 197_767_336, 0, 261),
    "convnext_xlarge": (350_196_968, 350_196_968, 0, 261),
    "efficientnetv2b1": (8_212_124, 8_141_052, 71_072, 337),
    "efficientnetv2b2": (10_178_374, 10_096_086, 82_288, 352),
    "efficientnetv2b3": (14_467_622, 14_358_406, 109_216, 412),
    "efficientnetv2s": (21_612_360, 21_458_488, 153_872, 516),
    "efficientnetv2m": (54_431_388, 54_139_356, 292_032, 743),
    "efficientnetv2l": (119_027_848, 118_515_272, 512_576, 1031),
    "nasnet_large": (88_949_818, 88_753_150, 196_668, 1041),
}


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(BY_COUNTS))
def test_larger_family_members_equal_keras_applications_row_by_row(name: str) -> None:
    keras = pytest.importorskip("keras")
    model = getattr(keras.applications, BY_COUNTS[name])(weights=None)
    rows, count, output_shape = keras_layers(model), model.count_params(), tuple(model.output.shape)
    del model  # ConvNeXtXLarge's weights are 1.4 GB: freed before the next model is built
    keras.backend.clear_session()
    report = netdsl.analyze(netdsl.load(ZOO / f"{name}.net"))
    assert wiring(report.layers) == wiring(rows)
    totals = (report.total_params, report.trainable_params, report.non_trainable_params, len(report.layers))
    assert totals == BY_COUNTS_TOTALS[name] and report.total_params == count
    assert report.output_shape == output_shape and report.warnings == []


@pytest.mark.parametrize(
    ("name", "changed"),
    [
        ("convnext_small", {"(192, 3), (384, 9), (768, 3)": "(192, 3), (384, 27), (768, 3)"}),
        ("convnext_base", {"(192, 3), (384, 9), (768, 3)": "(256, 3), (512, 27), (1024, 3)", " 96": " 128"}),
        ("convnext_large", {"(192, 3), (384, 9), (768, 3)": "(384, 3), (768, 27), (1536, 3)", " 96": " 192"}),
        ("convnext_xlarge", {"(192, 3), (384, 9), (768, 3)": "(512, 3), (1024, 27), (2048, 3)", " 96": " 256"}),
    ],
)
def test_larger_convnexts_differ_from_tiny_only_in_widths_and_counts(name: str, changed: dict) -> None:
    def body(spec: str) -> list[str]:
        return [line for line in (ZOO / f"{spec}.net").read_text().splitlines() if not line.startswith("#")]

    tiny = body("convnext_tiny")
    for old, new in changed.items():
        tiny = [line.replace(old, new) for line in tiny]
    assert body(name) == tiny


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_is_short_names_its_paper_and_checks_without_a_warning(name: str) -> None:
    text = (ZOO / f"{name}.net").read_text()
    lines = text.splitlines()
    assert len(lines) <= 40 and lines[0].startswith("#")
    opening = " ".join(line for line in lines if line.startswith("#"))
    assert re.search(r'"[A-Z][^"]{10,}" \([A-Z]+ \d{4}\)', opening), "the paper's title, venue and year"
    report = netdsl.analyze(netdsl.load(ZOO / f"{name}.net"))
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == TOTALS[name]
    assert report.warnings == []


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_spec_builds_what_the_analyzer_says(name: str) -> None:
    """`netdsl check --verify`: netdsl's own compiler builds the spec, names and inputs included."""
    keras = pytest.importorskip("keras")
    keras.backend.clear_session()
    verification = netdsl.verify(netdsl.load(ZOO / f"{name}.net"))
    assert verification.ok, [d.message for d in verification.differences[:5]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("conv 4 k3; add [ conv 4 k1 | id ]", "a merge of 2 tensors (add) cannot be inside it"),
        ("conv 4 as a", "a name (`as a`) cannot be inside it"),
        ("relu6 offset=3", "a Keras operation that is no layer (add) cannot be inside it"),
        ("", "seq needs at least one layer inside"),
    ],
)
def test_seq_refuses_what_a_sequential_cannot_hold(check_spec, body: str, message: str) -> None:
    path, result = check_spec(f"input 8x8x4\nseq [ {body} ]\n")
    assert result.exit_code == 1
    assert f"{path}:2:1: error[E535]: seq: " in result.output and message in result.output, result.output


def test_what_seq_add_scale_and_layerscale_refuse_is_located(check_spec) -> None:
    for spec, expected in [
        ("add scale=.1 [ conv 5 | id ]", "2:1: error[E304]: add: the inputs have different shapes"),
        ("add scale=.1 [ id | conv 4 | id ]", "2:1: error[E315]: add: add scale= adds the second of two tensors"),
        ("cat scale=.1 [ conv 5 | id ]", "2:5: error[E201]: cat: scale applies to add only, not to cat"),
        ("seq [ conv 4 k9 valid ]", "2:1: error[E303]: seq: conv2d with kernel 9x9 and 'valid' padding shrinks"),
        ("normalize mean=(1, 2) variance=(1, 2)", "2:1: error[E320]: normalize: normalization mean has 2 values"),
        ("layerscale 0", "2:12: error[E201]: layerscale: init_values must be greater than 0"),
    ]:
        path, result = check_spec(f"input 8x8x4\n{spec}\n")
        assert result.exit_code == 1 and f"{path}:{expected}" in result.output, result.output


def test_the_docs_show_these_specs_as_they_are() -> None:
    """docs/zoo.md's totals, layer counts and line counts for these specs are the specs' own."""
    from bench.zoo import netdsl_lines

    page = (ZOO.parent.parent / "docs" / "zoo.md").read_text()
    layers = {**LAYERS, **{name: row[3] for name, row in BY_COUNTS_TOTALS.items()}}
    totals = {**TOTALS, **{name: row[:3] for name, row in BY_COUNTS_TOTALS.items()}}
    for name, function in {**MODELS, **BY_COUNTS}.items():
        row = f"| `specs/zoo/{name}.net` | `{function}` | "
        assert row in page, name
        cells = page.split(row)[1].splitlines()[0]
        assert f" | {layers[name]} | " + " | ".join(f"{n:,}" for n in totals[name]) in cells, name
        lines, statements = netdsl_lines(name)
        assert f"| `{name}.net` | {lines} ({statements}) |" in page, name
    for name in BY_COUNTS:  # at most 40 lines, opening with the paper (MODELS' are checked above)
        lines = (ZOO / f"{name}.net").read_text().splitlines()
        assert len(lines) <= 40 and re.search(r'"[A-Z][^"]{10,}" \([A-Z]+ \d{4}\)', " ".join(lines[:3])), name


@pytest.mark.keras
def test_a_saved_model_with_netdsl_s_own_classes_loads_in_a_fresh_process(tmp_path) -> None:
    """CustomScaleLayer and LayerScale are registered (`netdsl>...`) by netdsl's import of Keras: a `.keras` file
    of a model with them, a Sequential and a `+` operation loads in safe mode and predicts the same."""
    import subprocess
    import sys

    import numpy as np

    net = netdsl.parse(
        "input 8x8x3\nseq [ conv 4 k2 s2 valid; layernorm epsilon=1e-6 ]\nadd scale=.17 [ id | conv 4 k1 ]\n"
        "plus [ id | dense 8; gelu; dense 4; layerscale 0.5 ]\ngap\ndense 2 softmax\n"
    )
    model = netdsl.build_model(net)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, sys\nfrom netdsl.compile import import_keras\nkeras = import_keras()\n"
        f"m = keras.saving.load_model({str(tmp_path / 'm.keras')!r}, safe_mode=True)\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))\n"
        "print(sorted(type(layer).__name__ for layer in m.layers))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ZOO.parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CustomScaleLayer" in done.stdout and "LayerScale" in done.stdout and "Sequential" in done.stdout
    assert np.allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), atol=1e-6)
