"""Building trusted Pydantic models fast: Span and LayerReport instances by the hundred thousand.

`Model(...)` validates every field and `Model.model_construct(...)` is pure Python and slower still
(~10 us a row); the parser's spans and the analyzer's rows are made from values netdsl computed itself,
so validation adds nothing. `construct` fills an instance's fields directly (~1 us), defaults included.
tests/test_fastparse.py checks that such instances equal, hash, copy and dump as validated ones.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_new, _set = object.__new__, object.__setattr__
_DEFAULTS: dict[type, tuple[dict[str, Any], set[str]]] = {}


def construct(cls: type[M], **fields: Any) -> M:
    """An instance of `cls` holding `fields` (and the other fields' defaults), without validation."""
    known = _DEFAULTS.get(cls)
    if known is None:
        defaults = {name: info.get_default(call_default_factory=True) for name, info in cls.model_fields.items()
                    if not info.is_required()}  # fmt: skip
        known = _DEFAULTS[cls] = (defaults, set(cls.model_fields))
    instance = _new(cls)
    _set(instance, "__dict__", {**known[0], **fields})
    _set(instance, "__pydantic_fields_set__", set(fields))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cycle collector paused while a spec is parsed, lowered or analyzed: those build hundreds of
    thousands of small objects and no cycles, and each collection walks all of them again (it more than
    doubled the time of a 100,000-layer spec). Restored afterwards; nesting is harmless."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
