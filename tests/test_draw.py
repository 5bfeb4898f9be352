"""`netdsl draw` and `netdsl.draw`: Graphviz pictures built from the analyzer's report."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main
from netdsl.draw import _types, boxes, dot_source, edges, statement_title
from tests.conftest import ROOT, SPECS

pytest.importorskip("graphviz")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
SVG = "{http://www.w3.org/2000/svg}"


def svg_nodes(path: Path) -> tuple[list[str], int, int]:
    """The SVG's texts, and how many node and edge groups it has (parsing it checks it is XML)."""
    tree = ElementTree.parse(path)
    texts = [t.text or "" for t in tree.iter(f"{SVG}text")]
    groups = [g.get("class") for g in tree.iter(f"{SVG}g")]
    return texts, groups.count("node"), groups.count("edge")


@needs_dot
def test_resnet_one_box_per_statement_with_its_residual_skips(runner, tmp_path: Path) -> None:
    out = tmp_path / "net.svg"
    result = runner.invoke(main, ["draw", str(SPECS / "resnet.net"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    texts, nodes, edge_count = svg_nodes(out)
    # input, stem conv, 4 x (conv, res, res), gmp, dropout, dense
    assert nodes == 17
    # 16 along the chain, plus a dashed shortcut into each of the 8 res boxes' Add
    assert edge_count == 24
    assert "res: Conv2D + Activation + BatchNormalization + Add" in texts
    assert "conv: Conv2D + Activation + BatchNormalization" in texts
    assert "(None, 2, 2, 160)" in texts
    assert "231,040 params, 921.6 K MACs" in texts  # the last res: 230,400 + 640
    assert texts[0] == "resnet: 771,690 params, 10.7 M MACs"


@needs_dot
def test_expand_draws_every_keras_layer_by_name(runner, tmp_path: Path) -> None:
    out = tmp_path / "net.svg"
    result = runner.invoke(main, ["draw", str(SPECS / "resnet.net"), "-o", str(out), "--expand"])
    assert result.exit_code == 0, result.output
    report = netdsl.check(SPECS / "resnet.net")
    texts, nodes, edge_count = svg_nodes(out)
    assert nodes == len(report.layers) == 51
    assert edge_count == sum(len(row.inputs) for row in report.layers)  # every input is an edge: adds have two
    for row in report.layers:
        assert f"{row.name} ({row.type})" in texts


def test_boxes_and_edges_follow_the_rows_inputs() -> None:
    report = netdsl.check("input 8x8x4\nconv 4 k3 relu\nres 4 k3\ndense 2")
    drawn = boxes(report)
    assert [[row.name for row in box.rows] for box in drawn] == [
        ["input_layer"], ["conv2d", "activation"], ["conv2d_1", "activation_1", "batch_normalization", "add"], ["dense"],
    ]  # fmt: skip
    # the res box reads activation twice: into its conv, and (the shortcut) into its Add
    assert edges(drawn) == [("n0", "n1", False), ("n1", "n2", False), ("n1", "n2", True), ("n2", "n3", False)]
    assert len(boxes(report, expand=True)) == len(report.layers)


def test_statements_in_a_repeat_are_one_box_each() -> None:
    report = netdsl.check("input 8x8x4\nrepeat 3 [conv 4 k3 relu]")
    assert [len(box.rows) for box in boxes(report)] == [1, 2, 2, 2]


@needs_dot
def test_png_pdf_and_dot(runner, tmp_path: Path) -> None:
    for name, magic in (("net.png", b"\x89PNG"), ("net.pdf", b"%PDF"), ("net.dot", b"digraph netdsl {")):
        out = tmp_path / name
        result = runner.invoke(main, ["draw", str(SPECS / "convnet.net"), "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes().startswith(magic), name


def test_an_unknown_extension_is_a_usage_error(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["draw", str(SPECS / "convnet.net"), "-o", str(tmp_path / "net.jpg")])
    assert result.exit_code == 2
    assert "cannot tell the format of 'net.jpg'" in result.output
    assert not (tmp_path / "net.jpg").exists()


def test_a_bad_spec_is_a_located_error(runner, write_spec, tmp_path: Path) -> None:
    spec = write_spec("input 8x8x3\ncnv 8\n")
    result = runner.invoke(main, ["draw", str(spec), "-o", str(tmp_path / "net.svg")])
    assert result.exit_code == 1
    assert "spec.net:2:1: error[E101]: unknown layer 'cnv'" in result.output
    assert not (tmp_path / "net.svg").exists()


def test_without_the_dot_program_the_error_says_what_to_install(runner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    result = runner.invoke(main, ["draw", str(SPECS / "convnet.net"), "-o", str(tmp_path / "net.svg")])
    assert result.exit_code == 2
    assert "error: netdsl draw needs Graphviz: Graphviz's 'dot' program is not installed" in result.output
    assert "apt-get install graphviz" in result.output
    assert "Traceback" not in result.output
    html = netdsl.draw(SPECS / "convnet.net")._repr_html_()
    assert html.startswith("<pre>netdsl.draw: Graphviz&#x27;s &#x27;dot&#x27; program is not installed")


def test_every_label_is_escaped(tmp_path: Path) -> None:
    # the network's name comes from the file name, which may hold markup and Graphviz escapes
    name = "a<b>&\"'c\\N<script>alert(1)<script>"
    spec = tmp_path / f"{name}.net"
    spec.write_text((SPECS / "convnet.net").read_text())
    source = dot_source(netdsl.check(spec))
    assert "<script>" not in source and "<b>" not in source
    assert "a&lt;b&gt;&amp;&quot;&#x27;c\\N&lt;script&gt;" in source
    if shutil.which("dot"):
        out = netdsl.draw(spec).save(tmp_path / "net.svg")
        tree = ElementTree.parse(out)  # still well-formed XML
        assert not [e for e in tree.iter() if e.tag in (f"{SVG}script", f"{SVG}b", "script", "b")]
        assert any((t.text or "").startswith(name) for t in tree.iter(f"{SVG}text"))


@needs_dot
def test_in_jupyter_a_drawing_shows_itself_as_svg() -> None:
    picture = netdsl.draw("input 8x8x4\nconv 4 k3 relu\nres 4 k3\ngap\ndense 2 softmax")
    svg = picture._repr_svg_()
    assert svg is not None and "<svg" in svg
    ElementTree.fromstring(svg)
    assert picture._repr_html_().startswith("<svg")
    assert netdsl.draw(netdsl.check(SPECS / "convnet.net")).source.startswith("digraph netdsl {")


def test_drawing_never_imports_tensorflow_or_keras(tmp_path: Path) -> None:
    code = (
        "import sys, netdsl\n"
        f"netdsl.draw({str(SPECS / 'resnet.net')!r}).save({str(tmp_path / 'net.dot')!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "net.dot").stat().st_size > 0


def test_the_readme_picture_is_netdsls_drawing_of_resnet() -> None:
    picture = ROOT / "docs" / "img" / "resnet.svg"
    assert f'<img src="{picture.relative_to(ROOT)}"' in (ROOT / "README.md").read_text()
    texts, nodes, _ = svg_nodes(picture)
    report = netdsl.check(SPECS / "resnet.net")
    assert nodes == len(boxes(report))
    assert texts[0] == f"resnet: {report.total_params:,} params, 10.7 M MACs"


@needs_dot
def test_expanded_statements_are_framed_by_name_and_line(tmp_path: Path) -> None:
    out = netdsl.draw(SPECS / "resnet.net", expand=True).save(tmp_path / "net.svg")
    tree = ElementTree.parse(out)
    clusters = [g for g in tree.iter(f"{SVG}g") if g.get("class") == "cluster"]
    labels = [t.text for g in clusters for t in g.iter(f"{SVG}text") if t.text and "(line" in t.text]
    # the stem conv+relu, and per stage the strided conv and two res blocks, and the classifier dense+softmax
    assert labels.count("res (line 10)") == 4 and labels.count("res (line 11)") == 4
    assert labels.count("conv (line 9)") == 4 and "dense (line 15)" in labels
    assert len(clusters) == 1 + 12 + 1


def test_repeated_layer_classes_are_counted_in_a_box_title() -> None:
    rows = tuple(netdsl.check("input 8x8x4\nres 4 k3").layers[1:])
    assert _types(rows) == "Conv2D + Activation + BatchNormalization + Add"
    assert _types(rows + rows) == "2 x Conv2D + 2 x Activation + 2 x BatchNormalization + 2 x Add"
    assert statement_title(rows) == ("res", 2)


GRAPH_SPECS = ["densenet_bc.net", "unet.net", "inception.net", "resnet20.net"]


@needs_dot
@pytest.mark.parametrize("name", GRAPH_SPECS)
def test_graph_specs_every_layer_by_name(name: str, tmp_path: Path, runner) -> None:
    out = tmp_path / "net.svg"
    result = runner.invoke(main, ["draw", str(SPECS / name), "-o", str(out), "--expand"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000
    report = netdsl.check(SPECS / name)
    texts, nodes, edge_count = svg_nodes(out)
    assert nodes == len(report.layers)
    assert edge_count == sum(len(row.inputs) for row in report.layers)  # every branch and merge input
    for row in report.layers:
        assert f"{row.name} ({row.type})" in texts


@needs_dot
def test_unet_skips_are_dashed_edges_into_the_concatenations(tmp_path: Path) -> None:
    report = netdsl.check(SPECS / "unet.net")
    drawn = boxes(report)
    names = {box.id: box.rows[-1].name for box in drawn}
    skips = [(names[a], names[b]) for a, b, dashed in edges(drawn) if dashed]
    # each level's `twice ... as dN` box feeds its concatenation on the way up
    assert skips == [("activation_7", "concatenate"), ("activation_5", "concatenate_1"),
                     ("activation_3", "concatenate_2"), ("activation_1", "concatenate_3")]  # fmt: skip
    titles = [statement_title(box.rows)[0] for box in drawn]
    assert titles.count("twice") == 9  # each use of the user block `twice` is one box


def test_a_block_use_is_one_box_at_its_line() -> None:
    report = netdsl.check(SPECS / "inception.net")
    blocks = [box for box in boxes(report) if statement_title(box.rows)[0] == "inception"]
    assert len(blocks) == 3
    assert _types(blocks[0].rows) == "6 x Conv2D + 6 x Activation + MaxPooling2D + Concatenate"
    lines = (SPECS / "inception.net").read_text().splitlines()
    uses = [number for number, line in enumerate(lines, 1) if not line.startswith("def ")
            for statement in line.split(";") if statement.split()[:1] == ["inception"]]  # fmt: skip
    assert [statement_title(box.rows)[1] for box in blocks] == uses
