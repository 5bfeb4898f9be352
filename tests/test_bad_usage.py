"""Options and arguments that make no sense are bad usage (exit 2) before anything is read,
written or trained: NaN and infinite numbers, an empty --data, `emit` over its own spec; and data
that would train on nothing (zero-width images) is refused (exit 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netdsl.cli import main
from netdsl.data import load_dataset
from netdsl.diagnostics import NetdslError

SPEC = "input 8x8x3\nconv 4 k3 relu\ngap\ndense 2 softmax\n"
FLOAT_OPTIONS = (
    "--lr", "--momentum", "--label-smoothing", "--weight-decay", "--validation", "--shift", "--shear", "--zoom",
    "--rotation",
)  # fmt: skip


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["nan", "NaN", "-nan", "inf", "-inf", "1e309"])
def test_non_finite_numbers_are_bad_usage(
    runner: CliRunner, write_spec, tmp_path: Path, option: str, value: str
) -> None:
    out = tmp_path / "run"
    result = runner.invoke(main, ["train", str(write_spec(SPEC)), option, value, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': {value!r} is not a finite number" in result.output
    assert not out.exists()


def test_every_float_option_of_train_is_checked_for_finiteness() -> None:
    """A new float option must be a FiniteRange (the table above then covers it)."""
    import click

    floats = [p for p in main.commands["train"].params if isinstance(p.type, click.FloatRange)]
    assert sorted(f"--{p.name.replace('_', '-')}" for p in floats) == sorted(FLOAT_OPTIONS)
    assert all(type(p.type).__name__ == "FiniteRange" for p in floats)


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_data_source_is_bad_usage(
    runner: CliRunner, write_spec, tmp_path: Path, command: str, value: str
) -> None:
    target = str(write_spec(SPEC)) if command == "train" else str(tmp_path)
    result = runner.invoke(main, [command, target, "--data", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--data': is empty; omit --data for the built-in synthetic data" in result.output


def test_an_empty_data_source_is_refused_by_the_library_too() -> None:
    with pytest.raises(NetdslError, match=r"error\[E501\]: the data source is empty"):
        load_dataset("", (8, 8, 3))


def test_emit_refuses_to_overwrite_its_own_spec(runner: CliRunner, write_spec, tmp_path: Path, monkeypatch) -> None:
    spec = write_spec(SPEC)
    monkeypatch.chdir(tmp_path)
    for output in (str(spec), "spec.net", "./spec.net", f"{tmp_path}/../{tmp_path.name}/spec.net"):
        result = runner.invoke(main, ["emit", str(spec), "-o", output])
        assert result.exit_code == 2, result.output
        assert "is the spec itself; emit would overwrite it" in result.output
        assert spec.read_text(encoding="utf-8") == SPEC
    (tmp_path / "link.net").symlink_to(spec)
    result = runner.invoke(main, ["emit", "link.net", "-o", str(spec)])
    assert result.exit_code == 2 and spec.read_text(encoding="utf-8") == SPEC


@pytest.mark.parametrize("shape", [(20, 8, 0, 3), (20, 0, 8, 3), (20, 0, 0), (20, 8, 8, 0)])
def test_zero_width_images_are_refused(runner: CliRunner, write_spec, tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "empty.npz"
    labels = np.arange(shape[0]) % 2
    np.savez(path, x_train=np.zeros(shape, np.uint8), y_train=labels, x_test=np.zeros(shape, np.uint8), y_test=labels)
    out = tmp_path / "run"
    result = runner.invoke(main, ["train", "-q", str(write_spec(SPEC)), "--data", str(path), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "error[E504]: x_train holds images of " in result.output and ": no pixels" in result.output
    assert not out.exists() or not any(out.iterdir())
