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


REFERENCES: dict[str, frozenset[str]] = {
    "*": frozenset({"tap", "ref", "refs", "input_name", "outputs"}),  # tensors named with `as`, and their uses
    "InputSpec": frozenset({"name"}),  # `input 10 as meta`
}
"""Fields holding tensor names: renamed t1, t2, ... in order of first appearance, so naming a tensor
`skip` or `d1` gives the same id (as loop variables' names do)."""

INLINED = {"Block": "body"}
"""Nodes that only group others: a use of a user block counts as its body written out in its place
(the same layers, in the same order, with the same names), so a block and its expansion share an id."""

AS_WRITTEN: dict[str, frozenset[str]] = {
    "*": frozenset({"ref_name", "ref_names"}),  # the names as written, kept for messages and emitted code
}
"""Fields that repeat, for people, what other fields already say: not hashed."""


def _in(table: dict[str, frozenset[str]], model: BaseModel, field: str) -> bool:
    return field in table["*"] or field in table.get(type(model).__name__, frozenset())


def _dropped(field: str) -> bool:
    return field == "span" or field.endswith("_span")


class _Normaliser:
    """One pass over an IR value; nodes memoised by identity, tensor names renamed consistently.

    Lowering reuses one frozen node for every repetition of a statement, so a 100,000-layer `repeat`
    costs one conversion per distinct layer."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.names: dict[str, str] = {}

    def name(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [self.name(item) for item in value]
        if isinstance(value, str):
            return self.names.setdefault(value, f"t{len(self.names) + 1}")
        return self(value)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            key = id(value)
            if key not in self.memo:
                self.memo[key] = self.model(value)
            return self.memo[key]
        if isinstance(value, (list, tuple)):
            out: list[Any] = []
            for item in value:
                if type(item).__name__ in INLINED:
                    out.extend(self.inlined(item))
                else:
                    out.append(self(item))
            return out
        if isinstance(value, dict):
            return {str(k): self(v) for k, v in value.items() if not _dropped(str(k))}
        if isinstance(value, float) and value.is_integer():
            return int(value)  # `l2=1e-6` and `l2=0.000001` are equal already; `1.0` and `1` are made so
        return value

    def inlined(self, group: BaseModel) -> list[Any]:
        """A group's members in its place; its output's name (`pair 8 as d1`) goes to its last member."""
        members = self(getattr(group, INLINED[type(group).__name__]))
        tap = getattr(group, "tap", None)
        if tap is not None and members and isinstance(members[-1], dict):
            inner = members[-1].get("tap")
            if inner is None:
                members[-1] = {**members[-1], "tap": self.name(tap)}  # a copy: the member may be memoised
            else:
                self.names.setdefault(tap, inner)  # two names of one tensor: one canonical name
        return members

    def model(self, value: BaseModel) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field, info in type(value).model_fields.items():
            item = getattr(value, field)
            at_default = not info.is_required() and item == info.get_default(call_default_factory=True)
            if _dropped(field) or _in(AS_WRITTEN, value, field) or (field != "kind" and at_default):
                continue
            out[field] = self.name(item) if _in(REFERENCES, value, field) else self(item)
        return out


def normalised(value: Any) -> Any:
    """JSON-ready data of an IR value: spans and as-written copies dropped, fields at their default left
    out (`kind` kept), tensor names renamed by first appearance."""
    return _Normaliser()(value)


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
