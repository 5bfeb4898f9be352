"""The fast parser builds exactly what Lark's parser and ToSurface build, and errors are Lark's own.

netdsl/fastparse.py reads specs without syntax errors; at any error parse_surface asks Lark. These tests
check both halves: equal statements (spans included) on every spec, doc example and generated program,
and, for damaged specs, the same diagnostics as recovery with Lark alone (the algorithm before the fast
path, kept here as the reference)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from lark.exceptions import UnexpectedEOF, UnexpectedInput

from netdsl.diagnostics import NetdslError, Source
from netdsl.fastparse import Fallback, _construct, parse_fast
from netdsl.ir import Span
from netdsl.syntax import ToSurface, _syntax_error, check_size, parse_surface, parser, skip_past
from tests.fuzz.strategies import grammar_programs, mutated_specs

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [path.read_text(encoding="utf-8") for path in sorted(ROOT.glob("specs/**/*.net"))]
for page in ("docs/language.md", "README.md"):
    TEXTS += re.findall(r"```netdsl\n(.*?)```", (ROOT / page).read_text(encoding="utf-8"), re.S)
SETTINGS = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip


def lark(text: str) -> list:
    return ToSurface().transform(parser().parse(text))


def lark_only_diagnostics(source: Source) -> list[str]:
    """Syntax errors as the Lark-only recovery reported them (the reference for the fast path)."""
    found, text = [], source.text
    while len(found) < 10:
        try:
            parser().parse(text)
            break
        except (UnexpectedInput, UnexpectedEOF) as err:
            found.append(_syntax_error(err, source))
            text = skip_past(err, text)  # the same recovery step, Lark's parser alone
            if text is None:
                break
    return [f"{d.span.line}:{d.span.column} {d.code} {d.message} {d.help}" for d in found]


def fast(text: str) -> list:
    """The fast parser's statements (budgets included: `assert` has its own terminals, read from adjacent tokens)."""
    return parse_fast(text)


ASSERTIONS_READ = [
    "assert params < 2M", "assert params<2M", "assert macs <= 300M", "assert rf>=31", "assert layers == 12",
    "assert weights > 1.5MB", "assert params < 1e6", "assert params < .5M", "assert params < 2.", "assert x < 1e", "assert params >= 2e",
    "assert params < 2M  # c", "input 8; assert params < 2M; dense 2", "add [ assert params < 5 | id ]",
    "assert params < 2M ]",  # an error after it: both parsers refuse
]  # fmt: skip
ASSERTIONS_REFUSED = [
    "assert params < = 5", "assert params = 5", "assert params =< 5", "assert params <> 5", "assert params < 2M.",
    "assert params < 1.5.3", "assert params < x", "assert params < -5", "assert 5 < 3", "assert params", "assert",
    "assert params < 5 6", "assert params << 5", "dense 3M", "dense 2 > 1", "assert params < 2M_",
]  # fmt: skip


@pytest.mark.parametrize("text", ASSERTIONS_READ + ASSERTIONS_REFUSED)
def test_budgets_parse_alike_or_go_to_lark(text: str) -> None:
    try:
        expected = lark(text)
    except (UnexpectedInput, UnexpectedEOF):
        with pytest.raises(Fallback):
            parse_fast(text)
        assert text in ASSERTIONS_REFUSED or text.endswith("]")
        return
    assert text in ASSERTIONS_READ
    assert parse_fast(text) == expected


def test_specs_and_doc_examples_parse_alike() -> None:
    assert len(TEXTS) > 20
    for text in TEXTS:
        assert fast(text) == lark(text), text


@SETTINGS
@given(text=grammar_programs())
def test_generated_programs_parse_alike(text: str) -> None:
    try:
        expected = lark(text)
    except (UnexpectedInput, UnexpectedEOF):
        with pytest.raises(Fallback):
            parse_fast(text)
        return
    assert fast(text) == expected


@SETTINGS
@given(data=mutated_specs())
@example(data=b"9" * 41 + b" A stacked GRU\ninput 8\n")  # found by it: check_size's E201, before either parser
def test_damaged_specs_get_lark_s_own_errors(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    source = Source(text, "t.net")
    try:
        check_size(source)
    except NetdslError:  # too large (E207), or a whole number of over 40 digits (E201): refused before parsing
        return
    try:
        statements = parse_surface(source)
    except NetdslError as err:
        got = [f"{d.span.line}:{d.span.column} {d.code} {d.message} {d.help}" for d in err.diagnostics]
        assert got == lark_only_diagnostics(source)
        return
    assert statements == lark(text)


def test_quick_spans_are_spans() -> None:
    quick, slow = _construct(3, 4, 3, 9), Span(line=3, column=4, end_line=3, end_column=9)
    assert quick == slow and hash(quick) == hash(slow) and quick.model_dump() == slow.model_dump()
    assert quick.model_copy(update={"line": 5}) == Span(line=5, column=4, end_line=3, end_column=9)


def test_keywords_are_words_where_lark_would_read_words() -> None:
    text = "conv repeat for in as y\nrepeat [ dense in ] for in in 1\ndef as as=1 [ dense 2 ]\nas 3\n"
    assert parse_fast(text) == lark(text)


def test_deep_nesting_goes_to_lark() -> None:
    text = "add " + "[ add " * 110 + "[ id ]" + " ]" * 110  # deeper than fastparse.MAX_NESTING
    with pytest.raises(Fallback):
        parse_fast(text)
    assert parse_surface(Source(text)) == lark(text)


def test_a_huge_statement_and_a_file_of_mistakes_are_answered_quickly() -> None:
    """Issue 14's time bounds: a 2 MB one-statement spec (was 29 s, 863 MB) and a 200 KB spec full of bad
    statements (was 46 s: recovery re-parsed the whole file per error) each take well under a second here."""
    import time

    start = time.process_time()
    with pytest.raises(NetdslError) as info:
        parse_surface(Source("input 32\ndense 8 " + "relu " * 450_000 + "\n"))
    assert info.value.diagnostics[0].code == "E207" and "a statement of more than 20,000" in str(info.value)
    lines = ["input 32", *(["dense 8 relu", "dense 8 =", "conv 3 ]", "dense @ 2", "dense 4 rleu"] * 8_000)]
    with pytest.raises(NetdslError) as info:
        parse_surface(Source("\n".join(lines) + "\n"))
    assert [d.span.line for d in info.value.diagnostics] == [3, 4, 5, 8, 9, 10, 13, 14, 15, 18]
    assert time.process_time() - start < 10  # a CPU-time bound with room for a loaded machine (was ~75 s)
