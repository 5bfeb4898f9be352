"""One spec loader for every entry point, one spelling of the training vocabulary, and the layering that
keeps the analyzer free of transfer policy, the compiler and the emitter (issue 10, items 1, 5 and 8)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from netdsl.diagnostics import NetdslError
from tests.conftest import ROOT

TEXT = "input 4; dense 2 softmax"


def spec_forms(tmp_path: Path) -> dict[str, object]:
    """The same spec as text, as a path string, as a Path and as a Network (the file is named `model`,
    the name a spec given as text gets, so every form builds the same model)."""
    path = tmp_path / "model.net"
    path.write_text(TEXT, encoding="utf-8")
    return {"text": TEXT, "path str": str(path), "Path": path, "Network": netdsl.parse(TEXT)}


def test_check_emit_and_train_accept_the_same_spec_forms(tmp_path: Path) -> None:
    forms = spec_forms(tmp_path)
    reports = {name: netdsl.check(spec) for name, spec in forms.items()}  # type: ignore[arg-type]
    assert {(r.output_shape, r.total_params) for r in reports.values()} == {((None, 2), 10)}
    bodies = {name: netdsl.emit(spec).split('"""', 2)[2] for name, spec in forms.items()}  # type: ignore[arg-type]
    assert len(set(bodies.values())) == 1 and "layers.Dense(units=2)" in bodies["text"]
    for name, spec in forms.items():  # the spec is read and analysed; the data (3 classes) then does not fit
        with pytest.raises(NetdslError) as caught:
            netdsl.train(spec, "synthetic:count=30,classes=3", out=tmp_path / name, echo=lambda line: None)
        (diagnostic,) = caught.value.diagnostics
        assert (diagnostic.code, diagnostic.message) == (
            "E506",
            "the head has 2 units (2 classes) but synthetic has 3 classes",
        ), name
        assert not (tmp_path / name).exists()


def test_a_missing_spec_file_is_E001_everywhere(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.net")
    for call in (netdsl.check, netdsl.emit, lambda spec: netdsl.train(spec, echo=lambda line: None)):
        with pytest.raises(NetdslError) as caught:
            call(missing)
        assert caught.value.diagnostics[0].code == "E001"
        assert caught.value.diagnostics[0].message.startswith(f"cannot read {missing}")


def test_training_vocabulary_is_spelled_once() -> None:
    """The trainer's tables cover exactly the IR's names; the CLI's choices and options come from the IR."""
    from netdsl.cli import main
    from netdsl.ir import AUGMENT_FIELDS, OPTIMIZERS, SCHEDULES, Augment, TrainConfig
    from netdsl.trainer.optimize import OPTIMIZER_BUILDERS, SCHEDULE_BUILDERS
    from netdsl.trainer.pipeline import AUGMENT_LAYERS

    assert tuple(OPTIMIZER_BUILDERS) == OPTIMIZERS == ("adam", "adamw", "sgd", "rmsprop")
    assert tuple(SCHEDULE_BUILDERS) == SCHEDULES == ("constant", "step", "cosine", "onecycle")
    assert tuple(AUGMENT_LAYERS) == AUGMENT_FIELDS == tuple(Augment.model_fields)
    options = {param.name: param for param in main.commands["train"].params}
    assert tuple(options["optimizer"].type.choices) == OPTIMIZERS
    assert tuple(options["schedule"].type.choices) == SCHEDULES
    assert all(options[name].help == Augment.model_fields[name].description for name in AUGMENT_FIELDS)
    rotation, shift = options["rotation"].type, options["shift"].type  # the IR's bounds: le=1, lt=1
    assert (rotation.max, rotation.max_open, shift.max, shift.max_open) == (1, False, 1, True)
    for name in OPTIMIZERS:
        assert netdsl.parse(f"input 4\ndense 2\ntrain {name}").training == TrainConfig(optimizer=name)


@pytest.mark.keras
def test_every_optimizer_and_schedule_builds() -> None:
    keras = pytest.importorskip("keras")
    from netdsl.ir import OPTIMIZERS, SCHEDULES
    from netdsl.trainer.config import Phase
    from netdsl.trainer.optimize import make_optimizer

    for optimizer in OPTIMIZERS:
        for schedule in SCHEDULES:
            built = make_optimizer(keras, Phase(1, 2, optimizer, 0.1, schedule), 10)
            assert type(built).__name__.lower() == optimizer


# ---------------------------------------------------------------- layering

LOWER_THAN_TRANSFER = ("analysis", "compile", "emit", "verify", "render", "lower", "syntax", "ir", "spec", "runs")
ABOVE_THEM = ("netdsl.transfer", "netdsl.trainer", "netdsl.cli")
PACKAGE_LEVEL = {f"netdsl.{name}" for name in ("analysis", "compile", "emit", "spec", "runs", "parse", "analyze",
                                                "build_model", "load")}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_transfer_policy_sits_above_the_analyzer_and_the_layers() -> None:
    """No layer file, and none of the stages below transfer, imports transfer, the trainer or the CLI."""
    package = ROOT / "netdsl"
    files = [package / f"{name}.py" for name in LOWER_THAN_TRANSFER] + sorted((package / "layers").glob("*.py"))
    for path in files:
        upward = {m for m in imported_modules(path) if m.startswith(ABOVE_THEM)}
        assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}"
    for path in sorted((package / "layers").glob("*.py")):  # layers import only the IR, the ops and data
        assert not imported_modules(path) & PACKAGE_LEVEL, path.name


def test_importing_the_analyzer_loads_neither_the_compiler_nor_the_emitter() -> None:
    code = "import sys, netdsl.analysis\nprint(sorted(m for m in sys.modules if m.startswith('netdsl')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    loaded = ast.literal_eval(out.stdout.strip())
    assert "netdsl.analysis" in loaded
    assert not {"netdsl.compile", "netdsl.emit", "netdsl.trainer"} & set(loaded), loaded
    assert netdsl.emit.__class__.__name__ == "function"  # not replaced by the module of the same name
