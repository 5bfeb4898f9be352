"""What every `netdsl` command shares: rendering diagnostics on stderr and parsing common options."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from netdsl.budgets import Budget, BudgetError, parse_budget
from netdsl.diagnostics import Diagnostic, NetdslError, Source, render, render_all
from netdsl.terminal import printable


def use_color(stream: object = None) -> bool:
    """Colour only on a terminal: piped output and CI logs stay plain text."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def say(text: object = "", err: bool = False, nl: bool = True) -> None:
    """click.echo of `printable(text)`: everything the commands print goes through here (or through
    the diagnostics renderer, which escapes each piece itself and adds colour)."""
    click.echo(printable(str(text)), err=err, nl=nl)


def report_error(err: NetdslError) -> None:
    """Render every diagnostic of a NetdslError on stderr."""
    click.echo(render_all(err.diagnostics, err.source, color=use_color()), err=True)
    errors = sum(d.severity == "error" for d in err.diagnostics)
    if errors > 1:
        say(f"\n{errors} errors", err=True)


def render_warnings(warnings: list[Diagnostic], source: Source) -> None:
    for warning in warnings:
        click.echo(render(warning, source, color=use_color()), err=True)


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """`32x32x3` -> (32, 32, 3); click's BadParameter (exit 2) for anything else."""
    if text is None:
        return None
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise click.BadParameter(f"expected a shape such as 32x32x3, got {text!r}", param_hint="--input")
    return shape


OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EPIPE})


class Group(click.Group):
    """netdsl's command group: click's, plus one clear error (exit 1) when the output cannot be
    written (`netdsl check > /dev/full`), instead of a traceback from inside click.echo, and
    click's own usage errors escaped (they quote the user's arguments: `Path '\x1b[2J' does not exist`)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _escaped_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _escaped_usage_errors():  # the subcommand's arguments are parsed in here
            return super().invoke(ctx)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except OSError as err:  # click itself handles EPIPE (a closed pipe: exit 1, silently)
            _discard_stdout()
            said = err.strerror or str(err)
            message = f"cannot write the output: {said}" if err.errno in OUTPUT_ERRORS else said
            try:
                say(f"error: {message}" + (f": {err.filename}" if err.filename else ""), err=True)
            except OSError:
                pass  # stderr is gone too: the exit code still says it
            sys.exit(1)


@contextlib.contextmanager
def _escaped_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.ClickException as err:
        err.message = printable(err.message)
        raise


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush of what is still buffered cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def parse_budgets(ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]) -> tuple[Budget, ...]:
    """`--assert 'params < 1M'` (repeatable) -> Budgets; click's BadParameter (exit 2) for a bad one."""
    budgets = []
    for text in texts:
        try:
            budgets.append(parse_budget(text))
        except BudgetError as err:
            raise click.BadParameter(f"{err}" + (f" ({err.help})" if err.help else ""), param_hint="--assert") from None
    return tuple(budgets)


ASSERT_HELP = (
    "A budget that must hold, e.g. 'params < 1M', 'macs <= 300M', 'rf >= 32', 'activations < 64MB' (repeatable)."
)
