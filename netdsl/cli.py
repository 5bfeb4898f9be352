"""The `netdsl` command. Thin: parse options, call the library, render, choose the exit code.

Exit codes: 0 success, 1 a bad spec (or bad data), 2 bad usage (click's own).
"""

from __future__ import annotations

import difflib
import gc
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic.fields import FieldInfo

import netdsl
from netdsl.budgets import Budget, failures, measure, to_dicts
from netdsl.budgets import summary as budget_summary
from netdsl.cli_base import (
    ASSERT_HELP,
    Group,
    parse_budgets,
    parse_shape,
    render_warnings,
    report_error,
    say,
    use_color,
)
from netdsl.cli_scale import EXPORT, backend_option, choose_backend, cluster_options, devices_option
from netdsl.cli_tools import COMMANDS
from netdsl.diagnostics import CODES, NetdslError, Source, render_all
from netdsl.diagnostics import explain as explain_code
from netdsl.ir import AUGMENT_FIELDS, MAX_BATCH, MAX_SEED, OPTIMIZERS, SCHEDULES, Augment
from netdsl.render import summary_table


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(netdsl.__version__, prog_name="netdsl")
def main() -> None:
    """netdsl: describe a network in a few lines, check its shapes and counts, train it."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON (a list for several files).")
@click.option("--input", "input_shape", metavar="HxWxC", help="Set or override the input shape, e.g. 32x32x3.")
@click.option("--max-rows", type=click.IntRange(min=2), default=200, show_default=True,
              help="Rows of the table to show for very deep networks.")  # fmt: skip
@click.option("--verify", is_flag=True, help="Also build the model with Keras and compare every layer (loads Keras).")
@click.option("--assert", "budgets", multiple=True, metavar="BUDGET", callback=parse_budgets, help=ASSERT_HELP)
@backend_option
def check(
    files: tuple[Path, ...], as_json: bool, input_shape: str | None, max_rows: int, verify: bool,
    budgets: tuple[Budget, ...], backend: str | None,
) -> None:  # fmt: skip
    """Analyze specs: per-layer shapes, parameters, MACs and receptive fields. Never loads TensorFlow
    (unless --verify asks to build the model with Keras and compare)."""
    # A big spec allocates millions of small objects that form no cycles; Python's cyclic collector
    # would rescan them again and again (a quarter of the time at 100,000 layers, BENCHMARKS.md).
    # So collect rarely while checking, and restore the caller's setting when the command ends.
    thresholds = gc.get_threshold()
    click.get_current_context().call_on_close(lambda: gc.set_threshold(*thresholds))
    gc.set_threshold(100_000, 50, 100)
    shape = parse_shape(input_shape)
    if verify:
        choose_backend(backend)
    reports, failed = [], False
    extras: list[dict] = []  # per report: its spec id and budgets, for --json
    verifications: dict[int, dict] = {}
    for file in files:
        try:  # load once: the table, the warnings' source lines and --verify all use this network
            net = netdsl.as_network(file, shape)
            report = netdsl.analyze(net)
        except NetdslError as err:
            report_error(err)
            failed = True
            continue
        identity = netdsl.spec_id(net)
        reports.append(report)
        source = Source(net.source, str(file))
        measured = measure(report, (*net.budgets, *budgets))
        extras.append({"spec_id": identity, **({"budgets": to_dicts(measured)} if measured else {})})
        if not as_json:
            say(summary_table(report, max_rows=max_rows, spec_id=identity))
            if measured:
                say(budget_summary(measured))
            render_warnings(report.warnings, source)
        if failures(measured):
            report_error(NetdslError(failures(measured), source))
            failed = True
        if verify:
            verified = verify_against_keras(net, source, quiet=as_json)
            verifications[len(reports) - 1] = verified.to_dict()
            failed |= not verified.ok
        if not as_json and len(files) > 1:
            say()
    if as_json and reports:
        data = [
            {**r.to_dict(), **extras[i], **({"verify": verifications[i]} if i in verifications else {})}
            for i, r in enumerate(reports)
        ]
        say(json.dumps(data[0] if len(files) == 1 else data, indent=2))
    sys.exit(1 if failed else 0)


def verify_against_keras(net: netdsl.Network, source: Source, quiet: bool) -> netdsl.Verification:
    """`check --verify` for one network: print the summary line and any differences; exit 2 without Keras."""
    from netdsl.compile import KerasUnavailable

    try:
        verified = netdsl.verify(net)
    except KerasUnavailable as err:
        say(f"error: --verify builds the model with Keras: {err}", err=True)
        sys.exit(2)
    except NetdslError as err:  # e.g. a pretrained run's weights that no longer fit its spec
        report_error(err)
        sys.exit(1)
    if not quiet:
        say(verified.summary())
    if verified.differences:
        click.echo(render_all(verified.differences, source, color=use_color()), err=True)
    return verified


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option("--input", "input_shape", metavar="HxWxC", help="Set or override the input shape, e.g. 32x32x3.")
def emit(file: Path, output: Path | None, input_shape: str | None) -> None:
    """Write a standalone Python module that builds the same Keras model; `python out.py` prints its summary."""
    shape = parse_shape(input_shape)
    if output is not None and _same_file(file, output):
        raise click.BadParameter(f"{output} is the spec itself; emit would overwrite it", param_hint="--output")
    try:
        source = netdsl.emit(netdsl.as_network(file), input_shape=shape)
    except NetdslError as err:
        report_error(err)
        sys.exit(1)
    if output is None:
        say(source, nl=False)
        return
    try:
        output.write_text(source, encoding="utf-8")
    except OSError as err:
        say(f"error: cannot write {output}: {err.strerror or err}", err=True)
        sys.exit(1)
    say(f"wrote {output}; run it with: python {output}", err=True)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (links and `./` spellings included)."""
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except (OSError, ValueError):
        return False


@main.command()
def layers() -> None:
    """List the layer kinds and directives, with an example of each."""
    from netdsl.ir import REGISTRY
    from netdsl.lower import DIRECTIVES

    for kind, cls in sorted(REGISTRY.items()):
        words = ", ".join(cls.words) if cls.words else kind
        say(f"{kind:10} {cls.summary}")
        if cls.words:
            say(f"{'':10} words: {words}")
        say(f"{'':10} e.g. {cls.syntax.example or kind}")
    say("\ndirectives:")
    for word, directive in DIRECTIVES.items():  # the registry lowering dispatches on
        say(f"{word:10} {directive.summary}")
        say(f"{'':10} e.g. {directive.example}")
    say("\nblocks:    repeat N [ ... ] | repeat [ ... ] for w in 20,40,80")


@main.command()
@click.argument("code", required=False)
def explain(code: str | None) -> None:
    """Explain an error or warning code such as E304 (without CODE: list every code)."""
    if code is None:
        for known, title in CODES.items():
            say(f"{known}  {title}")
        return
    try:
        say(explain_code(code))
    except KeyError:
        typed = code.strip().upper()
        digits = typed[:1] + typed[1:].replace("O", "0").replace("I", "1").replace("L", "1")  # E3O4 is E304
        close = [digits] if digits in CODES else difflib.get_close_matches(typed, list(CODES), n=1, cutoff=0.7)
        hint = f"did you mean {close[0]}? " if close else ""
        raise click.BadParameter(
            f"unknown code {code!r}; {hint}`netdsl explain` lists every code", param_hint="CODE"
        ) from None


T = TypeVar("T")


class FiniteRange(click.FloatRange):
    """click's FloatRange, without NaN (which passes every comparison) and infinities: bad usage, exit 2."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


# ---------------------------------------------------------------- training: thin wrappers of netdsl.trainer


DATA_HELP = (
    "synthetic (default; built in: shapes, or key-phrase sequences for an `input L int` spec), synthetic-seq, "
    "cifar10, cifar100, mnist, fashion_mnist, imdb, a .npz file (x_train, y_train, x_test, y_test, or x, y; "
    "integer x for token ids, y per pixel for segmentation) or an image folder (class sub-folders, optionally "
    "under train/ and valid/)."
)


def data_source(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--data: an empty value is bad usage (exit 2), not a quiet request for the default data."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty; omit --data for the built-in synthetic data", ctx, param)
    return value


def augment_option(name: str, info: FieldInfo) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--NAME` for one Augment field: a flag pair for a bool, else a finite float in the field's own bounds."""
    if info.annotation is bool:
        return click.option(f"--{name}/--no-{name}", default=None, help=info.description)
    bounds: dict[str, Any] = {}
    for rule in info.metadata:  # annotated_types Ge / Gt / Le / Lt, as the IR validates them
        for attribute, key, is_open in (("ge", "min", False), ("gt", "min", True), ("le", "max", False),
                                        ("lt", "max", True)):  # fmt: skip
            if getattr(rule, attribute, None) is not None:
                bounds[key] = getattr(rule, attribute)
                bounds[f"{key}_open"] = is_open
    return click.option(f"--{name}", type=FiniteRange(**bounds), help=info.description)


def augment_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per Augment field, in the IR's order: the CLI never spells the augment vocabulary itself."""
    for name in reversed(AUGMENT_FIELDS):
        command = augment_option(name, Augment.model_fields[name])(command)
    return command


def _run_library(call: Callable[[], T]) -> T:
    """Run a library call; render netdsl's own errors (exit 1) and Ctrl-C (exit 130) without a traceback."""
    try:
        return call()
    except NetdslError as err:
        report_error(err)
        sys.exit(1)
    except KeyboardInterrupt:
        say("interrupted", err=True)
        sys.exit(130)


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", metavar="SOURCE", callback=data_source, help=DATA_HELP)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default: runs/<spec>-<time>/); never overwritten."
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Continue an interrupted run from its last finished epoch (same spec, data and settings; on its own "
    "backend and devices unless --backend or --devices says otherwise).",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train.")
@click.option("--batch", type=click.IntRange(min=1, max=MAX_BATCH), help="Batch size.")
@click.option("--lr", type=FiniteRange(min=0, max=10, min_open=True), help="(Peak) learning rate.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="Optimizer.")
@click.option("--schedule", type=click.Choice(SCHEDULES), help="Learning-rate schedule.")
@click.option("--momentum", type=FiniteRange(min=0, max=1, max_open=True), help="SGD momentum.")
@click.option("--label-smoothing", type=FiniteRange(min=0, max=1, max_open=True), help="Label smoothing.")
@click.option("--weight-decay", type=FiniteRange(min=0), help="Decoupled weight decay.")
@click.option("--patience", type=click.IntRange(min=1), help="Early stopping: epochs without a better validation loss.")
@click.option(
    "--validation",
    type=FiniteRange(min=0, max=1, max_open=True),
    help="Fraction of the training images held out for validation (when the data has no split).",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=MAX_SEED), help="Seed for the split, shuffling, augmentation and weights."
)
@augment_options
@click.option("--no-augment", is_flag=True, help="Turn off every augmentation of the spec.")
@click.option("--max-images", type=click.IntRange(min=1), help="Use at most N images of each split (quick runs).")
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch progress.")
@click.option("--assert", "budgets", multiple=True, metavar="BUDGET", callback=parse_budgets, help=ASSERT_HELP)
@backend_option
@click.option("--devices", metavar="N|all", callback=devices_option,
              help="Train data-parallel on N devices (or all); the batch is the global batch.")  # fmt: skip
@click.option("--coordinator", metavar="HOST:PORT", help="Multi-host training (JAX): process 0's address.")
@click.option("--processes", type=click.IntRange(min=1), help="Multi-host training: the number of processes.")
@click.option("--process-id", type=click.IntRange(min=0), help="Multi-host training: this process's number, 0..N-1.")
@click.option("--precision", type=click.Choice(("float32", "mixed")), default="float32", show_default=True,
              help="mixed: Keras's mixed_float16 on GPUs, mixed_bfloat16 elsewhere (weights stay float32).")  # fmt: skip
@click.option("--jit", is_flag=True, help="Compile the train step with XLA (opt-in; often slower on CPUs).")
@click.option("--tensorboard", is_flag=True, help="Write TensorBoard logs to RUN/tensorboard.")
def train(spec: Path | None, data: str | None, out: Path | None, resume: Path | None, max_images: int | None,
          quiet: bool, no_augment: bool, budgets: tuple[Budget, ...], backend: str | None,
          devices: int | str | None, coordinator: str | None, processes: int | None, process_id: int | None,
          precision: str, jit: bool, tensorboard: bool, **options: Any) -> None:  # fmt: skip
    """Train SPEC and write a run directory: spec, config, weights, history.csv, metrics.json, curves.png.

    The spec's `train`/`augment` lines are the defaults; every option here overrides them."""
    augment = {key: options.pop(key) for key in AUGMENT_FIELDS if options.get(key) is not None}
    for key in AUGMENT_FIELDS:
        options.pop(key, None)
    if no_augment:
        augment = Augment().model_dump()  # every field off
    given = {k: v for k, v in options.items() if v is not None}
    if resume is not None and (spec is not None or given or augment or data or out or max_images or budgets):
        raise click.UsageError("--resume continues a run with its own spec, data and settings; give only RUN_DIR")
    if resume is None and spec is None:
        raise click.UsageError("give a SPEC to train, or --resume RUN_DIR")
    from netdsl.trainer import train as train_run
    from netdsl.trainer.speed import Speed

    cluster = cluster_options(coordinator, processes, process_id)
    if spec is not None:  # budgets first: an architecture over budget is refused before Keras loads
        _run_library(lambda: netdsl.check_budgets(spec, budgets))
    _run_library(
        lambda: train_run(
            spec, data, out=out, resume=resume, max_images=max_images, echo=say,
            verbose=0 if quiet else None, backend=backend, devices=devices, cluster=cluster,
            speed=Speed(precision, jit, tensorboard),
            **given, **({"augment": augment} if augment else {}),
        )
    )  # fmt: skip


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--data",
    metavar="SOURCE",
    callback=data_source,
    help="Evaluate on this data's test split instead of the run's own.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@backend_option
def evaluate(run_dir: Path, data: str | None, as_json: bool, backend: str | None) -> None:
    """Test loss and accuracy of a trained run (the model is rebuilt from its spec, then given its weights)."""
    from netdsl.trainer import evaluate as evaluate_run

    result = _run_library(lambda: evaluate_run(run_dir, data, backend=backend))
    if as_json:
        say(json.dumps(result, indent=2))
    else:
        say(
            f"test accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f}, {result['images']:,} images of {result['data']})"
        )


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="Classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@backend_option
def predict(run_dir: Path, images: tuple[Path, ...], top: int, as_json: bool, backend: str | None) -> None:
    """Classify image files with a trained run: the top classes and their probabilities."""
    from netdsl.trainer import predict as predict_run

    results = _run_library(lambda: predict_run(run_dir, images, top=top, backend=backend))
    if as_json:
        say(json.dumps(results, indent=2))
        return
    for result in results:
        ranked = ", ".join(f"{name} {probability:.3f}" for name, probability in result["top"])
        say(f"{result['image']}: {ranked}")


for _command in (*COMMANDS, EXPORT):  # draw, diff, fmt, runs: netdsl/cli_tools.py; export: netdsl/cli_scale.py
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
