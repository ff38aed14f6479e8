"""Actor-isolated subsets: no speaker, and no recording, in two of train, val and test."""

from __future__ import annotations

import pandas as pd

from ser.errors import ConfigError, DataError
from ser.params import SplitParams

SUBSETS = ("train", "val", "test")


def assign_subsets(manifest: pd.DataFrame, params: SplitParams) -> pd.DataFrame:
    """Give every usable clip of the manifest a subset by its actor.

    Returns columns clip_id, actor, subset (train | val | test). Raises ConfigError when a
    subset would be empty (naming the key) and DataError when the same recording (by
    content hash) would land in two subsets.
    """
    usable = manifest[manifest["excluded"] == ""]
    present = sorted(int(actor) for actor in usable["actor"].unique())
    for key, actors in (("test_actors", params.test_actors), ("val_actors", params.val_actors)):
        if not set(actors) & set(present):
            raise ConfigError(
                f"split.{key}: none of actors {list(actors)} is in the corpus; "
                f"actors present: {present}"
            )
    held_out = set(params.test_actors) | set(params.val_actors)
    if not set(present) - held_out:
        raise ConfigError(
            "split: no actor is left to train on; split.test_actors and split.val_actors "
            f"cover every actor present ({present})"
        )
    subset = usable["actor"].map(
        lambda actor: (
            "test"
            if actor in params.test_actors
            else "val"
            if actor in params.val_actors
            else "train"
        )
    )
    frame = pd.DataFrame(
        {"clip_id": usable["clip_id"], "actor": usable["actor"], "subset": subset}
    ).reset_index(drop=True)
    check_no_shared_content(frame, usable["content_hash"].reset_index(drop=True))
    return frame


def check_no_shared_content(split: pd.DataFrame, content_hash: pd.Series) -> None:
    """Refuse a split where identical audio sits in two subsets (a leak between them)."""
    frame = split.assign(content_hash=content_hash.to_numpy())
    frame = frame[frame["content_hash"] != ""]
    spread = frame.groupby("content_hash")["subset"].nunique()
    leaked = spread[spread > 1]
    if len(leaked):
        clips = frame[frame["content_hash"] == leaked.index[0]]
        pairs = ", ".join(
            f"{c} ({s})" for c, s in zip(clips["clip_id"], clips["subset"], strict=True)
        )
        raise DataError(
            f"{len(leaked)} recording(s) appear in more than one subset, e.g. identical audio in "
            f"{pairs}; remove the duplicates from the corpus"
        )
