"""Fuzzing `netdsl check`: whatever the bytes, the answer is exit 0 with a table, or exit 1 with a
located `file:line:col: error[E...]` message; never a traceback, never a hang.

Budgets follow NETDSL_HYPOTHESIS_PROFILE (see tests/properties/profiles.py):
- `ci` (default): derandomized, the same few hundred inputs every run, about a minute in all;
- `long`: fresh random inputs, twenty times as many, failures remembered in .hypothesis/:

      NETDSL_HYPOTHESIS_PROFILE=long .venv/bin/pytest -q tests/fuzz
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdsl.cli import main
from netdsl.diagnostics import CODES
from tests.fuzz.strategies import grammar_programs, mutated_specs

PROFILE = os.environ.get("NETDSL_HYPOTHESIS_PROFILE", "ci")
LONG = PROFILE == "long"
CPU_SECONDS_PER_INPUT = 10  # far above the ~10-50 ms one check takes (0.5 s for a 20,000-token line)
FUZZ = settings(
    max_examples=4000 if LONG else 200,
    derandomize=not LONG,
    database=None if not LONG else settings.default.database,
    deadline=None,  # Hypothesis measures wall time, which a busy CI machine stretches: see no_hang instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): error\[(?P<code>E\d{3})\]: \S", re.M)


@contextmanager
def no_hang(seconds: float = CPU_SECONDS_PER_INPUT) -> Iterator[None]:
    """The per-example deadline: fail if the body uses more than `seconds` of CPU time. CPU time, not
    wall time (ITIMER_PROF, SIGPROF), so a loaded machine cannot make it flaky, and a loop still trips it."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"netdsl check used more than {seconds} s of CPU")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def assert_answered_cleanly(result: Result, path: Path, data: bytes, as_json: bool = False) -> None:
    """Exit 0 with a summary table, or exit 1 with located, catalogued errors; no traceback."""
    shown = f"input {data[:300]!r}\noutput:\n{result.output[-2000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"netdsl check crashed on {shown}") from result.exception
    assert "Traceback" not in result.output, shown
    assert result.exit_code in (0, 1), shown
    if result.exit_code == 0:
        if as_json:
            assert isinstance(json.loads(result.stdout)["total_params"], int), shown
        else:
            assert "Total params:" in result.stdout, shown
        return
    errors = [m for m in LOCATED.finditer(result.stderr) if m["file"] == str(path)]
    assert errors, f"no located error: {shown}"
    lines = data.count(b"\n") + 1
    for error in errors:
        assert error["code"] in CODES, shown
        assert 1 <= int(error["line"]) <= lines and int(error["column"]) >= 1, shown


def check_bytes(runner: CliRunner, path: Path, data: bytes, *options: str) -> None:
    path.write_bytes(data)
    with no_hang():
        result = runner.invoke(main, ["check", str(path), *options])
    assert_answered_cleanly(result, path, data, as_json="--json" in options)


@FUZZ
@given(text=grammar_programs(), options=st.sampled_from([(), ("--json",), ("--input", "8x8x3")]))
def test_random_programs_from_the_grammar(tmp_path: Path, text: str, options: tuple[str, ...]) -> None:
    check_bytes(CliRunner(), tmp_path / "fuzz.net", text.encode("utf-8", errors="surrogatepass"), *options)


@FUZZ
@given(data=mutated_specs())
def test_mutated_seed_specs(tmp_path: Path, data: bytes) -> None:
    check_bytes(CliRunner(), tmp_path / "mutant.net", data)


# a batch has its own timeout below; drawing twenty programs from the (recursive) grammar is slow by design
@settings(
    FUZZ,
    max_examples=8 if LONG else 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    programs=st.lists(grammar_programs(), min_size=10, max_size=10),
    mutants=st.lists(mutated_specs(), min_size=10, max_size=10),
)
def test_real_processes_answer_every_file(tmp_path_factory: pytest.TempPathFactory, programs, mutants) -> None:
    """The installed entry point, in a real process, on twenty files at once: one answer per file."""
    folder = tmp_path_factory.mktemp("batch")
    files = []
    for i, data in enumerate([p.encode("utf-8", errors="surrogatepass") for p in programs] + mutants):
        files.append(folder / f"f{i}.net")
        files[-1].write_bytes(data)
    run = subprocess.run(
        [sys.executable, "-m", "netdsl.cli", "check", "--max-rows", "4", *map(str, files)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=600,  # wall time, for twenty files on a busy machine
    )
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode in (0, 1), run.stderr[-3000:]
    located = {m["file"] for m in LOCATED.finditer(run.stderr)}
    summarized = set(re.findall(r'^Model: "[^"]*"  \((.+)\)$', run.stdout, re.M))
    for file in files:
        assert (str(file) in located) != (str(file) in summarized), (file.read_bytes()[:300], run.stderr[-3000:])


# ---------------------------------------------------------------- regressions found by the fuzzers


@pytest.mark.parametrize(
    ("data", "options", "expected"),
    [
        # a lone \r is no line break for Lark: the error is on line 1, and the \r is shown as a picture
        (b"repeat [ ; repeat [ ] # ] #\r#", (), "r.net:1:30: error[E104]: unexpected end of input"),
        (b"repeat [ ; repeat [ ] # ] #\r#", (), "1 | repeat [ ; repeat [ ] # ] #\u240d#"),
        # form feeds are blanks to the grammar but line breaks to str.splitlines: positions must agree
        (b"input 8\n\x0cdense\x0c4 @\n", (), "r.net:2:10: error[E103]: unexpected character '@'"),
        (b"input 8\n\x0cdense\x0c4 @\n", (), "2 | \u240cdense\u240c4 @"),
        # NUL and escape sequences are named, never sent raw to the terminal
        (b"input 8\ndense 4\x00\n", (), "r.net:2:8: error[E103]: unexpected character U+0000"),
        (
            b'input 8\ndense "\x1b[31m"\n',
            (),
            "r.net:2:7: error[E201]: dense: units must be a whole number, got \u241b[31m",
        ),
        # errors without a statement to point at are still located
        (b"", (), "r.net:1:1: error[E301]: no input shape"),
        (b"", ("--input", "8x8x3"), "r.net:1:1: error[E305]: the network has no layers"),
        (b"dense 10\n", (), "r.net:1:1: error[E301]: no input shape"),
    ],
)
def test_fuzz_regressions(tmp_path: Path, data: bytes, options: tuple[str, ...], expected: str) -> None:
    path = tmp_path / "r.net"
    runner = CliRunner()
    check_bytes(runner, path, data, *options)
    assert expected.replace("r.net", str(path)) in runner.invoke(main, ["check", str(path), *options]).output


# ---------------------------------------------------------------- a corpus of realistic mistakes

CORPUS = sorted((Path(__file__).resolve().parent / "corpus").glob("*.net"))


def test_a_corpus_of_broken_specs_is_answered_with_located_errors_in_one_process(tmp_path: Path) -> None:
    """Typos, half-written blocks, other languages (Python, JSON, YAML), binary junk: each file gets
    exit 1 and at least one located, catalogued error, in a real process, with no traceback."""
    binary = tmp_path / "binary.net"
    binary.write_bytes(bytes(range(256)) * 4)
    files = [*CORPUS, binary]
    run = subprocess.run(
        [sys.executable, "-m", "netdsl.cli", "check", *map(str, files)],
        capture_output=True, text=True, errors="replace", timeout=300,
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    located = {m["file"]: m["code"] for m in LOCATED.finditer(run.stderr)}
    assert sorted(located) == sorted(map(str, files)), run.stderr[-3000:]
    assert set(located.values()) <= set(CODES)
    assert not run.stdout  # not one of them is a network


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_shape", "bad_shape.net:1:8: error[E103]: unexpected character '2'"),
        ("bad_shape", "help: '32x32x' is not a number, a shape such as 32x32x3, or a word"),
        ("number_into_letters", "help: '3k' is not a number, a shape such as 32x32x3, or a word"),
        ("python", "python.net:1:1: error[E101]: unknown layer 'import'"),
        ("json", "json.net:1:1: error[E103]: unexpected character '{'"),
        ("missing_bracket", "help: is a ']' missing?"),
        ("semicolons", "semicolons.net:1:28: error[E203]: dense: missing units"),
    ],
)
def test_corpus_messages(runner: CliRunner, name: str, expected: str) -> None:
    path = CORPUS[[p.stem for p in CORPUS].index(name)]
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert expected.replace(f"{name}.net", str(path)) in result.stderr
