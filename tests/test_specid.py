"""The spec id: equal for specs that differ only in layout, different for any change of architecture."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

import netdsl
from netdsl.cli import main
from netdsl.ir import Span
from netdsl.specid import LENGTH, architecture, canonical_json, normalised
from tests.conftest import SPECS

CONVNET = """input 32x32x3
repeat [conv w k3 s2 valid relu] for w in 20, 40, 80
gmp
dense 10 softmax
"""

SAME_ARCHITECTURE = {
    "layout and comments": """# ConvNet, laid out differently
input   32x32x3     # CIFAR-10

repeat [
    conv w k3 s2 valid relu   # three stride-2 convolutions
] for w in 20,40,80
gmp
dense 10 softmax
""",
    "another loop variable": CONVNET.replace("conv w", "conv width").replace("for w", "for width"),
    "the loop written out": """input 32x32x3
conv 20 k3 s2 valid relu
conv 40 k3 s2 valid relu
conv 80 k3 s2 valid relu
gmp
dense 10 softmax
""",
    "keywords and written-out defaults": """input 32x32x3
repeat [conv w kernel=3 stride=2 padding=valid bias=true relu] for w in 20, 40, 80
gmp
dense 10 softmax
""",
    "training settings": CONVNET + "train sgd lr=0.1 epochs=3\naugment flip shift=0.1\n",
}

OTHER_ARCHITECTURE = {
    "one more layer": CONVNET.replace("gmp\n", "gmp\ndropout .1\n"),
    "one layer fewer": CONVNET.replace("20, 40, 80", "20, 40"),
    "one argument": CONVNET.replace("k3", "k5"),
    "one width": CONVNET.replace("80", "81"),
    "padding": CONVNET.replace("valid", "same"),
    "a batch norm": CONVNET.replace("relu]", "relu bn]"),
    "the activation": CONVNET.replace("softmax", "sigmoid"),
    "the input": CONVNET.replace("32x32x3", "64x64x3"),
    "layers swapped": CONVNET.replace("gmp\ndense 10 softmax", "gap\ndense 10 softmax"),
}


def test_the_id_is_twelve_hex_digits() -> None:
    identity = netdsl.spec_id(CONVNET)
    assert len(identity) == LENGTH == 12
    int(identity, 16)


@pytest.mark.parametrize("what", SAME_ARCHITECTURE)
def test_layout_comments_and_naming_do_not_change_the_id(what: str) -> None:
    assert netdsl.spec_id(SAME_ARCHITECTURE[what]) == netdsl.spec_id(CONVNET)


@pytest.mark.parametrize("what", OTHER_ARCHITECTURE)
def test_any_change_of_architecture_changes_the_id(what: str) -> None:
    assert netdsl.spec_id(OTHER_ARCHITECTURE[what]) != netdsl.spec_id(CONVNET)


def test_every_change_gives_its_own_id() -> None:
    ids = {netdsl.spec_id(text) for text in (CONVNET, *OTHER_ARCHITECTURE.values())}
    assert len(ids) == 1 + len(OTHER_ARCHITECTURE)


def test_the_file_and_its_name_do_not_count(tmp_path: Path) -> None:
    a, b = tmp_path / "a.net", tmp_path / "sub-dir-b.net"
    a.write_text(CONVNET)
    b.write_text(SAME_ARCHITECTURE["layout and comments"])
    assert netdsl.spec_id(a) == netdsl.spec_id(b) == netdsl.spec_id(netdsl.parse(CONVNET, name="other"))


def test_the_hashed_data_is_the_architecture_only() -> None:
    data = architecture(netdsl.load(SPECS / "convnet.net"))
    assert data == {
        "input_shape": [32, 32, 3],
        "layers": [
            # k3 is conv's default kernel: left out, like every field at its default; s2 is one stride for every axis
            {"kind": "conv", "filters": 20, "stride": [2], "padding": "valid", "post": ["relu"]},
            {"kind": "conv", "filters": 40, "stride": [2], "padding": "valid", "post": ["relu"]},
            {"kind": "conv", "filters": 80, "stride": [2], "padding": "valid", "post": ["relu"]},
            {"kind": "gmp"},
            {"kind": "dense", "units": 10, "post": ["softmax"]},
        ],
    }  # fmt: skip
    assert canonical_json(netdsl.load(SPECS / "convnet.net")) == json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_the_rules_are_generic_for_new_node_kinds() -> None:
    class Branch(BaseModel):  # stands for any IR node added later
        kind: str = "branch"
        width: int = 8
        body: tuple[int, ...] = ()
        span: Span | None = None
        name_span: Span | None = None

    node = Branch(width=16, body=(1, 2), span=Span(line=3, column=1), name_span=Span(line=3, column=9))
    assert normalised(node) == {"kind": "branch", "width": 16, "body": [1, 2]}
    assert normalised({"a": node, "end_span": 1}) == {"a": {"kind": "branch", "width": 16, "body": [1, 2]}}


def test_the_seed_specs_ids_are_stable() -> None:
    # Run directories record these ids: a change here makes old runs unfindable by `netdsl runs --spec-id`.
    # If the IR changes on purpose, say so in the changelog (and bump netdsl.specid.VERSION).
    assert netdsl.spec_id(SPECS / "convnet.net") == "3d1613a7acb9"
    assert netdsl.spec_id(SPECS / "resnet.net") == "965e48e54983"


def test_check_prints_the_id_and_puts_it_in_the_json(runner) -> None:
    expected = netdsl.spec_id(SPECS / "resnet.net")
    table = runner.invoke(main, ["check", str(SPECS / "resnet.net")])
    assert table.exit_code == 0
    assert f" Output: (None, 10), 51 Keras layers\n Spec id: {expected}\n" in table.output
    as_json = runner.invoke(main, ["check", "--json", str(SPECS / "resnet.net"), str(SPECS / "convnet.net")])
    data = json.loads(as_json.output)
    assert [d["spec_id"] for d in data] == [expected, netdsl.spec_id(SPECS / "convnet.net")]


def test_an_input_override_is_part_of_the_architecture(runner) -> None:
    result = runner.invoke(main, ["check", "--json", "--input", "64x64x3", str(SPECS / "convnet.net")])
    assert json.loads(result.output)["spec_id"] == netdsl.spec_id(SPECS / "convnet.net", input_shape=(64, 64, 3))
    assert json.loads(result.output)["spec_id"] != netdsl.spec_id(SPECS / "convnet.net")


def test_a_bad_spec_has_no_id() -> None:
    with pytest.raises(netdsl.NetdslError, match="E101"):
        netdsl.spec_id("input 4\ncnv 3")


def test_the_documented_example_is_true() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "tools.md").read_text()
    section = page[page.index("Same id (layout") :]
    first, second = re.findall(r"```net\n(.*?)```", section, re.S)[:2]
    stated = re.search(r"Both are `([0-9a-f]{12})`", section).group(1)  # type: ignore[union-attr]
    assert netdsl.spec_id(first) == netdsl.spec_id(second) == stated == netdsl.spec_id(SPECS / "convnet.net")
    assert netdsl.spec_id(first.replace("gmp", "gmp\ndropout .1")) != stated
    assert netdsl.spec_id(first.replace("k3", "k5")) != stated


def test_tensor_names_are_renamed_by_first_appearance() -> None:
    class Tap(BaseModel):  # stands for any node naming its output (`as d1`) or reading a name
        kind: str = "conv"
        tap: str | None = None
        refs: tuple[str, ...] = ()
        ref_names: tuple[str, ...] = ()  # as written: dropped

    def nodes(first: str, second: str) -> list[Tap]:
        return [Tap(tap=first), Tap(tap=second), Tap(refs=(first, second), ref_names=(first, second))]

    assert normalised(nodes("d1", "d2")) == normalised(nodes("skip", "x")) == [
        {"kind": "conv", "tap": "t1"}, {"kind": "conv", "tap": "t2"}, {"kind": "conv", "refs": ["t1", "t2"]},
    ]  # fmt: skip
    assert normalised(nodes("d1", "d2")) != normalised([*nodes("d1", "d2")[:2], Tap(refs=("d2", "d1"))])


def test_renaming_tensors_and_blocks_keeps_the_id() -> None:
    unet = (SPECS / "unet.net").read_text()
    renamed = unet
    for old, new in (("d1", "skip_a"), ("d2", "skip_b"), ("d3", "skip_c"), ("d4", "skip_d"), ("twice", "double")):
        renamed = renamed.replace(old, new)
    renamed = renamed.replace(
        "def double f [ conv f k3 relu; conv f k3 relu ]", "def double w [ conv w k3 relu; conv w k3 relu ]"
    )
    assert "def double w" in renamed and "cat skip_d" in renamed
    assert netdsl.spec_id(renamed) == netdsl.spec_id(SPECS / "unet.net")
    # a skip wired to another level is another architecture (here: d2's 32 channels where d1's 16 were)
    rewired = unet.replace("twice 16 as d1", "twice 16 as d1x").replace("cat d1", "cat d1x; cat d1x")
    assert netdsl.spec_id(rewired) != netdsl.spec_id(unet)


BLOCK = "def pair f [ conv f k3 relu; conv f k3 relu ]\ninput 16x16x3\npair 8 as a\npair 8\nadd a\ngap\ndense 2\n"
WRITTEN_OUT = """input 16x16x3
conv 8 k3 relu
conv 8 k3 relu as b
conv 8 k3 relu
conv 8 k3 relu
add b
gap
dense 2
"""


def test_a_block_and_its_expansion_share_an_id() -> None:
    # the same Keras model, layer by layer: a block is a way of writing, not an architecture
    assert [r.name for r in netdsl.check(BLOCK).layers] == [r.name for r in netdsl.check(WRITTEN_OUT).layers]
    assert netdsl.spec_id(BLOCK) == netdsl.spec_id(WRITTEN_OUT)
    assert netdsl.spec_id(BLOCK) != netdsl.spec_id(BLOCK.replace("pair 8\nadd", "pair 8\npair 8\nadd"))
