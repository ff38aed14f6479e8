"""Assembling labelled arrays from the manifest, the split and the feature stores."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ser.data.labels import LabelSpec
from ser.errors import ConfigError

log = logging.getLogger(__name__)


def labelled_clips(manifest: pd.DataFrame, split: pd.DataFrame, spec: LabelSpec) -> pd.DataFrame:
    """Clips of the split with their class: clip_id, actor, gender, emotion, subset, label, y.

    Clips the grouping or gender filter leaves out are dropped; y indexes spec.class_names.
    """
    clips = split.merge(
        manifest[["clip_id", "gender", "emotion", "channel"]], on="clip_id", how="left"
    )
    clips["label"] = spec.assign(clips)
    unmapped = spec.unmapped(clips)
    if unmapped:
        log.info(
            "labels: grouping %s has no class for, and drops, %s",
            spec.grouping,
            ", ".join(f"{count} {emotion} clips" for emotion, count in unmapped.items()),
        )
    clips = clips[clips["label"].notna()].copy()
    index = {name: position for position, name in enumerate(spec.class_names)}
    clips["y"] = clips["label"].map(index).astype(int)
    return clips.reset_index(drop=True)


def rows_of(store_ids: list[str], wanted: pd.Series) -> np.ndarray:
    """Row positions in a feature store of the wanted clip ids (-1 where missing)."""
    position = {clip: row for row, clip in enumerate(store_ids)}
    return np.array([position.get(clip, -1) for clip in wanted], dtype=int)


def check_subsets(
    clips: pd.DataFrame, spec: LabelSpec, *, test_key: str = "split.test_actors"
) -> None:
    """Refuse, before training, label settings that leave a subset or a class without clips.

    ``test_key``: the param that chose the test clips (split.test_corpus when it is set).
    """
    for subset, key in (("val", "split.val_actors"), ("test", test_key)):
        if not (clips["subset"] == subset).any():
            raise ConfigError(
                f"{key}: no {subset} clip is left after labels.grouping={spec.grouping!r} and "
                f"labels.gender={spec.gender!r}; choose other actors or labels"
            )
    train = clips[clips["subset"] == "train"]
    missing = [name for name in spec.class_names if name not in set(train["label"])]
    if missing:
        raise ConfigError(
            f"labels.grouping: class {missing[0]!r} of {spec.grouping!r} has no training clips "
            f"(gender={spec.gender!r}); classes need clips from the training actors"
        )


class Rows:
    """Chosen rows of one or more feature stores as one array, read only when indexed.

    ``Rows((store, [4, 0]), (augmented, [2]))`` is ``np.concatenate([store[[4, 0]],
    augmented[[2]]])`` without reading it: ``rows[indices]`` reads just those rows,
    ``np.asarray(rows)`` all of them. Stores are arrays or ShardedArrays (read from disk).
    """

    def __init__(self, *parts: tuple[object, np.ndarray]):
        if not parts:
            raise ValueError("Rows needs at least one (store, row indices) part")
        self.parts = [(store, np.asarray(rows, dtype=np.int64)) for store, rows in parts]
        row_shapes = {tuple(store.shape[1:]) for store, _ in self.parts}
        if len(row_shapes) > 1:
            raise ValueError(f"stores of different row shapes: {sorted(row_shapes)}")
        self.starts = np.concatenate([[0], np.cumsum([len(rows) for _, rows in self.parts])])
        self.shape = (int(self.starts[-1]), *row_shapes.pop())
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getitem__(self, index) -> np.ndarray:
        """Rows at positions (an int array or a slice): (len(index), *row_shape)."""
        positions = np.arange(len(self))[index] if isinstance(index, slice) else index
        positions = np.asarray(positions, dtype=np.int64).ravel()
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"a position is out of range for {len(self)} rows")
        result = np.empty((positions.size, *self.shape[1:]), dtype=self.dtype)
        part_of = np.searchsorted(self.starts, positions, side="right") - 1
        for part in np.unique(part_of):
            wanted = np.flatnonzero(part_of == part)
            store, rows = self.parts[part]
            result[wanted] = store[rows[positions[wanted] - self.starts[part]]]
        return result

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        # Part by part, as np.concatenate of each store's rows would read them.
        whole = np.concatenate(
            [np.asarray(store[rows], dtype=self.dtype) for store, rows in self.parts]
        )
        return whole if dtype is None else whole.astype(dtype, copy=False)
