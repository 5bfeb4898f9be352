"""Diagnostics: one value type for every error and warning, rendered in one place.

The library raises `NetdslError` carrying a list of `Diagnostic`s; the CLI renders them
(`file:line:col: error[E101]: ...`, the source line, a caret, notes and help) and picks the
exit code. Codes are stable: `netdsl explain CODE` and docs/errors.md describe each one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from netdsl.ir import Span
from netdsl.terminal import printable

Severity = Literal["error", "warning"]

# Stable codes. The one-line title is what `netdsl explain` prints first; docs/errors.md has more.
CODES: dict[str, str] = {
    "E001": "cannot read file",
    "E101": "unknown layer or directive",
    "E102": "unexpected token",
    "E103": "unexpected character",
    "E104": "unexpected end of input",
    "E201": "invalid argument value",
    "E202": "unknown argument",
    "E203": "missing argument",
    "E204": "argument given twice",
    "E205": "undefined or misused variable",
    "E206": "bad input shape",
    "E207": "program too large",
    "E208": "invalid directive",
    "E209": "unknown or misplaced tensor name",
    "E210": "bad block definition or use",
    "E211": "arithmetic that cannot be computed",
    "E212": "loop variables and values do not match",
    "E216": "a shared block given a tensor from outside",
    "E301": "missing input shape",
    "E302": "wrong tensor rank",
    "E303": "spatial size shrinks to zero",
    "E304": "shapes of a residual add differ",
    "E305": "empty network",
    "E306": "parameters do not fit in memory",
    "E315": "a merge needs two or more tensors",
    "E316": "a shared block applied to inputs of another shape",
    "E317": "shared uses of a block with other arguments",
    "E318": "a shared block that cannot be one model",
    "E319": "td holds something that is not one layer",
    "W401": "layer after the final softmax/sigmoid",
    "W402": "dense layer on an unpooled feature map",
    "W403": "dropout or activation as the very first layer",
    "W404": "residual add broadcasts a size-1 axis",
    "W405": "parameters may not fit in memory",
    "W406": "layers that do not reach the output",
    "W407": "a name that is never used",
    "W408": "a square 2-D input read as a sequence",
    "E310": "input does not fit the pretrained backbone",
    "E311": "freeze names no layer of the model",
    "E312": "pretrained is not the first layer",
    "E313": "a run cannot be used as a backbone",
    "E314": "runs name each other as backbones in a cycle",
    "E320": "layer arguments do not fit the input",
    "E501": "cannot read the data",
    "E502": "no images found",
    "E503": "corrupt image",
    "E504": "malformed data file",
    "E505": "labels out of range",
    "E506": "the head does not match the data's classes",
    "E507": "training diverged (NaN loss)",
    "E508": "bad run directory",
    "E509": "image shape cannot be adapted to the input",
    "E510": "ImageNet weights cannot be downloaded",
    "E511": "weights file missing or of another architecture",
    "E512": "cannot write to the run directory",
    "E520": "a token id is outside the embedding's vocabulary",
    "E521": "a training option does not fit the data",
    "E522": "netdsl train takes one input and one output",
    "E523": "predict takes image classifiers",
    "E525": "the Keras backend cannot be used",
    "E526": "devices or cluster cannot be used",
    "E527": "the model cannot be exported",
    "E528": "the exported model differs from Keras",
    "E529": "a speed switch cannot be used",
    "E535": "seq holds something that is not a layer in line",
    "E601": "the analyzer and Keras disagree (netdsl check --verify)",
    "E701": "budget not met",
    "E702": "invalid budget",
}


_HERE = Path(__file__).resolve().parent
CATALOGUE_PATHS = (
    _HERE / "docs" / "errors.md",  # inside an installed wheel (pyproject.toml force-includes it there)
    _HERE.parent / "docs" / "errors.md",  # in a checkout (and an editable install)
)
"""docs/errors.md is the one place the codes are explained: the docs, `netdsl explain` and the tests read it."""


def catalogue() -> str | None:
    """The text of docs/errors.md, or None if this installation lacks it."""
    for path in CATALOGUE_PATHS:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def explain(code: str) -> str:
    """`netdsl explain CODE` as text: the code's title, then its section of docs/errors.md, with
    code fences turned into indented blocks for a terminal. KeyError for a code netdsl lacks."""
    code = code.strip().upper()
    if code not in CODES:
        raise KeyError(code)
    text = catalogue()
    section = re.search(rf"^## {code}\b[^\n]*\n(.*?)(?=^## |\Z)", text or "", re.M | re.S)
    if section is None:
        return f"{code}: {CODES[code]}\n\n(docs/errors.md, with the long explanation, is not installed here)"
    lines, fenced = [], False
    for line in section.group(1).strip().split("\n"):
        if line.startswith("```"):
            fenced = not fenced
            if lines and lines[-1]:  # a blank line between the example spec and its output
                lines.append("")
            continue
        lines.append(f"    {line}" if fenced and line else line)
    return f"{code}: {CODES[code]}\n\n" + "\n".join(lines).rstrip()


@dataclass(frozen=True)
class Diagnostic:
    """A located message: the unit of every error and warning netdsl reports."""

    code: str
    message: str
    span: Span | None = None
    severity: Severity = "error"
    notes: tuple[str, ...] = ()
    help: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (used by `netdsl check --json`)."""
        out: dict = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.span is not None:
            out["line"], out["column"] = self.span.line, self.span.column
            if self.span.end_line:
                out["end_line"], out["end_column"] = self.span.end_line, self.span.end_column
        if self.help:
            out["help"] = self.help
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class NetdslError(Exception):
    """Raised by the library when a spec is bad; carries every diagnostic that was found."""

    diagnostics: list[Diagnostic]
    source: Source | None = None

    def __str__(self) -> str:
        return render_all(self.diagnostics, self.source, color=False)


@dataclass(frozen=True)
class Source:
    """A spec's text and the name to show for it in messages."""

    text: str
    name: str = "<string>"
    lines: list[str] = field(default_factory=list, compare=False, repr=False)

    def line(self, number: int) -> str:
        if not self.lines:
            # Lark counts only "\n" as a line break; str.splitlines would also split on \r, \f, \x85...
            object.__setattr__(self, "lines", [line.removesuffix("\r") for line in self.text.split("\n")])
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt word, as a help line, or None."""
    best = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{best[0]}'?" if best else None


def render(diag: Diagnostic, source: Source | None, color: bool = False) -> str:
    """`file:line:col: error[CODE]: message`, then the source line with a caret under the span."""
    bold, red, yellow, blue, reset = ("\033[1m", "\033[31m", "\033[33m", "\033[34m", "\033[0m") if color else ("",) * 5
    tint = red if diag.severity == "error" else yellow
    name = printable(source.name if source else "<string>", newlines=False)  # a file name can hold anything
    where = f"{name}:{diag.span.line}:{diag.span.column}" if diag.span else name
    out = [f"{bold}{where}: {tint}{diag.severity}[{diag.code}]{reset}{bold}: {printable(diag.message)}{reset}"]
    if diag.span and source and source.text:  # no snippet for a file that could not be read
        text = source.line(diag.span.line)
        if len(text) > 200:  # keep the caret readable on huge one-line specs
            start = max(0, diag.span.column - 80)
            text, offset = text[start : start + 160], start
        else:
            offset = 0
        gutter = f"{diag.span.line} | "
        width = 1
        if diag.span.end_line == diag.span.line and diag.span.end_column > diag.span.column:
            width = diag.span.end_column - diag.span.column
        caret_col = diag.span.column - 1 - offset
        width = max(1, min(width, max(1, len(text) - caret_col)))
        # the caret is placed in the escaped line: a bidi mark before it is shown as six characters
        caret_col, width = len(printable(text[:caret_col])), len(printable(text[caret_col : caret_col + width])) or 1
        out.append(f"{blue}{gutter}{reset}{printable(text, newlines=False)}")
        out.append(f"{blue}{' ' * (len(gutter) - 2)}| {reset}{' ' * caret_col}{tint}{'^' * width}{reset}")
    for note in diag.notes:
        out.append(f"  {blue}note:{reset} {printable(note)}")
    if diag.help:
        out.append(f"  {blue}help:{reset} {printable(diag.help)}")
    return "\n".join(out)


def render_all(diags: Iterable[Diagnostic], source: Source | None, color: bool = False) -> str:
    """Render several diagnostics, blank-line separated, in source order."""
    ordered = sorted(diags, key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
    return "\n\n".join(render(d, source, color) for d in ordered)
