"""Sizes in words and numbers: `771.7 K`, `2.94 MB` for people, and `2M`, `64MB` read back from them.

Counts take SI suffixes, 1000-based (2M is 2,000,000); memory takes B, KB, MB, GB, TB, 1024-based like
Keras's summary and `netdsl check`'s totals (64MB is 67,108,864 bytes).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, DecimalException
from typing import Literal

Unit = Literal["count", "bytes", "pixels"]

COUNT_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
"""Counts (params, MACs, layers) take SI suffixes, 1000-based: 2M is 2,000,000."""
BYTE_SUFFIXES = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
"""Memory takes KB, MB, GB, TB, 1024-based like `netdsl check`'s "2.94 MB" and Keras's summary."""
_EXAMPLE = {"count": "params < 2M", "bytes": "activations < 64MB", "pixels": "rf >= 32"}


class QuantityError(ValueError):
    """A number that cannot be read in the unit asked for; `help` says what would be."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.help = help


def human_bytes(n: int) -> str:
    """Keras's style: 2.94 MB, 7.03 KB, 0.00 B."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} TB"


def human_count(n: int) -> str:
    """12.3 M, 4.5 G: MACs and parameter counts at a glance."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


_NUMBER = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([A-Za-z]*)")


def quantity(text: str, unit: Unit) -> int:
    """`2M` -> 2000000 (a count), `64MB` -> 67108864 (bytes), `32` -> 32 (pixels take no suffix)."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        raise QuantityError(f"'{text}' is not a number", help="write a number such as 2M, 300M, 32 or 64MB")
    digits, exponent, suffix = match.groups()
    table = {"count": COUNT_SUFFIXES, "bytes": BYTE_SUFFIXES, "pixels": {"": 1}}[unit]
    if unit == "bytes" and not suffix:
        raise QuantityError(f"memory needs a unit: '{text}' what?", help=f"for example {_EXAMPLE[unit]}")
    if suffix not in table:
        kinds = {"count": "a count (K, M, G, T: 1000-based)", "bytes": "memory (B, KB, MB, GB, TB: 1024-based)",
                 "pixels": "a size in pixels (no suffix)"}  # fmt: skip
        raise QuantityError(f"'{suffix}' is not a unit of {kinds[unit]}", help=f"for example {_EXAMPLE[unit]}")
    try:  # Decimal: exact for any digits, and `1e999999999` costs nothing (no float overflow, no huge int)
        value = Decimal(f"{digits}e{exponent or 0}") * table[suffix]
    except DecimalException:  # an exponent past the context's range
        value = Decimal("Infinity")
    if not value.is_finite() or value >= 2**63:
        raise QuantityError(f"'{text}' is too large for a budget")
    return int(value.to_integral_value(ROUND_HALF_EVEN))


_EXAMPLE = {"count": "params < 2M", "bytes": "activations < 64MB", "pixels": "rf >= 32"}
