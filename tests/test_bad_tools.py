"""The design tools under attack (round three): `netdsl runs` over tampered run directories.

`netdsl runs` read metrics.json without its schema, so a tampered status (`completed` with an escape
sequence), an accuracy of 1e308 or NaN, negative epochs and a spec id that is no spec id were listed
as if a run had measured them; they are now `damaged: <why>`, as every other damaged file is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main

SPEC = "input 8\ndense 2 softmax\n"


def make_run(root: Path, name: str, config: dict | None = None, metrics: str | None = None) -> Path:
    """A run directory written by hand (no training): spec.net, config.json and maybe metrics.json."""
    path = root / name
    path.mkdir(parents=True)
    (path / "spec.net").write_text(SPEC)
    (path / "config.json").write_text(json.dumps({"training": {}, "name": "m", **(config or {})}))
    if metrics is not None:
        (path / "metrics.json").write_text(metrics)
    return path


TAMPERED = [
    ('{"status": "completed\\u001b[31m", "epochs": 3}', "status is not valid"),
    ('{"status": "completed", "epochs": -5}', "epochs is not valid"),
    ('{"status": "completed", "epochs": 1, "test_accuracy": 1e308}', "test_accuracy is not valid"),
    ('{"status": "completed", "epochs": 1, "test_accuracy": NaN}', "test_accuracy"),
    ('{"status": "completed", "epochs": 1, "train_seconds": -1}', "train_seconds is not valid"),
    ('{"status": "completed", "epochs": 1, "best_val_accuracy": "high"}', "best_val_accuracy"),
]


@pytest.mark.parametrize(("metrics", "why"), TAMPERED)
def test_a_tampered_metrics_file_is_listed_as_damaged(tmp_path: Path, metrics: str, why: str) -> None:
    make_run(tmp_path, "run", metrics=metrics)
    (summary,) = netdsl.list_runs(tmp_path)
    assert summary.status.startswith("damaged: ") and why in summary.status
    assert summary.test_accuracy is None and summary.epochs is None


@pytest.mark.parametrize("spec_id", ["\x1b[31mid", "12345", 12345, "ABCDEF123456", "abc"])
def test_a_recorded_spec_id_must_be_one(tmp_path: Path, spec_id: object) -> None:
    make_run(tmp_path, "run", config={"spec_id": spec_id})
    (summary,) = netdsl.list_runs(tmp_path)
    assert summary.status.startswith("damaged: ") and "spec_id" in summary.status


def test_a_sound_hand_made_run_is_listed_and_escaped(tmp_path: Path, runner) -> None:
    make_run(tmp_path, "good\x1b[2J", config={"spec_id": "abcdef012345", "data": "\u202edata"},
             metrics='{"status": "completed", "epochs": 3, "test_accuracy": 0.75, "train_seconds": 12}')  # fmt: skip
    (summary,) = netdsl.list_runs(tmp_path)
    assert (summary.status, summary.epochs, summary.test_accuracy, summary.spec_id) == (
        "completed",
        3,
        0.75,
        "abcdef012345",
    )
    result = runner.invoke(main, ["runs", str(tmp_path)])
    assert result.exit_code == 0 and "\x1b" not in result.output and "\u202e" not in result.output
    assert "0.7500" in result.output and "12 s" in result.output


# ---------------------------------------------------------------- --devices (issue 15)


@pytest.mark.parametrize("devices", [0, -1, 65, 10**22, 2.5, "3"])
def test_a_device_count_out_of_range_is_e526_before_any_engine_starts(devices: object) -> None:
    """`--devices 99999999999999999999999` overflowed TensorFlow (a traceback); a count past MAX_DEVICES
    would have made that many simulated devices. The Python API takes the same counts as the CLI."""
    from netdsl.trainer.backends import BACKENDS
    from netdsl.trainer.distribute import MAX_DEVICES, before_import

    with pytest.raises(netdsl.NetdslError) as info:
        before_import(BACKENDS["tensorflow"], devices, None)
    assert info.value.diagnostics[0].code == "E526" and f"from 1 to {MAX_DEVICES}" in str(info.value)
    before_import(BACKENDS["tensorflow"], MAX_DEVICES, None)  # the largest count is accepted


def test_a_split_smaller_than_the_devices_is_e526() -> None:
    """1 validation image over 2 devices was a TensorFlow InvalidArgumentError after the first epoch."""
    from netdsl.trainer.distribute import Parallel, check_splits

    two = Parallel("tf.distribute.MirroredStrategy", ["/cpu:0", "/cpu:1"], simulated=True)
    check_splits(two, {"train": 13, "valid": 2, "test": 0})
    with pytest.raises(netdsl.NetdslError) as info:
        check_splits(two, {"train": 13, "valid": 1, "test": 2})
    assert "the valid split has 1 image, fewer than the 2 devices" in str(info.value)


def test_a_last_partial_batch_is_cut_to_a_multiple_of_the_devices() -> None:
    """JAX cannot split 5 images over 2 devices (IndivisibleError at the end of the first epoch)."""
    import numpy as np

    pytest.importorskip("tensorflow")
    from netdsl.ir import Augment
    from netdsl.trainer.head import Head
    from netdsl.trainer.pipeline import pipeline

    def sizes(count: int, replicas: int) -> list[int]:
        x, y = np.zeros((count, 4, 4, 1), np.uint8), np.zeros(count, np.int64)
        data = pipeline(x, y, 4, Head(2, "softmax", None), training=False, augment=Augment(), seed=0, replicas=replicas)
        return [int(batch_x.shape[0]) for batch_x, _ in data]

    assert sizes(7, 1) == [4, 3]
    assert sizes(7, 2) == [4, 2] and sizes(5, 2) == [4] and sizes(8, 2) == [4, 4]


# ---------------------------------------------------------------- netdsl draw


def test_a_picture_graphviz_cannot_lay_out_in_time_is_e207(tmp_path: Path, runner, monkeypatch) -> None:
    """1,000 boxes merged four times (4,000 edges between far ranks) kept `dot` busy for hours: 5,000 boxes
    do not bound its layout. dot now runs under a CPU limit (here 1 s instead of DOT_CPU_SECONDS)."""
    import shutil
    import sys

    draw = sys.modules["netdsl.draw"]  # the module (netdsl.draw, the attribute, is the function)
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    monkeypatch.setattr(draw, "DOT_CPU_SECONDS", 1)
    names = " ".join(f"n{i}" for i in range(1000))
    text = "input 8\n" + "".join(f"dense 8 as n{i}\n" for i in range(1000))
    text += "".join(f"add {names} as m{k}\n" for k in range(4)) + "add m0 m1 m2\n"
    spec = tmp_path / "edges.net"
    spec.write_text(text)
    result = runner.invoke(main, ["draw", str(spec), "-o", str(tmp_path / "edges.svg")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error[E207]: Graphviz did not lay out the picture within 1 s of CPU" in result.output
    assert not (tmp_path / "edges.svg").exists()
    assert "netdsl.draw: " in netdsl.draw(spec)._repr_html_()  # a notebook shows the message
    result = runner.invoke(main, ["draw", str(spec), "-o", str(tmp_path / "edges.dot")])  # the source needs no dot
    assert result.exit_code == 0 and (tmp_path / "edges.dot").read_text().startswith("digraph netdsl {")


def test_fmt_of_a_symlink_formats_the_file_it_names(tmp_path: Path, runner) -> None:
    """`netdsl fmt link.net` put a regular file in the link's place and left the spec itself unformatted."""
    real = tmp_path / "real.net"
    real.write_text("input 8\ndense   4\n")
    link = tmp_path / "link.net"
    link.symlink_to(real.name)
    result = runner.invoke(main, ["fmt", str(link)])
    assert result.exit_code == 0 and f"reformatted {link}" in result.output
    assert link.is_symlink() and real.read_text() == "input 8\ndense 4\n"


def test_a_spec_file_with_a_byte_order_mark_is_read(tmp_path: Path, runner) -> None:
    """Notepad's UTF-8 files start with a BOM, which was E103 at 1:1; columns count without it."""
    spec = tmp_path / "bom.net"
    spec.write_bytes(b"\xef\xbb\xbfinput 8\ndense 4 rleu\n")
    result = runner.invoke(main, ["check", str(spec)])
    assert result.exit_code == 1 and f"{spec}:2:9: error[E202]: dense: unknown argument 'rleu'" in result.output
    spec.write_bytes(b"\xef\xbb\xbfinput  8\ndense 4\n")
    assert netdsl.load(spec).input_shape == (8,)
    assert runner.invoke(main, ["fmt", str(spec)]).exit_code == 0 and spec.read_bytes() == b"input 8\ndense 4\n"
