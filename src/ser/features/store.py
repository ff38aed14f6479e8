"""Feature stores on disk, in shards, so that no step holds a whole corpus in memory.

A store is a folder::

    features-00000.npy   (<= shard_clips, n_frames, n_features) float32, rows in clips.txt order
    features-00001.npy   ...
    clips.txt            one clip id per row
    settings.json        the feature settings (features.describe)

Rows are written shard by shard as they are computed (:func:`write`) and read back lazily
(:func:`load`): a :class:`ShardedArray` reads only the rows it is asked for, from the
files. A 100,000-clip store of the default features is 18 GB; a shard of the default size
91 MB.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ser.fsutil import read_json, write_json

# Clips per shard: the writer holds one shard in memory (512 x 301 x 148 float32 = 91 MB).
SHARD_CLIPS = 512
SHARD_PATTERN = "features-*.npy"
LEGACY_FILE = "features.npy"  # stores written before sharding: one array


def shard_name(index: int) -> str:
    return f"features-{index:05d}.npy"


class _Shard:
    """Where one .npy file keeps its rows: path, data offset, row count and row shape."""

    def __init__(self, path: Path):
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
            self.offset = file.tell()
        if fortran_order or np.dtype(dtype) != np.float32 or len(shape) < 2:
            raise ValueError(f"{path}: not a C-ordered float32 array of rows")
        self.path, self.rows, self.row_shape = path, shape[0], tuple(shape[1:])
        self.row_bytes = int(np.prod(self.row_shape)) * 4


class ShardedArray:
    """The rows of a store's shards as one read-only (n, n_frames, n_features) array.

    Indexing along the first axis (an int, a slice, an int or boolean array) reads just those
    rows from the files and returns an ndarray; ``np.asarray(rows)`` reads everything. Rows
    are read, not memory-mapped: mapped pages would count toward the resident memory of a
    process that goes through a whole large store (training, epoch after epoch).
    """

    def __init__(self, shards: list[_Shard], *, row_shape: tuple[int, ...]):
        self.shards = shards
        sizes = np.array([shard.rows for shard in shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.shape = (int(self.starts[-1]), *row_shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, int | np.integer):
            return self.take(np.array([index]))[0]
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        return self.take(np.asarray(index))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows, in the given order: (len(rows), *row_shape)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False).ravel()
        rows = np.where(rows < 0, rows + len(self), rows)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"a row is out of range for {len(self)} rows")
        result = np.empty((rows.size, *self.shape[1:]), dtype=self.dtype)
        shard_of = np.searchsorted(self.starts, rows, side="right") - 1
        for index in np.unique(shard_of):
            wanted = np.flatnonzero(shard_of == index)
            self._read(self.shards[index], rows[wanted] - self.starts[index], wanted, result)
        return result

    @staticmethod
    def _read(shard: _Shard, local: np.ndarray, positions: np.ndarray, result: np.ndarray):
        """result[positions] = shard rows local, one read per run of consecutive rows."""
        order = np.argsort(local, kind="stable")
        local, positions = local[order], positions[order]
        breaks = np.flatnonzero((np.diff(local) != 1) | (np.diff(positions) != 1)) + 1
        with open(shard.path, "rb", buffering=0) as file:
            for first, last in zip(
                np.concatenate([[0], breaks]), np.concatenate([breaks, [local.size]]), strict=True
            ):
                target = result[positions[first] : positions[first] + last - first]
                length = os.preadv(
                    file.fileno(),
                    [memoryview(target).cast("B")],
                    shard.offset + int(local[first]) * shard.row_bytes,
                )
                if length != target.nbytes:
                    raise OSError(f"{shard.path}: truncated (row {local[first]})")

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.take(np.arange(len(self)))
        return whole if dtype is None else whole.astype(dtype, copy=False)


def write(
    folder: Path,
    rows: Iterable[tuple[str, np.ndarray]],
    *,
    row_shape: tuple[int, ...],
    settings: dict,
    shard_clips: int = SHARD_CLIPS,
) -> list[str]:
    """Write (clip id, (n_frames, n_features)) rows as they come, shard by shard.

    Holds one shard in memory. Writes clips.txt and settings.json at the end and returns the
    clip ids written, in row order. With no rows, one empty shard keeps the row shape.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = np.empty((shard_clips, *row_shape), dtype=np.float32)
    clip_ids: list[str] = []
    filled = shards = 0
    for clip_id, matrix in rows:
        buffer[filled] = matrix
        clip_ids.append(clip_id)
        filled += 1
        if filled == shard_clips:
            np.save(folder / shard_name(shards), buffer)
            shards, filled = shards + 1, 0
    if filled or not shards:
        np.save(folder / shard_name(shards), buffer[:filled])
    (folder / "clips.txt").write_text("".join(f"{clip}\n" for clip in clip_ids))
    write_json(folder / "settings.json", settings)
    return clip_ids


def write_results(
    folder: Path,
    results: Iterable[tuple[str, np.ndarray | None, str]],
    *,
    row_shape: tuple[int, ...],
    settings: dict,
    shard_clips: int | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """:func:`write` for (clip id, matrix or None, reason) results as featurize and augment
    produce them: the failed ones (None) are left out and returned as (clip id, reason).

    Returns (clip ids written, in row order; failures).
    """
    failures: list[tuple[str, str]] = []

    def worked() -> Iterable[tuple[str, np.ndarray]]:
        for clip_id, matrix, reason in results:
            if matrix is None:
                failures.append((clip_id, reason))
            else:
                yield clip_id, matrix

    written = write(
        folder,
        worked(),
        row_shape=row_shape,
        settings=settings,
        shard_clips=shard_clips or SHARD_CLIPS,
    )
    return written, failures


def _shard_paths(folder: Path) -> list[Path]:
    return sorted(folder.glob(SHARD_PATTERN)) or [folder / LEGACY_FILE]


def load(folder: Path) -> tuple[list[str], ShardedArray, dict]:
    """Read a store written by :func:`write`: (clip ids, rows read on demand, settings)."""
    folder = Path(folder)
    clip_ids = (folder / "clips.txt").read_text().split()
    shards = [_Shard(path) for path in _shard_paths(folder)]
    rows = ShardedArray(shards, row_shape=shards[0].row_shape)
    if len(rows) != len(clip_ids):
        raise ValueError(f"{folder}: {len(rows)} feature rows for {len(clip_ids)} clip ids")
    return clip_ids, rows, read_json(folder / "settings.json")
