"""Inputs that used to end in a Python traceback (issue 14, item 7): an --out that cannot be made,
output that cannot be written, synthetic data too big for memory, and .npz files that lie: a .npy
renamed .npz, a header claiming 10**12 images, a zip bomb. Each is one clear error and an exit code."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netdsl.cli import main
from netdsl.data import load_dataset, npz
from netdsl.diagnostics import NetdslError
from tests.conftest import ROOT

SPEC = "input 8x8x3\nconv 4 k3 relu\ngap\ndense 2 softmax\ntrain epochs=1\n"


def npy_bytes(shape: tuple[int, ...], descr: str = "|u1", body: bytes | None = None) -> bytes:
    """A .npy member whose header says `shape` and whose data is `body` (by default as long as the shape says)."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    size = int(np.prod(shape)) * np.dtype(descr).itemsize
    return stream.getvalue() + (bytes(size) if body is None else body)


def write_npz(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> Path:
    labels = npy_bytes((4,), "<i8", np.arange(4, dtype="<i8").tobytes())
    members = {"y_train": labels, "x_test": npy_bytes((4, 8, 8, 3)), "y_test": labels, **members}
    with zipfile.ZipFile(path, "w", compress) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def data_error(source: str) -> str:
    with pytest.raises(NetdslError) as info:
        load_dataset(source, (8, 8, 3))
    return str(info.value)


# ---------------------------------------------------------------- run directories that cannot be made


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("afile/run", "cannot create the run directory afile/run: afile is a file"),
        ("afile", "afile already exists; netdsl never overwrites a run"),
        ("/proc/netdsl-run", "cannot create the run directory /proc/netdsl-run: No such file or directory"),
        ("/proc/self/netdsl-run", "cannot create the run directory /proc/self/netdsl-run: "),
    ],
)
def test_an_out_that_cannot_be_made(runner: CliRunner, tmp_path: Path, monkeypatch, out: str, expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "s.net").write_text(SPEC)
    result = runner.invoke(main, ["train", "-q", "s.net", "--data", "synthetic:count=40,classes=2", "--out", out])
    assert result.exit_code == 1, result.output
    assert f"error[E508]: {expected}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_file_named_runs_in_the_working_directory(runner: CliRunner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    (tmp_path / "s.net").write_text(SPEC)
    result = runner.invoke(main, ["train", "-q", "s.net", "--data", "synthetic:count=40,classes=2"])
    assert result.exit_code == 1, result.output
    assert (
        "error[E508]: cannot create the run directory runs/s-" in result.output and ": runs is a file" in result.output
    )
    assert (tmp_path / "runs").read_text() == "not a folder"


# ---------------------------------------------------------------- output that cannot be written


@pytest.mark.parametrize("args", [["check", "specs/resnet.net"], ["emit", "specs/simple.net"], ["layers"], ["explain"]])
def test_a_full_disk_on_stdout_is_one_clear_error(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "netdsl.cli", *args], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True,
            timeout=120,
        )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr == "error: cannot write the output: No space left on device\n"


def test_a_closed_pipe_is_exit_1_without_a_message() -> None:
    command = [sys.executable, "-m", "netdsl.cli", "check", "specs/resnet.net"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # type: ignore[union-attr]  # the reader went away, as `| head -0` does
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert b"Traceback" not in stderr


# ---------------------------------------------------------------- synthetic data out of bounds


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("count=10000000000", "2 images per class to 1,000,000 images, got classes=2, count=10000000000"),
        ("count=" + "9" * 5000, "bad option value"),
        ("count=1000000,size=512x512x3", "1,000,000 images of 512x512x3 take more than 2 GiB"),
        ("size=100000x100000x3", "sides of 8 to 1024 and 1 to 4 channels, got 100000x100000x3"),
        ("size=8x8x100", "sides of 8 to 1024 and 1 to 4 channels, got 8x8x100"),
        ("seed=-1", "synthetic: seed must be 0 to 4,294,967,295, got -1"),
        ("seed=99999999999999999999", "seed must be 0 to 4,294,967,295"),
    ],
)
def test_synthetic_options_out_of_bounds(options: str, expected: str) -> None:
    assert expected in data_error(f"synthetic:classes=2,{options}")


def test_a_spec_with_a_huge_input_asks_for_too_much_synthetic_data() -> None:
    with pytest.raises(NetdslError, match=r"sides of 8 to 1024 .* got 4096x4096x3"):
        load_dataset(None, (4096, 4096, 3))


# ---------------------------------------------------------------- .npz files that lie


def test_a_npy_renamed_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8, 3), np.uint8))
    (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    message = data_error(str(tmp_path / "x.npz"))
    assert "error[E501]: cannot read" in message and "a single .npy array, not an .npz archive" in message


def test_random_bytes_named_npz(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04garbage" * 10)
    assert "not an .npz archive" in data_error(str(tmp_path / "x.npz"))


def test_a_header_claiming_a_trillion_images(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "big.npz", {"x_train": npy_bytes((10**12, 28, 28), body=bytes(64))})
    tracemalloc.start()
    message = data_error(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "error[E504]: big.npz claims 730,156.9 GiB of arrays (x_train is 1000000000000x28x28 uint8)" in message
    assert "netdsl reads .npz files of at most 4.0 GiB" in message
    assert peak < 10 * 2**20


def test_a_header_claiming_more_than_the_member_holds(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "short.npz", {"x_train": npy_bytes((4, 8, 8, 3), body=bytes(10))})
    assert "x_train in short.npz is truncated: its header claims 768 bytes, the archive holds" in data_error(str(path))


def test_a_zip_bomb_inflates_no_further_than_its_header_says(tmp_path: Path) -> None:
    """64 MB of zeros deflate to ~64 KB; the header claims 4 images, so reading stops after 768 bytes (+1)."""
    bomb = npy_bytes((4, 8, 8, 3), body=bytes(64 * 2**20))
    path = write_npz(tmp_path / "bomb.npz", {"x_train": bomb})
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    message = data_error(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "error[E504]: x_train holds more data than its header's shape (4, 8, 8, 3) uint8" in message
    assert peak < 8 * 2**20


def test_an_honest_header_over_the_cap_is_refused_before_inflating(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(npz, "MAX_NPZ_BYTES", 2**20)
    path = write_npz(tmp_path / "bomb.npz", {"x_train": npy_bytes((1000, 32, 32, 3))})
    tracemalloc.start()
    message = data_error(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (
        "bomb.npz claims 2.9 MiB of arrays (x_train is 1000x32x32x3 uint8); netdsl reads .npz files of at most 1.0 MiB"
        in message
    )
    assert peak < 2**20


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (npy_bytes((4, 8, 8, 3), "|O", b""), "x_train has dtype object: netdsl reads arrays of numbers"),
        (b"\x93NUMPY\x01\x00\xff\xff{'descr'", "x_train is not a valid .npy array"),
        (b"not an array at all", "x_train is not a valid .npy array"),
        (npy_bytes((4, 8, 8, 3), "|V4"), "x_train has dtype |V4: netdsl reads arrays of numbers"),
    ],
)
def test_malformed_members(tmp_path: Path, member: bytes, expected: str) -> None:
    path = write_npz(tmp_path / "bad.npz", {"x_train": member})
    message = data_error(str(path))
    assert "error[E504]" in message and expected in message, message


def test_a_valid_npz_still_reads_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 1, 0, 1, 0, 1])
    np.savez_compressed(tmp_path / "ok.npz", x_train=np.asfortranarray(x), y_train=y, x_test=x[:2], y_test=y[:2],
                        classes=np.array(["cat", "dog"]))  # fmt: skip
    data = load_dataset(str(tmp_path / "ok.npz"), (8, 8, 3))
    assert np.array_equal(data.x_train, x) and np.array_equal(data.y_train, y)
    assert data.classes == ("cat", "dog") and data.x_train.flags.writeable


def _patched_central_directory(path: Path, offset: int, value: bytes) -> None:
    """Overwrite bytes at `offset` of every central-directory entry of the zip at `path`."""
    data = bytearray(path.read_bytes())
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) != -1:
        data[start + offset : start + offset + len(value)] = value
        start += 4
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("offset", "value", "expected"),
    [
        (6, (109).to_bytes(2, "little"), "error[E501]: cannot read"),  # "needs zip version 10.9": NotImplementedError
        (8, (1).to_bytes(2, "little"), "is encrypted"),  # the encryption flag: RuntimeError from zipfile
        (10, (99).to_bytes(2, "little"), "error[E504]: cannot read"),  # compression method 99
    ],
)
def test_exotic_zip_headers_found_by_the_data_fuzzer(tmp_path: Path, offset: int, value: bytes, expected: str) -> None:
    np.savez(tmp_path / "z.npz", x_train=np.zeros((4, 8, 8, 3), np.uint8), y_train=np.arange(4) % 2,
             x_test=np.zeros((2, 8, 8, 3), np.uint8), y_test=np.arange(2))  # fmt: skip
    _patched_central_directory(tmp_path / "z.npz", offset, value)
    assert expected in data_error(str(tmp_path / "z.npz"))
