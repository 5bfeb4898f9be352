"""Every netdsl example in docs/language.md and README.md parses and analyzes, so the docs stay true."""

from __future__ import annotations

import re

import pytest

import netdsl
from tests.conftest import ROOT

EXAMPLES = [
    example
    for page in (ROOT / "docs" / "language.md", ROOT / "README.md")
    for example in re.findall(r"```netdsl\n(.*?)```", page.read_text(), re.S)
]


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_example_parses_and_analyzes(example: str) -> None:
    net = netdsl.parse(example)
    if net.input_shape is None:
        net = net.with_input((32, 32, 3))
    report = netdsl.analyze(net)
    assert report.total_params == sum(r.params for r in report.layers)


def test_every_layer_kind_is_documented() -> None:
    from netdsl.ir import REGISTRY

    text = (ROOT / "docs" / "language.md").read_text()
    for kind in REGISTRY:
        if kind != "activation":
            assert f"`{kind}" in text or f"{kind} " in text, kind
