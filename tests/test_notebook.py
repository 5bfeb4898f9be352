"""Jupyter: `netdsl.analyze(net)` shows as an HTML table (`Report._repr_html_`), every text escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import netdsl
from tests.conftest import SPECS


class Cells(HTMLParser):
    """The texts of each table row, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])

    def handle_data(self, data: str) -> None:
        if self.rows and self.tags[-1] in ("td", "th"):
            self.rows[-1].append(data)


def parsed(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def test_a_report_is_an_html_table_with_every_layer_and_its_inputs() -> None:
    report = netdsl.analyze(netdsl.load(SPECS / "resnet.net"))
    cells = parsed(report._repr_html_())
    assert cells.rows[0] == ["Layer", "Type", "Output Shape", "Param #", "Receptive field", "MACs", "Connected to", "Line"]  # fmt: skip
    assert len(cells.rows) == 1 + len(report.layers) == 52
    assert cells.rows[10] == ["add", "Add", "(None, 16, 16, 20)", "0", "13 (jump 2)", "0",
                              "batch_normalization, batch_normalization_1", "10"]  # fmt: skip
    assert cells.rows[-1][:4] == ["activation_13", "Activation", "(None, 10)", "0"]
    assert "Total params: 771,690 (2.94 MB)" in report._repr_html_()


def test_long_reports_are_cut_and_say_so() -> None:
    report = netdsl.check("input 4\nrepeat 600 [dense 4]")
    cells = parsed(report._repr_html_())
    assert len(cells.rows) == 1 + 500 + 1
    assert cells.rows[-1] == ["... 101 more layers"]


def test_names_are_escaped(tmp_path: Path) -> None:
    spec = tmp_path / "<script>alert(1)<script>.net"
    spec.write_text("input 4\ndense 2\n")
    html = netdsl.check(spec)._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;script&gt;" in html
    assert "script" not in parsed(html).tags
