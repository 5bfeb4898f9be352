"""Local data: an `.npz` file of arrays, or a folder of images with one sub-folder per class.

Both are checked completely before training starts (keys, shapes, dtypes, every image decoded),
because a problem found in epoch 7 costs the first six.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from netdsl.data import Dataset, data_error
from netdsl.data.npz import read_arrays
from netdsl.data.sequences import to_tokens
from netdsl.data.stream import IN_MEMORY_BYTES, ImageFiles, StoredRows
from netdsl.safeio import open_regular

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
VALID_NAMES = ("valid", "val", "validation")
NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")


# ---------------------------------------------------------------- .npz


def to_uint8(x: np.ndarray, key: str, where: str) -> np.ndarray:
    """Images as uint8 N x H x W x C: floats in 0..1 are scaled, integers in 0..255 kept."""
    if isinstance(x, StoredRows):  # uint8 N x H x W x C already, read from the file per batch
        return x
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise data_error(
            "E504", f"{key} must hold images (N x H x W or N x H x W x C), got shape {x.shape}", where,
        )  # fmt: skip
    if 0 in x.shape[1:]:  # Keras would train on empty pictures without a complaint
        raise data_error("E504", f"{key} holds images of {'x'.join(map(str, x.shape[1:]))}: no pixels", where)
    if x.dtype == np.uint8 or x.size == 0:
        return x.astype(np.uint8, copy=False)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise data_error("E504", f"{key} has dtype {x.dtype}; expected numbers", where)
    low, high = float(np.min(x)), float(np.max(x))
    if np.issubdtype(x.dtype, np.floating) and 0 <= low and high <= 1:
        return np.rint(x * 255).astype(np.uint8)
    if 0 <= low and high <= 255 and np.all(np.isfinite([low, high])):
        return np.rint(x).astype(np.uint8)
    raise data_error(
        "E504", f"{key} values run from {low:g} to {high:g}; expected 0..255 (or 0..1 as floats)", where,
    )  # fmt: skip


def to_labels(y: np.ndarray, key: str, count: int, where: str) -> np.ndarray:
    """Integer class labels of shape (N,): (N, 1) columns and one-hot rows are accepted; or per-pixel
    labels (N x H x W, or N x H x W x 1 as masks are often saved) for a network that scores every pixel."""
    per_pixel = y.ndim >= 3
    if per_pixel and y.shape[-1] == 1:
        y = y[..., 0]
    if y.ndim == 2 and not per_pixel and y.shape[1] > 1 and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        y = y.argmax(axis=1)
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 and not per_pixel else y
    if y.ndim != 1 and not per_pixel:
        raise data_error(
            "E504", f"{key} must be one label per image (or per pixel, N x H x W), got shape {y.shape}", where
        )
    if len(y) != count:
        raise data_error("E504", f"{key} has {len(y):,} labels for {count:,} images", where)
    if not np.issubdtype(y.dtype, np.number):
        raise data_error("E505", f"{key} has dtype {y.dtype}; labels must be class indices 0, 1, 2, ...", where)
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
            raise data_error("E505", f"{key} holds non-integer labels; labels are class indices 0, 1, 2, ...", where)
    return y.astype(np.int64)


def load_npz(path: Path, tokens: bool = False) -> Dataset:
    """`x_train, y_train, x_test, y_test` (+ optional `x_valid, y_valid`, `classes`) from an .npz, or `x, y`
    alone (all for training). `tokens`: x holds token ids (int32, N x L) for an `input L int` network."""
    where = str(path)
    if not path.exists():
        raise data_error("E501", f"no such file: {path}", where)
    arrays = read_arrays(path)  # bounded: headers checked before any array is allocated; never unpickled
    if "x" in arrays and "y" in arrays and "x_train" not in arrays:
        arrays["x_train"], arrays["y_train"] = arrays.pop("x"), arrays.pop("y")
        arrays["x_test"], arrays["y_test"] = arrays["x_train"][:0], arrays["y_train"][:0]
    keys = set(arrays)
    missing = [k for k in NPZ_REQUIRED if k not in keys]
    if missing:
        raise data_error(
            "E504",
            f"{path.name} lacks {', '.join(missing)} (it has: {', '.join(sorted(keys)) or 'nothing'})",
            where,
            help="save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...) or np.savez(path, x=..., y=...)",
        )
    valid_key = next((k for k in ("x_valid", "x_val") if k in arrays), None)
    splits = {}
    for split, x_key in (("train", "x_train"), ("valid", valid_key), ("test", "x_test")):
        if x_key is None:
            continue
        y_key = "y" + x_key[1:]
        if y_key not in arrays:
            raise data_error("E504", f"{path.name} has {x_key} but no {y_key}", where)
        x = to_tokens(arrays[x_key], x_key, where) if tokens else to_uint8(arrays[x_key], x_key, where)
        splits[split] = (x, to_labels(arrays[y_key], y_key, len(x), where))
    shapes = {split: x.shape[1:] for split, (x, _) in splits.items()}
    if len(set(shapes.values())) > 1:
        raise data_error("E504", f"{path.name}: the splits' image shapes differ: {shapes}", where)
    if len(splits["train"][1]) == 0:
        raise data_error("E502", f"{path.name}: x_train holds no images", where)
    classes = None
    if "classes" in arrays:
        names = arrays["classes"].reshape(-1)
        classes = tuple(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in names.tolist())
    valid = splits.get("valid", (None, None))
    labels = {split: y.shape[1:] for split, (_, y) in splits.items()}
    if len(set(labels.values())) > 1:
        raise data_error("E504", f"{path.name}: the splits' label shapes differ: {labels}", where)
    return Dataset(
        path.name, *splits["train"], *splits["test"], classes=classes, x_valid=valid[0], y_valid=valid[1],
        notes=[f"read {path}"], tokens=tokens,
    )  # fmt: skip


# ---------------------------------------------------------------- image folders


def image_files(folder: Path) -> list[Path]:
    """The images directly inside `folder`, sorted (so labels and order are reproducible)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def eight_bit(picture: Any) -> Any:
    """A 16-bit, 32-bit or float grey picture as 8-bit grey ("L"), scaled by its real range: PIL's own
    convert("L") clips at 255, so a 16-bit PNG turns white and a float TIFF in 0..1 turns black.

    16-bit pixels are scaled by 65535; 32-bit integers kept when in 0..255, else scaled by 65535 when
    in 0..65535; floats scaled by 255 when in 0..1, kept when in 0..255. Anything else is a ValueError
    (E503): guessing another range would silently change the data."""
    from PIL import Image

    if picture.mode not in ("I", "F") and not picture.mode.startswith("I;16"):
        return picture
    values = np.asarray(picture).astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size != values.size:
        raise ValueError(f"{picture.mode} image holds NaN or infinite pixels")
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if picture.mode.startswith("I;16"):
        scale = 255 / 65535
    elif picture.mode == "F" and low >= 0 and high <= 1:
        scale = 255.0
    elif low >= 0 and high <= 255:
        scale = 1.0
    elif picture.mode == "I" and low >= 0 and high <= 65535:
        scale = 255 / 65535
    else:
        kind = "float" if picture.mode == "F" else "32-bit"
        expected = "0..1 or 0..255" if picture.mode == "F" else "0..255 or 0..65535"
        raise ValueError(f"{kind} image with pixel values {low:g} to {high:g}; expected {expected}")
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def read_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image file as uint8 H x W x C at the spec's size and channels (raises OSError/ValueError)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_regular(path) as stream, Image.open(stream) as picture:
            picture.load()  # decode now: a truncated or corrupt file fails here, not mid-training
            picture = eight_bit(picture)
            # A non-image input (`input 784`) keeps the file's own size, and grey stays grey.
            grey = input_shape[-1] == 1 if len(input_shape) == 3 else picture.mode in ("L", "1")
            picture = picture.convert("L" if grey else "RGB")
            if len(input_shape) == 3 and picture.size != (input_shape[1], input_shape[0]):
                picture = picture.resize((input_shape[1], input_shape[0]), Image.BILINEAR)
            array = np.asarray(picture, np.uint8)
    except Image.DecompressionBombError as err:  # a small file claiming gigapixels: refused like a corrupt one
        raise ValueError(f"too large to decode safely: {err}".split(", could be")[0]) from None
    except UnidentifiedImageError:  # PIL names the open stream; say which file, as PIL does for a path
        raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}") from None
    return array[..., None] if array.ndim == 2 else array


def split_files(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """The image files of `folder/<class>/` and their labels, in class order."""
    paths, labels = [], []
    for label, name in enumerate(classes):
        if (folder / name).is_dir():
            found = image_files(folder / name)
            paths += found
            labels += [label] * len(found)
    return paths, labels


def read_split(
    folder: Path, classes: list[str], input_shape: tuple[int, ...], stream: bool = False
) -> tuple[Any, np.ndarray]:
    """Every image of `folder/<class>/`, decoded; all corrupt files are reported together (E503).
    `stream`: each image is decoded once to check it, then only its path is kept (ImageFiles)."""
    paths, labels = split_files(folder, classes)
    images, broken = [], []
    for path in paths:
        try:
            image = read_image(path, input_shape)
            if not stream:
                images.append(image)
        except (OSError, ValueError, SyntaxError) as err:  # PIL raises these for undecodable files
            broken.append(f"{path}: {err}")
    if broken:
        more = f" (and {len(broken) - 3} more)" if len(broken) > 3 else ""
        raise data_error(
            "E503", f"{len(broken)} image(s) cannot be decoded: " + "; ".join(broken[:3]) + more, str(folder),
            help="delete or replace the broken files, then run again",
        )  # fmt: skip
    if stream:
        return ImageFiles(paths, input_shape), np.asarray(labels, np.int64)
    if not images:
        return np.zeros((0, *input_shape), np.uint8), np.zeros((0,), np.int64)
    shapes = {image.shape for image in images}
    if len(shapes) > 1:  # only for a non-image input shape, where nothing was resized
        raise data_error("E504", f"images in {folder} have different shapes: {sorted(shapes)[:3]}", str(folder))
    return np.stack(images), np.asarray(labels, np.int64)


def load_folder(root: Path, input_shape: tuple[int, ...]) -> Dataset:
    """`root/train/<class>/*`, `root/valid/<class>/*` (and `root/test/...`), as in the seed's
    dogs-vs-cats layout, or `root/<class>/*` (then a validation fraction is carved out)."""
    where = str(root)
    split_root = (root / "train").is_dir()
    train_dir = root / "train" if split_root else root
    valid_dir = next((root / n for n in VALID_NAMES if (root / n).is_dir()), None) if split_root else None
    test_dir = root / "test" if split_root and (root / "test").is_dir() else None
    classes = [p.name for p in class_folders(train_dir) if image_files(p)]
    if not classes:
        loose = image_files(train_dir)
        layout = f"{root}/train/<class>/*.png and {root}/valid/<class>/*.png, or {root}/<class>/*.png"
        raise data_error(
            "E502",
            f"no images in class folders under {train_dir}"
            + (f" ({len(loose)} images lie directly in it, with no class)" if loose else ""),
            where,
            help=f"expected {layout} ({', '.join(sorted(IMAGE_SUFFIXES))})",
        )
    for other in (valid_dir, test_dir):
        if other is not None:
            extra = [p.name for p in class_folders(other) if image_files(p) and p.name not in classes]
            if extra:
                raise data_error(
                    "E502", f"{other} has classes that {train_dir} lacks: {', '.join(extra)}", where,
                    help="every class needs training images",
                )  # fmt: skip
    image_shape = tuple(input_shape) if len(input_shape) == 3 else None
    count = sum(len(split_files(d, classes)[0]) for d in (train_dir, valid_dir, test_dir) if d is not None)
    stream = image_shape is not None and count * int(np.prod(image_shape)) > IN_MEMORY_BYTES
    x_train, y_train = read_split(train_dir, classes, input_shape, stream)
    valid = read_split(valid_dir, classes, input_shape, stream) if valid_dir else (None, None)
    test = read_split(test_dir, classes, input_shape, stream) if test_dir else (None, None)
    notes = [f"read {len(y_train):,} training images from {train_dir} ({len(classes)} classes: {', '.join(classes[:6])}"
             + (", ..." if len(classes) > 6 else "") + ")"]  # fmt: skip
    if stream:
        notes.append(f"streaming from disk: {count:,} images are {count * int(np.prod(image_shape)) / 1e9:.1f} GB "
                     f"decoded, over the {IN_MEMORY_BYTES / 2**30:.0f} GiB kept in memory; each batch is decoded "
                     "in the input pipeline")  # fmt: skip
    if image_shape is not None:
        notes.append(f"images decoded as {'x'.join(map(str, image_shape))} (resized where needed)")
    if test[0] is None and valid[0] is not None:
        test = valid
        notes.append(f"no test/ folder: the final accuracy is measured on {valid_dir.name}/")  # type: ignore[union-attr]
    if test[0] is None:
        empty = ImageFiles([], x_train.shape[1:]) if stream else np.zeros((0, *x_train.shape[1:]), np.uint8)
        test = (empty, np.zeros((0,), np.int64))
    return Dataset(
        root.name, x_train, y_train, test[0], test[1], classes=tuple(classes), x_valid=valid[0], y_valid=valid[1],
        notes=notes,
    )  # fmt: skip
