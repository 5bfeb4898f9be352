"""Issue 14's third fuzzer: random damage to each file of a finished run, then every command that reads a
run (evaluate, predict, train --resume, runs, check of its spec). Each answer must be exit 0/1/2 with a
coded error, no traceback, no raw control character, within a CPU and a wall-clock bound, and nothing
may be written outside the run's copy. The run is trained once, for real; `--resume` stubs only the fit.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.sandbox import HOSTILE, SPEC, invoke, listing, no_fitting
from tests.fuzz.test_fuzz_cli import LONG

pytestmark = pytest.mark.keras

FUZZ = settings(
    max_examples=400 if LONG else 60,
    derandomize=not LONG,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of one epoch: spec, config, state, history, metrics, weights, classes."""
    import numpy as np

    root = tmp_path_factory.mktemp("finished")
    (root / "s.net").write_text(SPEC, encoding="utf-8")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    y = np.arange(32) % 2
    np.savez(root / "d.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    from PIL import Image

    Image.fromarray(x[0]).save(root / "i.png")
    invoke(["train", "s.net", "--data", "d.npz", "--out", "run", "--seed", "1", "-q"], root)
    assert (root / "run" / "config.json").is_file()
    return root


def _json_values() -> st.SearchStrategy[object]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20),
                       st.just(HOSTILE), st.just("x" * 100_000))  # fmt: skip
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=12)  # fmt: skip


@st.composite
def damage(draw: st.DrawFn, files: list[str]) -> tuple[str, str, object]:
    """(file, how, payload): one file of the run, and what is done to it."""
    name = draw(st.sampled_from(files))
    how = draw(st.sampled_from(["truncate", "bytes", "json", "deep", "delete", "directory", "fifo", "key"]))
    payload: object = None
    if how == "truncate":
        payload = draw(st.floats(0, 1))
    elif how == "bytes":
        payload = draw(st.binary(max_size=64))
    elif how in ("json", "key"):
        payload = draw(_json_values())
    return name, how, payload


def apply(run: Path, name: str, how: str, payload: object) -> None:
    path = run / name
    if how == "truncate" and path.is_file():
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * payload)])  # type: ignore[operator]
    elif how == "bytes":
        path.write_bytes(payload)  # type: ignore[arg-type]
    elif how == "json":
        path.write_text(json.dumps(payload), encoding="utf-8")
    elif how == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif how == "key" and path.suffix == ".json":
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(content, dict) and content:
            content[sorted(content)[len(str(payload)) % len(content)]] = payload
            path.write_text(json.dumps(content), encoding="utf-8")
    elif how == "delete" and path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif how == "directory":
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        path.mkdir()
    elif how == "fifo":
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        os.mkfifo(path)


COMMANDS = [
    lambda run: ["evaluate", str(run)],
    lambda run: ["predict", str(run), "i.png"],
    lambda run: ["train", "--resume", str(run), "-q"],
    lambda run: ["runs", str(run.parent)],
    lambda run: ["check", str(run / "spec.net")],
]


@FUZZ
@given(data=st.data(), command=st.sampled_from(range(len(COMMANDS))))
def test_damaged_run_directories_are_answered_cleanly(
    finished_run: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, data, command: int
) -> None:
    files = sorted(p.name for p in (finished_run / "run").iterdir())
    name, how, payload = data.draw(damage(files))
    box = tmp_path_factory.mktemp("box")
    run = box / "runs" / "run"
    shutil.copytree(finished_run / "run", run)
    for data_file in ("d.npz", "i.png"):  # what evaluate and predict read besides the run
        shutil.copy(finished_run / data_file, box / data_file)
    apply(run, name, how, payload)
    no_fitting(monkeypatch)  # `--resume` of an intact run would train again: everything but the fit is real
    before_root, before_box = listing(finished_run), listing(box)
    invoke(COMMANDS[command](run), box)
    assert listing(finished_run) == before_root and listing(box) == before_box  # nothing written beside the run
