"""Where training images come from, and how they are made to fit a spec's input.

`load_dataset(source, ...)` reads any supported source into a `Dataset` of uint8 images (they
become float32 only once batched: CIFAR-10 is 150 MB as uint8 and 600 MB as float32), or, for a
network whose input is `input L int`, of int32 token sequences (ids, never scaled). Labels are one
class per example, or one per pixel (N x H x W) for a network that scores every pixel. Sources:

- omitted or `synthetic[:classes=N,count=N,seed=N]`: the built-in generated pictures (offline), or
  for an `int` input the built-in key-phrase sequences, also `synthetic-seq[:...]` (netdsl/data/sequences.py);
- `cifar10`, `cifar100`, `mnist`, `fashion_mnist`, `imdb`: Keras's loaders (download and cache);
  `fashion_mnist` first reads Debian's IDX files when `dataset-fashion-mnist` is installed;
- `PATH.npz` with `x_train`, `y_train`, `x_test`, `y_test` (optionally `x_valid`/`y_valid`, `classes`),
  or just `x` and `y` (the validation split then also measures the final accuracy);
- a directory of images, one sub-folder per class, either split (`train/`, `valid/`) or not.

Every problem with the data is a `NetdslError` raised before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.safeio import reason

KERAS_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist", "imdb")


def parse_options(options: str, allowed: tuple[str, ...], where: str, help: str) -> dict[str, str]:
    """`key=value,key=value` (a built-in source's options) as a dict; E501 for a key not in `allowed`."""
    values: dict[str, str] = {}
    for item in filter(None, options.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise data_error("E501", f"{where.partition(':')[0]}: unknown option '{item}'", where, help=help)
        values[key] = value
    return values


def data_error(code: str, message: str, where: str, help: str | None = None) -> NetdslError:
    """A data problem as a NetdslError, shown as `where: error[CODE]: message`."""
    return NetdslError([Diagnostic(code, message, None, help=help)], Source("", where))


@dataclass
class Dataset:
    """Images (uint8, N x H x W x C) or token sequences (int32, N x L, `tokens`) and integer labels
    (N, or N x H x W per pixel) for the train, validation and test splits.

    `x_valid` is None until a validation split exists (given by the source, or carved out of the
    training images by `split_validation`). `notes` are one-line remarks for the console
    (adaptations, downloads), so a user sees what was done to their data.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] | None = None  # None when the source does not name its classes (.npz)
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    tokens: bool = False  # x holds token ids (int32) for an `input L int` network, not pixels

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The non-empty splits by name, in order."""
        out = {"train": (self.x_train, self.y_train)}
        if self.x_valid is not None:
            out["valid"] = (self.x_valid, self.y_valid)  # type: ignore[assignment]
        out["test"] = (self.x_test, self.y_test)
        return out

    def sizes(self) -> str:
        """`50,000 train / 5,000 valid / 10,000 test, 32x32x3, 10 classes`."""
        parts = [f"{len(y):,} {name}" for name, (_, y) in self.splits().items()]
        shape = f"{self.image_shape[0]} tokens" if self.tokens else "x".join(map(str, self.image_shape))
        if self.y_train.ndim > 1:
            shape += f", labels per pixel ({'x'.join(map(str, self.y_train.shape[1:]))})"
        classes = f", {len(self.classes)} classes" if self.classes else ""
        return f"{' / '.join(parts)}, {shape}{classes}"


def load_dataset(
    source: str | None, input_shape: tuple[int, ...], classes_hint: int | None = None, cache_dir: str | None = None,
    *, dtype: str = "float32", vocabulary: int | None = None,
) -> Dataset:  # fmt: skip
    """Read `source` (see the module's docstring). `classes_hint` (from the network's head) picks
    the synthetic data's class count when it is not given; `input_shape` its image size or sequence
    length. `dtype` is the network's input ("int32": token ids), `vocabulary` its embedding's size."""
    from netdsl.data import sequences, synthetic

    if source is not None and not source.strip():  # '' must not silently mean the default data set
        raise data_error("E501", "the data source is empty", "<data>", help="omit it for the built-in synthetic data")
    source = source or "synthetic"
    name, _, options = source.partition(":")
    tokens = dtype == "int32"
    if name == "synthetic-seq" or (name == "synthetic" and tokens):
        return sequences.load_synthetic(options, input_shape, vocabulary, classes_hint)
    if name == "synthetic":
        return synthetic.load(options, input_shape, classes_hint)
    try:
        return _load_path(source, input_shape, tokens, vocabulary)
    except (OSError, ValueError) as err:  # the path itself: too long for the OS, a NUL byte, a loop of links
        raise data_error("E501", f"cannot read {source}: {reason(err)}", source) from None


def _load_path(source: str, input_shape: tuple[int, ...], tokens: bool, vocabulary: int | None) -> Dataset:
    """A Keras dataset's name, or a path to an .npz file or an image folder."""
    from netdsl.data import files, keras_datasets

    name = source.partition(":")[0]
    if name in KERAS_DATASETS and not Path(source).exists():
        return keras_datasets.load(name, input_shape, vocabulary)
    path = Path(source).expanduser()
    if path.suffix == ".npz":
        return files.load_npz(path, tokens)
    if path.is_dir():
        return files.load_folder(path, input_shape)
    if not path.exists():
        raise data_error(
            "E501",
            f"no such file, directory or dataset: {source}",
            source,
            help="--data takes synthetic, synthetic-seq, cifar10, cifar100, mnist, fashion_mnist, imdb, a .npz file "
            "or an image folder",
        )
    raise data_error(
        "E501", f"cannot read {source}: not a .npz file or a folder of images", source,
        help="an image folder holds one sub-folder per class (optionally under train/ and valid/)",
    )  # fmt: skip


def check_labels(data: Dataset, classes: int) -> None:
    """Labels must be whole numbers in 0..classes-1 in every split (E505), else training would
    fail (or silently learn garbage) far from the cause."""
    for split, (_, y) in data.splits().items():
        if y.size == 0:
            continue
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
                raise data_error("E505", f"y_{split} holds non-integer labels (dtype {y.dtype})", data.name)
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise data_error(
                "E505",
                f"y_{split} holds label {bad}, outside 0..{classes - 1} for {classes} classes",
                data.name,
                help="labels are class indices counted from 0; the network's head sets the class count",
            )


def split_validation(data: Dataset, fraction: float, seed: int) -> Dataset:
    """Carve a validation split out of the training images unless the source gave one.

    The split is a seeded permutation, so a resumed run validates on the very same images."""
    if data.x_valid is not None or fraction <= 0:
        return data
    count = round(len(data.y_train) * fraction)
    if count < 1 or count >= len(data.y_train):
        return data
    order = np.random.default_rng(seed).permutation(len(data.y_train))
    valid, train = np.sort(order[:count]), np.sort(order[count:])
    return replace(
        data, x_train=data.x_train[train], y_train=data.y_train[train], x_valid=data.x_train[valid],
        y_valid=data.y_train[valid],
    )  # fmt: skip


def limit(data: Dataset, count: int | None, seed: int) -> Dataset:
    """Keep at most `count` images of each split (quick experiments), drawn with a seed."""
    if not count:
        return data
    rng = np.random.default_rng(seed)
    picked = {}
    for split, (x, y) in data.splits().items():
        keep = np.sort(rng.permutation(len(y))[:count]) if len(y) > count else slice(None)
        picked[f"x_{split}"], picked[f"y_{split}"] = x[keep], y[keep]
    return replace(data, **picked)
