"""The analyzer equals Keras on every generated program; invalid programs fail in both, located.

For each random valid program (text -> netdsl.parse -> analyze -> build_model -> emit -> exec):
every layer's name, class, output shape, inputs and parameter counts, and the total / trainable /
non-trainable counts, are the same in the analyzer's report, in the Keras model `build_model`
returns, and in the model the emitted Python builds. Budgets: tests/properties/profiles.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given

import netdsl
from netdsl.compile import compile_network
from netdsl.verify import compare
from tests.properties.profiles import PROFILE
from tests.properties.programs import BadProgram, Program, invalid_programs, valid_programs

pytestmark = pytest.mark.keras
keras = pytest.importorskip("keras")


def _explain(differences: list, text: str) -> str:
    return "\n".join(d.message for d in differences) + "\n\nprogram:\n" + text


@PROFILE
@given(valid_programs())
def test_analyzer_compiler_and_emitted_code_agree(program: Program) -> None:
    net = netdsl.parse(program.text)
    report = netdsl.analyze(net)

    # the analyzer against the generator's own, independent shape model
    assert report.output_shape == (None, *program.output_shape), program.text
    assert len(report.layers) == program.keras_layers, program.text
    assert sum(row.params for row in report.layers) == report.total_params
    assert sum(row.trainable_params for row in report.layers) == report.trainable_params
    assert report.total_params == report.trainable_params + report.non_trainable_params

    # the analyzer against Keras: every row and the three totals
    model = netdsl.build_model(net)
    differences = compare(report, model)
    assert not differences, _explain(differences, program.text)
    assert sum(layer.count_params() for layer in model.layers) == model.count_params()
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert trainable == report.trainable_params

    # the emitted module builds the same model (in a fresh session: it relies on Keras's own names)
    source = netdsl.emit(net)
    keras.backend.clear_session(free_memory=False)  # resets Keras's name counters; skipping gc saves ~0.5 s
    namespace: dict = {"__name__": "emitted"}
    exec(compile(source, "<emitted>", "exec"), namespace)
    differences = compare(report, namespace["build_model"]())
    assert not differences, _explain(differences, program.text) + "\n\nemitted:\n" + source


@PROFILE
@given(invalid_programs())
def test_invalid_programs_fail_located_in_the_analyzer_and_in_keras(program: BadProgram) -> None:
    net = netdsl.parse(program.text)
    with pytest.raises(netdsl.NetdslError) as caught:
        netdsl.analyze(net)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line if diagnostic.span else None) == (program.code, program.line), (
        program.text
    )
    assert caught.value.source is not None and caught.value.source.text == program.text
    with pytest.raises(ValueError):  # Keras refuses it too (the analyzer is not merely stricter)
        compile_network(net, check=False)
