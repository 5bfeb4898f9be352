"""The shared window arithmetic and receptive fields, for 1-D, 2-D and 3-D maps (netdsl/layers/base.py)."""

from __future__ import annotations

import pytest

from netdsl.layers.base import ReceptiveField, ShapeError, fmt_shape, per_axis, widest, window_output


@pytest.mark.parametrize(
    ("shape", "window", "strides", "padding", "dilation", "expected"),
    [
        ((200, 64), (5,), (1,), "valid", None, (196,)),
        ((200, 64), (5,), (2,), "same", None, (100,)),
        ((200, 64), (3,), (1,), "valid", (4,), (192,)),  # effective kernel (3-1)*4+1 = 9
        ((9, 10, 3), (3, 5), (2, 3), "valid", None, (4, 2)),
        ((16, 17, 18, 2), (3, 3, 3), (2, 2, 2), "same", None, (8, 9, 9)),
        ((16, 17, 18, 2), (3, 1, 2), (1, 1, 2), "valid", None, (14, 17, 9)),
    ],
)
def test_window_output_on_any_rank(shape, window, strides, padding, dilation, expected) -> None:
    assert window_output(shape, window, strides, padding, "op", "help", dilation) == expected


def test_window_output_that_shrinks_to_nothing_is_e303_with_the_keras_shape() -> None:
    with pytest.raises(ShapeError) as caught:
        window_output((4, 2), (5,), (1,), "valid", "conv1d with kernel 5 and 'valid' padding", "help")
    assert (caught.value.code, caught.value.message) == (
        "E303",
        "conv1d with kernel 5 and 'valid' padding shrinks (None, 4, 2) to nothing",
    )


def test_receptive_fields_per_axis() -> None:
    assert ReceptiveField.of_input((32,)) is None  # a vector has no spatial axis
    line = ReceptiveField.of_input((200, 8))
    assert line == ReceptiveField((1,), (1,))
    assert line.through((5,), (1,)).through((2,), (2,)).through((3,), (1,), (2,)) == ReceptiveField((14,), (2,))
    volume = ReceptiveField.of_input((8, 8, 8, 1)).through((3, 3, 1), (2, 2, 1))
    assert volume == ReceptiveField((3, 3, 1), (2, 2, 1))
    assert volume.text() == "3x3x1 (jump 2x2x1)"
    assert ReceptiveField((7, 7), (2, 2)).text() == "7 (jump 2)"
    assert widest([ReceptiveField((3,), (1,)), None, ReceptiveField((5,), (2,))]) == ReceptiveField((5,), (2,))


def test_sizes_written_once_mean_every_axis() -> None:
    assert per_axis(3, 1) == (3,) and per_axis(3, 3) == (3, 3, 3) and per_axis([3, 5], 2) == (3, 5)
    assert fmt_shape((32, 32, 3)) == "(None, 32, 32, 3)"
