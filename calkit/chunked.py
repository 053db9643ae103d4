"""Chunked evaluation of arrays too large for memory: memory-mapped ``.npy`` files and Dask.

:func:`accumulate_chunked` walks the rows of a (possibly memory-mapped) array in
blocks of about ``chunk_bytes`` and feeds each block to a
:class:`~calkit.stream.CalibrationAccumulator`, so the peak memory is a few
blocks plus the fixed-size state (plus 5 bytes per sample in exact mode),
whatever the number of rows.  :func:`accumulate_dask` runs the same update on
every row-block of ``dask.array`` inputs and reduces the block states with
:meth:`~calkit.stream.CalibrationAccumulator.merge` in a tree (the optional
``dask`` extra).
"""

from __future__ import annotations

import os
from numbers import Real
from os import PathLike

import numpy as np

from calkit import _array as xp
from calkit._files import check_input_file, read_npy_header
from calkit._progress import ProgressBar
from calkit.logits import softmax
from calkit.stream import CalibrationAccumulator

__all__ = ["accumulate_chunked", "accumulate_dask", "evaluate_chunked", "tree_reduce"]

DEFAULT_CHUNK_BYTES = 16 << 20


def _open(x, name: str):
    """A row-sliceable array: a ``.npy`` path opened memory-mapped (never unpickling),
    a numpy array or memmap, a torch tensor (detached, kept on its device), or
    anything ``np.asarray`` takes (lists, pandas objects)."""
    if isinstance(x, (str, PathLike)):
        x = _open_npy(x, name)
    if isinstance(x, np.lib.npyio.NpzFile):
        _refuse_npz(x, name)
    if type(x).__module__.partition(".")[0] == "dask":
        raise TypeError(f"{name} is a Dask array: use calkit.chunked.accumulate_dask")
    if xp.is_torch(x):
        x = x.detach()
    elif not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x)  # pandas, lists
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if len(x.shape) not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {tuple(x.shape)}")
    return x


def _refuse_npz(archive, name: str):
    names = list(archive.files)
    raise ValueError(f"{name} is a .npz archive holding {names}: pass one array, e.g. "
                     f"np.load(path)[{names[0] if names else 'name'!r}]")


def _open_npy(path, name: str) -> np.ndarray:
    """A ``.npy`` file memory-mapped, after checking from its header that it can be
    (:mod:`calkit._files`: a regular file whose bytes the header's shape fits;
    nothing unpickled); the array must hold numbers."""
    path = check_input_file(path, name)
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":  # a zip: .npz
            with np.load(path, allow_pickle=False) as archive:
                _refuse_npz(archive, name)
        f.seek(0)
        header = read_npy_header(f, os.fstat(f.fileno()).st_size, f"{name}: {path}",
                                 in_memory=False)
    if header.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {path} holds {header.dtype} data, not numbers")
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _row_bytes(x) -> int:
    """Bytes of one row of ``x`` (numpy or torch)."""
    itemsize = x.element_size() if xp.is_torch(x) else x.dtype.itemsize
    return int(np.prod(x.shape[1:], dtype=np.int64)) * itemsize


def _block(x, start: int, stop: int):
    """Rows ``start:stop`` read into memory (a tensor stays a tensor)."""
    return x[start:stop] if xp.is_torch(x) else np.asarray(x[start:stop])


def accumulate_chunked(y_true, y_pred, *, from_logits: bool = False,
                       chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = False,
                       accumulator: CalibrationAccumulator | None = None,
                       **accumulator_kwargs) -> CalibrationAccumulator:
    """Accumulate calibration statistics over row blocks of large arrays.

    Parameters
    ----------
    y_true : array of shape (N,), or path of a ``.npy`` file
        Integer labels.
    y_pred : array of shape (N, K) or (N,), or path of a ``.npy`` file
        Probabilities, or logits with ``from_logits=True``; a path is opened
        with ``np.load(mmap_mode="r", allow_pickle=False)``, so only one block
        at a time is read into memory.  Both may be numpy arrays (memory-mapped
        or not), torch tensors (detached; blocks stay on their device, any
        float dtype including bfloat16), pandas objects or lists; a ``.npz``
        archive must be indexed (``np.load(path)["probs"]``) and a Dask array
        goes to :func:`accumulate_dask`.
    from_logits : bool, default=False
        Apply :func:`calkit.softmax` to every block (in the array's dtype).
    chunk_bytes : int, default=16 MiB
        Approximate size of one block of ``y_pred``.
    progress : bool, default=False
        Show a progress bar (tqdm when installed, else a line per 10 % on stderr).
    accumulator : CalibrationAccumulator, optional
        Accumulator to add to (default: a new one made from ``accumulator_kwargs``).
        All or nothing: the blocks are added to a copy, which replaces the
        accumulator's state only when every block succeeded, so an error (a bad
        block, an interrupt) leaves ``accumulator`` as it was.

    Returns
    -------
    CalibrationAccumulator

    Examples
    --------
    >>> import numpy as np
    >>> import calkit
    >>> from calkit.chunked import accumulate_chunked
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(5000, 4)).astype(np.float32)
    >>> labels = rng.integers(0, 4, size=5000)
    >>> acc = accumulate_chunked(labels, logits, from_logits=True, chunk_bytes=4096)
    >>> abs(acc.compute()["ece"] - calkit.ece(labels, calkit.softmax(logits))) < 1e-12
    True
    """
    for flag, value in (("from_logits", from_logits), ("progress", progress)):
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, Real) \
            or not 0 < chunk_bytes < float("inf"):
        raise ValueError(f"chunk_bytes must be a positive finite number, got {chunk_bytes!r}")
    if accumulator is None:
        accumulator = CalibrationAccumulator(**accumulator_kwargs)
    elif not isinstance(accumulator, CalibrationAccumulator):
        raise TypeError(f"accumulator must be a CalibrationAccumulator, got "
                        f"{type(accumulator).__name__}")
    elif accumulator_kwargs:
        raise ValueError("pass either accumulator= or accumulator settings, not both")
    y_pred = _open(y_pred, "y_pred")
    y_true = _open(y_true, "y_true")
    n = int(y_pred.shape[0])
    if int(y_true.shape[0]) != n:
        raise ValueError(f"y_true has {y_true.shape[0]} rows but y_pred has {n}")
    rows = max(1, int(chunk_bytes) // max(_row_bytes(y_pred), 1))
    scratch = accumulator.copy()  # all or nothing: the caller's state changes only at the end
    bar = ProgressBar(n, "calkit", progress, unit="rows", lines=True)
    try:
        for start in range(0, n, rows):
            block = _block(y_pred, start, start + rows)
            if from_logits:
                block = softmax(block)
            scratch.update(_block(y_true, start, start + rows), block)
            bar.update(block.shape[0])
    finally:
        bar.close()
    accumulator._set_state(scratch.state_dict())
    return accumulator


def evaluate_chunked(y_true, y_pred, **kwargs) -> dict:
    """:func:`accumulate_chunked`, then :meth:`~calkit.stream.CalibrationAccumulator.compute`.

    Examples
    --------
    >>> import numpy as np
    >>> from calkit.chunked import evaluate_chunked
    >>> out = evaluate_chunked([0, 1, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    >>> out["n_samples"], round(out["accuracy"], 4)
    (3, 0.6667)
    """
    return accumulate_chunked(y_true, y_pred, **kwargs).compute()


def _block_state(y_block, p_block, from_logits: bool, settings: dict) -> CalibrationAccumulator:
    p_block = softmax(p_block) if from_logits else p_block
    return CalibrationAccumulator(**settings).update(y_block, p_block)


def tree_reduce(parts: list, combine):
    """Pairwise reduction of ``parts`` with ``combine`` (depth ``ceil(log2(len(parts)))``).

    The reduction order of :func:`accumulate_dask` and the Dask/Spark
    integrations: neighbours are combined level by level, so a distributed
    scheduler runs each level in parallel.

    Examples
    --------
    >>> from calkit.chunked import tree_reduce
    >>> tree_reduce(["a", "b", "c", "d", "e"], lambda x, y: f"({x}{y})")
    '(((ab)(cd))e)'
    """
    if not parts:
        raise ValueError("tree_reduce needs at least one part")
    while len(parts) > 1:
        pairs = [combine(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def accumulate_dask(y_true, y_pred, *, from_logits: bool = False, scheduler=None,
                    **accumulator_kwargs) -> CalibrationAccumulator:
    """Accumulate over the row blocks of Dask arrays, merged in a tree (needs ``dask``).

    Every row block becomes one :class:`~calkit.stream.CalibrationAccumulator`
    (a ``dask.delayed`` task); the block states are merged pairwise, so only
    fixed-size states (plus the compact pairs in exact mode) travel between
    workers.  Column blocks of ``y_pred`` are joined first (a row needs all
    classes), and ``y_true`` is rechunked to ``y_pred``'s row blocks.

    Parameters
    ----------
    y_true : dask or numpy array of shape (N,)
    y_pred : dask or numpy array of shape (N, K) or (N,)
        Probabilities, or logits with ``from_logits=True``.
    scheduler : str, optional
        Passed to ``dask.compute`` (e.g. ``"threads"``, ``"synchronous"``);
        default: the configured scheduler.
    **accumulator_kwargs
        Settings of the accumulator (``n_bins``, ``classwise``, ``exact``...).

    Examples
    --------
    >>> import numpy as np
    >>> import pytest
    >>> da = pytest.importorskip("dask.array")   # the optional dask extra
    >>> import calkit
    >>> from calkit.chunked import accumulate_dask
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=4000)
    >>> y = rng.integers(0, 3, size=4000)
    >>> acc = accumulate_dask(da.from_array(y, chunks=1000), da.from_array(p, chunks=(1000, 3)),
    ...                       scheduler="threads")
    >>> acc.n_samples, abs(acc.compute()["ece"] - calkit.ece(y, p)) < 1e-12
    (4000, True)
    """
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - only without dask
        raise ImportError("accumulate_dask needs Dask: pip install 'dask[array]'") from exc
    CalibrationAccumulator(**accumulator_kwargs)  # validate the settings before any task runs
    if not isinstance(from_logits, bool | np.bool_):
        raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
    p, y = da.asarray(y_pred), da.asarray(y_true)
    for name, x, dims in (("y_pred", p, (1, 2)), ("y_true", y, (1, 2))):
        if x.ndim not in dims:
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {x.shape}")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but y_pred has {p.shape[0]}")
    if p.ndim == 2 and p.numblocks[1] > 1:
        p = p.rechunk({1: -1})
    y = y.rechunk((p.chunks[0],) + ((y.shape[1],) if y.ndim == 2 else ()))
    y_blocks = y.to_delayed().ravel()
    p_blocks = p.to_delayed().ravel()
    if len(y_blocks) != len(p_blocks):
        raise ValueError(f"y_true has {y.shape[0]} rows but y_pred has {p.shape[0]}")
    parts = [dask.delayed(_block_state)(yb, pb, from_logits, accumulator_kwargs)
             for yb, pb in zip(y_blocks, p_blocks, strict=True)]
    total = tree_reduce(parts, dask.delayed(CalibrationAccumulator.merge))
    (result,) = dask.compute(total, scheduler=scheduler)
    return result

