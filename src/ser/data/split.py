"""Actor-isolated subsets: no speaker, and no recording, in two of train, val and test.

Two ways to split, both written to one table (data/split.csv):

* the fixed split: ``subset`` is train, val or test by ``split.test_actors`` and
  ``split.val_actors``;
* cross-validation: ``fold`` deals every actor outside ``split.test_actors`` into k folds of
  whole actors, balanced by gender (0 for the test actors, which CV never sees). In fold k's
  run, fold k tests, fold k+1 (wrapping) validates and the others train (:func:`fold_subsets`).

Cross-corpus evaluation (``split.test_corpus`` set): every clip of the named corpora tests,
``split.test_actors`` is not used, ``split.val_actors`` picks validation speakers among the
other corpora, and the folds are dealt over the other corpora's speakers only, so the test
corpus stays unseen by every model, as the test actors otherwise do.

A speaker is an actor of one corpus: with several corpora in the manifest, actor 3 of EmoDB
and actor 3 of RAVDESS are two speakers (keys ``emodb:3`` and ``ravdess:3``). In
``split.test_actors`` and ``split.val_actors`` a number names that actor in every corpus,
``"corpus:actor"`` that actor in one.
"""

from __future__ import annotations

import pandas as pd

from ser.errors import ConfigError, DataError
from ser.params import SplitParams

SUBSETS = ("train", "val", "test")


def assign_subsets(manifest: pd.DataFrame, params: SplitParams) -> pd.DataFrame:
    """Give every usable clip of the manifest a subset by its actor.

    Returns columns clip_id, actor, subset (train | val | test), fold and speaker (see
    :func:`speaker_keys`). Raises ConfigError when a subset would be empty (naming the key)
    and DataError when the same recording (by content hash) would land in two subsets.
    """
    usable = manifest[manifest["excluded"] == ""]
    usable = usable.assign(speaker=speaker_keys(usable))
    test = held_out(usable, params)
    val = in_actors(usable, params.val_actors) & ~test
    if params.test_corpus:
        if not test.any():
            raise ConfigError(
                f"split.test_corpus: no usable clip of {', '.join(params.test_corpus)} is in "
                "the manifest"
            )
        if not val.any():
            raise ConfigError(
                f"split.val_actors: none of actors {list(params.val_actors)} is in the corpora "
                f"outside split.test_corpus; actors present there: "
                f"{sorted_speakers(usable.loc[~test, 'speaker'])}"
            )
    present = sorted_speakers(usable["speaker"])
    for key, actors, chosen in (
        ("test_actors", params.test_actors, test),
        ("val_actors", params.val_actors, val),
    ):
        if not chosen.any():
            raise ConfigError(
                f"split.{key}: none of actors {list(actors)} is in the corpus; "
                f"actors present: {present}"
            )
    if (test | val).all():
        tested = "split.test_corpus" if params.test_corpus else "split.test_actors"
        raise ConfigError(
            f"split: no actor is left to train on; {tested} and split.val_actors "
            f"cover every actor present ({present})"
        )
    if "gender" not in usable:
        usable = usable.assign(gender="unknown")
    subset = pd.Series("train", index=usable.index).mask(val, "val").mask(test, "test")
    folds = assign_folds(usable, params)
    frame = pd.DataFrame(
        {
            "clip_id": usable["clip_id"],
            "actor": usable["actor"],
            "subset": subset,
            "fold": usable["speaker"].map(lambda speaker: folds.get(speaker, 0)),
            "speaker": usable["speaker"],
        }
    ).reset_index(drop=True)
    check_no_shared_content(frame, usable["content_hash"].reset_index(drop=True))
    for fold in params.folds:
        check_no_shared_content(
            fold_subsets(frame, fold, params.fold_count),
            usable["content_hash"].reset_index(drop=True)[frame["fold"] > 0],
        )
    return frame


def speaker_keys(clips: pd.DataFrame) -> pd.Series:
    """The speaker of each clip: its actor number with one corpus (or no corpus column),
    ``"corpus:actor"`` with several."""
    if "corpus" not in clips or clips["corpus"].nunique() <= 1:
        return clips["actor"].astype(int)
    return clips["corpus"].astype(str) + ":" + clips["actor"].astype(int).astype(str)


def in_actors(clips: pd.DataFrame, actors: tuple[int | str, ...]) -> pd.Series:
    """Whether each clip's speaker is named by ``actors`` (numbers, or "corpus:actor")."""
    corpus = clips["corpus"].astype(str) if "corpus" in clips else pd.Series("", clips.index)
    actor = clips["actor"].astype(int)
    named = actor.isin([a for a in actors if isinstance(a, int)])
    return named | (corpus + ":" + actor.astype(str)).isin(
        [a for a in actors if isinstance(a, str)]
    )


def held_out(clips: pd.DataFrame, params: SplitParams) -> pd.Series:
    """Whether each clip is a test clip of the fixed split, which CV never sees: a clip of
    ``split.test_corpus`` when that is set, otherwise a clip of ``split.test_actors``."""
    if params.test_corpus:
        corpus = clips["corpus"] if "corpus" in clips else pd.Series("", clips.index)
        return corpus.astype(str).isin(params.test_corpus)
    return in_actors(clips, params.test_actors)


def speakers_by_subset(
    clips: pd.DataFrame, manifest: pd.DataFrame, subsets: tuple[str, ...] = SUBSETS
) -> dict[str, list[int | str]]:
    """Subset -> the sorted speakers of ``clips`` (columns clip_id, subset) in it, named as
    :func:`speaker_keys` names them over ``manifest``: actor numbers with one corpus,
    "corpus:actor" with several."""
    speaker_of = dict(zip(manifest["clip_id"], speaker_keys(manifest), strict=True))
    return {
        subset: sorted_speakers(clips.loc[clips["subset"] == subset, "clip_id"].map(speaker_of))
        for subset in subsets
    }


def sorted_speakers(speakers: pd.Series) -> list[int | str]:
    """The distinct speakers, as plain ints or "corpus:actor" strings, in corpus-actor order."""
    return sorted((_plain(speaker) for speaker in speakers.unique()), key=_order)


def _plain(speaker) -> int | str:
    return speaker if isinstance(speaker, str) else int(speaker)


def _order(speaker: int | str) -> tuple[str, int]:
    if isinstance(speaker, str):
        corpus, actor = speaker.split(":")
        return corpus, int(actor)
    return "", int(speaker)


def assign_folds(clips: pd.DataFrame, params: SplitParams) -> dict[int | str, int]:
    """Speaker -> fold number (1..k) for every speaker outside split.test_actors (outside
    split.test_corpus when that is set).

    Males and females (and speakers of unknown gender) are dealt out in turn (sorted by
    speaker), so each fold holds as many of each as the numbers allow. Needs columns actor
    and gender; the speaker is column speaker when present (see :func:`speaker_keys`),
    otherwise the actor number.
    """
    pool = clips[~held_out(clips, params)]
    speaker = pool["speaker"] if "speaker" in pool else pool["actor"].astype(int)
    gender_of = dict(zip(map(_plain, speaker), pool["gender"], strict=False))
    count = params.fold_count
    if len(gender_of) < count:
        outside = "split.test_corpus" if params.test_corpus else "split.test_actors"
        raise ConfigError(
            f"split.folds: {count} folds need at least {count} actors outside {outside}; "
            f"the corpus has {len(gender_of)}: {sorted(gender_of, key=_order)}"
        )
    folds: dict[int | str, int] = {}
    dealt = 0
    for gender in sorted(set(gender_of.values())):
        for actor in sorted((a for a, g in gender_of.items() if g == gender), key=_order):
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
