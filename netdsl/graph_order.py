"""The order of a Keras functional model's `model.layers`, computed without Keras (the analyzer's rows are
listed in it, so that `netdsl check` and `model.summary()` line up)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netdsl.analysis import LayerReport

Calls = Sequence[tuple[int, tuple[int, ...]]]
"""Every call of a layer, in the order made: (its row, the calls whose outputs it takes). A layer called twice
(shared weights) has two calls and one row."""


def keras_order(rows: list[LayerReport], outputs: list, calls: Calls | None = None) -> tuple[list[int], set[int]]:
    """Indices of `rows` (in creation order) as Keras's functional model lists its layers, and the set of rows
    that reach an output. Keras (ops/function.py, `map_graph`) walks the calls ("nodes") depth-first from the
    outputs, numbering each layer when first seen; a call's depth is its longest path to an output, a layer's
    the deepest of its calls'; layers are listed by decreasing depth, ties by that number. Inputs no output
    needs come last. Without `calls`, each row is called once, on the rows its `inputs` name, and `outputs`
    are row names; with them, `outputs` are calls."""
    if calls is None:
        index = {row.name: i for i, row in enumerate(rows)}
        if len(index) < len(rows):  # two rows of one name (never made by netdsl): keep the order they were made in
            return list(range(len(rows))), set(range(len(rows)))
        calls = [(i, tuple(index[name] for name in row.inputs)) for i, row in enumerate(rows)]
        outputs = [index[name] for name in outputs]
    seen: dict[int, int] = {}  # row -> traversal number
    finished: set[int] = set()
    started: set[int] = set()
    post: list[int] = []  # calls from inputs to outputs
    for output in outputs:
        stack = [(output, 0)]
        while stack:  # iterative: a 100,000-layer chain must not recurse
            node, child = stack.pop()
            parents = calls[node][1]
            if child == 0:
                if node in finished or node in started:  # done, or on the path already (no cycle is followed)
                    continue
                started.add(node)
                seen.setdefault(calls[node][0], len(seen))
            if child < len(parents):
                stack.append((node, child + 1))
                stack.append((parents[child], 0))
            elif node not in finished:
                finished.add(node)
                post.append(node)
    node_depth: dict[int, int] = {}
    depth: dict[int, int] = {}  # row -> the depth of its deepest call
    for node in reversed(post):
        row = calls[node][0]
        here = node_depth[node] = depth[row] = max(node_depth.get(node, 0), depth.get(row, 0))
        for parent in calls[node][1]:
            node_depth[parent] = max(here + 1, node_depth.get(parent, 0))
    for i, row in enumerate(rows):  # inputs that no output needs: Keras keeps them, at depth 0
        if row.type == "InputLayer" and i not in depth:
            depth[i], seen[i] = 0, -1
    order = sorted(depth, key=lambda i: (-depth[i], seen[i]))
    return order, {calls[node][0] for node in post}
