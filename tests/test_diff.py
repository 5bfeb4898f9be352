"""`netdsl diff` / `netdsl.diff`: two networks aligned by structure, with per-row and total changes."""

from __future__ import annotations

import json

import pytest

import netdsl
from netdsl.cli import main
from netdsl.diff import Diff
from tests.conftest import SPECS

CONVNET = (SPECS / "convnet.net").read_text()
WIDER = CONVNET.replace("gmp\n", "conv 80 k3 relu bn\ngmp\ndropout .2\n")  # a block and a dropout inserted
RESNET = (SPECS / "resnet.net").read_text()
DEEPER = RESNET.replace("    res w k3\n    res w k3\n", "    res w k3\n    res w k3\n    res w k3\n")  # 3 res per stage


def changes(diff: Diff) -> list[tuple[str, str | None, str | None]]:
    return [(row.change, row.a.name if row.a else None, row.b.name if row.b else None) for row in diff.rows]


def test_a_network_against_itself_is_all_same() -> None:
    result = netdsl.diff(SPECS / "resnet.net", RESNET)
    assert result.same_architecture
    assert result.counts == {"same": 51, "changed": 0, "inserted": 0, "deleted": 0}
    assert all(total.delta == 0 for total in result.totals.values())


def test_an_inserted_block_is_inserted_rows_and_the_rest_still_pairs() -> None:
    result = netdsl.diff(CONVNET, WIDER)
    assert not result.same_architecture
    assert [c for c in changes(result) if c[0] != "same"] == [
        ("inserted", None, "conv2d_3"), ("inserted", None, "activation_3"),
        ("inserted", None, "batch_normalization"), ("inserted", None, "dropout"),
    ]  # fmt: skip
    # rows after the insertion pair up although Keras renamed them
    assert ("same", "activation_3", "activation_4") in changes(result)
    assert ("same", "dense", "dense") in changes(result)
    conv = next(row for row in result.rows if row.b and row.b.name == "conv2d_3")
    assert conv.params == 80 * 80 * 9 + 80 and conv.macs == 3 * 3 * 80 * 9 * 80
    assert result.totals["params"].model_dump() == {"a": 37_490, "b": 95_490, "delta": 58_000}
    assert result.totals["non_trainable_params"].delta == 160  # the batch norm's moving mean and variance
    assert result.totals["macs"].delta == 518_400
    assert result.totals["layers"].model_dump() == {"a": 10, "b": 14, "delta": 4}


def test_a_removed_block_is_deleted_rows() -> None:
    result = netdsl.diff(WIDER, CONVNET)
    assert [c[0] for c in changes(result)].count("deleted") == 4
    assert result.counts["inserted"] == result.counts["changed"] == 0
    assert result.totals["params"].delta == -58_000


def test_one_more_residual_block_per_stage() -> None:
    result = netdsl.diff(RESNET, DEEPER)
    inserted = [row.b for row in result.rows if row.change == "inserted"]
    assert [row.type for row in inserted] == ["Conv2D", "Activation", "BatchNormalization", "Add"] * 4
    assert result.counts["deleted"] == 0
    assert result.counts["same"] + result.counts["changed"] == 51
    # each stage's third res: 3x3 convolution without bias plus a batch norm, at widths 20, 40, 80, 160
    assert result.totals["params"].delta == sum(9 * w * w + 4 * w for w in (20, 40, 80, 160)) == 307_200
    # the layers after a new 3x3 block see further: their receptive fields grow
    stem_changes = [row.receptive_field for row in result.rows if row.change == "changed" and row.receptive_field]
    assert stem_changes and all(delta > 0 for delta in stem_changes)


def test_a_changed_width_pairs_every_row() -> None:
    result = netdsl.diff(CONVNET, CONVNET.replace("20, 40", "32, 40"))
    assert result.counts["inserted"] == result.counts["deleted"] == 0
    first, second = (row for row in result.rows if row.a and row.a.type == "Conv2D" and row.change == "changed")
    assert first.params == (27 * 32 + 32) - (27 * 20 + 20) == 336
    assert second.params == 40 * 9 * (32 - 20) == 4_320
    assert first.b.output_shape == (None, 15, 15, 32)  # type: ignore[union-attr]


def test_the_table(runner, write_spec) -> None:
    wider = write_spec(WIDER, "wider.net")
    result = runner.invoke(main, ["diff", str(SPECS / "convnet.net"), str(wider)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0] == f"--- {SPECS / 'convnet.net'}  (spec id 3d1613a7acb9): 37,490 params, 734.3 K MACs, 10 Keras layers"
    )
    assert lines[1].startswith(f"+++ {wider}  (spec id {netdsl.spec_id(wider)}): 95,490 params")
    inserted = [line for line in lines if line.startswith("+ ")]
    assert len(inserted) == 4 and "conv2d_3 (Conv2D)" in inserted[0] and "+57,680" in inserted[0]
    assert any(line.strip() == "..." for line in lines)  # unchanged rows far from a change are folded
    assert " Total params: 37,490 -> 95,490 (+58,000)" in lines
    assert " Output: (None, 10) (same)" in lines
    assert lines[-1] == " Rows: 10 same, 0 changed, 4 inserted, 0 deleted"
    every = runner.invoke(main, ["diff", "--all", str(SPECS / "convnet.net"), str(wider)])
    every_lines = every.output.splitlines()
    assert not any(line.strip() == "..." for line in every_lines)
    assert len(every_lines) == 2 + 1 + 14 + 7  # the two sides, the header, every row, the totals


def test_json_for_tools(runner, write_spec) -> None:
    wider = write_spec(WIDER, "wider.net")
    result = runner.invoke(main, ["diff", "--json", str(SPECS / "convnet.net"), str(wider)])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["a"]["spec_id"] == "3d1613a7acb9" and data["b"]["file"] == str(wider)
    assert data["same_architecture"] is False
    assert len(data["rows"]) == 14
    assert {row["change"] for row in data["rows"]} == {"same", "inserted"}
    assert data["rows"][-3]["b"]["name"] == "dropout" and data["rows"][-3]["a"] is None
    assert data["totals"]["macs"] == {"a": 734_300, "b": 1_252_700, "delta": 518_400}


def test_exit_codes(runner, write_spec, tmp_path) -> None:
    bad = write_spec("input 8x8x3\ncnv 8\n", "bad.net")
    worse = write_spec("input 8x8x3\ndense 0\n", "worse.net")
    result = runner.invoke(main, ["diff", str(bad), str(worse)])
    assert result.exit_code == 1
    assert "bad.net:2:1: error[E101]" in result.output and "worse.net:2:7: error[E201]" in result.output
    assert runner.invoke(main, ["diff", str(SPECS / "convnet.net"), str(bad)]).exit_code == 1
    assert runner.invoke(main, ["diff", str(SPECS / "convnet.net")]).exit_code == 2
    assert runner.invoke(main, ["diff", str(SPECS / "convnet.net"), str(tmp_path / "missing.net")]).exit_code == 2
    shape_error = write_spec("input 8x8x3\nconv 8 k3 s2 valid\nconv 8 k5 valid\n", "small.net")
    result = runner.invoke(main, ["diff", str(SPECS / "convnet.net"), str(shape_error)])
    assert result.exit_code == 1 and "error[E303]" in result.output


def test_from_python_with_networks_and_an_input_override() -> None:
    a, b = netdsl.load(SPECS / "convnet.net"), netdsl.parse(WIDER)
    result = netdsl.diff(a, b, input_shape=(64, 64, 3))
    assert result.rows[0].a.output_shape == (None, 64, 64, 3)  # type: ignore[union-attr]
    assert "Rows:" in result.text() and json.loads(result.to_json())["rows"]
    with pytest.raises(netdsl.NetdslError, match="E101"):
        netdsl.diff(a, "input 4\ncnv 3")


def test_huge_differing_stretches_stay_fast() -> None:
    # 30,000 rows each, every one changed and shifted by one inserted layer: linear head/tail matching
    a = netdsl.parse("input 8x8x4\nrepeat 15000 [conv 4 k3 relu]\ngap\ndense 2")
    b = netdsl.parse("input 8x8x4\ndense 3\nrepeat 15000 [conv 5 k3 relu]\ngap\ndense 2")
    result = netdsl.diff(a, b)
    assert result.counts == {"same": 1, "changed": 30_002, "inserted": 1, "deleted": 0}


def test_the_readme_example_is_what_netdsl_prints(runner, monkeypatch) -> None:
    readme = (SPECS.parent / "README.md").read_text()
    shown = readme.split("$ netdsl diff specs/convnet.net specs/convnet2.net\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(SPECS.parent)
    result = runner.invoke(main, ["diff", "specs/convnet.net", "specs/convnet2.net"])
    assert result.exit_code == 0
    assert result.output == shown


def test_one_more_block_in_a_graph_network() -> None:
    resnet20 = (SPECS / "resnet20.net").read_text()
    resnet22 = resnet20.replace("repeat 3 [ block 16 ]", "repeat 4 [ block 16 ]")
    assert resnet22 != resnet20
    result = netdsl.diff(resnet20, resnet22)
    inserted = [row.b.type for row in result.rows if row.change == "inserted"]  # type: ignore[union-attr]
    # one basic block: conv-bn-relu, conv-bn, the add of its shortcut, relu; every later row pairs up
    assert inserted == [
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "Conv2D",
        "BatchNormalization",
        "Add",
        "Activation",
    ]
    assert result.counts["deleted"] == 0 and result.counts["same"] + result.counts["changed"] == 74
    assert result.totals["params"].delta == 2 * (9 * 16 * 16 + 4 * 16) == 4_736
    # the rows after it see further: only their receptive fields changed
    assert all(row.params == 0 and row.macs == 0 for row in result.rows if row.change == "changed")
