"""The spec id: a short, stable name for an architecture, the same however its spec is laid out.

It hashes the *lowered* network, where variables are resolved, `repeat` is expanded and every
argument is bound to a layer field, so layout, comments, argument order, spelling (`k3` or
`kernel=3`), written-out defaults and the names of loop variables are gone before hashing. What
is left is the architecture: the input shape and, for every layer, its kind and the fields that
differ from their defaults. Spans, the source text, the file and network names, and the training
settings (`train`, `augment`, `phase`, budgets) are left out: they do not change the model that is
built. The rules are generic (any field named `span` or ending in `_span`, any model's defaults),
so a new IR node kind is covered without an edit here. See docs/tools.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from netdsl.ir import Network

NOT_ARCHITECTURE = frozenset({"name", "file", "source", "training", "budgets"})
"""Network fields that describe where a spec came from or how it trains, not what it builds."""

VERSION = "netdsl-spec-id/2"  # /2: per-axis sizes are stored once for all axes (rank-generic layers)
"""Hashed first: a change of these rules changes every id at once instead of reusing ids silently."""

LENGTH = 12
"""Hex digits kept of the SHA-256 (48 bits: a collision among a million specs has odds of ~1 in 500)."""


def _dropped(field: str) -> bool:
    return field == "span" or field.endswith("_span")


def normalised(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """JSON-ready data of an IR value: spans dropped, fields at their default left out, `kind` kept.

    Lowering reuses one frozen node for every repetition of a statement, so nodes are memoised by
    identity: a 100,000-layer `repeat` costs one conversion per distinct layer."""
    memo = {} if memo is None else memo
    if isinstance(value, BaseModel):
        key = id(value)
        if key not in memo:
            out: dict[str, Any] = {}
            for field, info in type(value).model_fields.items():
                item = getattr(value, field)
                if _dropped(field) or (
                    field != "kind" and not info.is_required() and item == info.get_default(call_default_factory=True)
                ):
                    continue
                out[field] = normalised(item, memo)
            memo[key] = out
        return memo[key]
    if isinstance(value, (list, tuple)):
        return [normalised(item, memo) for item in value]
    if isinstance(value, dict):
        return {str(k): normalised(v, memo) for k, v in value.items() if not _dropped(str(k))}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # `l2=1e-6` and `l2=0.000001` are equal already; `1.0` and `1` are made so
    return value


def architecture(net: Network) -> dict[str, Any]:
    """What the spec id hashes: the network without its provenance and training settings."""
    data = normalised(net)
    return {field: value for field, value in data.items() if field not in NOT_ARCHITECTURE}


def canonical_json(net: Network) -> str:
    """The architecture as canonical JSON (sorted keys, no spaces): equal text for equal networks."""
    return json.dumps(architecture(net), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_id(net: Network) -> str:
    """12 hex digits of the SHA-256 of the versioned canonical JSON."""
    digest = hashlib.sha256(f"{VERSION}\n{canonical_json(net)}".encode()).hexdigest()
    return digest[:LENGTH]
