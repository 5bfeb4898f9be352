"""The image zoo (specs/zoo/) against keras.applications, built without netdsl (`weights=None`, with its
top, at its default input size), each model once per session: the totals and, layer by layer in
`model.layers` order, the class, output shape, parameter counts and the layers each one reads from.

Counts and shapes do not see every option (a batch norm's epsilon, a fused activation, the padding of a
1x1 convolution), so each layer's whole Keras config is compared too: the config of the Keras layer
netdsl's compiler would construct for that row (`op.to_keras`, without building a model) against the
keras.applications layer's. Two differences are equivalent and normalised: layer names, which differ by
design (keras.applications names its layers, `conv1_conv`; netdsl's are Keras's automatic ones, `conv2d`;
so inputs are compared through the position-to-position mapping of the two lists), and the channel axis
of BatchNormalization and Concatenate, which keras.applications writes 3 and netdsl -1 (the same axis of
a 4-D tensor). No layer list differs in how an activation is split off: where Keras fuses one (VGG16's
`Conv2D(activation='relu')`, every classifier's `Dense(1000, activation='softmax')`), the spec fuses it
too (`activation=relu`), so every layer is compared."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import netdsl
from netdsl.analysis import LayerReport
from netdsl.verify import keras_layers

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"

APPLICATIONS = {
    "vgg16": "VGG16",
    "vgg19": "VGG19",
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
    "densenet121": "DenseNet121",
    "densenet169": "DenseNet169",
    "densenet201": "DenseNet201",
    "xception": "Xception",
    "inception_v3": "InceptionV3",
}
"""Zoo spec -> the keras.applications function it reproduces."""

TOTALS = re.compile(r"^ *(Total|Trainable|Non-trainable) params: .*$", re.MULTILINE)


def config(layer, rank: int) -> dict:
    """A Keras layer's config without its name, the channel axis counted from the front."""
    found = {key: value for key, value in layer.get_config().items() if key != "name"}
    if isinstance(found.get("axis"), int) and found["axis"] < 0:
        found["axis"] += rank
    if isinstance(found.get("axis"), tuple):  # Normalization's axes
        found["axis"] = tuple(axis + rank if axis < 0 else axis for axis in found["axis"])
    return found


@dataclass(frozen=True)
class Application:
    """What the tests need of a keras.applications model (kept instead of the model, to free its memory)."""

    rows: list[LayerReport]
    configs: list[dict]
    totals: tuple[int, int, int]  # total, trainable, non-trainable
    summary_totals: list[str]  # the three "... params: N (size)" lines model.summary() prints
    output_shape: tuple


@pytest.fixture(scope="module")
def applications():
    """Build each keras.applications model at most once per session, on first use."""
    keras = pytest.importorskip("keras")
    built: dict[str, Application] = {}

    def get(name: str) -> Application:
        if name not in built:
            model = getattr(keras.applications, APPLICATIONS[name])(weights=None)
            printed: list[str] = []
            model.summary(print_fn=lambda text, line_break=True: printed.append(text))
            rows = keras_layers(model)
            trainable = sum(row.trainable_params for row in rows)
            built[name] = Application(
                rows,
                [config(layer, len(layer.output.shape)) for layer in model.layers],
                (model.count_params(), trainable, model.count_params() - trainable),
                [line.strip() for line in TOTALS.findall("\n".join(printed))],
                tuple(model.output.shape),
            )
            del model
            keras.backend.clear_session()
        return built[name]

    return get


def analyze_with_configs(net: netdsl.Network, called: bool = False) -> tuple[netdsl.Report, dict[str, dict]]:
    """The report, and for each row the config of the Keras layer netdsl's compiler constructs for it. With
    `called`, each layer is first called on inputs of its row's shapes, as keras.applications' layers have
    been (a called Sequential's config records its InputLayer and build shapes; a called LayerNormalization's
    axis is a list)."""
    import keras

    from netdsl.analysis import ShapeGraph

    ops = {}
    call = ShapeGraph.call

    def recording(graph, op, *inputs, name=None):
        node = call(graph, op, *inputs, name=name)
        if op.is_layer:  # not the operations (MobileNetV3's `x + 3.0`, ConvNeXt's `inputs + x`): no config
            ops[node.name] = (op, len(node.shape) + 1, [tensor.shape for tensor in inputs])
        return node

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ShapeGraph, "call", recording)
        report = netdsl.analyze(net)
    configs = {}
    for name, (op, rank, shapes) in ops.items():
        layer = op.to_keras(keras, name)
        if called:
            tensors = [keras.Input(shape) for shape in shapes]
            layer(tensors if len(tensors) > 1 else tensors[0])
        configs[name] = config(layer, rank)
    return report, configs


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_zoo_spec_equals_keras_applications_layer_by_layer(applications, name: str) -> None:
    keras = applications(name)
    report, configs = analyze_with_configs(netdsl.load(ZOO / f"{name}.net"))
    assert len(report.layers) == len(keras.rows)
    theirs_for = {ours.name: theirs.name for ours, theirs in zip(report.layers, keras.rows)}
    for i, (ours, theirs) in enumerate(zip(report.layers, keras.rows)):
        assert (ours.type, ours.output_shape, ours.params, ours.trainable_params, ours.non_trainable_params) == (
            theirs.type, theirs.output_shape, theirs.params, theirs.trainable_params, theirs.non_trainable_params,
        ), f"layer {i}: netdsl {ours.name}, Keras {theirs.name}"  # fmt: skip
        assert tuple(theirs_for[n] for n in ours.inputs) == theirs.inputs, f"inputs of layer {i} ({theirs.name})"
        if i:  # the input layer is no op of netdsl's; its shape is compared above
            assert configs[ours.name] == keras.configs[i], f"config of layer {i} ({theirs.name})"
    assert (report.total_params, report.trainable_params, report.non_trainable_params) == keras.totals
    assert report.output_shape == keras.output_shape


@pytest.mark.keras
def test_netdsl_check_prints_the_totals_keras_applications_prints(applications, runner) -> None:
    """`netdsl check specs/zoo/*.net`: for each image spec, the three totals lines of Keras's summary."""
    from netdsl.cli import main

    paths = sorted(ZOO.glob("*.net"))
    result = runner.invoke(main, ["check", *map(str, paths)])
    assert result.exit_code == 0, result.output
    printed = {
        Path(path).stem: TOTALS.findall(body)
        for path, body in re.findall(r'^Model: "[^"]*"  \(([^)]*)\)\n(.*?)(?=^Model: |\Z)', result.output, re.M | re.S)
    }
    assert set(APPLICATIONS) <= set(printed)
    for name in APPLICATIONS:
        assert [line.strip() for line in printed[name]] == applications(name).summary_totals, name


def spec_lines(name: str) -> list[str]:
    return (ZOO / f"{name}.net").read_text().splitlines()


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_zoo_specs_are_at_most_40_lines_and_name_their_paper(name: str) -> None:
    lines = spec_lines(name)
    assert len(lines) <= 40, len(lines)
    header = " ".join(line.removeprefix("# ") for line in lines[:3])  # the paper: "Title" (VENUE YEAR)
    assert lines[0].startswith("# ") and re.search(r'"[^"]+" \([^)]*\d{4}\)', header), lines[:3]


COUNTS = [  # (spec, the spec it is a deeper copy of, {that spec's text: this one's})
    ("resnet101", "resnet50", {"(128, 4, 2), (256, 6, 2)": "(128, 4, 2), (256, 23, 2)"}),
    ("resnet152", "resnet50", {"(128, 4, 2), (256, 6, 2)": "(128, 8, 2), (256, 36, 2)"}),
    ("resnet101v2", "resnet50v2", {"(128, 4), (256, 6)": "(128, 4), (256, 23)"}),
    ("resnet152v2", "resnet50v2", {"(128, 4), (256, 6)": "(128, 8), (256, 36)"}),
    ("densenet169", "densenet121", {"(24, 512)": "(32, 640)", "repeat 16 [": "repeat 32 ["}),
    ("densenet201", "densenet121", {"(24, 512)": "(48, 896)", "repeat 16 [": "repeat 32 ["}),
]


@pytest.mark.parametrize(("name", "base", "counts"), COUNTS, ids=[row[0] for row in COUNTS])
def test_deeper_variants_differ_from_their_base_only_in_comments_and_counts(name: str, base: str, counts: dict) -> None:
    """ResNet101/152 from resnet50.net, ResNet101V2/152V2 from resnet50v2.net, DenseNet169/201 from
    densenet121.net: the same statements but for the block counts (and DenseNet's channels after the third
    block, which follow from its count: (256 + 32 * n) / 2)."""
    ours = [line for line in spec_lines(name) if not line.startswith("#")]
    theirs = []
    for line in spec_lines(base):
        if not line.startswith("#"):
            for old, new in counts.items():
                line = line.replace(old, new)
            theirs.append(line)
    assert ours == theirs


def test_the_docs_show_the_zoo_as_it_is() -> None:
    """docs/zoo.md's totals and line counts, and README's ResNet-50, are the specs' own."""
    root = ZOO.parent.parent
    page = (root / "docs" / "zoo.md").read_text()
    for name in APPLICATIONS:
        report = netdsl.analyze(netdsl.load(ZOO / f"{name}.net"))
        totals = (report.total_params, report.trainable_params, report.non_trainable_params)
        row = f"| `specs/zoo/{name}.net` | `{APPLICATIONS[name]}` | "
        assert row in page and " | ".join(f"{n:,}" for n in totals) in page.split(row)[1].splitlines()[0], name
        lines = spec_lines(name)
        statements = sum(1 for line in lines if line.strip() and not line.startswith("#"))
        assert f"| `{name}.net` | {len(lines)} ({statements}) |" in page, name
    readme = (root / "README.md").read_text().split("# ResNet-50 (specs/zoo/resnet50.net without its header)")[1]
    body = [line for line in spec_lines("resnet50") if not line.startswith("#")]
    assert readme.split("\n```")[0].splitlines()[1:] == body
