"""Options and commands for running past one backend and one device: `--backend`, `--devices`, the
multi-host options of `train`, and `netdsl export`. Thin: parse, call the library, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from netdsl.cli_base import report_error, say
from netdsl.diagnostics import NetdslError

BACKEND_NAMES = (
    "tensorflow",
    "jax",
    "torch",
)  # netdsl/trainer/backends.py BACKENDS (not imported here: cheap CLI start)
EXPORT_FORMATS = ("onnx", "litert", "saved_model", "keras")  # netdsl/trainer/export.py FORMATS

backend_option = click.option(
    "--backend", type=click.Choice(BACKEND_NAMES),
    help="Keras backend to run on (default: $KERAS_BACKEND, else tensorflow); a run trained on one evaluates on any.",
)  # fmt: skip


def choose_backend(name: str | None) -> None:
    """Fix the Keras backend before anything imports Keras (E525, exit 1, if it cannot be used)."""
    from netdsl.trainer.backends import choose

    try:
        choose(name)
    except NetdslError as err:
        report_error(err)
        sys.exit(1)


def devices_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """--devices: a positive count or `all` (bad usage otherwise, exit 2)."""
    if value is None or value.strip().lower() == "all":
        return None if value is None else "all"
    if not value.strip().isdigit() or int(value) < 1:
        raise click.BadParameter(f"{value!r} is not a positive number of devices or 'all'", ctx, param)
    return int(value)


def cluster_options(coordinator: str | None, processes: int | None, process_id: int | None) -> Any:
    """--coordinator, --processes and --process-id go together (bad usage otherwise, exit 2)."""
    from netdsl.trainer.distribute import Cluster

    given = [coordinator is not None, processes is not None, process_id is not None]
    if not any(given):
        return None
    if not all(given):
        raise click.UsageError("--coordinator, --processes and --process-id are given together (one per process)")
    host, _, port = (coordinator or "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{coordinator!r} is not HOST:PORT", param_hint="--coordinator")
    if process_id >= processes:  # type: ignore[operator]
        raise click.BadParameter(f"{process_id} is not below --processes {processes}", param_hint="--process-id")
    return Cluster(coordinator, processes, process_id)  # type: ignore[arg-type]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(EXPORT_FORMATS), required=True, help="What to write.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The file (.onnx, .tflite, .keras) or, for saved_model, the directory to write.")  # fmt: skip
@click.option("--images", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images of the run's data on which the export is compared with Keras.")  # fmt: skip
@click.option("--tolerance", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Largest |exported - Keras| allowed on the outputs.")  # fmt: skip
@backend_option
def export(run_dir: Path, format_: str, output: Path, images: int, tolerance: float, backend: str | None) -> None:
    """Export a trained run's model (Keras's model.export / model.save), then load it with its own
    runtime and compare its outputs with Keras's on real images of the run's data."""
    from netdsl.trainer.export import export as export_run

    choose_backend(backend)
    try:
        result = export_run(run_dir, format_, output, backend=backend, images=images, tolerance=tolerance)
    except NetdslError as err:
        report_error(err)
        sys.exit(1)
    say(result.summary())


EXPORT = export
