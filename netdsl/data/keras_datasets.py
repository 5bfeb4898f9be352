"""The classic datasets through Keras's loaders, and Fashion-MNIST from Debian's IDX files.

Keras downloads and caches (~/.keras/datasets), as online users expect. Debian's
`dataset-fashion-mnist` package installs the same data re-compressed, so Keras's hash check would
reject it: netdsl reads those IDX files itself, which makes Fashion-MNIST work offline.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from netdsl.data import Dataset, data_error
from netdsl.safeio import open_regular, reason

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where `apt-get install dataset-fashion-mnist` puts the files; NETDSL_FASHION_MNIST overrides it."""

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
    ),
    "cifar100": tuple(f"class_{i}" for i in range(100)),
    "imdb": ("negative", "positive"),
}  # fmt: skip

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as an array: the format of (Fashion-)MNIST's files.

    Header: two zero bytes, a type byte, a rank byte, then one big-endian uint32 per dimension."""
    try:
        with open_regular(path) as file, gzip.open(file) if path.suffix == ".gz" else file as stream:
            raw = stream.read()
    except (OSError, EOFError) as err:
        raise data_error("E501", f"cannot read {path}: {reason(err)}", str(path)) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise data_error("E501", f"{path} is not an IDX file (bad magic number)", str(path))
    rank = raw[3]
    dims = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * rank :]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(body) != expected:
        raise data_error(
            "E501", f"{path} is truncated or padded: {len(body):,} bytes of data, expected {expected:,}", str(path)
        )
    return np.frombuffer(body, dtype).reshape(dims)


def load_idx_dir(folder: Path, name: str = "fashion_mnist") -> Dataset:
    """(Fashion-)MNIST from a folder of `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` files."""
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind, stem in (("x", "images-idx3"), ("y", "labels-idx1")):
            candidates = [folder / f"{prefix}-{stem}-ubyte.gz", folder / f"{prefix}-{stem}-ubyte"]
            found = next((p for p in candidates if p.exists()), None)
            if found is None:
                raise data_error("E501", f"{folder} has no {candidates[0].name}", str(folder))
            arrays[f"{kind}_{split}"] = read_idx(found)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise data_error(
                "E504", f"{folder}: {split} images {x.shape} and labels {y.shape} do not match", str(folder)
            )
    return Dataset(
        name,
        arrays["x_train"][..., None],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"][..., None],
        arrays["y_test"].astype(np.int64),
        classes=CLASS_NAMES.get(name, tuple(str(i) for i in range(10))),
        notes=[f"{name} read from {folder}"],
    )


def fashion_mnist_dir() -> Path | None:
    """Debian's Fashion-MNIST folder (or $NETDSL_FASHION_MNIST) when it exists."""
    folder = Path(os.environ.get("NETDSL_FASHION_MNIST", DEBIAN_FASHION_MNIST))
    return folder if folder.is_dir() else None


def load(name: str, input_shape: tuple[int, ...] = (), vocabulary: int | None = None) -> Dataset:
    """cifar10, cifar100, mnist, fashion_mnist or imdb; Keras downloads once and caches."""
    if name == "fashion_mnist" and (folder := fashion_mnist_dir()) is not None:
        return load_idx_dir(folder, name)
    if name == "imdb":
        return load_imdb(input_shape, vocabulary)
    import keras

    (x_train, y_train), (x_test, y_test) = _download(name, lambda: getattr(keras.datasets, name).load_data())
    if x_train.ndim == 3:  # mnist and fashion_mnist are N x 28 x 28
        x_train, x_test = x_train[..., None], x_test[..., None]
    return Dataset(
        name, x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64),
        classes=CLASS_NAMES[name], notes=[f"{name} via keras.datasets"],
    )  # fmt: skip


def _download(name: str, load_data: Callable[[], Any]) -> Any:
    """Keras's `load_data()`, with its download failures (offline, a proxy) as E501 naming the data set."""
    try:
        return load_data()
    except Exception as err:  # Keras's downloader raises a bare Exception for network errors
        hint = "connect to the internet once (Keras caches it in ~/.keras/datasets), or pass --data FILE.npz"
        if name == "fashion_mnist":
            hint = "install Debian's dataset-fashion-mnist (reads offline) or connect to the internet once"
        if name == "imdb":
            hint = ("connect to the internet once (Keras caches it in ~/.keras/datasets), pass token ids as "
                    "--data FILE.npz (x, y), or try --data synthetic-seq (built in)")  # fmt: skip
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise data_error("E501", f"cannot load {name}: {first}", name, help=hint) from None


def load_imdb(input_shape: tuple[int, ...], vocabulary: int | None) -> Dataset:
    """Keras's IMDB reviews (25,000 train, 25,000 test; 0 negative, 1 positive) as token ids that fit the
    network: the `vocabulary` most frequent words (the embedding's V; rarer ones become Keras's
    out-of-vocabulary id 2), each review fitted to the input's length as `pad_sequences` does."""
    import keras

    from netdsl.data.sequences import fit_length

    length = input_shape[0] if len(input_shape) == 1 else 200
    words = vocabulary or 20_000
    (x_train, y_train), (x_test, y_test) = _download("imdb", lambda: keras.datasets.imdb.load_data(num_words=words))
    return Dataset(
        "imdb", fit_length(x_train, length), np.asarray(y_train, np.int64).reshape(-1), fit_length(x_test, length),
        np.asarray(y_test, np.int64).reshape(-1), classes=CLASS_NAMES["imdb"], tokens=True,
        notes=[f"imdb via keras.datasets: the {words:,} most frequent words, reviews fitted to {length} tokens"],
    )  # fmt: skip
