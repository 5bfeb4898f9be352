"""`netdsl fmt` / `netdsl.format`: one canonical layout, comments kept, idempotent, meaning unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import netdsl
from netdsl.cli import main
from netdsl.diagnostics import NetdslError, Source
from netdsl.fmt import FormatError, _meaning, _Printer
from netdsl.syntax import parse_surface
from tests.conftest import SPECS
from tests.fuzz.strategies import grammar_programs, mutated_specs

ALL_SPECS = sorted(SPECS.rglob("*.net"))  # specs/ and specs/zoo/

MESSY = """\
# a header comment
input   32x32x3 ;conv 8 k3   relu # trailing
\t

# a loop
repeat [   # after the bracket
  conv w k3 s2 nobias l2 = 1e-6 relu bn ;res w
  # inside

  res w
] for w in 20,40
repeat 2 [ dense 4 ; dropout .1 ]
phase epochs = 3 freeze < 10
gmp;dense 10 softmax
"""

CANONICAL = """\
# a header comment
input 32x32x3; conv 8 k3 relu  # trailing

# a loop
repeat [  # after the bracket
    conv w k3 s2 nobias l2=1e-6 relu bn; res w
    # inside

    res w
] for w in 20, 40
repeat 2 [ dense 4; dropout .1 ]
phase epochs=3 freeze<10
gmp; dense 10 softmax
"""

HANGING = """\
def a f [ add [ conv f k3  # one
          conv f k1
        | id ] ]
def b f [ cat [ conv f k1 | conv f k3
    | maxpool 2 s1 same
    # last
  ] ]
input 8x8x3
add [ a 3; conv 3 k1 |
   id ]
repeat 2 [ conv 3 k1
   conv 3 k1  # c
]; relu
"""

HUNG = """\
def a f [ add [ conv f k3  # one
                conv f k1
              | id ] ]
def b f [ cat [ conv f k1 | conv f k3
              | maxpool 2 s1 same
                # last
              ] ]
input 8x8x3
add [ a 3; conv 3 k1 |
      id ]
repeat 2 [ conv 3 k1
           conv 3 k1  # c
         ]; relu
"""


def test_the_canonical_layout() -> None:
    assert netdsl.format(MESSY) == CANONICAL
    assert netdsl.format(CANONICAL) == CANONICAL


def test_hanging_brackets_align_after_their_opening() -> None:
    """A bracket whose first statement is on the line of `[` keeps the user's lines, aligned after `[ `,
    with `|` under `[` where a branch starts a line."""
    assert netdsl.format(HANGING) == HUNG
    assert netdsl.format(HUNG) == HUNG


def test_statements_joined_on_a_line_stay_joined() -> None:
    assert netdsl.format("input 8 ;dense 4\n\ndense 2;\nrelu\n") == "input 8; dense 4\n\ndense 2\nrelu\n"


@pytest.mark.parametrize("text", [
    " repeat  [  ; #\n ]  ; ",  # an empty statement before a comment: a block, as `[ # c` is
    "input 8\nrepeat 2 [ ; dense 4\n dense 2 ]\n",  # ... before a statement: still hanging
    "input 8\nadd [ dense 8 | ; ;\n dense 8 ]\n",
    "input 8;;dense 2\n;dense 3",
])  # fmt: skip
def test_empty_statements_do_not_change_a_shape(text: str) -> None:
    once = netdsl.format(text)
    assert netdsl.format(once) == once


def test_every_comment_is_kept() -> None:
    comments = re.findall(r"#[^\n]*", MESSY)
    formatted = netdsl.format(MESSY)
    assert [c.rstrip() for c in comments] == re.findall(r"#[^\n]*", formatted)


@pytest.mark.parametrize("path", ALL_SPECS, ids=[str(p.relative_to(SPECS)) for p in ALL_SPECS])
def test_every_spec_is_idempotent_and_keeps_its_spec_id(path: Path) -> None:
    text = path.read_text()
    once = netdsl.format(text)
    assert netdsl.format(once) == once
    assert netdsl.spec_id(netdsl.parse(once)) == netdsl.spec_id(netdsl.parse(text))
    assert re.findall(r"#[^\n]*", once) == [c.rstrip() for c in re.findall(r"#[^\n]*", text)]


@pytest.mark.parametrize("path", ALL_SPECS, ids=[str(p.relative_to(SPECS)) for p in ALL_SPECS])
def test_the_projects_own_specs_are_canonical(path: Path) -> None:
    """`netdsl fmt --check specs/ specs/zoo/` passes: the project's specs are written as fmt writes them."""
    text = path.read_text()
    assert netdsl.format(text) == text


def test_long_one_line_blocks_are_split_and_short_ones_kept() -> None:
    long = "input 8\nrepeat 2 [" + "; ".join(["dense 4 relu"] * 10) + "]\n"
    assert netdsl.format(long) == "input 8\nrepeat 2 [\n" + "    dense 4 relu\n" * 10 + "]\n"
    assert netdsl.format("input 8\nrepeat 2 [dense 4; relu]\n") == "input 8\nrepeat 2 [ dense 4; relu ]\n"


def test_empty_and_comment_only_texts() -> None:
    assert netdsl.format("") == ""
    assert netdsl.format("\n\n# only a comment   \n\n") == "# only a comment\n"


def test_a_syntax_error_is_reported_not_formatted() -> None:
    with pytest.raises(NetdslError, match=r"error\[E102\]"):
        netdsl.format("input 8\ndense 4 =\n")


def test_the_command(runner, tmp_path: Path) -> None:
    messy, tidy = tmp_path / "messy.net", tmp_path / "tidy.net"
    messy.write_text(MESSY)
    tidy.write_text(CANONICAL)
    messy.chmod(0o640)
    mode = 0o640
    result = runner.invoke(main, ["fmt", "--check", str(messy), str(tidy)])
    assert result.exit_code == 1
    assert result.output == f"would reformat {messy}\n"
    assert messy.read_text() == MESSY  # --check changes nothing
    result = runner.invoke(main, ["fmt", str(messy), str(tidy)])
    assert result.exit_code == 0 and result.output == f"reformatted {messy}\n"
    assert messy.read_text() == CANONICAL
    assert messy.stat().st_mode & 0o777 == mode
    assert runner.invoke(main, ["fmt", "--check", str(messy), str(tidy)]).exit_code == 0


def test_bad_files(runner, tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.net", tmp_path / "good.net"
    bad.write_text("input 8\ndense 4 =\n")
    good.write_text("input 8 ;dense 4\n")
    result = runner.invoke(main, ["fmt", str(bad), str(good)])
    assert result.exit_code == 1
    assert f"{bad}:2:9: error[E102]" in result.output
    assert bad.read_text() == "input 8\ndense 4 =\n" and good.read_text() == "input 8; dense 4\n"
    (tmp_path / "latin1.net").write_bytes(b"input 8\n# caf\xe9\n")
    result = runner.invoke(main, ["fmt", str(tmp_path / "latin1.net")])
    assert result.exit_code == 1 and "error[E103]: the file is not UTF-8 text" in result.output
    assert runner.invoke(main, ["fmt"]).exit_code == 2
    assert runner.invoke(main, ["fmt", str(tmp_path / "missing.net")]).exit_code == 2


def test_a_formatter_bug_leaves_the_file_alone(runner, tmp_path: Path, monkeypatch) -> None:
    statement = _Printer.statement

    def dropping(self, item, indent):  # a broken printer that loses the last argument
        item.parts = item.parts[:-1] if len(item.parts) > 2 else item.parts
        statement(self, item, indent)

    monkeypatch.setattr(_Printer, "statement", dropping)
    spec = tmp_path / "spec.net"
    spec.write_text("input 8\ndense 4 relu\n")
    with pytest.raises(FormatError, match="would change its meaning"):
        netdsl.format(spec.read_text())
    result = runner.invoke(main, ["fmt", str(spec)])
    assert result.exit_code == 1 and "would change its meaning; it is left unchanged" in result.output
    assert spec.read_text() == "input 8\ndense 4 relu\n"


def _parses(text: str) -> bool:
    try:
        parse_surface(Source(text))
    except NetdslError:
        return False
    return True


FORMAT_SETTINGS = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck))  # fmt: skip


@FORMAT_SETTINGS
@given(grammar_programs())
def test_any_program_keeps_its_meaning_and_is_idempotent(text: str) -> None:
    if _parses(text):
        once = netdsl.format(text)  # raises FormatError if the statements differ
        assert netdsl.format(once) == once


@FORMAT_SETTINGS
@given(mutated_specs())
def test_mutated_specs_with_comments(raw: bytes) -> None:
    text = raw.decode("utf-8", errors="replace")
    if _parses(text):
        once = netdsl.format(text)
        assert netdsl.format(once) == once
        assert _meaning(parse_surface(Source(once))) == _meaning(parse_surface(Source(text)))
