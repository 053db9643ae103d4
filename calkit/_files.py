"""Checks on a saved file before anything is read from it.

One floor for every reader of user files: :mod:`calkit.io` (the CLI's
loader), :mod:`calkit.chunked` (memory-mapped ``.npy`` inputs) and the
calibrator files of :mod:`calkit.posthoc`.  Only regular files are opened (a
FIFO or a device would block or never end), and an ``.npy`` header is checked
against the bytes the file really holds before numpy allocates anything (a
header may claim any size).  Nothing is unpickled.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PICKLE_HINT = ("pickle files can run arbitrary code and are not loaded; re-save the arrays with "
               "numpy.savez(path, logits=..., labels=...)")


class LoadError(ValueError):
    """A file could not be turned into predictions; the message says why, in one line.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from calkit.io import LoadError, load_predictions
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "outputs.pkl"
    ...     _ = path.write_bytes(b"")
    ...     try:
    ...         load_predictions(path)
    ...     except LoadError as exc:
    ...         print(str(exc).split(";")[0])
    outputs.pkl: pickle files can run arbitrary code and are not loaded
    >>> issubclass(LoadError, ValueError)
    True
    """


class MissingFileError(LoadError, FileNotFoundError):
    """The file does not exist (both a :class:`LoadError` and a :class:`FileNotFoundError`)."""


def check_input_file(path, name: str | None = None) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is an existing regular file, else LoadError.

    FIFOs, devices (``/dev/zero``) and directories are refused before anything
    is opened, so reading can neither hang nor run out of memory.  ``name`` (an
    argument's name) starts the message when given.

    Examples
    --------
    >>> from calkit.io import LoadError, check_input_file
    >>> try:
    ...     check_input_file("/dev/zero")
    ... except LoadError as exc:
    ...     print(exc)
    /dev/zero: not a regular file (a character device); give a saved file
    """
    path = Path(path)
    label = f"{name}: {path}" if name else str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise MissingFileError(f"{label}: no such file") from None
    except OSError as exc:
        raise LoadError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise LoadError(f"{label}: is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        what = ("a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else
                "a character device" if stat.S_ISCHR(info.st_mode) else
                "a block device" if stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "not a plain file")
        raise LoadError(f"{label}: not a regular file ({what}); give a saved file")
    if not os.access(path, os.R_OK):
        raise LoadError(f"{label}: cannot be read (permission denied)")
    return path


@dataclass(frozen=True)
class NpyHeader:
    """What an ``.npy`` header says: shape, dtype, order and where the data start."""

    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    offset: int


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n: float) -> str:
    """``n`` bytes in words: ``"512 bytes"``, ``"1.5 KiB"``, ..."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def read_npy_header(fh, available: int, name: str, *, in_memory: bool = True) -> NpyHeader:
    """Read the ``.npy`` header at ``fh``'s position and check it against the file.

    ``available`` is the number of bytes from the start of the header to the
    end of the array's bytes (the file size, or a zip member's size).  The data
    the header claims must fit in them; object arrays (pickles) are refused;
    with ``in_memory`` (the array will be read, not memory-mapped) it must also
    fit in this machine's memory.  Errors are :class:`LoadError`, starting with
    ``name``.
    """
    fmt = np.lib.format
    start = fh.tell()
    try:
        version = fmt.read_magic(fh)
    except (ValueError, EOFError) as exc:
        raise LoadError(f"{name}: not a valid .npy array (no numpy header: corrupt, truncated "
                        "or another format)") from exc
    try:
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(fh)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise LoadError(f"{name}: corrupt .npy header ({str(exc).splitlines()[0]})") from exc
    if dtype.hasobject:
        raise LoadError(f"{name}: holds Python objects (pickled); {PICKLE_HINT}")
    claimed = math.prod(shape) * dtype.itemsize
    data_bytes = available - (fh.tell() - start)
    if claimed > data_bytes:
        raise LoadError(f"{name}: the header claims a {dtype} array of shape {tuple(shape)} "
                        f"({human_bytes(claimed)}) but the file holds "
                        f"{human_bytes(max(data_bytes, 0))} of data: truncated or corrupt")
    memory = memory_bytes() if in_memory else None
    if memory is not None and claimed > memory:
        raise LoadError(f"{name}: the array of shape {tuple(shape)} needs {human_bytes(claimed)}, "
                        f"more than this machine's memory ({human_bytes(memory)})")
    return NpyHeader(tuple(shape), dtype, bool(fortran), fh.tell())
