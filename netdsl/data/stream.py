"""Data too large for memory: an image folder's split stays a list of files (`ImageFiles`), a large
uncompressed uint8 array of an .npz stays in the file (`StoredRows`), and the input pipeline reads
(and decodes) one batch at a time, so memory holds a few batches, not the data set.

Both look like the uint8 N x H x W x C array the rest of netdsl expects (shape, dtype, len,
indexing by slices and index arrays), so splitting, capping and the head checks work unchanged.
`np.asarray` of one reads it whole: meant for small subsets (an export's sample images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

IN_MEMORY_BYTES = 1 << 30
"""An image folder whose decoded size is larger than this streams from disk (1 GiB: a 32x32 folder
of a million images, or 7,000 images at 224x224, still trains from memory, which is faster)."""


class ImageFiles:
    """One split of an image folder, on disk: the files and the decoded shape of each image."""

    dtype = np.dtype(np.uint8)

    def __init__(self, paths: list[Path] | np.ndarray, image_shape: tuple[int, ...]) -> None:
        self.paths = np.asarray([str(p) for p in paths], dtype=object)
        self.image_shape = tuple(image_shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.image_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """The decoded size, were it in memory."""
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> ImageFiles:
        """A subset, still on disk (a slice or an index array, as splitting and capping use)."""
        return ImageFiles(self.paths[index], self.image_shape)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Decode the images at `indices` as one uint8 batch (the files were all checked when listed)."""
        from netdsl.data.files import read_image

        batch = np.empty((len(indices), *self.image_shape), np.uint8)
        for row, index in enumerate(np.asarray(indices).reshape(-1)):
            batch[row] = read_image(Path(self.paths[int(index)]), self.image_shape)
        return batch

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        batch = self.read(np.arange(len(self)))
        return batch if dtype is None else batch.astype(dtype)


class StoredRows:
    """A large uint8 array stored uncompressed in an .npz, read from the file a batch of rows at a time
    (os.pread at each row's offset), so neither the array nor a mapping of it sits in memory."""

    dtype = np.dtype(np.uint8)

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], rows: np.ndarray | None = None) -> None:
        self.path, self.offset, self.full_shape = Path(path), int(offset), tuple(shape)
        self.rows = np.arange(shape[0]) if rows is None else np.asarray(rows, np.int64)
        self.row_bytes = int(np.prod(shape[1:]))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.full_shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> StoredRows:
        """A subset of the rows, still on disk (slices and index arrays, as splitting and capping use)."""
        return StoredRows(self.path, self.offset, self.full_shape, self.rows[index])

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The rows at `indices` as one uint8 batch, read from the file."""
        import os

        batch = np.empty((len(np.asarray(indices).reshape(-1)), *self.full_shape[1:]), np.uint8)
        with open(self.path, "rb") as stream:
            for row, index in enumerate(np.asarray(indices).reshape(-1)):
                start = self.offset + int(self.rows[int(index)]) * self.row_bytes
                data = os.pread(stream.fileno(), self.row_bytes, start)
                if len(data) != self.row_bytes:
                    raise OSError(f"{self.path} is truncated at row {int(self.rows[int(index)])}")
                batch[row] = np.frombuffer(data, np.uint8).reshape(self.full_shape[1:])
        return batch

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        batch = self.read(np.arange(len(self)))
        return batch if dtype is None else batch.astype(dtype)
