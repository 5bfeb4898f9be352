"""The layer kinds, one file per family. Importing this package registers them all and completes
the IR's discriminated union, so `Network.layers` accepts exactly the registered kinds."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from netdsl import ir
from netdsl.layers import (  # noqa: F401  (registration)
    activation,
    attention,
    conv,
    dense,
    depthwise,
    graph,
    norm,
    padding,
    pooling,
    position,
    pretrained,
    scale,
    sequence,
    sequential,
    timedist,
    transpose,
)  # fmt: skip

AnyLayer = Annotated[Union[tuple(ir.REGISTRY.values())], Field(discriminator="kind")]  # type: ignore[valid-type]
for _model in (
    graph.Merge,
    graph.Block,
    sequential.Seq,
    timedist.TimeDistributed,
    ir.Network,
):  # the models that hold layers (merges and blocks nest them)
    _model.model_rebuild(_types_namespace={"AnyLayer": AnyLayer}, force=True)
