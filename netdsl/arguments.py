"""The public API's arguments, checked where they enter: a wrong *type* is a TypeError that names the
function, the argument and what it takes; a wrong *value* is a NetdslError with a code, as from a spec.

Why: `netdsl.parse(b"...")` used to fail deep inside the lexer ("cannot use a string pattern on a
bytes-like object"), `netdsl.load(None)` inside pathlib, and `netdsl.analyze(None)` with an
AttributeError. And a Network that was not validated (made with `model_construct`, or changed with
`model_copy(update=...)`, which Pydantic does not validate) was analysed as it was: `filters=-3` gave
negative parameter counts. So every Network that reaches the analyzer, the compiler or the trainer
is either one netdsl built itself from validated parts (`trust`), or is validated again here.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network

_TRUSTED: dict[int, tuple[Any, ...]] = {}
"""id(network) -> the objects it held when netdsl built it (identity, not equality, is compared)."""


def _contents(net: Network) -> tuple[Any, ...]:
    return (*net.__dict__.values(), *net.layers)


def trust(net: Network) -> Network:
    """Record that netdsl built `net` from validated parts (the parser, `with_input` of such a network)."""
    _TRUSTED[id(net)] = _contents(net)
    weakref.finalize(net, _TRUSTED.pop, id(net), None)
    return net


def is_trusted(net: Network) -> bool:
    """Whether `net` is one netdsl built, unchanged since (no field or list entry replaced)."""
    seen, now = _TRUSTED.get(id(net)), _contents(net)
    return seen is not None and len(seen) == len(now) and all(a is b for a, b in zip(seen, now))


def checked_network(net: object, function: str) -> Network:
    """`net` itself if netdsl built it; else validated from scratch, like a parsed spec (E201 if invalid)."""
    if not isinstance(net, Network):
        raise TypeError(
            f"netdsl.{function}: expected a netdsl.Network (from netdsl.parse or netdsl.load), got {_kind(net)}"
        )
    if is_trusted(net):
        return net
    try:
        fresh = Network.model_validate(net.model_dump(round_trip=True))
        return trust(fresh.traced(net.provenance))  # lowering's record, which emit checks against the layers
    except ValidationError as err:
        problems = [
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors(include_url=False)
        ]
        raise NetdslError(
            [Diagnostic("E201", f"invalid Network: {problem}", help="build networks with netdsl.parse, or "
                        "construct them with valid values (model_construct and model_copy skip validation)")
             for problem in problems[:10]],
            Source("", "<Network>"),
        ) from None  # fmt: skip


def text_argument(value: object, function: str, name: str = "text", optional: bool = False) -> str | None:
    """A str argument (None too when `optional`), else TypeError; bytes get a hint to decode them."""
    if isinstance(value, str) or (optional and value is None):
        return value
    hint = "; decode it first: data.decode('utf-8')" if isinstance(value, (bytes, bytearray)) else ""
    raise TypeError(f"netdsl.{function}: {name} must be a str, got {_kind(value)}{hint}")


def path_argument(value: object, function: str, name: str = "path") -> Path:
    """A str, bytes or os.PathLike path as a Path, else TypeError (a NUL in it is E001 when it is read)."""
    if isinstance(value, (str, bytes, os.PathLike)):
        try:
            return Path(os.fsdecode(value))
        except TypeError:  # an os.PathLike whose __fspath__ returns something else
            pass
    raise TypeError(f"netdsl.{function}: {name} must be a path (str or pathlib.Path), got {_kind(value)}")


def paths_argument(value: object, function: str, name: str = "images") -> list[Path]:
    """One path or an iterable of paths, as a list of Paths."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return [path_argument(value, function, name)]
    if not isinstance(value, Iterable):
        raise TypeError(f"netdsl.{function}: {name} must be a path or a list of paths, got {_kind(value)}")
    return [path_argument(item, function, f"each of {name}") for item in value]


def shape_argument(value: object, function: str) -> tuple[int, ...] | None:
    """An input shape such as (32, 32, 3): None, or a tuple/list of whole numbers (TypeError), each at least 1 (E206)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(
            f"netdsl.{function}: input_shape must be a tuple of ints such as (32, 32, 3), got {_kind(value)}"
        )
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in value):
        raise TypeError(f"netdsl.{function}: input_shape must hold ints, got {tuple(value)!r}")
    if not value or min(value) < 1:
        raise NetdslError(
            [Diagnostic("E206", f"input_shape must be one or more sizes of at least 1, got {tuple(value)!r}")],
            Source("", f"netdsl.{function}"),
        )
    return tuple(value)


def whole_argument(value: object, function: str, name: str, minimum: int = 1) -> int:
    """An int of at least `minimum`: TypeError for another type, E201 below it."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"netdsl.{function}: {name} must be an int, got {_kind(value)}")
    if value < minimum:
        raise NetdslError(
            [Diagnostic("E201", f"{name} must be at least {minimum}, got {value}")], Source("", f"netdsl.{function}")
        )
    return value


def budgets_argument(value: object, function: str) -> list[Any]:
    """A list (or tuple) of budgets, each a str such as "params < 1M" or a Budget; else TypeError."""
    from netdsl.ir import Budget

    if isinstance(value, (list, tuple)) and all(isinstance(b, (str, Budget)) for b in value):
        return list(value)
    shown = _kind(value) if not isinstance(value, (list, tuple)) else f"{type(value).__name__} holding {_kinds(value)}"
    raise TypeError(f"netdsl.{function}: budgets must be a list such as ['params < 1M'], got {shown}")


def _kinds(values: Iterable[object]) -> str:
    return ", ".join(sorted({type(v).__name__ for v in values}))


def train_options(options: dict[str, Any]) -> dict[str, Any]:
    """`netdsl.train`'s keyword arguments with the types Python cannot leave to the training
    configuration's own validation (which makes E201s of the rest): paths, counts, callbacks."""
    checked = dict(options)
    for name in ("out", "resume"):
        if checked.get(name) is not None:
            checked[name] = path_argument(checked[name], "train", name)
    if checked.get("max_images") is not None:
        checked["max_images"] = whole_argument(checked["max_images"], "train", "max_images")
    if "echo" in checked and not callable(checked["echo"]):
        raise TypeError(f"netdsl.train: echo must be a function taking a line of text, got {_kind(checked['echo'])}")
    verbose = checked.get("verbose")
    if verbose is not None and (not isinstance(verbose, int) or isinstance(verbose, bool) or verbose not in (0, 1, 2)):
        raise TypeError(f"netdsl.train: verbose must be None, 0, 1 or 2 (Keras's progress), got {_kind(verbose)}")
    if checked.get("augment") is not None and not isinstance(checked["augment"], Mapping):
        raise TypeError(
            f"netdsl.train: augment must be a dict such as {{'flip': True}}, got {_kind(checked['augment'])}"
        )
    return checked


def _kind(value: object) -> str:
    if value is None:
        return "None"
    shown = repr(value)
    return type(value).__name__ + (f" {shown}" if len(shown) <= 40 and not isinstance(value, (bytes, str)) else "")
