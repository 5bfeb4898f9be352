"""The benchmark harness measures what it says: generated specs, adapted inputs, process samples.

No timing is asserted here (benchmarks are not tests); these check that the benchmarks' inputs
and bookkeeping are right, so the figures in BENCHMARKS.md mean what they claim.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from bench import fmnist, scale
from bench.measure import child_env, run_once, summarize
from tests.conftest import ROOT, SPECS
from tests.helpers import check_in_a_fresh_process


@pytest.mark.parametrize("layers", [1, 2, 3, 10, 100])
def test_generated_specs_have_exactly_the_asked_layers_both_ways(layers: int) -> None:
    flat = netdsl.parse(scale.generate(layers, "flat"))
    repeated = netdsl.parse(scale.generate(layers, "repeat"))
    assert len(flat.layers) == len(repeated.layers) == layers
    assert [layer.kind for layer in flat.layers] == [layer.kind for layer in repeated.layers]
    # One statement is one Keras layer, so "layers" means rows of model.summary() too.
    assert len(netdsl.analyze(flat).layers) == layers + 1  # + the InputLayer


def test_repeat_form_stays_a_few_lines_while_flat_grows() -> None:
    assert scale.generate(10_000, "repeat").count("\n") <= 4
    assert scale.generate(10_000, "flat").count("\n") == 10_002


def test_adapted_spec_takes_fashion_mnist_shape(tmp_path: Path) -> None:
    copy = fmnist.adapted(SPECS / "convnet2.net", tmp_path)
    net = netdsl.load(copy)
    original = netdsl.load(SPECS / "convnet2.net")
    assert net.input_shape == (28, 28, 1)
    assert [layer.model_dump(exclude={"span"}) for layer in net.layers] == [
        layer.model_dump(exclude={"span"}) for layer in original.layers
    ]
    assert net.training == original.training


def test_adapted_leaves_a_spec_already_at_28x28x1_alone(tmp_path: Path) -> None:
    assert fmnist.adapted(SPECS / "fmnist_best.net", tmp_path) == SPECS / "fmnist_best.net"
    assert not list(tmp_path.iterdir())


def test_adapted_refuses_a_spec_without_input(tmp_path: Path) -> None:
    spec = tmp_path / "noinput.net"
    spec.write_text("dense 10 softmax\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no `input` line"):
        fmnist.adapted(spec, tmp_path)


def test_run_once_reports_exit_status_and_the_childs_own_peak_memory() -> None:
    small = run_once([sys.executable, "-c", "pass"])
    big = run_once([sys.executable, "-c", "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096])"])
    failed = run_once([sys.executable, "-c", "raise SystemExit(3)"])
    assert small.returncode == big.returncode == 0 and failed.returncode == 3
    assert big.max_rss_mb > small.max_rss_mb + 150  # the child's high-water mark, not ours
    assert summarize([small, big]).runs == 2


def test_children_may_write_bytecode() -> None:
    assert "PYTHONDONTWRITEBYTECODE" not in child_env()


def test_check_path_imports_no_training_or_plotting_stack() -> None:
    """What keeps `netdsl check` fast: none of numpy, matplotlib, the trainer or Keras is imported."""
    _, modules = check_in_a_fresh_process()
    heavy = {"numpy", "matplotlib", "PIL", "tensorflow", "keras", "netdsl.trainer", "netdsl.data"}
    assert sorted(heavy.intersection(modules)) == []


def test_analyze_stage_reports_the_network_it_measured(tmp_path: Path) -> None:
    spec = tmp_path / "s.net"
    spec.write_text(scale.generate(30, "repeat"), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "bench._stages", "analyze", str(spec)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    numbers = json.loads(out.stdout)
    assert numbers["keras_layers"] == 31
    assert numbers["total_params"] == 10 * (3 * 3 * 16 * 16 + 4 * 16)
    assert numbers["peak_rss_mb"] >= numbers["rss_after_import_mb"] > 0


def test_check_tunes_the_collector_only_while_it_runs(runner) -> None:
    """`netdsl check` collects cycles rarely (faster on big specs) but leaves its caller's setting."""
    import gc

    from netdsl.cli import main

    before = gc.get_threshold()
    result = runner.invoke(main, ["check", str(SPECS / "simple.net")])
    assert result.exit_code == 0
    assert gc.get_threshold() == before


def test_zoo_counts_code_lines_without_blanks_comments_and_the_docstring(tmp_path: Path) -> None:
    from bench import zoo

    source = tmp_path / "m.py"
    source.write_text(
        'import x\n\n\n@export("a")\ndef f(a,\n      b):\n    """Doc\n\n    string."""\n    # a comment\n\n'
        "    y = a  # trailing\n    return y\n\n\ndef g():\n    return 1\n"
    )
    assert zoo.code_lines(source, "f") == 5  # decorator, two signature lines, two statements
    assert zoo.code_lines(source, "g") == 2
    assert zoo.netdsl_lines("resnet50") == (14, 10)
    function, with_helpers = zoo.keras_lines("resnet50")
    assert 0 < function < with_helpers  # ResNet50 alone, then with ResNet and the residual blocks
