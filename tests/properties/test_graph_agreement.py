"""Random graph programs: the analyzer equals Keras, and the errors of broken graphs are located.

For each drawn DAG program (graph_programs.py): the output shapes and the number of layers are the
ones the generator's own shape model predicts; every layer row (name, class, output shape, inputs,
parameter counts) and the totals are the same in the analyzer's report, in the model
`netdsl.build_model` returns and in the model the emitted Python builds; and for one program in two
the same graph, made from the generator's description with plain Keras calls, lists the same rows.
Budgets: tests/properties/profiles.py (GRAPH_PROFILE).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given

import netdsl
from netdsl.verify import compare
from tests.properties.bad_graphs import BadGraph, bad_graphs
from tests.properties.graph_programs import GraphProgram, graph_programs
from tests.properties.graphs import HandKeras
from tests.properties.profiles import GRAPH_PROFILE

pytestmark = pytest.mark.keras
keras = pytest.importorskip("keras")


def _explain(differences: list, text: str) -> str:
    return "\n".join(d.message for d in differences) + "\n\nprogram:\n" + text


def _inputs(layer: Any) -> tuple[str, ...]:
    if isinstance(layer, keras.layers.InputLayer):
        return ()
    tensors = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
    return tuple(t._keras_history[0].name for t in tensors)


def keras_rows(model: Any) -> list[tuple]:
    """The rows of a Keras model, read here from Keras alone: name, class, shape, inputs, counts."""
    return [
        (
            layer.name,
            type(layer).__name__,
            tuple(layer.output.shape),
            _inputs(layer),
            layer.count_params(),
            sum(math.prod(w.shape) for w in layer.trainable_weights),
        )
        for layer in model.layers
    ]


def report_rows(report: Any) -> list[tuple]:
    return [(r.name, r.type, r.output_shape, r.inputs, r.params, r.trainable_params) for r in report.layers]


def hand_made(program: GraphProgram) -> Any:
    """The program's graph from plain Keras calls, in a fresh session (names start again at conv2d)."""
    keras.backend.clear_session(free_memory=False)
    inputs, outputs = program.build(HandKeras(keras))
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0])


@GRAPH_PROFILE
@given(graph_programs())
def test_graph_programs_agree_with_keras(program: GraphProgram) -> None:
    net = netdsl.parse(program.text)
    report = netdsl.analyze(net)

    # the analyzer against the generator's own shape model
    assert [tuple(s[1:]) for s in report.output_shapes] == program.output_shapes, program.text
    assert len(report.layers) == program.keras_layers, program.text
    assert report.total_params == report.trainable_params + report.non_trainable_params

    # the analyzer against the model netdsl's compiler builds, and the one the emitted code builds
    differences = compare(report, netdsl.build_model(net))
    assert not differences, _explain(differences, program.text)
    source = netdsl.emit(net)
    keras.backend.clear_session(free_memory=False)
    namespace: dict = {"__name__": "emitted"}
    exec(compile(source, "<emitted>", "exec"), namespace)
    differences = compare(report, namespace["build_model"]())
    assert not differences, _explain(differences, program.text) + "\n\nemitted:\n" + source

    # the truth: the same graph written with Keras calls here, from the generator's description
    model = hand_made(program)
    ours, theirs = report_rows(report), keras_rows(model)
    assert len(ours) == len(theirs), program.text
    for row, keras_row in zip(ours, theirs):
        assert row == keras_row, program.text
    assert report.total_params == model.count_params()
    assert report.trainable_params == sum(math.prod(w.shape) for w in model.trainable_weights)
    assert [tuple(s) for s in report.output_shapes] == [tuple(t.shape) for t in model.outputs]


@GRAPH_PROFILE
@given(bad_graphs())
def test_broken_graphs_fail_located_and_keras_refuses_the_mismatched_merges(program: BadGraph) -> None:
    with pytest.raises(netdsl.NetdslError) as caught:
        netdsl.analyze(netdsl.parse(program.text))
    errors = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert len(errors) == 1, (program, [d.message for d in errors])
    (error,) = errors
    located = (error.code, error.span.line, error.span.column) if error.span else (error.code,)
    assert located == (program.code, program.line, program.column), (program, error.message)
    said = " ".join([error.message, error.help or "", *error.notes])
    for words in program.mentions:
        assert words in said, (program, said)
    if program.body is not None:  # the same merge made by hand: Keras refuses it too
        keras.backend.clear_session(free_memory=False)
        with pytest.raises(ValueError):
            program.build(HandKeras(keras))
