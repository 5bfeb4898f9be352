"""Shared fixtures: the repository's paths and a click runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec to a temporary file and return its path."""

    def write(text: str, name: str = "spec.net") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def check_spec(runner: CliRunner, write_spec):
    """`netdsl check` on a spec written to a temporary file: its path and the click result."""
    from netdsl.cli import main

    def check(text: str, name: str = "spec.net") -> tuple[Path, Any]:
        path = write_spec(text, name)
        return path, runner.invoke(main, ["check", str(path)])

    return check
