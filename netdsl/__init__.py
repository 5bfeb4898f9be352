"""netdsl: describe a network in a few lines, see its shapes and parameter counts, train it.

The public API. Parsing and analysis never import TensorFlow or Keras; `build_model`, `emit`
and `train` import them when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from netdsl import layers as _layers  # noqa: F401  (registers the layer kinds)
from netdsl.analysis import LayerReport, Report, analyze
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network
from netdsl.lower import lower
from netdsl.syntax import parse_surface

if TYPE_CHECKING:
    import keras

__all__ = [
    "Diagnostic", "LayerReport", "NetdslError", "Network", "Report",
    "analyze", "build_model", "check", "load", "parse",
]  # fmt: skip
__version__ = "0.1.0"


def parse(text: str, name: str = "model", file: str | None = None) -> Network:
    """Parse and lower a spec's text into a validated Network (raises NetdslError)."""
    source = Source(text, file or "<string>")
    return lower(parse_surface(source), source, name=name).model_copy(update={"file": file, "source": text})


def load(path: str | Path) -> Network:
    """Read a `.net` file and parse it (raises NetdslError, E001 when it cannot be read)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise NetdslError(
            [Diagnostic("E001", f"cannot read {path}: {err.strerror or err}")], Source("", str(path))
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        from netdsl.ir import Span

        raise NetdslError(
            [
                Diagnostic(
                    "E103", f"the file is not UTF-8 text (byte 0x{raw[err.start]:02x})", Span(line=line, column=column)
                )
            ],
            Source("", str(path)),
        ) from None
    return parse(text, name=path.stem, file=str(path))


def check(path_or_text: str | Path, input_shape: tuple[int, ...] | None = None) -> Report:
    """`netdsl check` as a function: load (a path) or parse (text), optionally set the input, analyze."""
    is_path = isinstance(path_or_text, Path) or ("\n" not in str(path_or_text) and str(path_or_text).endswith(".net"))
    net = load(path_or_text) if is_path else parse(str(path_or_text))
    if input_shape is not None:
        net = net.with_input(input_shape)
    return analyze(net)


def build_model(net: Network, **kwargs: Any) -> keras.Model:
    """The Keras 3 model for a network (imports Keras)."""
    from netdsl.compile import build_model as _build

    return _build(net, **kwargs)
