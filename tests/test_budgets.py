"""Budgets: `--assert 'params < 1M'` (and `assert` in a spec) checked by `netdsl check` and before training."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import netdsl
from netdsl.budgets import BudgetError, activation_bytes, parse_budget, receptive_field
from netdsl.cli import main
from netdsl.units import QuantityError, quantity
from tests.conftest import ROOT, SPECS

SMALL = "input 8x8x3\nconv 4 k3\ngap\ndense 2\n"


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [("2M", "count", 2_000_000), ("1.5K", "count", 1_500), ("300M", "count", 300_000_000), ("1G", "count", 10**9),
     ("1e6", "count", 1_000_000), ("771690", "count", 771_690), ("64MB", "bytes", 64 * 2**20),
     ("1.5KB", "bytes", 1536), ("2GB", "bytes", 2 * 2**30), ("100B", "bytes", 100), ("32", "pixels", 32)],
)  # fmt: skip
def test_quantities_take_si_suffixes(text: str, unit: str, value: int) -> None:
    assert quantity(text, unit) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "unit", "message"),
    [("2MB", "count", "'MB' is not a unit of a count (K, M, G, T: 1000-based)"),
     ("64", "bytes", "memory needs a unit: '64' what?"), ("64M", "bytes", "'M' is not a unit of memory"),
     ("32K", "pixels", "'K' is not a unit of a size in pixels"), ("lots", "count", "'lots' is not a number"),
     ("1e400", "count", "too large"), ("1e999999999M", "count", "too large"), ("1e19", "count", "too large")],
)  # fmt: skip
def test_a_wrong_unit_is_refused(text: str, unit: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message.replace("(", r"\(").replace(")", r"\)")):
        quantity(text, unit)  # type: ignore[arg-type]


def test_parse_budget() -> None:
    budget = parse_budget("  macs<=300M ")
    assert (budget.metric, budget.op, budget.limit, budget.text) == ("macs", "<=", 300_000_000, "macs <= 300M")
    with pytest.raises(BudgetError, match="unknown budget 'parms'") as info:
        parse_budget("parms < 2M")
    assert info.value.help == "did you mean 'params'?"
    with pytest.raises(BudgetError, match="is not a budget"):
        parse_budget("params is small")


def test_activation_memory_is_every_layers_output_in_float32() -> None:
    report = netdsl.check(SMALL)
    # input 8*8*3, conv 8*8*4, global average pooling 4, dense 2: float32 elements, for one example
    assert activation_bytes(report) == 4 * (192 + 256 + 4 + 2) == 1_816


def test_the_receptive_field_is_the_largest_any_layer_reaches() -> None:
    assert receptive_field(netdsl.check(SPECS / "resnet.net")) == 157  # the last res block, before pooling
    assert receptive_field(netdsl.check("input 10\ndense 4")) == 0  # no spatial axes


def test_check_reports_a_budget_not_met_with_the_measured_value(runner) -> None:
    result = runner.invoke(
        main, ["check", str(SPECS / "resnet.net"), "--assert", "params < 500K", "--assert", "rf >= 32"]
    )
    assert result.exit_code == 1
    assert (f"{SPECS / 'resnet.net'}: error[E701]: budget not met (--assert): params < 500K, "
            "but params is 771,690 (771.7 K)") in result.stderr  # fmt: skip
    assert " Budgets: params < 500K: 771,690 (771.7 K) FAILED; rf >= 32: 157 pixels ok" in result.stdout
    assert " Total params: 771,690 (2.94 MB)" in result.stdout  # the table is still shown


def test_budgets_that_hold_exit_zero(runner) -> None:
    budgets = ["params < 2M", "macs <= 300M", "rf >= 32", "trainable < 5M", "activations < 64MB", "layers < 60"]
    args = [a for b in budgets for a in ("--assert", b)]
    result = runner.invoke(main, ["check", str(SPECS / "resnet.net"), *args])
    assert result.exit_code == 0, result.stderr
    as_json = json.loads(runner.invoke(main, ["check", "--json", str(SPECS / "resnet.net"), *args]).output)
    assert [b["budget"] for b in as_json["budgets"]] == budgets
    assert all(b["ok"] for b in as_json["budgets"])
    activations = next(b for b in as_json["budgets"] if b["metric"] == "activations")
    assert activations["limit"] == 64 * 2**20
    assert activations["measured"] == activation_bytes(netdsl.check(SPECS / "resnet.net"))


@pytest.mark.parametrize("bad", ["parms < 2M", "params < 2MB", "params", "rf >= 3K"])
def test_a_bad_assert_option_is_a_usage_error(runner, bad: str) -> None:
    result = runner.invoke(main, ["check", str(SPECS / "resnet.net"), "--assert", bad])
    assert result.exit_code == 2
    assert "Invalid value for --assert" in result.output


def test_from_python() -> None:
    results = netdsl.check_budgets(SMALL, ["params < 1K", "activations < 2KB"])
    assert [(r.measured, r.ok) for r in results] == [(4 * 27 + 4 + 10, True), (1_816, True)]
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.check_budgets(SMALL, ["params < 100", "macs < 1K"])
    assert [d.code for d in info.value.diagnostics] == ["E701", "E701"]  # every budget not met, at once
    assert "macs < 1K, but macs is 6,920 (6.9 K)" in str(info.value)
    with pytest.raises(netdsl.NetdslError, match=r"error\[E702\]: unknown budget 'parms'"):
        netdsl.check_budgets(SMALL, ["parms < 1"])
    with pytest.raises(netdsl.NetdslError, match=r"E702.*the spec has none"):
        netdsl.check_budgets("conv 4 k3\ngap\ndense 2", ["params < 1K"])
    assert netdsl.check_budgets("conv 4 k3\ngap\ndense 2") == []  # no budget, no input needed


TRAIN_OVER_BUDGET = """
import sys
from netdsl.cli import main
sys.argv = ["netdsl", "train", {spec!r}, "--assert", "params < 100K", "--epochs", "1"]
try:
    main()
except SystemExit as exit:
    print(exit.code, sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax")))
"""


def test_train_refuses_an_architecture_over_budget_before_importing_keras(tmp_path) -> None:
    code = TRAIN_OVER_BUDGET.format(spec=str(SPECS / "resnet.net"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)  # fmt: skip
    assert result.stdout.strip() == "1 []", result.stderr
    assert "error[E701]: budget not met (--assert): params < 100K, but params is 771,690" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_python_train_refuses_too() -> None:
    with pytest.raises(netdsl.NetdslError, match="E701"):
        netdsl.train(SMALL, budgets=["params < 10"])


def test_resume_takes_no_budgets(runner, tmp_path) -> None:
    result = runner.invoke(main, ["train", "--resume", str(tmp_path), "--assert", "params < 1M"])
    assert result.exit_code == 2


def test_the_readme_example_is_what_netdsl_prints(runner, monkeypatch) -> None:
    command = "$ netdsl check specs/resnet.net --assert 'params < 500K' --assert 'rf >= 32'\n...\n"
    shown = (ROOT / "README.md").read_text().split(command, 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    result = runner.invoke(main, ["check", "specs/resnet.net", "--assert", "params < 500K", "--assert", "rf >= 32"])
    assert result.exit_code == 1
    assert "\n".join(result.stdout.splitlines()[-3:]) + "\n" + result.stderr == shown


BUDGETED = """input 32x32x3
assert params < 10K
assert rf >= 32
repeat [conv w k3 s2 relu] for w in 16, 32
gap
dense 10 softmax
assert macs <= 300M
"""


def test_assert_lines_in_a_spec(runner, write_spec) -> None:
    spec = write_spec(BUDGETED)
    result = runner.invoke(main, ["check", str(spec)])
    assert result.exit_code == 1
    assert (
        f"{spec}:3:1: error[E701]: budget not met: rf >= 32, but rf is 7 pixels\n3 | assert rf >= 32\n" in result.stderr
    )
    assert result.stderr.count("error[E701]") == 1
    assert " Budgets: params < 10K: 5,418 (5.4 K) ok; rf >= 32: 7 pixels FAILED; macs <= 300M: " in result.stdout
    net = netdsl.parse(BUDGETED)
    assert [(b.metric, b.op, b.limit, b.span.line) for b in net.budgets] == [  # type: ignore[union-attr]
        ("params", "<", 10_000, 2), ("rf", ">=", 32, 3), ("macs", "<=", 300_000_000, 7),
    ]  # fmt: skip
    # the spec's budgets and the command line's are measured together
    both = runner.invoke(main, ["check", "--json", str(spec), "--assert", "layers < 100"])
    assert [b["budget"] for b in json.loads(both.stdout)["budgets"]] == [
        "params < 10K",
        "rf >= 32",
        "macs <= 300M",
        "layers < 100",
    ]


def test_budgets_are_not_part_of_the_architecture() -> None:
    assert netdsl.spec_id(BUDGETED) == netdsl.spec_id(BUDGETED.replace("assert", "# assert"))


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [("assert parms < 2M", 8, "error[E702]: assert: unknown budget 'parms'"),
     ("assert params < 2MB", 17, "error[E702]: assert: 'MB' is not a unit of a count"),
     ("assert activations < 64", 22, "error[E702]: assert: memory needs a unit: '64' what?"),
     ("assert params = 3", 15, "error[E102]: unexpected '='; expected '<', '<=', '==', '>' or '>='"),
     ("assert params < x", 17, "error[E102]: unexpected 'x'; expected a number such as 2M, 300M, 32 or 64MB"),
     ("repeat 2 [assert params < 1M]", 11, "error[E208]: assert is a directive and cannot be inside repeat")],
)  # fmt: skip
def test_a_bad_assert_line_is_located(write_spec, runner, line: str, column: int, message: str) -> None:
    spec = write_spec(f"input 8\n{line}\ndense 4\n")
    result = runner.invoke(main, ["check", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}:2:{column}: {message}" in result.stderr


def test_a_number_run_into_letters_is_still_explained(write_spec, runner) -> None:
    result = runner.invoke(main, ["check", str(write_spec("input 8\ndense 3k\n"))])
    assert "error[E103]: unexpected character '3'" in result.stderr
    assert "'3k' is not a number, a shape such as 32x32x3, or a word" in result.stderr


def test_train_refuses_a_spec_over_its_own_budget(tmp_path) -> None:
    spec = tmp_path / "budgeted.net"
    spec.write_text(BUDGETED)
    code = TRAIN_OVER_BUDGET.format(spec=str(spec)).replace('"--assert", "params < 100K", ', "")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)  # fmt: skip
    assert result.stdout.strip() == "1 []", result.stderr
    assert "budgeted.net:3:1: error[E701]: budget not met: rf >= 32, but rf is 7 pixels" in result.stderr


def test_fmt_spaces_a_comparison() -> None:
    # statements joined by `;` stay on one line (fmt keeps the lines a user wrote)
    assert netdsl.format("input 8\nassert params<2M;assert rf>=3\n") == "input 8\nassert params < 2M; assert rf >= 3\n"
    assert netdsl.format("input 8\nassert params<2M\nassert rf>=3\n") == "input 8\nassert params < 2M\nassert rf >= 3\n"


def test_the_language_pages_example_keeps_its_budgets() -> None:
    page = (ROOT / "docs" / "language.md").read_text()
    example = next(e for e in re.findall(r"```netdsl\n(.*?)```", page, re.S) if "assert" in e)
    results = netdsl.check_budgets(example)
    assert [r.budget.metric for r in results] == ["params", "macs", "rf", "activations"]
    assert all(r.ok for r in results) and next(r for r in results if r.budget.metric == "rf").measured == 31


def test_netdsl_layers_lists_assert_from_the_directive_registry(runner) -> None:
    from netdsl.lower import DIRECTIVES

    output = runner.invoke(main, ["layers"]).output
    assert "assert     a budget that check and train hold the network to\n           e.g. assert params < 2M" in output
    for word, directive in DIRECTIVES.items():
        assert f"{word:10} {directive.summary}" in output
