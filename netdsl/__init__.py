"""netdsl: describe a network in a few lines, see its shapes and parameter counts, train it.

The public API. Parsing and analysis never import TensorFlow or Keras; `build_model`, `emit`
and `train` import them when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# `netdsl.diff`, `netdsl.draw`, `netdsl.emit` and `netdsl.verify` are functions below, named like their modules: importing the
# modules here, before the functions are defined, keeps those names bound to the functions.
from netdsl import diff as _diff_module
from netdsl import draw as _draw_module
from netdsl import emit as _emit_module
from netdsl import layers as _layers  # noqa: F401  (registers the layer kinds)
from netdsl import verify as _verify_module
from netdsl.analysis import LayerReport, Report, analyze
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network
from netdsl.lower import lower
from netdsl.syntax import SyntaxErrors, parse_surface
from netdsl.verify import Verification

if TYPE_CHECKING:
    import keras

__all__ = [
    "Diagnostic", "LayerReport", "NetdslError", "Network", "Report",
    "Verification", "analyze", "build_model", "check", "diff", "draw", "emit", "load", "parse", "spec_id", "verify",
]  # fmt: skip
__version__ = "0.1.0"


def parse(text: str, name: str = "model", file: str | None = None) -> Network:
    """Parse and lower a spec's text into a validated Network (raises NetdslError)."""
    source = Source(text, file or "<string>")
    try:
        statements = parse_surface(source)
    except SyntaxErrors as err:
        if err.recovered is not None:  # check the statements around the syntax errors too: all mistakes at once
            try:
                lower(err.recovered, source)
            except NetdslError as more:
                err.diagnostics.extend(more.diagnostics)
        raise
    return lower(statements, source, name=name).model_copy(update={"file": file, "source": text})


def load(path: str | Path) -> Network:
    """Read a `.net` file and parse it (raises NetdslError, E001 when it cannot be read)."""
    from netdsl.ir import Span
    from netdsl.safeio import read_bytes
    from netdsl.syntax import MAX_SOURCE_BYTES

    path = Path(path)
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
    return parse(text, name=path.stem, file=str(path))


def check(path_or_text: str | Path, input_shape: tuple[int, ...] | None = None) -> Report:
    """`netdsl check` as a function: load (a path) or parse (text), optionally set the input, analyze."""
    return analyze(_network(path_or_text, input_shape))


def _network(spec: str | Path | Network, input_shape: tuple[int, ...] | None = None) -> Network:
    """A Network from a path, a spec's text or a Network, with the input shape overridden if given."""
    if isinstance(spec, Network):
        net = spec
    else:
        is_path = isinstance(spec, Path) or ("\n" not in str(spec) and str(spec).endswith(".net"))
        net = load(spec) if is_path else parse(str(spec))
    return net.with_input(input_shape) if input_shape is not None else net


def diff(
    a: str | Path | Network, b: str | Path | Network, input_shape: tuple[int, ...] | None = None
) -> _diff_module.Diff:
    """`netdsl diff` as a function: A and B aligned layer by layer by structure, with per-row and total
    changes: `.rows`, `.totals`, `.to_json()`, `.text()` (the table `netdsl diff` prints)."""
    from netdsl.specid import spec_id as _spec_id

    nets = [_network(spec, input_shape) for spec in (a, b)]
    reports = [analyze(net) for net in nets]
    return _diff_module.diff_reports(*reports, *(_spec_id(net) for net in nets))


def spec_id(spec: str | Path | Network, input_shape: tuple[int, ...] | None = None) -> str:
    """The spec id: 12 hex digits naming the architecture; layout, comments and loop-variable names
    do not change it, any layer or argument does (netdsl/specid.py says exactly what is hashed)."""
    from netdsl.specid import spec_id as _spec_id

    return _spec_id(_network(spec, input_shape))


def verify(spec: str | Path | Network, input_shape: tuple[int, ...] | None = None) -> Verification:
    """`netdsl check --verify` as a function: analyze, build with Keras, compare every layer and the totals."""
    return _verify_module.verify_network(_network(spec, input_shape))


def emit(spec: str | Path | Network, input_shape: tuple[int, ...] | None = None) -> str:
    """`netdsl emit` as a function: a standalone Python module that builds the same Keras model."""
    return _emit_module.emit_network(_network(spec, input_shape))


def draw(
    spec: str | Path | Network | Report, expand: bool = False, input_shape: tuple[int, ...] | None = None
) -> _draw_module.Drawing:
    """`netdsl draw` as a function: a picture of the network (one box per statement, or per Keras layer
    with `expand`); in Jupyter it displays inline, elsewhere `.save("net.svg")` or `.svg()`."""
    report = spec if isinstance(spec, Report) else analyze(_network(spec, input_shape))
    return _draw_module.draw(report, expand)


def build_model(net: Network, **kwargs: Any) -> keras.Model:
    """The Keras 3 model for a network (imports Keras)."""
    from netdsl.compile import build_model as _build

    return _build(net, **kwargs)


# Training lives in netdsl.training and imports TensorFlow only when a function is called, so
# `import netdsl` stays as light as parsing needs.
__all__ += ["evaluate", "predict", "train"]


def train(spec: Any = None, data: str | None = None, **options: Any) -> Any:
    """Train a spec (path, text or Network) on `data` (default: the built-in synthetic images) and
    write a run directory; returns a TrainResult. Options: see `netdsl.training.train`."""
    from netdsl.training import train as _train

    return _train(spec, data, **options)


def evaluate(run_dir: str | Path, data: str | None = None) -> dict:
    """Test loss and accuracy of a trained run directory (on its own data, or on `data`)."""
    from netdsl.training import evaluate as _evaluate

    return _evaluate(run_dir, data)


def predict(run_dir: str | Path, images: Any, top: int = 3) -> list[dict]:
    """Top-`top` classes and probabilities for image files, with a trained run's model."""
    from netdsl.training import predict as _predict

    return _predict(run_dir, images, top=top)
