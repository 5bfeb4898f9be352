"""A report is typed: warnings are `Diagnostic`s and phases are `PhaseReport`s in Python, serialised only
at the edge (`netdsl check --json` prints the same JSON as when they were dicts); E306 is built from
W405's numbers (`lints.memory_shortfall`), not from its message."""

from __future__ import annotations

import json

import pydantic
import pytest

import netdsl
from netdsl import PhaseReport, lints
from netdsl.cli import main
from netdsl.diagnostics import Diagnostic
from netdsl.ir import Span

WARNED = "input 8x8x1\ndropout .2\nres 4\nconv 4 as unused\ngap\nphase epochs=2\nphase epochs=3\n"
"""W403 (with help), W404 (no help), W407 and two `phase` lines without freezing."""


def test_warnings_are_diagnostics_and_phases_are_phase_reports() -> None:
    report = netdsl.analyze(netdsl.parse(WARNED))
    assert all(type(w) is Diagnostic for w in report.warnings)
    assert [(w.code, w.severity, w.span.line if w.span else None) for w in report.warnings] == [
        ("W403", "warning", 2), ("W404", "warning", 3), ("W407", "warning", 4),
    ]  # fmt: skip
    assert report.warnings[0].span == Span(line=2, column=1, end_line=2, end_column=8)
    assert report.warnings[0].help == "put dropout after a conv or dense layer (or remove it)"
    assert all(type(p) is PhaseReport for p in report.phases)
    counts = {"frozen_below": 0, "trainable_params": 192, "non_trainable_params": 8}  # res 4's BN: 8 statistics
    assert (report.trainable_params, report.non_trainable_params) == (192, 8)
    assert report.phases == [
        PhaseReport(phase=1, line=6, epochs=2, **counts),
        PhaseReport(phase=2, line=7, epochs=3, **counts),
    ]


def test_a_report_refuses_untyped_warnings_and_types_its_phases() -> None:
    report = netdsl.analyze(netdsl.parse("input 4\ndense 2"))
    fields = {k: getattr(report, k) for k in type(report).model_fields}
    with pytest.raises(pydantic.ValidationError):  # a dict is no longer a warning
        type(report)(**{**fields, "warnings": [{"code": "W401", "severity": "warning", "message": "x"}]})
    with pytest.raises(pydantic.ValidationError):  # a phase needs all six counts
        type(report)(**{**fields, "phases": [{"phase": 1, "line": 3}]})
    counts = {"phase": 1, "line": 3, "epochs": 1, "frozen_below": 0, "trainable_params": 10, "non_trainable_params": 0}
    (phase,) = type(report)(**{**fields, "phases": [counts]}).phases
    assert type(phase) is PhaseReport and phase.model_dump() == counts


def test_check_json_writes_warnings_and_phases_as_before(runner, write_spec) -> None:
    """The JSON form a user reads: each warning as `Diagnostic.to_dict` (keys in this order, help only when
    given), each phase as the six counts; written only at the edge."""
    path = write_spec(WARNED)
    result = runner.invoke(main, ["check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [list(w) for w in data["warnings"]] == [
        ["code", "severity", "message", "line", "column", "end_line", "end_column", "help"],
        ["code", "severity", "message", "line", "column", "end_line", "end_column"],
        ["code", "severity", "message", "line", "column", "end_line", "end_column", "help"],
    ]
    report = netdsl.check(str(path))
    assert data["warnings"] == [w.to_dict() for w in report.warnings]
    assert data["warnings"][0] == {
        "code": "W403", "severity": "warning",
        "message": "dropout is the very first layer: it acts on the raw input, not on learned features",
        "line": 2, "column": 1, "end_line": 2, "end_column": 8,
        "help": "put dropout after a conv or dense layer (or remove it)",
    }  # fmt: skip
    assert data["phases"][1] == {
        "phase": 2, "line": 7, "epochs": 3, "frozen_below": 0, "trainable_params": 192, "non_trainable_params": 8,
    }  # fmt: skip
    assert report.to_dict()["warnings"] == data["warnings"]


def test_e306_is_built_from_the_estimate_w405_reports(monkeypatch) -> None:
    monkeypatch.setattr(lints, "physical_memory", lambda: 1024**3)
    net = netdsl.parse("input 8\ndense 1000\ndense 300000\n")  # 300,309,000 float32 parameters: 1.1 GB
    report = netdsl.analyze(net)
    shortfall = lints.memory_shortfall(report.layers, report.total_params)
    assert shortfall == lints.MemoryShortfall(300_309_000, 1024**3, "dense_1", 300_300_000, Span(line=3, column=1))
    assert shortfall.needed == 1_201_236_000
    (warning,) = report.warnings
    assert warning == shortfall.warning()
    with pytest.raises(netdsl.NetdslError) as caught:
        netdsl.build_model(net)  # refused before Keras is asked for anything
    (error,) = caught.value.diagnostics
    assert (error.code, error.severity, error.span, error.help) == ("E306", "error", warning.span, warning.help)
    assert error.message == (
        "cannot build the model: the 300,309,000 float32 parameters need 1.1 GB, more than this machine's "
        "1.0 GB of memory"
    )
    assert warning.message == error.message.removeprefix("cannot build the model: ") + (
        "; building or training this model would fail"
    )
    assert warning.help == "the largest layer is dense_1 with 300,300,000 parameters"
    monkeypatch.setattr(lints, "physical_memory", lambda: 2 * 1024**3)  # now it fits: no estimate, no warning
    assert lints.memory_shortfall(report.layers, report.total_params) is None
    assert netdsl.analyze(net).warnings == []
