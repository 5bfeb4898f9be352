"""Fuzzing the Python API: every public function called with random arguments of every type (None,
numbers, text, bytes, lists, dicts, paths to specs, FIFOs and devices, shapes). Each call returns
or raises NetdslError or TypeError (the documented ones), never another exception, within the CPU
and wall bounds, writing nothing outside its sandbox. As in the other fuzzers the fit is replaced.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netdsl
from tests.conftest import ROOT, SPECS
from tests.fuzz.sandbox import listing, no_block, no_fitting
from tests.fuzz.test_fuzz_cli import LONG, no_hang

FUNCTIONS = [
    "parse", "load", "analyze", "check", "emit", "spec_id", "draw", "diff", "as_network", "evaluate", "predict",
    "train", "check_budgets", "format", "list_runs", "export",
]  # fmt: skip
GOOD = "input 8x8x3\ngap\ndense 2 softmax\n"


def arguments(fifo: Path) -> st.SearchStrategy[object]:
    plain = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=30),
        st.binary(max_size=30), st.lists(st.integers(-3, 40), max_size=4), st.tuples(st.integers(-3, 40)),
        st.dictionaries(st.sampled_from(["flip", "x", "shift"]), st.integers(-1, 2), max_size=2),
    )  # fmt: skip
    specific = st.sampled_from([
        GOOD, "input 8x8x3\ncnv 4\n", SPECS / "simple.net", str(SPECS / "simple.net"), bytes(SPECS / "simple.net"),
        "missing.net", "a\0b.net", Path("/dev/null"), fifo, str(fifo), (8, 8, 3), (0, 8, 3), [8, 8, 3], (),
        "synthetic:count=24,classes=2,size=8x8x3", "synthetic:count=-1", "", "a" * 5000, netdsl.parse(GOOD),
    ])  # fmt: skip
    return st.one_of(specific, specific, plain)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_random_arguments_of_every_public_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    no_fitting(monkeypatch)
    fifo = tmp_path / "pipe.net"
    os.mkfifo(fifo)
    function = getattr(netdsl, name)
    parameters = [p for p in inspect.signature(function).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    before_root, before_parent = listing(ROOT), listing(tmp_path.parent)
    required = sum(p.default is p.empty for p in parameters)

    @settings(
        max_examples=200 if LONG else 30, derandomize=not LONG, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip
    @given(values=st.lists(arguments(fifo), min_size=required, max_size=len(parameters)))
    def call(values: list[object]) -> None:
        monkeypatch.chdir(tmp_path)
        try:
            with no_block(), no_hang():
                function(*values)
        except netdsl.NetdslError:
            pass
        except TypeError as err:  # only netdsl's own, which name the function: not one from deep inside
            assert str(err).startswith("netdsl"), f"{name}{tuple(values)!r}: {err!r}"
        finally:
            monkeypatch.chdir(ROOT)

    call()
    assert listing(ROOT) == before_root
    assert listing(tmp_path.parent) - before_parent <= {tmp_path.name}
