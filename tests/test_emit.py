"""`netdsl emit`: the emitted module builds the identical model, and reads like code a person writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main
from netdsl.verify import compare
from tests.conftest import SPECS

SEED_SPECS = ("simple", "convnet", "convnet2", "resnet")


def run_emitted(source: str):
    """Execute an emitted module in a fresh Keras session (its layer names rely on that) and build it."""
    keras = pytest.importorskip("keras")
    keras.backend.clear_session(free_memory=False)
    namespace: dict = {"__name__": "emitted"}
    exec(compile(source, "<emitted>", "exec"), namespace)
    return namespace["build_model"]()


def assert_same_model(net: netdsl.Network, source: str) -> None:
    """Every layer's name, class, output shape, inputs and counts, and the three totals, as the analyzer says."""
    model = run_emitted(source)
    differences = compare(netdsl.analyze(net), model)
    assert not differences, "\n".join(d.message for d in differences) + "\n\n" + source


@pytest.mark.keras
@pytest.mark.parametrize("name", SEED_SPECS)
def test_emitted_seed_specs_build_the_same_model(name: str) -> None:
    net = netdsl.load(SPECS / f"{name}.net")
    assert_same_model(net, netdsl.emit(net))


def test_resnet_reads_like_the_seed_s_code() -> None:
    source = netdsl.emit(netdsl.load(SPECS / "resnet.net"))
    assert "def conv_layer(x, filters):" in source
    assert "def res_layer(x, filters):" in source
    assert '"""res w k3  (' in source and "resnet.net, line 10)" in source
    assert "    return layers.Add()([x, y])" in source
    assert (
        "    for w in (20, 40, 80, 160):\n"
        "        x = conv_layer(x, filters=w)\n"
        "        x = res_layer(x, filters=w)\n"
        "        x = res_layer(x, filters=w)\n"
    ) in source
    assert "kernel_regularizer=regularizers.L2(1e-06)" in source
    assert "name=" not in source.replace("name='resnet'", "")  # Keras's own names, as in the seed
    assert len(source.splitlines()) < 80
    assert "tensorflow" not in source  # plain Keras 3: any backend


def test_emit_needs_no_keras() -> None:
    code = (
        "import sys, netdsl\n"
        f"netdsl.emit(netdsl.load({str(SPECS / 'resnet.net')!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


LOOPS = {
    # nested counted repeats inside a for loop, with the loop value used twice
    "nested": (
        "input 12x12x3\nrepeat [repeat 2 [conv w k3 relu]; maxpool] for w in 4, 8\ngap\ndense 3 softmax",
        ["for w in (4, 8):", "for _ in range(2):"],
    ),
    # a repeat with a count and a variable: each value, then the count (lowering's order)
    "count and values": ("input 8x8x2\nrepeat 2 [conv w; res w] for w in 2, 3\nflatten\ndense 2", ["range(2)"]),
    # the same name bound by an inner loop: the outer value must survive the inner loop
    "shadowing": (
        "input 6\nrepeat [repeat [dense w] for w in 5, 6; dense w relu] for w in 3, 4\ndense 1 sigmoid",
        ["for w in (3, 4):", "for w_2 in (5, 6):", "units=w_2", "units=w, activation='relu'"],
    ),
    # a variable as a repeat count
    "variable count": (
        "input 4x4x1\nrepeat [repeat n [conv 2 k1]] for n in 1, 3\ngmp",
        ["for n in (1, 3):", "range(n)"],
    ),
    # values no loop variable explains (3 and 3x3 both become kernel_size=3): unrolled, still right
    "unrolled": (
        "input 9x9x1\nrepeat [conv 4 kernel=w valid relu] for w in 3, 3x3, 1x2\ngap",
        ["# w = 3 (iteration 1 of 3)", "# w = (1, 2) (iteration 3 of 3)"],
    ),
    # an inner loop whose values follow an outer variable it cannot name: the outer loop unrolls
    "unrolled outer": (
        "input 5\nrepeat [repeat [dense 4 l2=w] for v in 1, 2] for w in 0, 0.5\ndense 1",
        ["# w = 0 (iteration 1 of 2)", "for _ in (1, 2):", "regularizers.L2(0.5)"],
    ),
    # repeat 0 emits nothing; directives inside the program are not layers
    "empty repeat": ("input 3x3x1\nrepeat 0 [conv 3]\nconv 2 valid\ntrain lr=0.1\nflatten", ["padding='valid'"]),
    # rank-generic words on a sequence, post-ops with options, a helper per repeated structure
    "sequence layers": (
        "input 64x8\nrepeat [conv w k3 relu; sepconv w k3 bn momentum=0.9; maxpool 2] for w in 8, 16\ngmp\ndense 2",
        ["layers.Conv1D(", "layers.SeparableConv1D(", "momentum=0.9", "layers.MaxPooling1D(", "for w in (8, 16):"],
    ),
    # a wrapped layer is written inside its wrapper (its loop unrolls: the emitter parametrizes flat arguments)
    "recurrent": (
        "input 30x4\nrepeat [lstm w seq bidir] for w in 8, 16\ngru 4 seq\nconv 2 k3 valid\nupsample 2\ngmp",
        ["layers.Bidirectional(layer=layers.LSTM(units=16, return_sequences=True))(x)", "layers.UpSampling1D(size=2)"],
    ),
    # a merge of a name and identities only assigns the current tensor (found by tests/properties)
    "merge of a name and ids": (
        "input 8x8x3\nconv 3 as later\nadd later [ id | id ]\nconv 2",
        ["x = layers.Add()([later, x, x])"],
    ),
    # a count that is the loop's own variable keeps the variable's name (found by tests/properties)
    "count from the loop variable": (
        "input 8x8x3\nrepeat f [conv 2 k1] for f in 1, 3\ngap",
        ["for f in (1, 3):", "for _ in range(f):"],
    ),
    # a name shadowed inside a loop and read after it keeps its variable (found by tests/properties)
    "name shadowed in a loop": (
        "input 8x8x3\nconv 3 as d2\nrepeat 3 [add d2; conv 3 as d2]\nuse d2\nrelu",
        ["for _ in range(3):", "d2_2 = x", "    x = d2\n"],
    ),
    # a block used in a loop, and an inner loop that runs 0 times in one iteration
    "block in a loop": (
        "input 8x8x3\ndef pair f [ conv f k1 relu; repeat 2 [conv f k3] ]\nrepeat [pair w; repeat n [dense w]] for w, n in (4, 2), (8, 0)\ngap",
        ["for w, n in ((4, 2), (8, 0)):", "    x = pair(x, filters=w)", "for _ in range(n):"],
    ),
    # dense on a 4-D tensor, odd sizes, every pooling kind
    "pools": (
        "input 7x5x2\nmaxpool k3 s1 same\navgpool 2\ndense 3 tanh bn\nmaxpool k1x2 s2x1\ngap\nsoftmax",
        ["MaxPooling2D(pool_size=3, strides=1, padding='same')", "pool_size=(1, 2), strides=(2, 1)"],
    ),
}


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loops_are_kept_when_they_can_be_and_the_model_is_identical(name: str) -> None:
    text, expected = LOOPS[name]
    net = netdsl.parse(text)
    source = netdsl.emit(net)
    for fragment in expected:
        assert fragment in source, source
    assert_same_model(net, source)


@pytest.mark.keras
def test_long_calls_get_one_argument_per_line_and_tuples_stay_whole() -> None:
    net = netdsl.parse("input 9x9x3\nrepeat [conv w k3x5 s1x2 nobias l2=1e-4 relu] for w in 4, 8\ngap")
    source = netdsl.emit(net)
    assert (
        "    x = layers.Conv2D(\n        filters=filters,\n        kernel_size=(3, 5),\n        strides=(1, 2),\n"
    ) in source
    assert "        kernel_regularizer=regularizers.L2(0.0001),\n    )(x)\n" in source
    assert_same_model(net, source)


@pytest.mark.keras
def test_a_network_without_provenance_is_emitted_flat() -> None:
    net = netdsl.parse("input 8x8x3\nrepeat [conv w relu bn] for w in 4, 8\ngmp\ndense 2")
    flat = netdsl.Network.model_validate_json(net.model_dump_json())  # as built in Python: no provenance
    source = netdsl.emit(flat)
    assert "for " not in source.split("def build_model", 1)[1]
    assert "x = conv_layer(x, filters=4)\n    x = conv_layer(x, filters=8)" in source
    assert_same_model(flat, source)


def test_emit_rejects_a_bad_spec_with_a_located_error() -> None:
    with pytest.raises(netdsl.NetdslError) as caught:
        netdsl.emit(netdsl.parse("input 8x8x3\nconv 4\nres 8\n"))
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line) == ("E304", 3)


@pytest.mark.keras
def test_emitted_file_runs_as_a_script_and_prints_the_summary(runner, tmp_path) -> None:
    out = tmp_path / "m.py"
    result = runner.invoke(main, ["emit", str(SPECS / "resnet.net"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote {out}; run it with: python {out}\n"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert 'Model: "resnet"' in run.stdout
    assert "Total params: 771,690" in run.stdout
    assert "Trainable params: 769,890" in run.stdout
    assert "Non-trainable params: 1,800" in run.stdout
    for name in ("conv2d_12", "batch_normalization_11", "add_7", "global_max_pooling2d", "dense"):
        assert name in run.stdout


def test_emit_cli_prints_to_stdout_and_honours_input(runner) -> None:
    result = runner.invoke(main, ["emit", str(SPECS / "simple.net"), "--input", "28x28x1"])
    assert result.exit_code == 0
    assert "inputs = keras.Input(shape=(28, 28, 1))" in result.stdout
    assert "x = dense_layer(x, units=40, activation='relu')" in result.stdout
    assert "31,810 parameters" in result.stdout  # 784*40+40 + 40*10+10


def test_emit_cli_errors(runner, tmp_path, write_spec) -> None:
    missing = runner.invoke(main, ["emit", str(tmp_path / "nope.net")])
    assert missing.exit_code == 1
    assert f"{tmp_path / 'nope.net'}: error[E001]: cannot read" in missing.stderr

    bad = write_spec("input 4x4x3\nconv 8 k5 valid\n")
    result = runner.invoke(main, ["emit", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2:1: error[E303]: conv: conv2d with kernel 5x5 and 'valid' padding" in result.stderr
    assert result.stdout == ""

    unwritable = runner.invoke(main, ["emit", str(SPECS / "simple.net"), "-o", str(tmp_path / "no" / "dir.py")])
    assert unwritable.exit_code == 1
    assert unwritable.stderr == f"error: cannot write {tmp_path / 'no' / 'dir.py'}: No such file or directory\n"

    no_input = write_spec("conv 4 relu\ngap\n", name="no_input.net")
    result = runner.invoke(main, ["emit", str(no_input)])
    assert result.exit_code == 1
    assert "error[E301]: no input shape: start the spec with `input HxWxC`" in result.stderr
    given = runner.invoke(main, ["emit", str(no_input), "--input", "9x9x2"])
    assert given.exit_code == 0 and "keras.Input(shape=(9, 9, 2))" in given.stdout

    usage = runner.invoke(main, ["emit", str(SPECS / "simple.net"), "--input", "3xx"])
    assert usage.exit_code == 2
    assert "expected a shape such as 32x32x3, got '3xx'" in usage.stderr


def test_hostile_names_reach_emitted_code_only_as_string_values(tmp_path: Path) -> None:
    """Issue 14, item 1: a file named to close the docstring and run code, with terminal escapes and bidi
    marks, only changes the values of string literals: the module's code is what a plain name gives."""
    import ast

    spec = "input 8x8x3\ndef blk f [ conv f k3 relu ]\nblk 4\nres 4\ngap\ndense 2 softmax\n"
    hostile = tmp_path / 'a"""; __import__("os").system("touch pwned"); """\x1b[2J\u202e\\.net'
    plain = tmp_path / "plain.net"
    for path in (hostile, plain):
        path.write_text(spec, encoding="utf-8")

    def shape(path: Path) -> str:
        tree = ast.parse(netdsl.emit(netdsl.load(path)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                node.value = "<text>"
        return ast.dump(tree)

    source = netdsl.emit(netdsl.load(hostile))
    assert shape(hostile) == shape(plain)
    assert "\x1b" not in source and "\u202e" not in source  # escaped by repr, not written raw
    assert not any(isinstance(n, ast.Name) and n.id == "__import__" for n in ast.walk(ast.parse(source)))
