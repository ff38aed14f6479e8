"""Actor-isolated subsets: no speaker, and no recording, in two of train, val and test.

Two ways to split, both written to one table (data/split.csv):

* the fixed split: ``subset`` is train, val or test by ``split.test_actors`` and
  ``split.val_actors``;
* cross-validation: ``fold`` deals every actor outside ``split.test_actors`` into k folds of
  whole actors, balanced by gender (0 for the test actors, which CV never sees). In fold k's
  run, fold k tests, fold k+1 (wrapping) validates and the others train (:func:`fold_subsets`).
"""

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
    if "gender" not in usable:
        usable = usable.assign(gender="unknown")
    subset = usable["actor"].map(
        lambda actor: (
            "test"
            if actor in params.test_actors
            else "val"
            if actor in params.val_actors
            else "train"
        )
    )
    folds = assign_folds(usable, params)
    frame = pd.DataFrame(
        {
            "clip_id": usable["clip_id"],
            "actor": usable["actor"],
            "subset": subset,
            "fold": usable["actor"].map(lambda actor: folds.get(int(actor), 0)),
        }
    ).reset_index(drop=True)
    check_no_shared_content(frame, usable["content_hash"].reset_index(drop=True))
    for fold in params.folds:
        check_no_shared_content(
            fold_subsets(frame, fold, params.fold_count),
            usable["content_hash"].reset_index(drop=True)[frame["fold"] > 0],
        )
    return frame


def assign_folds(clips: pd.DataFrame, params: SplitParams) -> dict[int, int]:
    """Actor -> fold number (1..k) for every actor outside split.test_actors.

    Males and females are dealt out in turn (sorted by actor number), so each fold holds
    as many of each as the numbers allow. Needs columns actor and gender.
    """
    pool = clips[~clips["actor"].isin(params.test_actors)]
    gender_of = dict(zip(pool["actor"].astype(int), pool["gender"], strict=False))
    count = params.fold_count
    if len(gender_of) < count:
        raise ConfigError(
            f"split.folds: {count} folds need at least {count} actors outside "
            f"split.test_actors; the corpus has {len(gender_of)}: {sorted(gender_of)}"
        )
    folds: dict[int, int] = {}
    dealt = 0
    for gender in sorted(set(gender_of.values())):
        for actor in sorted(a for a, g in gender_of.items() if g == gender):
            folds[actor] = dealt % count + 1
            dealt += 1
    return folds


def fold_subsets(folds: pd.DataFrame, fold: int, count: int) -> pd.DataFrame:
    """The split of one cross-validation run: the clips of the CV actors (column fold > 0)
    with subset test for `fold`, val for the next fold (wrapping), train for the others."""
    if not 1 <= fold <= count:
        raise ConfigError(f"split.folds: fold {fold} does not exist; folds are 1 to {count}")
    clips = folds[folds["fold"] > 0].copy()
    next_fold = fold % count + 1
    clips["subset"] = [
        "test" if f == fold else "val" if f == next_fold else "train" for f in clips["fold"]
    ]
    return clips.reset_index(drop=True)


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
