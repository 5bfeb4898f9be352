"""Fuzzing the data sources: random `.npz` contents (keys, dtypes, shapes, values, NaN, huge and
negative numbers, byte-level damage to the archive, forged headers) and random image folders (every
PIL mode, odd sizes, several formats, truncated and random files, hostile names), fed to
`netdsl train --data` through the real CLI. Each answer is exit 0 or 1 with no traceback within the
CPU and wall bounds, nothing is written outside the sandbox, and when the data is accepted what
would be trained on is sane: uint8 images of the spec's input shape and labels within its classes.

The fit itself is replaced (tests/fuzz/sandbox.py says why); the CI budget is fixed and derandomized.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.conftest import ROOT
from tests.fuzz.sandbox import HOSTILE, invoke, listing, no_fitting
from tests.fuzz.test_fuzz_cli import LONG

FUZZ = settings(
    max_examples=1000 if LONG else 150,
    derandomize=not LONG,
    database=None if not LONG else settings.default.database,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
SPECS = {  # the input shapes the data must be adapted to (or refused for)
    "rgb": "input 8x8x3\nconv 4 k3 relu\ngap\ndense 2 softmax\ntrain epochs=1 batch=8\n",
    "grey": "input 8x8x1\nconv 4 k3 relu\ngap\ndense 3 softmax\ntrain epochs=1 batch=8\n",
    "flat": "input 192\ndense 4 relu\ndense 2 softmax\ntrain epochs=1 batch=8\n",
}
SHAPES = {"rgb": (8, 8, 3), "grey": (8, 8, 1), "flat": (192,)}
CLASSES = {"rgb": 2, "grey": 3, "flat": 2}
DTYPES = ["u1", "i1", "<i2", ">i4", "<i8", "<u2", "<f2", "<f4", ">f8", "?", "<c8", "<U3", "|S2", "<m8[s]"]
KEYS = ["x_train", "y_train", "x_test", "y_test", "x_valid", "y_valid", "x_val", "y_val", "classes", "other"]


def arrays_of(dtype: str) -> st.SearchStrategy[np.ndarray]:
    shape = st.lists(st.integers(0, 9), min_size=0, max_size=5).map(tuple)
    dims = st.sampled_from([(12, 8, 8, 3), (12, 8, 8), (12, 8, 8, 1), (12, 4, 4, 3), (12, 64), (12,), (12, 1), (12, 2)])
    elements = None
    if dtype[-2:] in ("f2", "f4", "f8"):
        elements = st.floats(allow_nan=True, allow_infinity=True, width=16 if "f2" in dtype else 32) | st.floats(
            0, 1, width=16
        )
    return hnp.arrays(np.dtype(dtype), st.one_of(dims, dims, shape), elements=elements)


@st.composite
def npz_files(draw: st.DrawFn) -> bytes:
    """An .npz archive's bytes: mostly plausible arrays, then maybe damaged."""
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=0, max_size=len(KEYS)))
    if draw(st.booleans()):  # usually a complete set, so the deeper checks are reached
        keys = list(dict.fromkeys(["x_train", "y_train", "x_test", "y_test", *keys]))
    arrays = {}
    for key in keys:
        if key.startswith("y") and draw(st.integers(0, 2)):
            labels = st.integers(0, 1) if draw(st.integers(0, 3)) else st.integers(-2, 4)
            arrays[key] = np.asarray(
                draw(st.lists(labels, min_size=12, max_size=12)),
                draw(st.sampled_from(["<i8", "i1", "<f4"])),
            )
        elif key.startswith("x") and draw(st.integers(0, 2)):
            arrays[key] = np.asarray(draw(hnp.arrays(np.uint8, (12, 8, 8, 3))))
        else:
            arrays[key] = draw(arrays_of(draw(st.sampled_from(DTYPES))))
    stream = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(stream, **arrays)
    data = bytearray(stream.getvalue())
    damage = draw(st.sampled_from(["none", "none", "none", "flip", "truncate", "header"]))
    if damage == "flip" and data:
        for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[position] ^= draw(st.integers(1, 255))
    elif damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "header":  # a member whose .npy header lies about its shape
        forged = io.BytesIO()
        claimed = draw(st.sampled_from([(10**12, 8, 8, 3), (12, 8, 8, 3), (1, 1), (2**40,)]))
        np.lib.format.write_array_header_1_0(forged, {"descr": "|u1", "fortran_order": False, "shape": claimed})
        with zipfile.ZipFile(stream, "a") as archive:
            archive.writestr("x_train.npy", forged.getvalue() + bytes(draw(st.integers(0, 5000))))
        data = bytearray(stream.getvalue())
    return bytes(data)


MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F", "YCbCr"]
FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tiff": "TIFF", "webp": "WEBP"}


@st.composite
def image_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """(suffix, bytes) of one image file: a random picture in a random mode and format, maybe damaged."""
    from PIL import Image

    suffix = draw(st.sampled_from(sorted(FORMATS)))
    if draw(st.integers(0, 24)) == 0:
        return suffix, draw(st.binary(max_size=200))
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if mode == "F":
        pixels = rng.choice(
            [rng.random(size[::-1]), rng.random(size[::-1]) * draw(st.sampled_from([1.0, 255.0, 4000.0, -1.0]))]
        )
        picture = Image.fromarray(pixels.astype(np.float32), "F")
    elif mode in ("I;16", "I"):
        picture = Image.fromarray(rng.integers(0, 65536, size[::-1]).astype(np.uint16 if mode == "I;16" else np.int32))
    else:
        picture = Image.new(mode, size)
        picture.frombytes(rng.bytes(len(picture.tobytes())))
    stream = io.BytesIO()
    try:
        picture.save(stream, FORMATS[suffix])
    except (OSError, ValueError, KeyError):  # PIL cannot write this mode in this format: keep a PNG of it
        suffix, stream = "png", io.BytesIO()
        picture.convert("RGB").save(stream, "PNG")
    data = stream.getvalue()
    if draw(st.integers(0, 24)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return suffix, data


@st.composite
def image_folders(draw: st.DrawFn) -> dict[str, list[tuple[str, bytes]]]:
    """{relative class folder: images}: flat (`cat/`) or split (`train/cat/`, `valid/cat/`), hostile names too."""
    names = draw(
        st.lists(
            st.sampled_from(["cat", "dog", "bird", f"x{HOSTILE}", ".hidden", "é"]), min_size=1, max_size=3, unique=True
        )
    )
    splits = draw(st.sampled_from([[""], ["train/"], ["train/", "valid/"], ["train/", "valid/", "test/"]]))
    return {
        f"{split}{name}": draw(st.lists(image_bytes(), min_size=draw(st.sampled_from([0, 1, 1, 2])), max_size=4))
        for split in splits
        for name in names
    }


def train_on(box: Path, data: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`netdsl train` on `data`: exit 0 with sane data, or exit 1 (the data is bad); nothing else."""
    seen = no_fitting(monkeypatch)
    spec = box / f"{kind}.net"
    spec.write_text(SPECS[kind], encoding="utf-8")
    before_root, before_parent = listing(ROOT), listing(box.parent)
    result = invoke(["train", "-q", str(spec), "--data", str(data), "--out", str(box / "run"), "--seed", "1"], box)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert "error[E5" in result.output or "error[E" in result.output, result.output
        assert not (box / "run").exists() or not any((box / "run").iterdir()), "a run directory for refused data"
    else:
        (dataset,) = seen
        for split, (x, y) in dataset.splits().items():
            assert x.dtype == np.uint8 and x.shape[1:] == SHAPES[kind], (split, x.dtype, x.shape)
            assert len(x) == len(y) and (y.size == 0 or (y.min() >= 0 and y.max() < CLASSES[kind])), split
    assert listing(ROOT) == before_root and listing(box.parent) - before_parent == set()


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the forged member is a second x_train.npy, on purpose
@FUZZ
@given(content=npz_files(), kind=st.sampled_from(sorted(SPECS)))
def test_random_npz_files(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, content: bytes, kind: str
) -> None:
    box = tmp_path_factory.mktemp("npz")
    (box / "d.npz").write_bytes(content)
    train_on(box, box / "d.npz", kind, monkeypatch)
    shutil.rmtree(box, ignore_errors=True)


@FUZZ
@given(folders=image_folders(), kind=st.sampled_from(sorted(SPECS)))
def test_random_image_folders(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, folders, kind: str
) -> None:
    box = tmp_path_factory.mktemp("images")
    for folder, images in folders.items():
        (box / "data" / folder).mkdir(parents=True, exist_ok=True)
        for i, (suffix, data) in enumerate(images):
            (box / "data" / folder / f"{i}{HOSTILE if i == 2 else ''}.{suffix}").write_bytes(data)
    train_on(box, box / "data", kind, monkeypatch)
    shutil.rmtree(box, ignore_errors=True)
