"""Reading the files a user names: regular files only.

Why: opening a FIFO blocks until a writer appears, and reading a device (`/dev/zero`, a tape)
never ends, so `netdsl check fifo.net` or a FIFO planted in a run directory would hang every
command. Every read of a user's path (specs, data files, images, run-directory files) goes
through `open_regular`: the path is opened non-blocking (a FIFO without a writer opens at once),
`fstat` on the open descriptor (no race with a rename) must say "regular file", and only then is
the descriptor switched back to blocking reads. Anything else is `NotRegularFile`, an `OSError`,
so the callers' existing `except OSError` turns it into their located error.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path names a FIFO, device, socket or directory, which netdsl refuses to read."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular(path: str | Path, mode: int) -> NotRegularFile:
    """The error for a path of file type `mode` (its strerror is what messages show)."""
    return NotRegularFile(errno.EINVAL, f"not a regular file (it is {_kind(mode)})", str(path))


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading; NotRegularFile (an OSError) unless it is a regular file."""
    if "\0" in os.fspath(path):  # os.open would raise ValueError, which no caller expects
        raise OSError(errno.EINVAL, "the path contains a NUL character", repr(os.fspath(path)))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        stream = os.fdopen(fd, "rb")
        stream.raw.name = os.fspath(path)  # type: ignore[attr-defined]  # its repr names the file, not the fd
        return stream
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """The file's bytes (at most `limit` of them when given); OSError as `open_regular`."""
    with open_regular(path) as stream:
        return stream.read() if limit is None else stream.read(limit)


def read_text(path: str | Path, limit: int | None = None) -> str:
    """The file's text as UTF-8 (UnicodeDecodeError, a ValueError, for other bytes)."""
    return read_bytes(path, limit).decode("utf-8")


def check_regular(path: str | Path) -> Path:
    """`path` if it is a regular file (following links), for libraries that open files by name
    (Keras's `load_weights`); NotRegularFile otherwise, FileNotFoundError if it is missing."""
    opened = open_regular(path)
    opened.close()
    return Path(path)


def reason(err: BaseException) -> str:
    """An error as messages show it: an OSError's words without `[Errno N]` and the repeated path."""
    return (err.strerror if isinstance(err, OSError) else None) or str(err)
