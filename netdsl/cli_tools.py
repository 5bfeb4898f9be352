"""The design tools' commands (`draw`, ...): thin wrappers of netdsl's functions, registered on `netdsl`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

import netdsl
from netdsl.cli_base import parse_shape, report_error, say
from netdsl.diagnostics import NetdslError
from netdsl.draw import FORMATS, DrawUnavailable


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The picture to write: .svg, .png, .pdf, or .dot (Graphviz's source).")  # fmt: skip
@click.option("--expand", is_flag=True, help="One box per Keras layer instead of one per statement.")
@click.option("--input", "input_shape", metavar="HxWxC", help="Set or override the input shape, e.g. 32x32x3.")
def draw(spec: Path, output: Path, expand: bool, input_shape: str | None) -> None:
    """Draw SPEC's network with Graphviz: boxes with output shapes and params, edges for branches and merges."""
    if output.suffix.lower() not in FORMATS:
        raise click.BadParameter(
            f"cannot tell the format of {output.name!r}: use one of {', '.join(FORMATS)}", param_hint="--output"
        )
    shape = parse_shape(input_shape)
    try:
        picture = netdsl.draw(netdsl.as_network(spec), expand=expand, input_shape=shape)
        picture.save(output)
    except NetdslError as err:
        report_error(err)
        sys.exit(1)
    except DrawUnavailable as err:
        say(f"error: netdsl draw needs Graphviz: {err}", err=True)
        sys.exit(2)
    except OSError as err:
        say(f"error: cannot write {output}: {err.strerror or err}", err=True)
        sys.exit(1)
    say(f"wrote {output}", err=True)


@click.command()
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the aligned rows and totals as JSON.")
@click.option("--all", "show_all", is_flag=True, help="Show every row, not only the changes and one row around each.")
@click.option("--input", "input_shape", metavar="HxWxC", help="Set or override both inputs' shape, e.g. 32x32x3.")
def diff(a: Path, b: Path, as_json: bool, show_all: bool, input_shape: str | None) -> None:
    """Compare two specs layer by layer, aligned by structure: per-row and total changes of shapes, params,
    MACs and receptive fields. Exit 0 whatever the difference (it is a report), 1 for a bad spec."""
    shape = parse_shape(input_shape)
    nets = []
    for path in (a, b):
        try:
            nets.append(netdsl.as_network(path))
        except NetdslError as err:
            report_error(err)
    if len(nets) < 2:
        sys.exit(1)
    try:
        result = netdsl.diff(*nets, input_shape=shape)
    except NetdslError as err:
        report_error(err)
        sys.exit(1)
    say(result.to_json() if as_json else result.text(context=None if show_all else 1))


@click.command()
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--spec-id", "identity", metavar="ID", help="Only runs of this architecture (a spec id, or its first digits)."
)
@click.option("--spec", "spec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only runs of this spec's architecture (its spec id), however their specs are laid out.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def runs(folder: Path | None, identity: str | None, spec: Path | None, as_json: bool) -> None:
    """List the run directories in FOLDER (default: runs/): spec id, data, status, epochs, test accuracy, time."""
    from netdsl.runlist import list_runs, table

    if identity is not None and not re.fullmatch(r"[0-9a-f]{1,12}", identity):
        raise click.BadParameter(f"a spec id is 1 to 12 hex digits, got {identity!r}", param_hint="--spec-id")
    if identity is not None and spec is not None:
        raise click.UsageError("give --spec-id or --spec, not both")
    try:
        if spec is not None:
            identity = netdsl.spec_id(netdsl.load(spec))
        if folder is None and not Path("runs").is_dir():
            say("no runs yet: ./runs does not exist (netdsl train writes there)")
            return
        found = list_runs(folder or Path("runs"), identity)
    except NetdslError as err:
        report_error(err)
        sys.exit(1)
    if as_json:
        say(json.dumps([run.model_dump() for run in found], indent=2))
    elif found:
        say(table(found))
    else:
        say("no runs" + (f" of spec id {identity}" if identity else "") + f" in {folder or 'runs'}")


@click.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file would be reformatted (CI, pre-commit).")
def fmt(files: tuple[Path, ...], check: bool) -> None:
    """Rewrite specs in netdsl's one canonical layout (comments kept; the meaning never changes)."""
    from netdsl.fmt import FormatError, format_text
    from netdsl.runs import write_text
    from netdsl.spec import read_source

    failed = changed = False
    for path in files:
        try:
            text = read_source(path)
            formatted = format_text(text, str(path))
        except NetdslError as err:
            report_error(err)
            failed = True
            continue
        except FormatError as err:
            say(f"error: {err}", err=True)
            failed = True
            continue
        if formatted == text:
            continue
        changed = True
        if check:
            say(f"would reformat {path}")
            continue
        try:
            target = path.resolve()  # a symlink's file, not a regular file in the link's place
            mode = target.stat().st_mode
            write_text(target, formatted)  # atomic: a new file renamed over the old one
            target.chmod(mode)  # ... which keeps the old one's permissions
        except OSError as err:
            say(f"error: cannot write {path}: {err.strerror or err}", err=True)
            failed = True
            continue
        say(f"reformatted {path}")
    sys.exit(1 if failed or (check and changed) else 0)


COMMANDS = (diff, draw, fmt, runs)
