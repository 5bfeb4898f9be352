"""Run directories: everything one training run leaves behind, written so that a crash never
leaves a half-written file.

A run directory holds the spec as trained (`spec.net`), the resolved configuration
(`config.json`), the per-epoch history (`history.csv`), a checkpoint of the last finished epoch
(`checkpoint-N.weights.h5` named by `state.json`), the final weights (`model.weights.h5`), the final
metrics (`metrics.json`) and the learning curves (`curves.png`). Every file is written to a
temporary name and renamed into place (`os.replace` is atomic on POSIX), so a reader, or a run
killed with SIGKILL, sees either the old file or the new one. A model is always rebuilt from the
spec and given the weights: nothing is unpickled and `keras.saving.load_model` is never used.
"""

from __future__ import annotations

import csv
import fcntl
import gc
import io
import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from netdsl.diagnostics import Diagnostic, NetdslError, Source
from netdsl.ir import Network
from netdsl.runfiles import HistoryRow, RunConfig, RunMetrics, RunState, check_epochs, problem, spec_hash
from netdsl.safeio import check_regular, open_regular, read_bytes, read_text, reason
from netdsl.spec import parse
from netdsl.syntax import MAX_SOURCE_BYTES

LOCK_NAME = ".lock"
HISTORY_FIELDS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def run_error(message: str, where: Path | str, help: str | None = None) -> NetdslError:
    """A problem with a run directory (E508)."""
    return NetdslError([Diagnostic("E508", message, None, help=help)], Source("", str(where)))


TAMPERED = "the run directory was changed after training; restore its files, or start a new run"


def read_json(path: Path, where: Path) -> Any:
    """A run file's JSON (E508 if unreadable, not JSON, or nested too deeply for the parser)."""
    try:
        return json.loads(read_text(path))
    except RecursionError:
        raise run_error(f"cannot read {path}: nested too deeply", where, help=TAMPERED) from None
    except (OSError, ValueError) as err:
        raise run_error(f"cannot read {path}: {reason(err)}", where) from None


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call `write(temporary_path)`, then rename the result over `path` in one step. A write that fails
    (a full disk, a quota) leaves the old file whole, removes the temporary one, and is one E512."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keeps the suffix (.weights.h5, .png)
    try:
        write(temporary)
        with open(temporary, "rb+") as stream:  # the data must be on disk before the rename is
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as err:
        _release(temporary)
        raise write_error(path, err) from None
    finally:
        temporary.unlink(missing_ok=True)


def _release(temporary: Path) -> None:
    """After a failed write: free the temporary file's blocks, then close any HDF5 file h5py still holds on
    it. Left open, h5py retries the flush when the object is collected (a traceback per object) and HDF5
    crashes at exit (a full disk once ended in 27 tracebacks and a segmentation fault)."""
    try:
        os.truncate(temporary, 0)  # room for HDF5's closing writes, which then succeed
    except OSError:
        pass
    h5py = sys.modules.get("h5py")
    if h5py is None:
        return
    for handle in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            if Path(os.fsdecode(handle.name)) == temporary:
                handle.close()
        except (OSError, RuntimeError, ValueError):
            pass
    gc.collect()  # the failed writer's objects close now, while there is room, not at exit


def write_error(path: Path, err: OSError) -> NetdslError:
    """E512: a run file could not be written (HDF5 reports a full disk as a long message with an errno)."""
    number = err.errno or next((int(n) for n in re.findall(r"errno = (\d+)", str(err))), None)
    why = os.strerror(number) if number else reason(err).split(" (")[0]
    return NetdslError(
        [Diagnostic("E512", f"cannot write {path}: {why}", None,
                    help="free some space (or choose another --out); the files written before are whole, and "
                    f"`netdsl train --resume {path.parent}` continues from the last finished epoch")],
        Source("", str(path.parent)),
    )  # fmt: skip


def write_text(path: Path, text: str) -> None:
    """Atomically replace `path`'s content with `text`."""
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def new_run_dir(spec_name: str, out: str | Path | None, root: str | Path = "runs") -> Path:
    """Create the run's directory: `out`, or `runs/<spec>-<YYYYMMDD-HHMMSS>` (with -2, -3... if
    taken). An existing, non-empty directory is never reused: that would overwrite a run."""
    if out is not None:
        path = Path(out)
        if _exists(path) and (not path.is_dir() or any(path.iterdir())):
            raise run_error(
                f"{path} already exists; netdsl never overwrites a run",
                path,
                help=f"choose another --out, or continue it with `netdsl train --resume {path}`",
            )
        _make_directory(path, exist_ok=True)
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{spec_name}-{stamp}"
    for attempt in range(1, 1000):
        path = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        if _make_directory(path, exist_ok=False):  # exclusive: two runs started in the same second get different dirs
            return path
    raise run_error(f"cannot create a run directory under {root}", root)


def _exists(path: Path) -> bool:
    """Path.exists, except that a path the OS refuses (too long, a NUL byte) is left to mkdir to report."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _make_directory(path: Path, exist_ok: bool) -> bool:
    """mkdir -p; False if `path` exists (and not exist_ok); E508 when it cannot be made (a file in the
    way, such as a file named `runs`, or a read-only place such as /proc)."""
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
        return True
    except FileExistsError:
        if path.is_dir() and not exist_ok:
            return False
        err: OSError | ValueError = NotADirectoryError()
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        err = error
    blocker = next((p for p in (path, *path.parents) if _exists(p) and not p.is_dir()), None)
    why = f"{blocker} is a file" if blocker is not None else reason(err)
    raise run_error(f"cannot create the run directory {path}: {why}", path, help="choose another --out")


class RunDir:
    """Reading and writing the files of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------ reading

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run; E508 if it is not one."""
        run = cls(path)
        try:
            is_dir = run.path.is_dir()
        except (OSError, ValueError) as err:  # a name too long for the OS, a NUL byte
            raise run_error(f"cannot read {run.path}: {reason(err)}", run.path) from None
        if not is_dir:
            raise run_error(f"no such run directory: {run.path}", run.path)
        for name in ("spec.net", "config.json"):
            if not (run.path / name).is_file():
                raise run_error(
                    f"{run.path} is not a netdsl run (no {name})",
                    run.path,
                    help="pass a directory made by netdsl train",
                )
        return run

    def spec_text(self) -> str:
        """spec.net's text (read at most one byte past the parser's size limit, which then refuses it)."""
        path = self.path / "spec.net"
        try:
            return read_bytes(path, MAX_SOURCE_BYTES + 1).decode("utf-8")
        except OSError as err:
            raise run_error(f"cannot read {path}: {err.strerror or err}", self.path) from None
        except UnicodeDecodeError as err:
            raise run_error(
                f"{path} is not UTF-8 text (byte {err.start + 1}); a run's spec is written by netdsl train",
                self.path, help=TAMPERED,
            ) from None  # fmt: skip

    def config(self) -> dict[str, Any]:
        """config.json, validated against its schema: a tampered file is E508, never a crash further on."""
        path = self.path / "config.json"
        data = read_json(path, self.path)
        if not isinstance(data, dict) or "training" not in data:
            raise run_error(f"{path} is not a netdsl run configuration", self.path)
        try:
            RunConfig.model_validate(data)
        except ValidationError as err:
            raise run_error(f"{path}: {problem(err)}", self.path, help=TAMPERED) from None
        return data

    def network(self) -> Network:
        """The run's spec as trained (spec.net), parsed under the run's name: the one way to read it.
        A spec.net edited after training (its SHA-256 is not config.json's) is E508, even if its
        weights would still fit: `relu` -> `sigmoid` changes what the weights mean."""
        config = self.config()
        text = self.spec_text()
        net = parse(text, name=config.get("name", "model"), file=str(self.path / "spec.net"))  # located errors first
        recorded = config.get("spec_sha256")
        if recorded is not None and spec_hash(text) != recorded:
            raise run_error(
                f"{self.path / 'spec.net'} was changed after training (config.json records another SHA-256)",
                self.path, help=TAMPERED,
            )  # fmt: skip
        return net

    def load_weights(
        self, model: Any, weights: Path | None = None, fail: Callable[[str], NetdslError] | None = None
    ) -> None:
        """Give `model` (rebuilt from spec.net) the run's weights (`weights_path()` unless given); a file that
        does not fit is E508, or `fail(reason)`'s error. Nothing is unpickled: only weights are read."""
        weights = weights or self.weights_path()
        for _ in range(5):  # a run still training replaces its checkpoint between our reads: follow it
            try:
                model.load_weights(str(weights))
                return
            except (ValueError, OSError, KeyError) as err:
                why = str(err).splitlines()[0] if str(err) else type(err).__name__
                if weights.exists() or weights.name == "model.weights.h5":
                    break
            weights = self.weights_path()  # the trainer's state.json names its newer checkpoint by now
        if fail is not None:
            raise fail(why)
        raise run_error(
            f"{weights.name} does not fit the spec in {self.path}: {why}",
            self.path,
            help="the weights or spec.net were changed after training; retrain, or restore the files",
        )

    def state(self) -> dict[str, Any]:
        """The last finished epoch (`epoch`, `phase`, `checkpoint`, early-stopping counters), or {}.
        A checkpoint must be a file of the run itself: `../../elsewhere.h5` would load weights from outside."""
        path = self.path / "state.json"
        if not path.exists():
            return {}
        state = read_json(path, self.path)
        try:
            RunState.model_validate(state)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            what = "not a JSON object" if not first["loc"] else f"{first['loc'][0]} is {first.get('input')!r}"
            raise run_error(f"{path} is not valid: {what}", self.path, help=TAMPERED) from None
        return state

    def metrics(self) -> dict[str, Any] | None:
        """metrics.json (a finished run's status and results), validated; None while the run is unfinished."""
        path = self.path / "metrics.json"
        if not path.exists():
            return None
        data = read_json(path, self.path)
        try:
            RunMetrics.model_validate(data)
        except ValidationError as err:
            raise run_error(f"{path} is not valid: {problem(err)}", self.path, help=TAMPERED) from None
        return data

    def history(self) -> list[dict[str, Any]]:
        """The rows of history.csv, numbers as floats (epoch and phase as ints), epochs 1..n (else E508)."""
        path = self.path / "history.csv"
        if not path.exists():
            return []
        rows = []
        try:
            with io.TextIOWrapper(open_regular(path), encoding="utf-8", newline="") as stream:
                for row in csv.DictReader(stream):
                    parsed: dict[str, Any] = {}
                    for key, value in row.items():
                        if value in ("", None):
                            continue
                        parsed[key] = int(value) if key in ("epoch", "phase") else float(value)
                    rows.append(HistoryRow.model_validate(parsed).model_dump(exclude_none=True))
        except ValidationError as err:
            raise run_error(f"{path} is not valid: row {len(rows) + 1}: {problem(err)}", self.path,
                            help=TAMPERED) from None  # fmt: skip
        except (OSError, ValueError, TypeError) as err:  # TypeError: a row with more fields than the header
            raise run_error(f"cannot read {path}: {reason(err)}", self.path, help=TAMPERED) from None
        wrong = check_epochs(rows)
        if wrong:
            raise run_error(f"{path} is not valid: {wrong}", self.path, help=TAMPERED)
        return rows

    def discard_partial_writes(self) -> list[Path]:
        """Delete the temporary files of writes a SIGKILL cut short (they were never renamed into place)."""
        stale = sorted(self.path.glob(".tmp-*"))
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def weights_path(self) -> Path:
        """The weights to use: the final ones, else the last checkpoint (an unfinished run)."""
        final = self.path / "model.weights.h5"
        checkpoint = None if final.exists() else self.state().get("checkpoint")
        found = final if final.exists() else self.path / checkpoint if checkpoint else None
        if found is not None and found.exists():
            return self.regular(found)
        raise run_error(
            f"{self.path} holds no weights yet (no finished epoch)", self.path, help="train it, or resume it"
        )

    def regular(self, path: Path) -> Path:
        """`path` if it is a regular file: Keras opens weights by name, and a FIFO would hang it (E508)."""
        try:
            return check_regular(path)
        except OSError as err:
            raise run_error(f"cannot read {path}: {err.strerror or err}", self.path, help=TAMPERED) from None

    # ------------------------------------------------------------ writing

    @contextmanager
    def training_lock(self) -> Iterator[None]:
        """Hold the run's advisory lock (fcntl.flock on `.lock`) while training it, so that a second
        `netdsl train --resume` of the same run is refused instead of interleaving its epochs."""
        path = self.path / LOCK_NAME
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as err:
            raise run_error(f"cannot lock {path}: {reason(err)}", self.path) from None
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise run_error(f"cannot lock {path}: not a regular file", self.path, help=TAMPERED)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise run_error(
                    f"{self.path} is being trained by another netdsl process", self.path,
                    help="wait for it to finish (or stop it); two trainings of one run would overwrite each other",
                ) from None  # fmt: skip
            yield
        finally:
            os.close(descriptor)  # releases the lock; the file stays (deleting it would race another locker)

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """The whole history, rewritten atomically (a few hundred rows at most)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        write_text(self.path / "history.csv", buffer.getvalue())

    def save_weights(self, model: Any, name: str) -> Path:
        path = self.path / name
        atomic_write(path, lambda temporary: model.save_weights(str(temporary)))
        return path

    def checkpoint(self, model: Any, rows: list[dict[str, Any]], state: dict[str, Any]) -> None:
        """A finished epoch: its weights and optimizer state, the history, then the state naming them.

        The checkpoint carries the epoch in its name and `state.json` is written last, so a kill at
        any instant leaves a consistent (state, checkpoint) pair; history rows beyond the state's
        epoch (a kill just before state.json) are dropped on resume."""
        name = f"checkpoint-{state['epoch']}.weights.h5"
        self.save_weights(model, name)
        self.write_history(rows)
        previous = self.state().get("checkpoint")
        write_json(self.path / "state.json", {**state, "checkpoint": name})
        if previous and previous != name:
            (self.path / previous).unlink(missing_ok=True)
