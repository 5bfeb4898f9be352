"""The error catalogue: every code's message, location and exit code; syntax-error recovery; trust.

Each spec-level code has one row in CATALOGUE with the exact first line `netdsl check` prints.
The data, training and verification codes (E5xx, E601, ...) are produced by their own modules'
tests; `test_every_code_is_produced_by_some_test` holds the whole set to that.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main
from netdsl.diagnostics import CODES

TESTS = Path(__file__).resolve().parent

CATALOGUE: list[tuple[str, str, str]] = [
    # (code, spec, the first line of the message; `t.net` is the spec's file)
    ("E101", "input 32x32x3\ncnv 10 k3\n", "t.net:2:1: error[E101]: unknown layer 'cnv'"),
    ("E102", "input 32x32x3\ndense 10 =\n", "t.net:2:10: error[E102]: unexpected '='; expected"),
    ("E103", "input 32x32x3\ndense 10 @\n", "t.net:2:10: error[E103]: unexpected character '@'"),
    ("E104", "input 32x32x3\nrepeat 2 [dense 10\n", "t.net:2:19: error[E104]: unexpected end of input; expected"),
    ("E201", "input 32x32x3\nconv 10 k3 s0\n", "t.net:2:12: error[E201]: conv: stride must be a positive integer, got 0"),
    ("E202", "input 32x32x3\ndense 10 rleu\n", "t.net:2:10: error[E202]: dense: unknown argument 'rleu'"),
    ("E203", "input 32x32x3\nconv k3\n", "t.net:2:1: error[E203]: conv: missing filters"),
    ("E204", "input 32x32x3\nconv 10 k3 k5\n", "t.net:2:12: error[E204]: conv: kernel is given twice"),
    ("E205", "input 32x32x3\nrepeat [conv w k3] for v in 8, 16\n", "t.net:2:14: error[E205]: conv: 'w' is not defined"),
    ("E206", "input 0x32x3\nconv 10\n", "t.net:1:7: error[E206]: input: expected a shape of positive sizes such as 32x32x3"),
    ("E207", "input 8\nrepeat 1000000000 [dense 10]\n", "t.net:2:1: error[E207]: repeat expands to 1,000,000,000 statements"),
    ("E208", "input 8\nrepeat 2 [dense 3; train epochs=3]\n", "t.net:2:20: error[E208]: train is a directive and cannot be inside repeat"),
    ("E209", "input 32x32x3\nconv 16 k3 as stem\nadd stme\n", "t.net:3:5: error[E209]: unknown name 'stme'"),
    ("E210", "input 8\ndef stack f [dense f; stack f]\nstack 4\n", "t.net:2:23: error[E210]: block 'stack' uses itself (stack -> stack)"),
    ("E211", "input 8\ndense 8/0\n", "t.net:2:7: error[E211]: cannot compute (8/0): division by zero"),
    ("E212", "input 8\nrepeat [dense u] for u, v in (1, 2), (3, 4, 5)\n", "t.net:2:38: error[E212]: repeat: 2 variables (u, v) but 3 values in (3, 4, 5)"),
    ("E216", "def t x [add x]\ninput 8\ndense 8 as z\nt z shared\n", "t.net:4:1: error[E216]: shared block 't' is given the tensor 'z' as 'x'"),
    ("E315", "input 8\nadd\n", "t.net:2:1: error[E315]: add needs branches or names to merge"),
    ("E316", "def t [conv 8 k3; gap]\ninput 8x8x1 as a\ninput 9x9x1 as b\nuse a\nt shared as x\nuse b\nt shared\ncat x\n", "t.net:7:1: error[E316]: shared block 't' is applied to (None, 9, 9, 1) here, but to (None, 8, 8, 1) at its first use (line 5)"),
    ("E317", "def t f [dense f]\ninput 8\nt 4 shared\nt 5 shared\n", "t.net:4:1: error[E317]: shared uses of block 't' need the same arguments: f=5 here, f=4 at 3:1"),
    ("E318", "def t [id]\ninput 8\nt shared\n", "t.net:3:1: error[E318]: block: shared block 't' has no layers"),
    ("E319", "input 4x8\ntd [dense 4 as a]\n", "t.net:2:1: error[E319]: td: td wraps each layer inside in a TimeDistributed: a name (`as a`) cannot be inside it"),
    ("W406", "input 8\ndense 4 as a\ndense 3\nuse a\ndense 2\n", "t.net:3:1: warning[W406]: 1 layer reaches no output and is left out of the model: dense_1"),
    ("W407", "input 8\ndense 4 as a\ndense 2\n", "t.net:2:1: warning[W407]: 'a' is named but never used"),
    ("E301", "conv 10 k3\n", "t.net:1:1: error[E301]: no input shape: start the spec with `input HxWxC`"),
    ("E302", "input 784\nconv 10 k3\n", "t.net:2:1: error[E302]: conv: conv2d needs a 4-D input (batch, height, width, channels); got (None, 784)"),
    ("E303", "input 8x8x3\nrepeat 4 [conv 8 k3 s2 valid]\n", "t.net:2:11: error[E303]: conv: conv2d with kernel 3x3 and 'valid' padding shrinks (None, 1, 1, 8) to nothing"),
    ("E304", "input 8x8x3\nconv 16 k3\nres 8\n", "t.net:3:1: error[E304]: res: the residual add's two inputs have different shapes"),
    ("E305", "input 8x8x3\n", "t.net:1:1: error[E305]: the network has no layers"),
    ("E320", "input 100x16\nconv 8 k3x5\n", "t.net:2:1: error[E320]: conv: conv1d kernel 3x5 has 2 sizes, but the input (None, 100, 16) has 1 spatial axis"),
    ("W401", "input 784\ndense 10 softmax\ndense 5\n", "t.net:3:1: warning[W401]: dense comes after the final softmax/sigmoid"),
    ("W402", "input 8x8x3\nconv 8 k3\ndense 10 softmax\n", "t.net:3:1: warning[W402]: dense on the unpooled (None, 8, 8, 8) acts on the last axis only"),
    ("W403", "input 784\ndropout .2\ndense 10 softmax\n", "t.net:2:1: warning[W403]: dropout is the very first layer: it acts on the raw input"),
    ("W404", "input 8x8x1\nres 4\n", "t.net:2:1: warning[W404]: the residual add broadcasts (None, 8, 8, 1) (the shortcut) and (None, 8, 8, 4)"),
    ("W405", "input 32x32x3\nflatten\ndense 1000000000000\n", "t.net:3:1: warning[W405]: the 3,073,000,000,000,000 float32 parameters need"),
    ("W408", "input 28x28\nconv 8\ngmp\n", "t.net:2:1: warning[W408]: conv1d reads the square (None, 28, 28) as a sequence of 28 steps with 28 channels"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "spec", "expected"), CATALOGUE, ids=[row[0] for row in CATALOGUE])
def test_each_code_has_its_message_location_and_exit_code(check_spec, code, spec, expected) -> None:
    path, result = check_spec(spec, "t.net")
    assert expected.replace("t.net", str(path)) in result.stderr, result.stderr
    assert result.exit_code == (0 if code.startswith("W") else 1)
    assert "Traceback" not in result.output


def test_the_catalogue_covers_every_spec_level_code() -> None:
    """Codes a spec alone can produce (E1xx-E3xx, W4xx), minus those that need Keras or a backbone."""
    # building a model, or a pretrained backbone: tests/test_transfer.py
    needs_more = {"E306", "E310", "E311", "E312", "E313", "E314"}
    spec_level = {c for c in CODES if c[:2] in ("E1", "E2", "E3", "W4")} - needs_more
    assert spec_level == {row[0] for row in CATALOGUE}


def test_every_code_is_produced_by_some_test() -> None:
    """Each code appears in an assertion of some test (the catalogue above, or its own module's tests)."""
    asserted = {row[0] for row in CATALOGUE}
    for path in TESTS.rglob("test_*.py"):
        if path.name != "test_errors.py":
            asserted |= set(re.findall(r"\b([EW]\d{3})\b", path.read_text(encoding="utf-8")))
    missing = sorted(set(CODES) - asserted)
    assert not missing, f"codes no test produces: {missing}"


# ---------------------------------------------------------------- several errors in one file


def errors_in(text: str) -> list[str]:
    """`line:column code` of every diagnostic netdsl reports for `text`."""
    with pytest.raises(netdsl.NetdslError) as info:
        netdsl.analyze(netdsl.parse(text))
    return [f"{d.span.line}:{d.span.column} {d.code}" for d in info.value.diagnostics]


def test_the_parser_recovers_and_reports_each_syntax_error_once() -> None:
    text = "input 8\ndense 10 =\nconv 3 k3 ]\ndense 4 ; relu\nrepaet [\n  conv w\n] for w in 1, 2\ndense @ 3\nflatten\n"
    assert errors_in(text) == [
        "2:10 E102",
        "3:11 E102",
        "7:3 E102",
        "8:7 E103",
    ]  # `repaet [...]` parses; its `for` does not


def test_syntax_errors_and_the_other_statements_errors_are_reported_together() -> None:
    text = "input 8\ncnv 10\ndense 10 =\ndense 4 rleu\nrepeat [\n  dense w @\n  dense w\n] for w in 8, 16\n"
    assert sorted(errors_in(text)) == ["2:1 E101", "3:10 E102", "4:9 E202", "6:11 E103"]


def test_a_skipped_statement_causes_no_follow_on_error() -> None:
    """`conv w` would be E205 without its loop header; the header's statement is skipped whole."""
    assert errors_in("input 8x8x3\nrepeat [\n  conv w k3\n] for w in 8,, 16\ndense 2\n") == ["4:14 E102"]


def test_recovery_inside_a_block_keeps_the_block() -> None:
    assert errors_in("input 8\nrepeat 2 [\n  dense 3 =\n  dense 4\n  relu @\n]\ndense 2 [\n") == [
        "3:11 E102",
        "5:8 E103",
        "7:10 E104",  # `dense 2 [` opens branches that never close
    ]


def test_an_unclosed_block_is_one_error_at_the_end() -> None:
    assert errors_in("input 8\nrepeat 2 [\n  dense 3\n  dense 4\n") == ["4:10 E104"]


def test_recovery_keeps_positions_on_continued_lines_and_comments() -> None:
    text = 'input 8\ndense 4 \\\n  relu = # a comment ] [\ndense "[" =\n'
    assert errors_in(text) == ["3:25 E102", "4:11 E102"]  # `relu =` lacks its value at the line break


def test_syntax_errors_are_capped(monkeypatch) -> None:
    text = "input 8\n" + "dense 4 =\n" * 30
    assert len(errors_in(text)) == 10


def test_a_statement_repeated_by_a_loop_is_reported_once() -> None:
    assert errors_in("input 8\nrepeat 3 [cnv 10; dense x]\nrepeat n [dense 3]\n") == [
        "2:11 E101",
        "2:25 E205",
        "3:8 E205",
    ]


def test_the_cli_counts_the_errors(check_spec) -> None:
    _, result = check_spec("input 8\ndense 10 =\ndense @\n", "two.net")
    assert result.exit_code == 1
    assert result.stderr.rstrip().endswith("2 errors")


# ---------------------------------------------------------------- trust


def test_python_in_a_spec_is_only_an_unknown_layer(tmp_path: Path, runner) -> None:
    """Nothing in a spec is evaluated: `__import__('os').system(...)` is words and symbols, not code."""
    spec = tmp_path / "evil.net"
    spec.write_text("input 8\nimport os\nos.system touch pwned\ndense 4 l2=__import__\n", encoding="utf-8")
    result = runner.invoke(main, ["check", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}:2:1: error[E101]: unknown layer 'import'" in result.stderr
    assert f"{spec}:3:1: error[E101]: unknown layer 'os.system'" in result.stderr
    assert f"{spec}:4:9: error[E201]: dense: l2 must be a number, got __import__" in result.stderr
    spec.write_text("input 8\n__import__('os').system('touch pwned')\n", encoding="utf-8")
    result = runner.invoke(main, ["check", str(spec)])
    assert result.exit_code == 1 and f"{spec}:2:12: error[E103]: unexpected character '''" in result.stderr
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_the_analyzer_never_imports_keras_even_for_bad_specs(tmp_path: Path) -> None:
    spec = tmp_path / "bad.net"
    spec.write_text("input 8\ndense 10 =\ncnv 3\n", encoding="utf-8")
    code = (
        "import sys\nfrom netdsl.cli import main\n"
        f"try:\n    main(['check', {str(spec)!r}])\nexcept SystemExit as e:\n    print('exit', e.code)\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["exit", "1", "False", "False"]


# ---------------------------------------------------------------- docs/errors.md and `netdsl explain`

DOCS = TESTS.parent / "docs" / "errors.md"
EXAMPLE = re.compile(r"```net\n(?P<spec>.*?)```\n```text\n(?P<output>.*?)\n```", re.S)


def sections() -> dict[str, tuple[str, str]]:
    """code -> (title, body) for every `## CODE title` section of docs/errors.md."""
    parts = re.split(r"^## ([EW]\d{3}) (.*)$", DOCS.read_text(encoding="utf-8"), flags=re.M)
    return {parts[i]: (parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)}


def test_every_code_is_documented_under_its_own_title() -> None:
    documented = sections()
    assert sorted(documented) == sorted(CODES)  # each code once, none undocumented, none stale
    for code, (title, body) in documented.items():
        assert title == CODES[code]
        assert len(body.split()) >= 15, f"{code}: the explanation is too short"


def test_every_spec_level_code_has_an_example_run_by_this_test() -> None:
    with_examples = {code for code, (_, body) in sections().items() if EXAMPLE.search(body)}
    assert {row[0] for row in CATALOGUE} - {"W405"} <= with_examples  # W405's output depends on the machine's RAM


@pytest.mark.parametrize("code", [code for code, (_, body) in sections().items() if EXAMPLE.search(body)])
def test_the_documented_example_is_what_netdsl_prints(code: str, tmp_path: Path, monkeypatch, runner) -> None:
    example = EXAMPLE.search(sections()[code][1])
    (tmp_path / "example.net").write_text(example["spec"], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["check", "example.net"])
    assert result.stderr.strip() == example["output"]
    assert f"[{code}]" in example["output"]
    assert result.exit_code == (0 if code.startswith("W") else 1)


def test_explain_prints_the_title_and_the_example(runner) -> None:
    result = runner.invoke(main, ["explain", "e304"])
    assert result.exit_code == 0
    assert result.output.startswith("E304: shapes of a residual add differ\n\n`res` adds its input")
    assert "\n    res 8\n\n    example.net:3:1: error[E304]" in result.output  # fences become indented blocks
    assert "```" not in result.output


def test_explain_without_a_code_lists_them_all(runner) -> None:
    result = runner.invoke(main, ["explain"])
    assert result.exit_code == 0
    assert result.output.splitlines() == [f"{code}  {title}" for code, title in CODES.items()]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("E999", "Invalid value for CODE: unknown code 'E999'; `netdsl explain` lists every code"),
        ("E3O4", "Invalid value for CODE: unknown code 'E3O4'; did you mean E304? `netdsl explain` lists every code"),
    ],
)
def test_explain_of_an_unknown_code_is_a_usage_error(runner, code: str, expected: str) -> None:
    result = runner.invoke(main, ["explain", code])
    assert result.exit_code == 2
    assert expected in result.stderr


def test_explain_works_from_the_built_wheel(tmp_path: Path) -> None:
    """The catalogue ships inside the package: unpack the wheel and run `explain` from it alone."""
    pytest.importorskip("hatchling")  # in the dev extra; needed to build without network
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(tmp_path), "."],
        cwd=TESTS.parent, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("netdsl-*.whl")
    unpacked = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), str(unpacked)], check=True)
    assert (unpacked / "netdsl" / "docs" / "errors.md").read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", "from netdsl.cli import main; main(['explain', 'E207'])"],
        cwd=tmp_path, env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("E207: program too large\n\nThe program would exceed one of netdsl's limits")
