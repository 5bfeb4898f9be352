"""Every design tool on every spec in specs/ (and specs/zoo/): draw, diff, spec id and fmt agree."""

from __future__ import annotations

import importlib.util
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import netdsl
from netdsl.draw import boxes
from tests.conftest import SPECS

ALL_SPECS = sorted(SPECS.rglob("*.net"))


@pytest.mark.parametrize("path", ALL_SPECS, ids=[str(p.relative_to(SPECS)) for p in ALL_SPECS])
def test_the_tools_on_each_spec(path: Path) -> None:
    report = netdsl.check(path)
    # diff: a spec against itself is all `same`, and against its formatted text too
    formatted = netdsl.format(path.read_text())
    result = netdsl.diff(path, formatted)
    assert result.same_architecture and result.counts["same"] == len(report.layers)
    assert netdsl.spec_id(formatted) == netdsl.spec_id(path)
    # draw: one box per statement (or block use), every layer in one of them
    drawn = boxes(report)
    assert sum(len(box.rows) for box in drawn) == len(report.layers)
    if shutil.which("dot") and importlib.util.find_spec("graphviz"):
        svg = ElementTree.fromstring(netdsl.draw(report).svg())
        nodes = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
        assert len(nodes) == len(drawn)
