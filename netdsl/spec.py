"""Reading a spec: text -> Network (`parse`), a file -> Network (`load`), and the one rule by which every
entry point (netdsl.check/analyze/emit/verify/build_model/train and the CLI) accepts a spec (`as_network`).

There used to be two rules: `check` analysed `"input 4; dense 2 softmax"` as text while `train` took the
same string for a path (E001). Now a `Path` is a file, a `Network` is itself, and a string is a file
when it is one line that ends in `.net` or names an existing file, otherwise the spec's text.
"""

from __future__ import annotations

import os
from pathlib import Path

from netdsl.arguments import checked_network, path_argument, shape_argument, text_argument, trust
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network, Span
from netdsl.lower import lower
from netdsl.quick import paused_gc
from netdsl.safeio import read_bytes
from netdsl.syntax import MAX_SOURCE_BYTES, SyntaxErrors, parse_surface

SpecLike = str | Path | Network
"""What every entry point accepts as a spec: its text, a path (str or Path) or a Network."""


def parse(text: str, name: str = "model", file: str | None = None) -> Network:
    """Parse and lower a spec's text into a validated Network (raises NetdslError; TypeError unless
    `text` and `name` are str and `file` a str or None)."""
    text_argument(text, "parse")
    text_argument(name, "parse", "name")
    text_argument(file, "parse", "file", optional=True)
    source = Source(text, file or "<string>")
    with paused_gc():  # a large spec is many small objects and no cycles (netdsl.quick)
        try:
            statements = parse_surface(source)
        except SyntaxErrors as err:
            if err.recovered is not None:  # check the statements around the syntax errors too: all mistakes at once
                try:
                    lower(err.recovered, source)
                except NetdslError as more:
                    err.diagnostics.extend(more.diagnostics)
            raise
        return trust(lower(statements, source, name=name).model_copy(update={"file": file, "source": text}))


def load(path: str | Path) -> Network:
    """Read a `.net` file and parse it (raises NetdslError, E001 when it cannot be read; TypeError unless
    `path` is a str, bytes or os.PathLike)."""
    path = path_argument(path, "load")
    return parse(read_source(path), name=path.stem, file=str(path))


def read_source(path: Path) -> str:
    """A spec file's text: a regular file, at most MAX_SOURCE_BYTES, UTF-8 (E001, E207, E103 otherwise)."""
    try:  # a regular file only (a FIFO would hang), read bounded: a 10 GB file must not fill the memory
        raw = read_bytes(path, MAX_SOURCE_BYTES + 1)
    except OSError as err:
        raise NetdslError(
            [Diagnostic("E001", f"cannot read {path}: {err.strerror or err}")], Source("", str(path))
        ) from None
    if len(raw) > MAX_SOURCE_BYTES:
        size = path.stat().st_size if path.is_file() else 0
        said = f"{size / 2**20:.1f} MB" if size else f"more than {MAX_SOURCE_BYTES // 2**20} MB"
        raise NetdslError(
            [Diagnostic("E207", f"the spec is {said}; netdsl reads specs of at most {MAX_SOURCE_BYTES // 2**20} MB",
                        Span(line=1, column=1), help="see docs/limits.md")],
            Source("", str(path)),
        )  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw[: err.start].count(b"\n") + 1
        column = len(raw[start : err.start].decode("utf-8", errors="replace")) + 1
        shown = Source(raw.decode("utf-8", errors="replace"), str(path))  # the line, with U+FFFD for bad bytes
        raise NetdslError(
            [Diagnostic("E103", f"the file is not UTF-8 text (byte 0x{raw[err.start]:02x})",
                        Span(line=line, column=column), help="save the spec as UTF-8")],
            shown,
        ) from None  # fmt: skip
    return text.removeprefix("\ufeff")  # a byte-order mark (Windows editors write one) is no character of the spec


def is_path(text: str) -> bool:
    """Whether a string given as a spec names a file: one line ending in `.net`, or an existing file."""
    if "\n" in text:
        return False
    if text.endswith(".net"):
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long for the OS: not a file
        return False


def as_network(spec: SpecLike, input_shape: tuple[int, ...] | None = None) -> Network:
    """A Network from a spec's text, a path or a Network, with the input shape overridden if given.
    A Network not built by netdsl is validated again (E201); another type of `spec` is a TypeError."""
    shape = shape_argument(input_shape, "as_network")
    if isinstance(spec, Network):
        net = checked_network(spec, "as_network")
    elif isinstance(spec, os.PathLike) or (isinstance(spec, str) and is_path(spec)):
        net = load(spec)
    elif isinstance(spec, str):
        net = parse(spec)
    else:
        raise TypeError(f"netdsl: a spec is its text (str), a path or a netdsl.Network, got {type(spec).__name__}")
    return trust(net.with_input(shape)) if shape is not None else net
