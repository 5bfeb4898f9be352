"""16-bit and float images keep their content (issue 14, item 5): PIL's convert("L") clips at 255,
which turned a 16-bit PNG white and a float TIFF in 0..1 black. They are scaled by their real range,
and a range netdsl cannot know (a float image with values in the thousands) is E503, not a guess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netdsl.data import load_dataset
from netdsl.data.files import read_image
from netdsl.diagnostics import NetdslError

RAMP16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1040).astype(np.uint16)  # 0 .. 65,520


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def test_a_16_bit_png_is_scaled_by_65535(tmp_path: Path) -> None:
    path = save(tmp_path / "g.png", RAMP16)
    assert Image.open(path).mode == "I;16"
    image = read_image(path, (8, 8, 1))
    assert image.dtype == np.uint8 and image.shape == (8, 8, 1)
    assert np.array_equal(image[..., 0], np.rint(RAMP16 / 65535 * 255).astype(np.uint8))
    assert len(np.unique(image)) > 50  # not saturated at 255


def test_a_16_bit_png_feeds_an_rgb_input_as_grey_repeated(tmp_path: Path) -> None:
    image = read_image(save(tmp_path / "g.png", RAMP16), (8, 8, 3))
    expected = np.rint(RAMP16 / 65535 * 255).astype(np.uint8)
    assert image.shape == (8, 8, 3) and all(np.array_equal(image[..., c], expected) for c in range(3))


@pytest.mark.parametrize(
    ("values", "scale"),
    [(np.linspace(0, 1, 64), 255.0), (np.linspace(0, 255, 64), 1.0), (np.zeros(64), 1.0)],
)
def test_a_float_tiff_is_scaled_by_its_range(tmp_path: Path, values: np.ndarray, scale: float) -> None:
    array = values.reshape(8, 8).astype(np.float32)
    path = save(tmp_path / "f.tiff", array)
    assert Image.open(path).mode == "F"
    image = read_image(path, (8, 8, 1))
    assert np.array_equal(image[..., 0], np.rint(array.astype(np.float64) * scale).astype(np.uint8))


def test_a_32_bit_integer_image_in_16_bit_range(tmp_path: Path) -> None:
    path = save(tmp_path / "i.tiff", RAMP16.astype(np.int32))
    assert Image.open(path).mode == "I"
    assert np.array_equal(read_image(path, (8, 8, 1))[..., 0], np.rint(RAMP16 / 65535 * 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((8, 8), 1000.0, np.float32), "float image with pixel values 1000 to 1000; expected 0..1 or 0..255"),
        (np.full((8, 8), -0.5, np.float32), "float image with pixel values -0.5 to -0.5"),
        (np.full((8, 8), np.nan, np.float32), "F image holds NaN or infinite pixels"),
        (
            np.full((8, 8), 100_000, np.int32),
            "32-bit image with pixel values 100000 to 100000; expected 0..255 or 0..65535",
        ),
    ],
)
def test_a_range_netdsl_cannot_know_is_refused(tmp_path: Path, array: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_image(save(tmp_path / "x.tiff", array), (8, 8, 1))


def test_an_image_folder_of_16_bit_and_float_images_trains_on_their_content(tmp_path: Path) -> None:
    for label, name in enumerate(("dark", "bright")):
        (tmp_path / name).mkdir()
        for i in range(3):
            save(tmp_path / name / f"{i}.png", np.full((8, 8), 8000 + 50000 * label + i, np.uint16))
            save(tmp_path / name / f"{i}.tiff", np.full((8, 8), 0.1 + 0.8 * label, np.float32))
    data = load_dataset(str(tmp_path), (8, 8, 1))
    seen: dict[str, set[int]] = {}
    for x, y in zip(data.x_train, data.y_train):
        seen.setdefault(data.classes[y], set()).add(int(x.mean()))
    # 16-bit: 8000/65535*255 = 31, 58000/65535*255 = 226; float: 0.1*255 = 26, float32(0.9)*255 = 229.49999 -> 229
    assert seen == {"dark": {26, 31}, "bright": {226, 229}}


def test_a_folder_with_an_unknowable_float_range_is_e503(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        save(tmp_path / name / "ok.png", np.zeros((8, 8), np.uint8))
    save(tmp_path / "a" / "hot.tiff", np.full((8, 8), 4000.0, np.float32))
    with pytest.raises(NetdslError, match=r"error\[E503\]: 1 image\(s\) cannot be decoded: .*hot.tiff: float image"):
        load_dataset(str(tmp_path), (8, 8, 1))


def test_an_unreadable_image_is_named_by_its_path(tmp_path: Path) -> None:
    """The file is opened by netdsl (regular files only) and handed to PIL as a stream; the message
    must still name the file, not `<_io.BufferedReader name=5>` (found by tests/fuzz/test_fuzz_data.py)."""
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(OSError) as info:
        read_image(tmp_path / "x.png", (8, 8, 1))
    assert str(info.value) == f"cannot identify image file {str(tmp_path / 'x.png')!r}"
