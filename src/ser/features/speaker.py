"""Per-speaker standardisation of frame features, from however many recordings are at hand.

What is constant in a voice (vocal tract, microphone, habitual pitch and loudness) is removed
by standardising each feature with the speaker's mean and standard deviation over frames.
With sixty recordings those moments are the speaker's; with one they are mostly the
recording's own, emotion included, and standardising by them erases what the model needs.
So the estimate from k recordings is shrunk toward the training population's typical
speaker, k recordings weighing against ``shrinkage`` pseudo-recordings of the population:

    mean_k = (k * mean(recordings) + shrinkage * population_mean) / (k + shrinkage)
    var_k  = (k * var(recordings)  + shrinkage * population_var)  / (k + shrinkage)

and the share k / (k + shrinkage) ("trust") joins the features as one more channel, so the
network knows how far the standardisation can be trusted. Training standardises each clip
with a random subset of its speaker's clips (itself included) of a random size
(:func:`draw_scales`), so the network meets every k from one recording to all of them;
prediction uses the recordings it is given (one file alone: k = 1).

This is the one place where a speaker is standardised: featurize stores features as they
are computed, and training, evaluation, ``ser predict`` and export all go through
:class:`SpeakerNormalizer`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The least standard deviation a feature is divided by.
STD_FLOOR = 1e-5
# Clips read at once when summing a store's frames (64 x 301 x 148 float64 = 23 MB).
READ_CLIPS = 64


@dataclass(frozen=True)
class Moments:
    """Sums over the frames of some recordings: enough to merge groups of them exactly.

    recordings: how many recordings the sums cover (``of`` counts each window as one: a
    training clip is one window; prediction counts a recording cut into several windows as
    one, ser.serve.predict.speaker_moments); frames: how many frames; total, squares:
    (n_features,) float64 sums of the frames and of their squares.
    """

    recordings: int
    frames: int
    total: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, windows: np.ndarray) -> Moments:
        """The moments of (n, n_frames, n_features) windows, each counted as a recording."""
        frames = np.asarray(windows, dtype=np.float64).reshape(-1, np.shape(windows)[-1])
        return cls(len(windows), len(frames), frames.sum(axis=0), np.square(frames).sum(axis=0))

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.recordings + other.recordings,
            self.frames + other.frames,
            self.total + other.total,
            self.squares + other.squares,
        )

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.frames

    @property
    def var(self) -> np.ndarray:
        return np.maximum(self.squares / self.frames - self.mean**2, 0.0)


@dataclass(frozen=True)
class ClipSums:
    """Per clip of a store, the frame count and the sums of its frames and their squares.

    frames: (n,) int; total, squares: (n, n_features) float64. ``group(rows)`` merges the
    clips at those rows into the Moments of one group.
    """

    frames: np.ndarray
    total: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, x) -> ClipSums:
        """Sums of every row of x ((n, n_frames, n_features), an array or a lazy store),
        read READ_CLIPS rows at a time."""
        totals, squares = [], []
        for start in range(0, len(x), READ_CLIPS):
            block = np.asarray(x[np.arange(start, min(len(x), start + READ_CLIPS))])
            block = block.astype(np.float64)
            totals.append(block.sum(axis=1))
            squares.append(np.square(block).sum(axis=1))
        width = x.shape[-1]
        return cls(
            np.full(len(x), x.shape[1], dtype=np.int64),
            np.concatenate(totals) if totals else np.zeros((0, width)),
            np.concatenate(squares) if squares else np.zeros((0, width)),
        )

    def group(self, rows: np.ndarray) -> Moments:
        return Moments(
            len(rows),
            int(self.frames[rows].sum()),
            self.total[rows].sum(axis=0),
            self.squares[rows].sum(axis=0),
        )


@dataclass(frozen=True)
class Scales:
    """What standardises each row: mean and std (n, n_features) and trust (n,)."""

    mean: np.ndarray
    std: np.ndarray
    trust: np.ndarray


@dataclass(frozen=True)
class SpeakerNormalizer:
    """Standardises windows with shrunk speaker moments (see the module's docstring).

    population_mean, population_var: (n_features,) the mean over training speakers of each
    speaker's frame mean and frame variance; shrinkage: pseudo-recordings of the population
    in every estimate (0: the recordings' own moments alone).
    """

    population_mean: np.ndarray
    population_var: np.ndarray
    shrinkage: float

    @classmethod
    def fit(cls, sums: ClipSums, speakers, *, shrinkage: float) -> SpeakerNormalizer:
        """From the training clips' sums and one speaker key per clip."""
        speakers = np.asarray(speakers)
        groups = [sums.group(np.flatnonzero(speakers == key)) for key in np.unique(speakers)]
        return cls(
            np.mean([group.mean for group in groups], axis=0),
            np.mean([group.var for group in groups], axis=0),
            float(shrinkage),
        )

    @property
    def width(self) -> int:
        """Features per frame after standardising: the inputs and the trust channel."""
        return len(self.population_mean) + 1

    def scale(self, moments: Moments) -> tuple[np.ndarray, np.ndarray, float]:
        """(mean, std, trust) for a group of recordings: its shrunk moments, k / (k + shrinkage)."""
        k, prior = moments.recordings, self.shrinkage
        mean = (k * moments.mean + prior * self.population_mean) / (k + prior)
        var = (k * moments.var + prior * self.population_var) / (k + prior)
        return mean, np.maximum(np.sqrt(var), STD_FLOOR), k / (k + prior)

    def apply(self, windows: np.ndarray, mean: np.ndarray, std: np.ndarray, trust) -> np.ndarray:
        """(n, n_frames, n_features) windows -> (n, n_frames, n_features + 1) standardised,
        with the trust channel last. mean, std: (n_features,) for all windows or
        (n, n_features) one per window; trust: a number or (n,)."""
        windows = np.asarray(windows, dtype=np.float32)
        mean = np.asarray(mean, dtype=np.float32)
        std = np.asarray(std, dtype=np.float32)
        if mean.ndim == 2:
            mean, std = mean[:, None, :], std[:, None, :]
        standard = (windows - mean) / std
        trust = np.broadcast_to(
            np.asarray(trust, dtype=np.float32).reshape(-1, 1, 1), standard.shape[:-1] + (1,)
        )
        return np.concatenate([standard, trust], axis=-1)

    def apply_group(self, windows: np.ndarray, moments: Moments) -> np.ndarray:
        """Standardise windows by the moments of the group they belong to."""
        mean, std, trust = self.scale(moments)
        return self.apply(windows, mean, std, trust)

    def scales(self, sums: ClipSums, groups) -> Scales:
        """Scales of each clip of ``sums`` by the group it is in: (n,) group keys."""
        groups = np.asarray(groups)
        n, width = sums.total.shape
        mean, std, trust = np.empty((n, width)), np.empty((n, width)), np.empty(n)
        for key in np.unique(groups):
            rows = np.flatnonzero(groups == key)
            mean[rows], std[rows], trust[rows] = self.scale(sums.group(rows))
        return Scales(mean, std, trust)

    def to_dict(self) -> dict:
        return {
            "shrinkage": self.shrinkage,
            "population_mean": [float(value) for value in self.population_mean],
            "population_var": [float(value) for value in self.population_var],
        }

    @classmethod
    def from_dict(cls, raw: dict) -> SpeakerNormalizer:
        return cls(
            np.asarray(raw["population_mean"], dtype=np.float64),
            np.asarray(raw["population_var"], dtype=np.float64),
            float(raw["shrinkage"]),
        )


def draw_scales(
    normalizer: SpeakerNormalizer,
    sums: ClipSums,
    speakers,
    *,
    whole: bool,
    seed: int,
    most: int | None = None,
) -> Scales:
    """Training scales: each clip standardised by a subset of its speaker's clips.

    whole: every subset is all of the speaker's clips (k = all); otherwise each clip draws
    k log-uniformly from 1 to its speaker's clip count (to ``most``, if that is fewer), and
    k - 1 other clips of its speaker, so that small k, the case of a user's single
    recording, is as common as large.
    """
    speakers = np.asarray(speakers)
    rng = np.random.default_rng(seed)
    n, width = sums.total.shape
    mean, std, trust = np.empty((n, width)), np.empty((n, width)), np.empty(n)
    for key in np.unique(speakers):
        pool = np.flatnonzero(speakers == key)
        if whole:
            mean[pool], std[pool], trust[pool] = normalizer.scale(sums.group(pool))
            continue
        largest = len(pool) if most is None else min(len(pool), most)
        for row in pool:
            size = int(round(np.exp(rng.uniform(0.0, np.log(largest)))))
            others = rng.choice(pool[pool != row], size=size - 1, replace=False)
            chosen = np.concatenate([[row], others])
            mean[row], std[row], trust[row] = normalizer.scale(sums.group(chosen))
    return Scales(mean, std, trust)


class Standardized:
    """Rows of a feature array or store, standardised by per-row Scales when read.

    Array-like, as training reads its data: ``len``, ``shape``, ``x[rows]`` and
    ``np.asarray(x)``; the raw rows stay where they are (in memory or on disk).
    """

    def __init__(self, source, scales: Scales, normalizer: SpeakerNormalizer):
        self.source, self.scales, self.normalizer = source, scales, normalizer
        self.shape = (len(source), source.shape[1], normalizer.width)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return 3

    def __getitem__(self, index) -> np.ndarray:
        rows = np.arange(len(self))[index]
        single = np.ndim(rows) == 0
        rows = np.atleast_1d(rows)
        block = self.normalizer.apply(
            np.asarray(self.source[rows]),
            self.scales.mean[rows],
            self.scales.std[rows],
            self.scales.trust[rows],
        )
        return block[0] if single else block

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[np.arange(len(self))]
        return whole if dtype is None else whole.astype(dtype)
