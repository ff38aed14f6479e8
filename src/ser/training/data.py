"""The one place that builds a training run's data: which rows, which copies, which speaker
keys, and how each row is standardised. The train stage, the benchmarks and the tests' fixtures
all call :func:`build_training_data`, so a figure measured by any of them is the pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ser.data.dataset import Rows
from ser.features.speaker import (
    ClipSums,
    Scales,
    SpeakerNormalizer,
    Standardized,
    draw_scales,
)
from ser.params import Params


@dataclass(frozen=True)
class TrainingData:
    """Arrays (or array-likes read when indexed) for training.fit, and how they were made.

    x_*: (n, n_frames, n_features) rows; y_*: (n,) class indices; *_speakers: (n,) speaker
    keys (the statistics member standardises per speaker with them; None when it does not).
    copies: augmented copies the statistics member trains on too (None: none). normalizer:
    the speaker standardiser the model needs at prediction time (None when
    features.normalize is not speaker). counts: clips of each kind, for the metrics. memo:
    what training computed once from these rows and reads again (the statistics member's
    inputs, keyed by the id of the rows they came from, which this object holds).
    member_x: the statistics member's own (x_train, x_val, x_copies) when they differ from
    the network's (model.stats_single_draw; member_rows gives whichever applies).
    copy_in_train: (n_copies,) True where a copy is of a training clip, not a validation one
    (held_out_validation trains on those alone). A flag, not a test on the speaker keys: a
    copy through a channel has its own key (speaker|channel, see _copies).
    """

    x_train: object
    y_train: np.ndarray
    x_val: object
    y_val: np.ndarray
    x_copies: object | None = None
    y_copies: np.ndarray | None = None
    train_speakers: np.ndarray | None = None
    val_speakers: np.ndarray | None = None
    copy_speakers: np.ndarray | None = None
    copy_in_train: np.ndarray | None = None
    normalizer: SpeakerNormalizer | None = None
    counts: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    member_x: tuple | None = None

    def member_rows(self) -> tuple:
        """The statistics member's (x_train, x_val, x_copies): the same clips, labels and
        speakers in the same order as the network's, standardised by the member's own draws
        (model.stats_single_draw), or the network's rows themselves."""
        return self.member_x or (self.x_train, self.x_val, self.x_copies)


def build_training_data(
    clips: pd.DataFrame,
    store,
    params: Params,
    *,
    copies: pd.DataFrame | None = None,
    augmented=None,
) -> TrainingData:
    """The training data of one run.

    clips: the run's labelled clips with columns clip_id, subset (train, val; others are
    ignored), label, y (class index), row (in ``store``) and speaker (key). copies:
    augmented copies with columns clip_id (of the clip copied), row (in ``augmented``) and
    optionally channel (augment.load_copies); the copies of the chosen classes
    (augment.only_classes) of training clips join the network's training rows when
    augment.members has network, and those of training and validation clips the statistics
    member's rows when it has statistics.

    With features.normalize: speaker, rows are standardised by SpeakerNormalizer (fitted
    on the training speakers, shrinkage model.speaker_shrinkage): model.speaker_draws
    copies of every training and validation row, each standardised by a random subset of
    its speaker's clips (the first by all of them with model.speaker_whole_draw;
    features/speaker.py), so the model learns every number of recordings a user may give it.
    With model.stats_single_draw, the statistics member's first draw standardises each row
    by itself alone instead (member_x).
    """
    train = clips[clips["subset"] == "train"]
    val = clips[clips["subset"] == "val"]
    chosen_copies = _copies(train, val, copies, params)
    normalizer = None
    if params.features.kind == "mfcc" and params.features.normalize == "speaker":
        sums = ClipSums.of(store)
        normalizer = SpeakerNormalizer.fit(
            _subset(sums, train["row"].to_numpy()),
            train["speaker"].to_numpy(),
            shrinkage=params.model.speaker_shrinkage,
        )
        copy_sums = ClipSums.of(augmented) if augmented is not None and len(augmented) else None
    draws = params.model.speaker_draws if normalizer is not None else 1
    whole_draw = params.model.speaker_whole_draw
    seed = params.train.seed

    def rows_of(source, frame: pd.DataFrame, sums, *, salt: int):
        """frame's rows of source, standardised (draws copies) or as they are."""
        rows = frame["row"].to_numpy()
        if normalizer is None:
            return Rows((source, rows)), frame["speaker"].to_numpy()
        part = _subset(sums, rows)
        speakers = frame["speaker"].to_numpy()
        scales = [
            draw_scales(
                normalizer,
                part,
                speakers,
                whole=whole_draw and draw == 0,
                seed=seed * 1000 + salt + draw,
                most=params.model.speaker_draw_max,
            )
            for draw in range(draws)
        ]
        merged = Scales(
            np.concatenate([s.mean for s in scales]),
            np.concatenate([s.std for s in scales]),
            np.concatenate([s.trust for s in scales]),
        )
        return Standardized(Rows((source, np.tile(rows, draws))), merged, normalizer), np.tile(
            speakers, draws
        )

    sums_of_store = sums if normalizer is not None else None
    sums_of_copies = copy_sums if normalizer is not None else None
    x_clips, train_speakers = rows_of(store, train, sums_of_store, salt=1)
    x_train, x_net = x_clips, None
    x_val, val_speakers = rows_of(store, val, sums_of_store, salt=2)
    y_train = np.tile(train["y"].to_numpy(), draws)
    y_val = np.tile(val["y"].to_numpy(), draws)
    network = chosen_copies["network"]
    if len(network):
        # The network's copies: a speaker's copies are standardised among its copies.
        x_net, net_speakers = rows_of(augmented, network, sums_of_copies, salt=3)
        x_train = _concat(x_clips, x_net)
        train_speakers = np.concatenate([train_speakers, net_speakers])
        y_train = np.concatenate([y_train, np.tile(network["y"].to_numpy(), draws)])
    member = chosen_copies["statistics"]
    x_copies, copy_speakers, y_copies = None, np.array([]), np.array([], dtype=int)
    copy_in_train = np.array([], dtype=bool)
    if len(member):
        x_copies, copy_speakers = rows_of(augmented, member, sums_of_copies, salt=4)
        y_copies = np.tile(member["y"].to_numpy(), draws)
        copy_in_train = np.tile(member["clip_id"].isin(train["clip_id"]).to_numpy(), draws)
    member_x = None
    if normalizer is not None and params.model.stats_single_draw and params.model.statistics_member:
        # The member's rows: the network's, their first draw each row by itself alone.
        member_train = _alone_first(x_clips, sums_of_store, train, normalizer)
        if x_net is not None:
            member_train = _concat(
                member_train, _alone_first(x_net, sums_of_copies, network, normalizer)
            )
        member_x = (
            member_train,
            _alone_first(x_val, sums_of_store, val, normalizer),
            _alone_first(x_copies, sums_of_copies, member, normalizer)
            if x_copies is not None
            else None,
        )
    return TrainingData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_copies=x_copies,
        y_copies=y_copies,
        train_speakers=train_speakers,
        val_speakers=val_speakers,
        copy_speakers=copy_speakers,
        copy_in_train=copy_in_train,
        normalizer=normalizer,
        counts={"train": len(train), "train_augmented": len(network), "val": len(val)},
        member_x=member_x,
    )


def _copies(train, val, copies, params: Params) -> dict[str, pd.DataFrame]:
    """The augmented copies each member trains on, with their clip's class and speaker."""
    empty = pd.DataFrame(columns=["clip_id", "row", "y", "speaker"])
    if copies is None or not len(copies):
        return {"network": empty, "statistics": empty}
    chosen = set(params.augment.only_classes) or set(train["label"]) | set(val["label"])

    def of(subsets: pd.DataFrame) -> pd.DataFrame:
        picked = copies.merge(subsets[["clip_id", "y", "label", "speaker"]], on="clip_id")
        if "channel" in picked:
            # A user's recordings come through one channel, so a speaker's copies are
            # standardised among those of the same channel (augment.channels).
            through = picked["channel"].fillna("").astype(str)
            picked["speaker"] = (
                picked["speaker"]
                .astype(str)
                .where(through == "", picked["speaker"].astype(str) + "|" + through)
            )
        return picked[picked["label"].isin(chosen)].reset_index(drop=True)

    return {
        "network": of(train) if params.augment.network_copies else empty,
        "statistics": of(pd.concat([train, val]))
        if params.augment.statistics_copies and params.model.statistics_member
        else empty,
    }


def _alone_first(
    x: Standardized, sums: ClipSums, frame: pd.DataFrame, normalizer: SpeakerNormalizer
) -> Standardized:
    """x, draws copies of frame's rows, with its first draw standardising each row by itself
    alone (k = 1, as one recording is judged) and the others as they are."""
    alone = normalizer.scales(_subset(sums, frame["row"].to_numpy()), np.arange(len(frame)))
    merged = Scales(x.scales.mean.copy(), x.scales.std.copy(), x.scales.trust.copy())
    for name in ("mean", "std", "trust"):
        getattr(merged, name)[: len(frame)] = getattr(alone, name)
    return Standardized(x.source, merged, normalizer)


def _subset(sums: ClipSums | None, rows: np.ndarray) -> ClipSums | None:
    if sums is None:
        return None
    return ClipSums(sums.frames[rows], sums.total[rows], sums.squares[rows])


class _Concatenated:
    """Two array-likes of the same row shape, one after the other, read when indexed."""

    def __init__(self, first, second):
        self.first, self.second = first, second
        self.shape = (len(first) + len(second), *first.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        rows = np.atleast_1d(np.arange(len(self))[index])
        result = np.empty((len(rows), *self.shape[1:]), dtype=np.float32)
        low = rows < len(self.first)
        if low.any():
            result[low] = self.first[rows[low]]
        if (~low).any():
            result[~low] = self.second[rows[~low] - len(self.first)]
        return result

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = np.concatenate([np.asarray(self.first), np.asarray(self.second)])
        return whole if dtype is None else whole.astype(dtype)


def _concat(first, second):
    if isinstance(first, Rows) and isinstance(second, Rows):
        return Rows(*first.parts, *second.parts)
    return _Concatenated(first, second)
