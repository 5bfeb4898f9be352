"""Helpers that several test files share (the fixtures are in conftest.py)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import netdsl
from netdsl.diagnostics import NetdslError
from tests.conftest import ROOT


def failure(text: str, file: str | None = None) -> NetdslError:
    """The NetdslError of a spec that fails to parse, lower or analyse (read as if from `file`)."""
    with pytest.raises(NetdslError) as info:
        netdsl.analyze(netdsl.parse(text, file=file))
    return info.value


def error_of(text: str, file: str | None = "t.net") -> str:
    """That error rendered, as `netdsl check` prints it: `t.net:2:1: error[E101]: ...`, caret and help."""
    return str(failure(text, file))


def assert_equal_to_keras(report: netdsl.Report, model: object) -> None:
    """Every row of the analyzer's report equals the Keras model's layer at the same position (name, class,
    output shape, counts, inputs), and so do the totals and the output shapes."""
    from netdsl.verify import _weights_size, keras_layers

    theirs = keras_layers(model)
    assert [row.name for row in report.layers] == [row.name for row in theirs]
    for ours, keras_row in zip(report.layers, theirs):
        assert (ours.type, ours.output_shape, ours.params, ours.trainable_params, ours.inputs) == (
            keras_row.type, keras_row.output_shape, keras_row.params, keras_row.trainable_params, keras_row.inputs,
        ), ours.name  # fmt: skip
    assert report.total_params == model.count_params()  # type: ignore[attr-defined]
    assert report.non_trainable_params == _weights_size(model.non_trainable_weights)  # type: ignore[attr-defined]
    assert [tuple(s) for s in report.output_shapes] == [tuple(t.shape) for t in model.outputs]  # type: ignore[attr-defined]


def check_in_a_fresh_process(spec: str = "specs/resnet.net") -> tuple[str, list[str]]:
    """`netdsl check SPEC` in a fresh interpreter, which must exit 0: what it printed, and every module it
    had imported by then (what keeps `check` fast and free of TensorFlow)."""
    code = (
        "import sys\nfrom netdsl.cli import main\n"
        f"try:\n    main(['check', {spec!r}])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('MODULES', sorted(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    printed, _, modules = out.stdout.rpartition("MODULES ")
    return printed, ast.literal_eval(modules)
