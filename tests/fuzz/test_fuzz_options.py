"""Fuzzing every command's options: random values of each option's own type (read from the click
parameters, so a new option is fuzzed without editing this file), values just past its range,
junk text, NaN and infinities, hostile paths (FIFOs, devices, files where folders belong, names with
escape sequences). Each answer must be exit 0, 1 or 2 with no traceback, within the CPU and wall
bounds, writing nothing outside the sandbox and changing none of its input files.

The CI budget is fixed and derandomized (NETDSL_HYPOTHESIS_PROFILE=long for a longer random run).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netdsl.cli import main
from tests.conftest import ROOT
from tests.fuzz.sandbox import HOSTILE, fingerprint, invoke, listing, make_sandbox, no_fitting
from tests.fuzz.test_fuzz_cli import LONG

EXAMPLES = 400 if LONG else 80
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not LONG,
    database=None if not LONG else settings.default.database,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
JUNK = [
    "",
    " ",
    "x",
    "1.5",
    "1e3",
    "0x10",
    "٣",
    "--",
    "-1",
    "9" * 50,
    "nan",
    "inf",
    "1,5",
    "\x00",
    HOSTILE,
    "é" * 300,
    "a" * 5000,
]
PATHS = ["spec", "bad_spec", "hostile_spec", "text", "npz", "npy_as_npz", "image", "dir", "fifo", "run"]
ELSEWHERE = [
    "a" * 5000,
    "missing.net",
    "folder/a/0.png/x",
    "s.net/x",
    "/proc/netdsl-x",
    "/dev/null",
    "/dev/zero",
    f"{HOSTILE}/o",
]
DATA = [
    "synthetic:count=24,classes=2,size=8x8x3", "synthetic:count=9999999999", "synthetic:seed=-1", "synthetic:size=4x4x3",
    "synthetic:count=24,classes=2,size=8x8x3,seed=3", "synthetic:bogus=1", "synthetic:classes=2,count=x",
]  # fmt: skip


def numbers(kind: click.ParamType) -> st.SearchStrategy[str]:
    """Text for an int or float option: mostly in range (so that the command goes on to its real
    work), else just outside it, far outside, NaN, infinities, or not a number at all."""
    low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    edges = [str(v) for b in (low, high) if b is not None for v in (b, b - 1, b + 1, b * 2, -b)]
    if isinstance(kind, click.types.IntParamType):
        valid = st.integers(low if low is not None else -5, high if high is not None else (low or 0) + 64).map(str)
        wild = st.integers(-(10**20), 10**20).map(str)
    else:
        valid = st.floats(
            low if low is not None else -5.0, high if high is not None else 10.0,
            exclude_min=bool(getattr(kind, "min_open", False)), exclude_max=bool(getattr(kind, "max_open", False)),
        ).map(repr)  # fmt: skip
        wild = st.floats(allow_nan=True, allow_infinity=True).map(repr)
        edges += ["nan", "-nan", "inf", "-inf", "1e309", "-0.0", "1e-320"]
    return st.one_of(valid, valid, valid, wild, st.sampled_from(edges or ["0"]), st.sampled_from(JUNK))


def shapes() -> st.SearchStrategy[str]:
    sizes = st.integers(-2, 40) | st.sampled_from([10**6, 10**40, 2**63])
    return st.lists(sizes, min_size=0, max_size=4).map(lambda s: "x".join(map(str, s))) | st.sampled_from(JUNK)


def paths(files: dict[str, Path], likely: str | None = None) -> st.SearchStrategy[str]:
    """Any path of the sandbox or beyond it; `likely` (the right kind of file) half the time."""
    anything = st.sampled_from([str(files[k]) for k in PATHS] + ELSEWHERE + [f"new-{i}" for i in range(3)])
    return st.one_of(st.just(str(files[likely])), anything) if likely else anything


def value_for(param: click.Parameter, files: dict[str, Path]) -> st.SearchStrategy[str]:
    """A strategy for one parameter's value, by its click type (and a few names with their own domain)."""
    kind = param.type
    if param.name == "data":
        return st.one_of(st.sampled_from(DATA[:1] + DATA), paths(files), st.sampled_from(JUNK))
    if param.name == "input_shape":
        return shapes()
    if param.name == "code":
        return (
            st.sampled_from(["E304", "e304", "E3O4", "W401", "E999", "E601"])
            | st.sampled_from(JUNK)
            | st.text(max_size=8)
        )
    if param.name in ("out", "output"):  # only ever inside the sandbox, or places that cannot be written
        return st.sampled_from(
            [f"out-{i}" for i in range(3)] + ["o.svg", "o.dot", "o.py", "s.net", "notes.txt/x", "/proc/x.svg"]
        )
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return numbers(kind)
    if isinstance(kind, click.Choice):
        return st.one_of(
            st.sampled_from(list(kind.choices)), st.sampled_from(list(kind.choices)), st.sampled_from(JUNK)
        )
    if isinstance(kind, click.Path):
        likely = {"images": "image", "run_dir": "run", "resume": "run"}.get(param.name or "", "spec")
        return paths(files, likely)
    return st.text(max_size=20) | st.sampled_from(JUNK)


@st.composite
def command_lines(draw: st.DrawFn, name: str, files: dict[str, Path]) -> list[str]:
    """An argv for `netdsl NAME`: arguments, then a random subset of its options in random order."""
    command = main.commands[name]
    args: list[str] = [name]
    options: list[list[str]] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            count = draw(st.integers(1, 3)) if param.nargs == -1 else 1
            if param.name == "spec" and name == "train":
                count = draw(st.sampled_from([0, 1, 1, 1]))
            args += [draw(value_for(param, files)) for _ in range(count)]
        elif draw(st.integers(0, 6 if name == "train" else 2)) == 0:  # a few options at a time
            flag = draw(st.sampled_from([*param.opts, *param.secondary_opts]))
            options.append([flag] if param.is_flag or param.count else [flag, draw(value_for(param, files))])
    if name == "train" and not any(o[0] == "--data" for o in options):  # the default is 60,000 images
        options.append(["--data", DATA[0]])
    options = draw(st.permutations(options))
    if draw(st.integers(0, 9)) == 0:
        options.append(
            draw(st.sampled_from([["--bogus"], ["--help"], ["-h"], [options[-1][0]] if options else ["-x"]]))
        )
    return args + [word for option in options for word in option]


COMMANDS = sorted(main.commands)


@pytest.fixture(scope="module")
def keras_loaded() -> None:
    """`check --verify` builds with Keras: import it once, outside the per-example CPU bound."""
    pytest.importorskip("keras")


def check_one(box: Path, name: str, args: list[str], files: dict[str, Path]) -> None:
    before_inputs, before_root, before_parent = fingerprint(box / "in"), listing(ROOT), listing(box.parent)
    result = invoke(args, box / "work")
    event(f"{name}: exit {result.exit_code}")
    if result.exit_code == 2:
        assert "Error:" in result.output or "error:" in result.output, result.output
    assert fingerprint(box / "in") == before_inputs, f"an input file changed: {args}"
    assert listing(ROOT) == before_root, f"wrote into the repository: {args}"
    assert listing(box.parent) - before_parent == set(), f"wrote next to the sandbox: {args}"


@pytest.mark.parametrize("name", COMMANDS)
def test_random_options_of_every_command(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, keras_loaded: None, name: str
) -> None:
    """EXAMPLES per command (train: three times as many, it has most options)."""
    no_fitting(monkeypatch)
    box = tmp_path_factory.mktemp(f"options-{name}")
    files = make_sandbox(box / "in")
    (box / "work").mkdir()

    @settings(FUZZ, max_examples=EXAMPLES * (3 if name == "train" else 1))
    @given(args=command_lines(name, files))
    def answer(args: list[str]) -> None:
        check_one(box, name, args, files)

    answer()
    shutil.rmtree(box, ignore_errors=True)
