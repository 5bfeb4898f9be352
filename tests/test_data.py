"""netdsl.data: the synthetic images, Fashion-MNIST's IDX files, .npz and image folders, shape
adaptation, and every bad-data message. No TensorFlow is needed for any of it."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from netdsl.data import Dataset, check_labels, limit, load_dataset, split_validation
from netdsl.data.adapt import adapt, plan
from netdsl.data.keras_datasets import fashion_mnist_dir, load_idx_dir, read_idx
from netdsl.data.synthetic import CLASSES, generate
from netdsl.diagnostics import NetdslError

IMAGE = (32, 32, 3)


def error_of(call) -> tuple[str, str]:
    """The (code, rendered message) of the NetdslError a call raises."""
    with pytest.raises(NetdslError) as info:
        call()
    return info.value.diagnostics[0].code, str(info.value)


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_balanced_uint8() -> None:
    x, y = generate(200, seed=3)
    again, labels = generate(200, seed=3)
    other, _ = generate(200, seed=4)
    assert x.dtype == np.uint8 and x.shape == (200, 32, 32, 3) and y.shape == (200,)
    assert np.array_equal(x, again) and np.array_equal(y, labels)
    assert not np.array_equal(x, other)
    assert np.bincount(y, minlength=10).tolist() == [20] * 10


def test_synthetic_class_is_not_in_the_mean_colour() -> None:
    # Colours and positions are random, so no single pixel statistic gives the class away.
    x, y = generate(2000, seed=0)
    means = np.array([x[y == c].mean() for c in range(10)])
    assert means.max() - means.min() < 12  # of 255


def test_synthetic_default_source_follows_the_input_and_head() -> None:
    data = load_dataset("synthetic:count=120", (24, 24, 1), classes_hint=4)
    assert data.classes == CLASSES[:4]
    assert data.x_train.shape[1:] == (24, 24, 1) and data.x_train.dtype == np.uint8
    assert len(data.y_train) + len(data.y_test) == 120 and data.y_train.max() == 3
    assert load_dataset("synthetic:count=60,classes=3,size=16x16x3", IMAGE).image_shape == (16, 16, 3)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("synthetic:colors=3", "synthetic: unknown option 'colors=3'"),
        ("synthetic:count=many", "synthetic: bad option value"),
        ("synthetic:classes=11", "needs 2 to 10 classes"),
        ("synthetic:size=4x4x3", "sides of 8 to 1024"),
    ],
)
def test_synthetic_bad_options(source: str, message: str) -> None:
    code, text = error_of(lambda: load_dataset(source, IMAGE))
    assert code == "E501" and message in text


# ---------------------------------------------------------------- IDX (Fashion-MNIST)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trip(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", images)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), images)


def test_idx_reader_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    assert "not an IDX file" in error_of(lambda: read_idx(tmp_path / "bad"))[1]
    write_idx(tmp_path / "short.gz", np.zeros((2, 2), np.uint8))
    raw = gzip.decompress((tmp_path / "short.gz").read_bytes())[:-1]
    (tmp_path / "short").write_bytes(raw)
    assert "truncated" in error_of(lambda: read_idx(tmp_path / "short"))[1]


def test_idx_folder_layout(tmp_path: Path) -> None:
    for prefix, count in (("train", 6), ("t10k", 2)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.full((count, 28, 28), 7))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 10)
    data = load_idx_dir(tmp_path)
    assert data.x_train.shape == (6, 28, 28, 1) and data.y_test.tolist() == [0, 1]
    assert data.classes[0] == "t-shirt/top"


@pytest.mark.skipif(fashion_mnist_dir() is None, reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_reads_offline() -> None:
    data = load_dataset("fashion_mnist", (28, 28, 1))
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert data.x_train.dtype == np.uint8 and sorted(set(data.y_test.tolist())) == list(range(10))


# ---------------------------------------------------------------- adaptation


def test_fashion_sized_images_are_padded_and_coloured() -> None:
    grey = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    data = Dataset("fmnist", grey, np.zeros(5, np.int64), grey[:2], np.zeros(2, np.int64))
    adapted = adapt(data, IMAGE)
    assert adapted.x_train.shape == (5, 32, 32, 3) and adapted.x_train.dtype == np.uint8
    assert np.array_equal(adapted.x_train[:, 2:30, 2:30, 1], grey[..., 0])  # exact pixels, centred
    assert adapted.notes[-1] == "adapted fmnist 28x28x1 -> 32x32x3 (padded to 32x32, grey channel repeated 3x)"


def test_adaptation_plans() -> None:
    assert plan((32, 32, 3), (32, 32, 3), "d") == []
    assert plan((28, 28, 1), (784,), "d") == ["flattened"]
    assert plan((32, 32, 3), (64, 64, 1), "d") == ["resized to 64x64", "converted to grey"]
    assert plan((32, 32, 4), (32, 32, 3), "d") == ["alpha channel dropped"]
    rgb = np.full((2, 10, 10, 3), 200, np.uint8)
    data = adapt(Dataset("d", rgb, np.zeros(2, np.int64), rgb, np.zeros(2, np.int64)), (20, 20, 1))
    assert data.x_train.shape == (2, 20, 20, 1) and int(data.x_train[0, 10, 10, 0]) == 200


@pytest.mark.parametrize(
    ("image", "input_shape", "message"),
    [
        ((28, 28, 1), (100,), "images of 28x28x1 (784 values) cannot feed `input 100`"),
        ((32, 32, 2), (32, 32, 3), "images have 2 channels but the spec's input has 3"),
        ((32, 32, 3), (32, 32), "images of 32x32x3 cannot feed `input 32x32`"),
    ],
)
def test_impossible_adaptations(image: tuple, input_shape: tuple, message: str) -> None:
    code, text = error_of(lambda: plan(image, input_shape, "data"))
    assert code == "E509" and message in text


# ---------------------------------------------------------------- .npz


def save_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def npz_arrays(n: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), "y_train": np.arange(n) % 3,
        "x_test": rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), "y_test": np.arange(4) % 3,
    }  # fmt: skip


def test_npz_with_floats_column_labels_and_classes(tmp_path: Path) -> None:
    arrays = npz_arrays()
    arrays["x_train"] = arrays["x_train"] / 255.0
    arrays["y_train"] = arrays["y_train"].reshape(-1, 1)
    path = save_npz(tmp_path / "d.npz", **arrays, classes=np.array(["a", "b", "c"]))
    data = load_dataset(str(path), (8, 8, 3))
    assert data.x_train.dtype == np.uint8 and data.y_train.shape == (10,) and data.classes == ("a", "b", "c")
    assert np.array_equal(data.x_test, arrays["x_test"])


def test_npz_one_hot_labels_and_validation_split(tmp_path: Path) -> None:
    arrays = npz_arrays()
    arrays["y_test"] = np.eye(3)[arrays["y_test"]]
    path = save_npz(tmp_path / "d.npz", **arrays, x_valid=arrays["x_test"], y_valid=np.array([2, 1, 0, 2]))
    data = load_dataset(str(path), (8, 8, 3))
    assert data.y_test.tolist() == [0, 1, 2, 0] and data.y_valid.tolist() == [2, 1, 0, 2]


def test_npz_missing_keys(tmp_path: Path) -> None:
    arrays = npz_arrays()
    del arrays["y_test"]
    path = save_npz(tmp_path / "d.npz", **arrays, labels=np.zeros(3))
    code, text = error_of(lambda: load_dataset(str(path), IMAGE))
    assert code == "E504"
    assert f"{path}: error[E504]: d.npz lacks y_test (it has: labels, x_test, x_train, y_train)" in text
    assert "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)" in text


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"y_train": np.arange(9)}, "E504", "y_train has 9 labels for 10 images"),
        ({"x_train": np.zeros((10, 8), np.uint8)}, "E504", "x_train must hold images"),
        ({"x_train": np.full((10, 8, 8, 3), 300.0)}, "E504", "x_train values run from 300 to 300"),
        ({"y_train": np.full(10, 0.5)}, "E505", "y_train holds non-integer labels"),
        ({"x_test": np.zeros((4, 9, 9, 3), np.uint8)}, "E504", "the splits' image shapes differ"),
    ],
)
def test_npz_malformed(tmp_path: Path, change: dict, code: str, message: str) -> None:
    path = save_npz(tmp_path / "d.npz", **{**npz_arrays(), **change})
    assert error_of(lambda: load_dataset(str(path), IMAGE))[0] == code
    assert message in error_of(lambda: load_dataset(str(path), IMAGE))[1]


def test_npz_that_is_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(b"not a zip file")
    code, text = error_of(lambda: load_dataset(str(tmp_path / "d.npz"), IMAGE))
    assert code == "E501" and "cannot read" in text and "not an .npz archive (File is not a zip file)" in text


def test_npz_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    arrays = npz_arrays()
    arrays["y_train"] = np.array([object()] * 10, dtype=object)
    np.savez(tmp_path / "d.npz", **arrays)
    code, text = error_of(lambda: load_dataset(str(tmp_path / "d.npz"), IMAGE))
    assert code == "E504" and "y_train has dtype object: netdsl reads arrays of numbers (never pickled objects)" in text


def test_labels_out_of_range() -> None:
    x = np.zeros((3, 8, 8, 3), np.uint8)
    data = Dataset("d.npz", x, np.array([0, 1, 12]), x, np.array([0, 1, 2]))
    code, text = error_of(lambda: check_labels(data, 10))
    assert code == "E505" and "y_train holds label 12, outside 0..9 for 10 classes" in text
    data = Dataset("d.npz", x, np.array([0, 1, 2]), x, np.array([0, -1, 2]))
    assert "y_test holds label -1" in error_of(lambda: check_labels(data, 10))[1]


# ---------------------------------------------------------------- image folders


def write_images(folder: Path, count: int, colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, colour).save(folder / f"{i}.png")


def test_folder_with_train_and_valid_splits(tmp_path: Path) -> None:
    for split, count in (("train", 3), ("valid", 2)):
        write_images(tmp_path / split / "cats", count, (200, 10, 10))
        write_images(tmp_path / split / "dogs", count, (10, 10, 200))
    data = load_dataset(str(tmp_path), (16, 16, 3))
    assert data.classes == ("cats", "dogs")
    assert data.x_train.shape == (6, 16, 16, 3) and data.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.x_valid.shape == (4, 16, 16, 3) and np.array_equal(data.x_test, data.x_valid)
    assert int(data.x_train[0, 8, 8, 0]) == 200 and int(data.x_train[-1, 8, 8, 2]) == 200
    assert any("no test/ folder" in note for note in data.notes)


def test_flat_class_folder_gets_a_validation_fraction(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 10, (0, 0, 0))
    write_images(tmp_path / "b", 10, (255, 255, 255))
    data = split_validation(load_dataset(str(tmp_path), (8, 8, 1)), 0.2, seed=1)
    assert data.x_train.shape == (16, 8, 8, 1) and len(data.y_valid) == 4
    again = split_validation(load_dataset(str(tmp_path), (8, 8, 1)), 0.2, seed=1)
    assert np.array_equal(data.y_valid, again.y_valid)


def test_missing_path() -> None:
    code, text = error_of(lambda: load_dataset("/no/such/place", IMAGE))
    assert code == "E501" and "/no/such/place: error[E501]: no such file, directory or dataset: /no/such/place" in text


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "train" / "cats").mkdir(parents=True)
    (tmp_path / "train" / "cats" / "notes.txt").write_text("hi")
    code, text = error_of(lambda: load_dataset(str(tmp_path), IMAGE))
    assert code == "E502" and "no images in class folders under" in text and "train/<class>/*.png" in text


def test_images_without_class_folders(tmp_path: Path) -> None:
    write_images(tmp_path, 3, (1, 2, 3))
    text = error_of(lambda: load_dataset(str(tmp_path), IMAGE))[1]
    assert "3 images lie directly in it, with no class" in text


def test_corrupt_image(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "cats", 2, (1, 2, 3))
    (tmp_path / "train" / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, text = error_of(lambda: load_dataset(str(tmp_path), IMAGE))
    assert code == "E503" and "1 image(s) cannot be decoded" in text and "broken.png" in text


def test_valid_class_unknown_to_train(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "cats", 1, (1, 2, 3))
    write_images(tmp_path / "valid" / "birds", 1, (1, 2, 3))
    code, text = error_of(lambda: load_dataset(str(tmp_path), IMAGE))
    assert code == "E502" and "has classes that" in text and "birds" in text


def test_limit_caps_every_split() -> None:
    data = load_dataset("synthetic:count=120", IMAGE)
    capped = limit(data, 15, seed=0)
    assert [len(y) for _, (_, y) in capped.splits().items()] == [15, 15]
