"""`netdsl check` from the command line: table, JSON, exit codes, and no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

from netdsl.cli import main
from tests.conftest import ROOT, SPECS
from tests.helpers import check_in_a_fresh_process


def test_check_prints_a_summary_table(runner) -> None:
    result = runner.invoke(main, ["check", str(SPECS / "resnet.net")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert 'Model: "resnet"' in out
    assert "conv2d (Conv2D)" in out and "(None, 32, 32, 10)" in out and "1,480" in out
    assert "add (Add) <- batch_normalization + batch_normalization_1" in out
    assert "Total params: 771,690 (2.94 MB)" in out
    assert "Trainable params: 769,890" in out
    assert "Non-trainable params: 1,800" in out
    assert "Receptive field" in out and "MACs" in out


def test_check_json_single_file(runner) -> None:
    result = runner.invoke(main, ["check", "--json", str(SPECS / "convnet2.net")])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["total_params"], data["trainable_params"], data["non_trainable_params"]) == (156570, 155970, 600)
    assert data["output_shape"] == [None, 10]
    first = data["layers"][1]
    assert {"name", "type", "output_shape", "params", "trainable_params", "non_trainable_params"} <= set(first)
    assert first["name"] == "conv2d" and first["output_shape"] == [None, 32, 32, 10] and first["params"] == 760


def test_check_json_several_files_is_a_list_with_files(runner) -> None:
    files = [str(SPECS / f"{n}.net") for n in ("simple", "convnet", "convnet2", "resnet")]
    result = runner.invoke(main, ["check", "--json", *files])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [d["file"] for d in data] == files
    assert [d["total_params"] for d in data] == [123330, 37490, 156570, 771690]


def test_check_input_option(runner, write_spec) -> None:
    path = write_spec(
        "conv 10 k7 s1; repeat [conv w k3 s2; res w; res w] for w in 20,40,80,160; gmp; dropout .1; dense 10 softmax"
    )
    result = runner.invoke(main, ["check", "--json", "--input", "32x32x3", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["input_shape"] == [None, 32, 32, 3]


def test_bad_spec_exits_1_with_a_located_message(check_spec) -> None:
    path, result = check_spec("input 32x32x3\ncnv 10 k3\n")
    assert result.exit_code == 1
    assert f"{path}:2:1: error[E101]: unknown layer 'cnv'" in result.output
    assert "help: did you mean 'conv'?" in result.output
    assert "Traceback" not in result.output


def test_several_errors_are_counted(check_spec) -> None:
    _, result = check_spec("input 32x32x3\ncnv 10\nconv 0\n")
    assert result.exit_code == 1 and "2 errors" in result.output


def test_one_bad_file_among_good_ones_still_exits_1(runner, write_spec) -> None:
    bad = write_spec("input 8x8x1\nconv 2\nres 4\n")
    result = runner.invoke(main, ["check", str(SPECS / "simple.net"), str(bad)])
    assert result.exit_code == 1
    assert "Total params: 123,330" in result.output and "error[E304]" in result.output


def test_warnings_are_shown_but_exit_0(check_spec) -> None:
    path, result = check_spec("input 8x8x3\ndense 4\n")
    assert result.exit_code == 0
    assert f"{path}:2:1: warning[W402]" in result.output


def test_bad_usage_exits_2(runner, write_spec) -> None:
    assert runner.invoke(main, ["check"]).exit_code == 2
    assert runner.invoke(main, ["check", "does/not/exist.net"]).exit_code == 2
    path = write_spec("flatten")
    result = runner.invoke(main, ["check", "--input", "32xx3", str(path)])
    assert result.exit_code == 2 and "expected a shape such as 32x32x3" in result.output
    assert runner.invoke(main, ["nonsense"]).exit_code == 2


def test_not_utf8_is_a_located_error(runner, tmp_path) -> None:
    path = tmp_path / "latin1.net"
    path.write_bytes(b"input 8x8x1\nconv 4 # caf\xe9\n")
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2:13: error[E103]: the file is not UTF-8 text (byte 0xe9)" in result.output


def test_layers_lists_every_kind(runner) -> None:
    from netdsl.ir import REGISTRY

    result = runner.invoke(main, ["layers"])
    assert result.exit_code == 0
    for kind in REGISTRY:
        assert kind in result.output


def test_check_loads_no_tensorflow_or_keras() -> None:
    printed, modules = check_in_a_fresh_process()
    assert [m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch")] == []
    assert "Total params: 771,690" in printed


def test_console_script_runs() -> None:
    exe = ROOT / ".venv" / "bin" / "netdsl"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "netdsl.cli"]
    result = subprocess.run(
        [*command, "check", "specs/simple.net"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Total params: 123,330" in result.stdout
