"""Specs that would explode: each is analysed in bounded time and memory, or refused with a located E207.

The limits themselves are documented in docs/limits.md; these tests pin both the messages and the
fact that refusing is fast (a refused spec must never first do the work it refuses).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netdsl
from netdsl import analysis, lints, syntax
from netdsl.cli import main

lower = importlib.import_module("netdsl.lower")  # `netdsl.lower` is also the package's function


def run_check(runner, path: Path, *options: str):
    """`netdsl check` through click, with the CPU seconds it took (wall time depends on the machine's load)."""
    start = time.process_time()
    result = runner.invoke(main, ["check", str(path), *options])
    return result, time.process_time() - start


EXPLOSIVE = [
    # (spec, exit code, what `netdsl check` says (`t.net` is the file), most CPU seconds)
    ("input 32x32x3\nrepeat 1000000000 [dense 10]\n", 1,
     ["t.net:2:1: error[E207]: repeat expands to 1,000,000,000 statements; netdsl handles at most 250,000"], 1),
    ("input 8\nrepeat 1000 [\n  repeat 1000 [dense 4]\n]\n", 1,  # nested counts multiply
     ["t.net:2:1: error[E207]: repeat expands to 1,000,000 statements"], 1),
    ("input 8\nrepeat 100000000000000000000000000 []\ndense 3\n", 0,  # expands to nothing, instantly
     ["Total params: 27"], 1),
    ("input 8\nrepeat 1000000000 [augment]\ndense 3\n", 1,  # directives count too: no billion-step loop
     ["t.net:2:1: error[E207]: repeat expands to 1,000,000,000 statements"], 1),
    ("input 8\nrepeat 1000000000 [repeat x [dense 2]]\ndense 3\n", 1,  # an empty expansion is still checked
     ["t.net:2:27: error[E205]: repeat: 'x' is not defined"], 1),
    ("input 32x32x3\nflatten\ndense 1000000000000\n", 0, [
        "Total params: 3,073,000,000,000,000 (11179.51 TB)",
        "3072.0 T",  # MACs in tera, not "3072000.0 G"
        "t.net:3:1: warning[W405]: the 3,073,000,000,000,000 float32 parameters need 11,447,817.1 GB",
        "help: the largest layer is dense with 3,073,000,000,000,000 parameters",
    ], 2),
    # Python will not convert integers of over 4,300 digits: refused, located, before parsing
    ("input 8\ndense " + "9" * 5000 + "\n", 1, ["t.net:2:7: error[E201]: a whole number of 5,000 digits; netdsl reads at most 40"], 1),
    ("input 8x" + "9" * 50 + "\n", 1, ["t.net:1:9: error[E201]: a whole number of 50 digits"], 1),
    ("input 8x8x3\nconv 4 k" + "9" * 50 + "\n", 1, ["t.net:2:9: error[E201]: a whole number of 50 digits"], 1),
    ("input 8\ndropout 0." + "0" * 60 + "1\ndense 2\n", 0, ["Total params: 18"], 1),  # a long float is fine
    # sizes past 2**63 elements (int64 indexing): no framework holds them, and their totals would not print
    ("input 99999999999x99999999999x3\nconv 4\n", 1,
     ["t.net:1:1: error[E207]: the input (None, 99999999999, 99999999999, 3) has more than 2**63 elements (75-bit count)"], 1),
    ("input 8\nflatten\ndense 9999999999\ndense 9999999999\n", 1,
     ["t.net:4:1: error[E207]: dense: the kernel (9999999999, 9999999999) has more than 2**63 elements"], 1),
    ("input " + "x".join(["9999999999"] * 30) + "\nflatten\n", 1, ["t.net:1:1: error[E207]: the input"], 1),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "exit_code", "expected", "cpu_seconds"), EXPLOSIVE)
def test_explosive_specs_are_answered_at_once(runner, write_spec, spec, exit_code, expected, cpu_seconds) -> None:
    path = write_spec(spec, "t.net")
    result, seconds = run_check(runner, path)
    assert result.exit_code == exit_code, result.output
    for text in expected:
        assert text.replace("t.net", str(path)) in result.output
    assert seconds < cpu_seconds


def test_no_memory_warning_for_a_model_that_fits(runner) -> None:
    report = netdsl.check(str(Path(__file__).resolve().parent.parent / "specs" / "resnet.net"))
    assert "W405" not in {w.code for w in report.warnings}


def test_the_memory_warning_follows_the_machine(monkeypatch) -> None:
    monkeypatch.setattr(lints, "physical_memory", lambda: 1024**3)
    text = "input 8\ndense 1000\ndense 300000\n"  # 300,309,000 float32 parameters: 1.1 GB
    (warning,) = [w for w in netdsl.analyze(netdsl.parse(text)).warnings if w.code == "W405"]
    assert warning.message.startswith(
        "the 300,309,000 float32 parameters need 1.1 GB, more than this machine's 1.0 GB of memory"
    )
    assert (warning.span.line, warning.span.column) == (3, 1)  # the largest layer
    monkeypatch.setattr(lints, "physical_memory", lambda: None)  # an OS that cannot tell: no guess
    assert not netdsl.analyze(netdsl.parse(text)).warnings


def test_building_a_model_that_cannot_fit_is_refused_before_keras_is_imported(write_spec) -> None:
    path = write_spec("input 32x32x3\nflatten\ndense 1000000000000\n", "b.net")
    code = (
        "import sys, netdsl\n"
        f"net = netdsl.load({str(path)!r})\n"
        "try:\n    netdsl.build_model(net)\n"
        "except netdsl.NetdslError as err:\n    print(err)\n"
        "print('keras imported:', 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "b.net:3:1: error[E306]: cannot build the model: the 3,073,000,000,000,000 float32 parameters" in out.stdout
    assert "keras imported: False" in out.stdout


def test_a_thousand_deep_nesting_is_refused_at_the_first_repeat_too_deep(runner, write_spec) -> None:
    path = write_spec("input 8\n" + "repeat 1 [" * 1000 + "dense 4" + "]" * 1000 + "\n", "n.net")
    result, seconds = run_check(runner, path)
    assert result.exit_code == 1
    assert "n.net:2:1001: error[E207]: repeat is nested more than 100 deep" in result.output  # the 101st repeat
    assert "Traceback" not in result.output
    assert seconds < 2


def test_twenty_thousand_deep_nesting_does_not_overflow_any_stack(write_spec) -> None:
    text = "input 8\n" + "repeat 1 [" * 20_000 + "dense 4" + "]" * 20_000 + "\n"
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.parse(text)
    assert [d.code for d in info.value.diagnostics] == ["E207"]


def test_exactly_the_depth_limit_is_accepted() -> None:
    text = "input 8\n" + "repeat 1 [" * lower.MAX_DEPTH + "dense 4" + "]" * lower.MAX_DEPTH
    assert len(netdsl.parse(text).layers) == 1


def test_a_ten_megabyte_spec_is_refused_at_once_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "huge.net"
    path.write_text("input 8\n" + ("dense 4 relu  # " + "x" * 84 + "\n") * 105_000, encoding="utf-8")
    assert path.stat().st_size > 10 * 2**20
    code = (
        "import resource, runpy, sys\n"
        f"sys.argv = ['netdsl', 'check', {str(path)!r}]\n"
        "try:\n    runpy.run_module('netdsl.cli', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        # VmHWM, not ru_maxrss: Linux folds the forking parent's (pytest's) size into ru_maxrss at exec.
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "    print('rss_mb', int(hwm) // 1024, 'cpu', usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
        "    raise\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert f"{path}:1:1: error[E207]: the spec is 10.1 MB; netdsl reads specs of at most 4 MB" in out.stderr
    assert "Traceback" not in out.stderr
    rss, cpu = out.stderr.split("rss_mb ")[1].split()[0::2]
    assert int(rss) < 300  # read at most 4 MB of it
    assert float(cpu) < 5  # CPU seconds, Python's start-up included: wall time depends on the machine's load


def test_an_endless_device_is_not_read_at_all(runner) -> None:
    result, seconds = run_check(runner, Path("/dev/zero"))
    assert result.exit_code == 1
    assert (
        "/dev/zero: error[E001]: cannot read /dev/zero: not a regular file (it is a character device)" in result.output
    )
    assert seconds < 2


def test_a_text_over_the_byte_limit_is_refused_by_parse_too() -> None:
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.parse("input 8\n#" + "x" * (syntax.MAX_SOURCE_BYTES + 1))
    assert "error[E207]: the spec is 4.0 MB; netdsl reads specs of at most 4 MB" in str(info.value)


def test_too_many_tokens_are_refused_where_the_limit_is_crossed(runner, write_spec, monkeypatch) -> None:
    monkeypatch.setattr(syntax, "MAX_STATEMENT_TOKENS", 10**9)  # the whole spec's limit, not one statement's
    path = write_spec("input 8\nflatten " + "1 " * 600_000 + "\n", "t.net")
    result, seconds = run_check(runner, path)
    assert result.exit_code == 1
    # input, 8, the line break, flatten, then ones: the 500,001st token is the 499,997th one
    assert (
        f"t.net:2:{9 + 2 * 499_996}: error[E207]: the spec has more than 500,000 tokens (words, numbers, symbols and line breaks)"
        in (result.output)
    )
    assert seconds < 5


def test_comments_do_not_count_as_tokens(monkeypatch) -> None:
    monkeypatch.setattr(syntax, "MAX_TOKENS", 5)
    assert netdsl.parse("input 8  # a comment with many many words\ndense 4").layers  # 5 tokens: accepted
    with pytest.raises(netdsl.NetdslError, match=r"<string>:2:9: error\[E207\]: the spec has more than 5 tokens"):
        netdsl.parse("input 8\ndense 4 relu")


def test_a_hundred_thousand_layer_network_is_analysed(runner, write_spec) -> None:
    path = write_spec("input 8\nrepeat 100000 [dense 4]\ndense 2 softmax\n", "deep.net")
    result, seconds = run_check(runner, path, "--max-rows", "4")
    assert result.exit_code == 0, result.output
    assert "Output: (None, 2), 100,003 Keras layers" in result.output  # input, 100,001 dense, softmax
    assert "Total params: 2,000,026" in result.output  # 36 + 99,999 x 20 + 10
    assert seconds < 20


def test_written_out_statements_have_the_same_limit(monkeypatch) -> None:
    monkeypatch.setattr(lower, "MAX_LAYERS", 10)
    assert len(netdsl.parse("input 8\n" + "dense 4\n" * 9).layers) == 9  # input + 9 layers: 10 statements
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.parse("input 8\n" + "dense 4\n" * 10)
    assert "<string>:11:1: error[E207]: the program has more than 10 statements" in str(info.value)


def test_keras_layers_are_bounded_even_when_statements_are_not(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "MAX_KERAS_LAYERS", 5)
    net = netdsl.parse("input 8\ndense 4 relu relu\ndense 4 relu relu\n")  # 1 + 3 + 3 Keras layers
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.analyze(net)
    assert "<string>:3:1: error[E207]: the network has more than 5 Keras layers" in str(info.value)


def test_a_statement_with_nine_thousand_bad_arguments_stops_at_fifty_errors() -> None:
    start = time.process_time()  # (10,000 arguments are refused whole: test_fastparse.py)
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.parse("input 8\ndense 4 " + "1 " * 9_000)
    assert len(info.value.diagnostics) == lower.MAX_ERRORS == 50
    assert info.value.diagnostics[0].message == "dense: unexpected value '1' (positional arguments: units)"
    assert time.process_time() - start < 5  # linear: the duplicate check is a set, and lowering stops at 50
