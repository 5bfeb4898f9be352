"""Reading an `.npz` archive with bounded memory: no array is allocated before its size is known.

Why not `np.load`: it trusts the archive. A 1 MB member whose header claims 10**12 images makes it
try to allocate terabytes (MemoryError), a highly compressed member (a "zip bomb") inflates to
gigabytes, a `.npy` renamed `.npz` comes back as a bare array, and object arrays need pickle. Here
each member's `.npy` header is read first; its dtype must be plain numbers or text, and its size
(shape x itemsize) must fit both what the zip entry says it holds and `MAX_NPZ_BYTES` over the
whole archive. Only then is the array read, and reading stops at the header's size, so no member
inflates past what was checked.
"""

from __future__ import annotations

import lzma
import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from netdsl.data import data_error
from netdsl.data.stream import StoredRows
from netdsl.safeio import open_regular, reason

MAX_NPZ_BYTES = 4 * 2**30
"""The most an `.npz` file may hold once decompressed (4 GiB; CIFAR-10 is 0.18 GB as uint8, 0.7 GB as
float32): past it, E504 before any array is allocated. docs/limits.md."""
STREAM_NPZ_BYTES = 256 * 2**20
"""A uint8 image array at least this large, stored uncompressed, is read from the file a batch at a time
(netdsl/data/stream.py StoredRows) instead of into memory; MAX_NPZ_BYTES does not count it."""
MAX_HEADER_BYTES = 10_000  # numpy's own default bound on a .npy header
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    OverflowError,
    NotImplementedError,  # a zip "version" or compression method Python lacks
    RuntimeError,  # an encrypted member
)
"""What zipfile raises for a damaged or exotic archive, from its central directory to a member's last byte."""


def _size(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB" if count >= 2**30 else f"{count / 2**20:,.1f} MiB"


def _header(stream: object, name: str, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """A member's (shape, fortran_order, dtype), from its .npy header; E504 if it has none."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream, max_header_size=MAX_HEADER_BYTES)
        return np.lib.format.read_array_header_2_0(stream, max_header_size=MAX_HEADER_BYTES)
    except (*ZIP_ERRORS, SyntaxError, TypeError, KeyError) as err:
        raise data_error("E504", f"{name} is not a valid .npy array ({reason(err)})", where) from None


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file by name (`x_train`, ...); E501 if it is not one, E504 if malformed or too big."""
    where = str(path)
    try:
        stream = open_regular(path)
    except OSError as err:
        raise data_error("E501", f"cannot read {path}: {reason(err)}", where) from None
    with stream:
        try:
            archive = zipfile.ZipFile(stream)
        except ZIP_ERRORS as err:
            hint = "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
            is_npy = stream.seek(0) == 0 and stream.read(6) == b"\x93NUMPY"
            what = "a single .npy array, not an .npz archive" if is_npy else f"not an .npz archive ({reason(err)})"
            raise data_error("E501", f"cannot read {path}: {what}", where, help=hint) from None
        with archive:
            return _read_members(archive, path)


def _read_members(archive: zipfile.ZipFile, path: Path) -> dict[str, np.ndarray]:
    where, total, arrays = str(path), 0, {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy") or info.is_dir():
            continue  # np.savez writes only NAME.npy members; anything else is not an array
        name = info.filename.removesuffix(".npy")
        try:
            member = archive.open(info)
        except ZIP_ERRORS as err:
            raise data_error("E504", f"cannot read {name} in {path.name}: {reason(err)}", where) from None
        with member:
            shape, fortran, dtype = _header(member, name, where)
            if dtype.hasobject or dtype.kind not in "biufcSU" or dtype.fields is not None:
                raise data_error(
                    "E504", f"{name} has dtype {dtype}: netdsl reads arrays of numbers (never pickled objects)", where
                )
            size = math.prod(shape) * dtype.itemsize
            stored = _stored_rows(archive, info, member, path, shape, fortran, dtype)
            if stored is not None:  # read from the file a batch at a time: not held, so not counted
                arrays[name] = stored
                continue
            total += size
            if total > MAX_NPZ_BYTES:
                raise data_error(
                    "E504",
                    f"{path.name} claims {_size(total)} of arrays ({name} is {'x'.join(map(str, shape))} "
                    f"{dtype}); netdsl reads .npz files of at most {_size(MAX_NPZ_BYTES)}",
                    where,
                    help="see docs/limits.md",
                )
            if size > info.file_size:  # the header promises more than the entry holds: truncated or forged
                raise data_error(
                    "E504", f"{name} in {path.name} is truncated: its header claims {size:,} bytes, "
                    f"the archive holds {info.file_size:,}", where,
                )  # fmt: skip
            arrays[name] = _read_body(member, shape, fortran, dtype, name, where)
    return arrays


def _stored_rows(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: Any, path: Path, shape: tuple[int, ...],
    fortran: bool, dtype: np.dtype,
) -> StoredRows | None:  # fmt: skip
    """A large uint8 image array stored uncompressed (np.savez, not savez_compressed) as rows read from
    the file itself; None for anything else, which is read into memory as before."""
    size = math.prod(shape) * dtype.itemsize
    if size < STREAM_NPZ_BYTES or size > info.file_size or dtype != np.uint8 or fortran or len(shape) != 4:
        return None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:  # compressed or encrypted
        return None
    stream = archive.fp
    stream.seek(info.header_offset)  # type: ignore[union-attr]
    local = stream.read(30)  # type: ignore[union-attr]  # the local file header: its name and extra field vary
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    offset = info.header_offset + 30 + name_length + extra_length + member.tell()  # + the .npy header
    if offset + size > path.stat().st_size:
        return None
    return StoredRows(path, offset, shape)


def _read_body(
    member: object, shape: tuple[int, ...], fortran: bool, dtype: np.dtype, name: str, where: str
) -> np.ndarray:
    """Exactly the bytes the (checked) header announces, read straight into a writable array."""
    try:
        array = np.empty(shape[::-1] if fortran else shape, dtype)
    except MemoryError:
        raise data_error(
            "E504", f"{name} ({'x'.join(map(str, shape))} {dtype}) does not fit in memory", where
        ) from None
    buffer, done = memoryview(array.reshape(-1).view(np.uint8)), 0
    try:
        while done < len(buffer):
            count = member.readinto(buffer[done:])  # type: ignore[attr-defined]
            if not count:
                break
            done += count
        extra = member.read(1)  # type: ignore[attr-defined]  # one byte past (never the maybe huge rest); checks the CRC
    except ZIP_ERRORS as err:  # a CRC or inflate error
        raise data_error("E504", f"cannot read {name}: {reason(err)}", where) from None
    if done != len(buffer):
        raise data_error("E504", f"{name} is truncated: {done:,} of {len(buffer):,} bytes", where)
    if extra:
        raise data_error("E504", f"{name} holds more data than its header's shape {shape} {dtype}", where)
    return array.transpose() if fortran else array
