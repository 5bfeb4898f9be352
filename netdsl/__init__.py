"""netdsl: describe a network in a few lines, see its shapes and parameter counts, train it.

The public API. Parsing and analysis never import TensorFlow or Keras; `build_model`, `emit`
and `train` import them when called.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netdsl import diff as _diff_module
from netdsl import draw as _draw_module
from netdsl import layers as _layers  # noqa: F401  (registers the layer kinds)
from netdsl import transfer
from netdsl.analysis import LayerReport, PhaseReport, Report
from netdsl.arguments import (
    budgets_argument,
    checked_network,
    path_argument,
    paths_argument,
    text_argument,
    train_options,
    whole_argument,
)  # fmt: skip
from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Budget, Network
from netdsl.spec import SpecLike, as_network, load, parse
from netdsl.verify import Verification

if TYPE_CHECKING:
    import keras

    from netdsl.budgets import BudgetResult

__all__ = [
    "Diagnostic", "LayerReport", "NetdslError", "Network", "PhaseReport", "Report", "Verification", "analyze",
    "as_network", "build_model", "check", "check_budgets", "diff", "draw", "emit", "format", "load", "parse",
    "spec_id", "verify",
]  # fmt: skip
__version__ = "0.1.0"


class _Package(types.ModuleType):
    """`netdsl.diff`, `draw`, `emit` and `verify` are the functions below, named like their modules. Importing a
    submodule sets the package's attribute of that name, so the modules (imported lazily, to keep
    `import netdsl.analysis` free of the compiler and the emitter) must not replace the functions."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("diff", "draw", "emit", "verify") and isinstance(value, types.ModuleType) and name in self.__dict__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def check(path_or_text: SpecLike, input_shape: tuple[int, ...] | None = None) -> Report:
    """`netdsl check` as a function: a spec's text, path or Network (see `as_network`), analyzed."""
    return analyze(as_network(path_or_text, input_shape))


def analyze(net: Network, trainable: Callable[[int, str], bool] | None = None) -> Report:
    """Shapes, counts, MACs and receptive fields of every layer, with the spec's own freezing (unless
    `trainable(index, name)` says what trains) and its `phase` lines; raises NetdslError (E201 for a
    hand-made Network with invalid values) and TypeError unless `net` is a Network."""
    if trainable is not None and not callable(trainable):
        raise TypeError(
            f"netdsl.analyze: trainable must be a function (index, name) -> bool, got {type(trainable).__name__}"
        )
    return transfer.analyze(checked_network(net, "analyze"), trainable)


def diff(a: SpecLike, b: SpecLike, input_shape: tuple[int, ...] | None = None) -> _diff_module.Diff:
    """`netdsl diff` as a function: A and B aligned layer by layer by structure, with per-row and total
    changes: `.rows`, `.totals`, `.to_json()`, `.text()` (the table `netdsl diff` prints)."""
    from netdsl.specid import spec_id as _spec_id

    nets = [as_network(spec, input_shape) for spec in (a, b)]
    reports = [analyze(net) for net in nets]
    return _diff_module.diff_reports(*reports, *(_spec_id(net) for net in nets))


def check_budgets(
    spec: SpecLike, budgets: Sequence[str | Budget] = (), input_shape: tuple[int, ...] | None = None
) -> list[BudgetResult]:
    """The spec's `assert` budgets and `budgets` (`"params < 1M"`, as `--assert` takes them), measured;
    raises NetdslError (E701 for each one not met, E702 for one not understood)."""
    from netdsl.budgets import BudgetError, enforce, parse_budget

    budgets = budgets_argument(budgets, "check_budgets")
    net = as_network(spec, input_shape)
    source = Source(net.source, net.file or "<string>")
    extra = []
    for budget in budgets:
        try:
            extra.append(parse_budget(budget) if isinstance(budget, str) else budget)
        except BudgetError as err:
            raise NetdslError([Diagnostic("E702", str(err), None, help=err.help)], source) from None
    if not (net.budgets or extra):
        return []  # nothing to measure: a spec without an input may still get one from its data
    if net.input_shape is None:
        raise NetdslError([Diagnostic("E702", "budgets are measured on an input shape; the spec has none",
                                      (net.budgets[0].span if net.budgets else None),
                                      help="start the spec with `input HxWxC`")], source)  # fmt: skip
    try:
        return enforce(analyze(net), (*net.budgets, *extra))
    except NetdslError as err:
        err.source = source
        raise


def format(text: str) -> str:
    """`netdsl fmt` as a function: a spec's text in the canonical layout, comments kept (NetdslError if
    it does not parse). Idempotent, and the result parses to the same statements."""
    from netdsl.fmt import format_text

    return format_text(text_argument(text, "format"))


def spec_id(spec: SpecLike, input_shape: tuple[int, ...] | None = None) -> str:
    """The spec id: 12 hex digits naming the architecture; layout, comments and loop-variable names
    do not change it, any layer or argument does (netdsl/specid.py says exactly what is hashed)."""
    from netdsl.specid import spec_id as _spec_id

    return _spec_id(as_network(spec, input_shape))


def verify(spec: SpecLike, input_shape: tuple[int, ...] | None = None) -> Verification:
    """`netdsl check --verify` as a function: analyze, build with Keras, compare every layer and the totals."""
    return transfer.verify(as_network(spec, input_shape))


def emit(spec: SpecLike, input_shape: tuple[int, ...] | None = None) -> str:
    """`netdsl emit` as a function: a standalone Python module that builds the same Keras model."""
    return transfer.emit(as_network(spec, input_shape))


def draw(
    spec: SpecLike | Report, expand: bool = False, input_shape: tuple[int, ...] | None = None
) -> _draw_module.Drawing:
    """`netdsl draw` as a function: a picture of the network (one box per statement, or per Keras layer
    with `expand`); in Jupyter it displays inline, elsewhere `.save("net.svg")` or `.svg()`."""
    report = spec if isinstance(spec, Report) else analyze(as_network(spec, input_shape))
    return _draw_module.draw(report, expand)


def build_model(spec: SpecLike, **kwargs: Any) -> keras.Model:
    """The Keras 3 model for a spec (text, path or Network), with its freezing applied (imports Keras)."""
    return transfer.build_model(as_network(spec), **kwargs)


# Training lives in netdsl.trainer and imports TensorFlow only when a function is called, so
# `import netdsl` stays as light as parsing needs.
__all__ += ["evaluate", "export", "list_runs", "predict", "train"]


def train(spec: SpecLike | None = None, data: str | None = None, budgets: Sequence[str] = (), **options: Any) -> Any:
    """Train a spec (path, text or Network) on `data` (default: the built-in synthetic images) and
    write a run directory; returns a TrainResult. Options: see `netdsl.trainer.train`. The spec's
    `assert` budgets and `budgets` (`"params < 1M"`) must hold: checked before Keras is imported."""
    if spec is not None:
        check_budgets(spec, budgets)
    from netdsl.trainer import train as _train

    return _train(spec, text_argument(data, "train", "data", optional=True), **train_options(options))


def list_runs(folder: str | Path = "runs", spec_id: str | None = None) -> list[Any]:
    """`netdsl runs` as a function: the run directories in `folder` (RunSummary: spec id, data, status,
    epochs, test accuracy, time), only those of one architecture when `spec_id` (or its first digits) is given."""
    from netdsl.runlist import list_runs as _list_runs

    return _list_runs(
        path_argument(folder, "list_runs", "folder"), text_argument(spec_id, "list_runs", "spec_id", True)
    )


def evaluate(run_dir: str | Path, data: str | None = None, backend: str | None = None) -> dict:
    """Test loss and accuracy of a trained run directory (on its own data, or on `data`), on `backend`
    (tensorflow, jax, torch; default: KERAS_BACKEND, else tensorflow; chosen before Keras is imported)."""
    from netdsl.trainer import evaluate as _evaluate

    run = path_argument(run_dir, "evaluate", "run_dir")
    backend = text_argument(backend, "evaluate", "backend", optional=True)
    return _evaluate(run, text_argument(data, "evaluate", "data", True), backend=backend)


def predict(run_dir: str | Path, images: Any, top: int = 3, backend: str | None = None) -> list[dict]:
    """Top-`top` classes and probabilities for image files, with a trained run's model."""
    from netdsl.trainer import predict as _predict

    run = path_argument(run_dir, "predict", "run_dir")
    top = whole_argument(top, "predict", "top")
    backend = text_argument(backend, "predict", "backend", optional=True)
    return _predict(run, paths_argument(images, "predict"), top=top, backend=backend)


def export(
    run_dir: str | Path, format: str, output: str | Path, backend: str | None = None, images: int = 64,
    tolerance: float = 1e-4,
) -> Any:  # fmt: skip
    """`netdsl export` as a function: write a run's model as onnx, litert, saved_model or keras, load it
    with that format's own runtime and compare with Keras on `images` of the run's data; returns an
    ExportResult (raises E527, or E528 when the outputs differ by more than `tolerance`)."""
    from netdsl.trainer.export import export as _export

    run = path_argument(run_dir, "export", "run_dir")
    format = text_argument(format, "export", "format")  # type: ignore[assignment]
    output = path_argument(output, "export", "output")
    backend = text_argument(backend, "export", "backend", optional=True)
    images = whole_argument(images, "export", "images")
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool):
        raise TypeError(f"netdsl.export: tolerance must be a number, got {type(tolerance).__name__}")
    return _export(run, format, output, backend=backend, images=images, tolerance=float(tolerance))
