"""Assembling labelled arrays from the manifest, the split and the feature stores."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ser.errors import ConfigError
from ser.labels import LabelSpec

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


def check_subsets(clips: pd.DataFrame, spec: LabelSpec) -> None:
    """Refuse, before training, label settings that leave a subset or a class without clips."""
    for subset, key in (("val", "split.val_actors"), ("test", "split.test_actors")):
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
