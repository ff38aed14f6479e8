"""Running a trained model: class probabilities, and the per-speaker moments that a model
whose statistics member standardises per speaker (model.stats_normalize: speaker) takes as
its second input.

Prediction (ser.serve) and training (ser.training) both use this module; it imports nothing
from either.
"""

from __future__ import annotations

import numpy as np

# Rows read at once when features stream from disk (normalisation statistics, prediction):
# 256 x 301 x 148 float32 = 46 MB. Normalization.adapt holds several copies of a block;
# with 2048 rows, training on 100,000 clips peaked at 2.0 GB instead of 0.9 GB.
READ_ROWS = 256
# The statistics member's layers and second input (model.stats_normalize: speaker).
POOLING_LAYER = "utterance_statistics"
SPEAKER_INPUT = "speaker_statistics"
# The least a speaker's standard deviation of a statistic counts as when dividing by it. On
# RAVDESS (speech and song, actors 01-20) the smallest of any speaker is 0.017.
SCALE_FLOOR = 1e-3


class SpeakerMoments:
    """Each speaker's mean and scale (standard deviation, at least SCALE_FLOOR) of every
    column of the clips' statistics, accumulated block by block (float64 sums).

    ``add`` blocks of (statistics, speaker keys); ``rows(keys)`` gives the (n, 2, width)
    second input of a speaker-statistics model; ``standardize`` applies them in NumPy.
    A speaker with a single clip gets scale 1 and standardised statistics of 0.
    """

    def __init__(self):
        self._sums: dict = {}
        self._table: dict | None = None

    def add(self, statistics: np.ndarray, speakers) -> None:
        self._table = None
        statistics = np.asarray(statistics, dtype=np.float64)
        speakers = np.asarray(speakers)
        for key in np.unique(speakers):
            block = statistics[speakers == key]
            count, total, squares = self._sums.get(key, (0, 0.0, 0.0))
            self._sums[key] = (
                count + len(block),
                total + block.sum(axis=0),
                squares + (block**2).sum(axis=0),
            )

    def table(self) -> dict:
        """{speaker: (2, width) float32 [mean, scale]}."""
        if self._table is not None:
            return self._table
        result = {}
        for key, (count, total, squares) in self._sums.items():
            mean = total / count
            std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
            # One clip has no spread: scale 1 keeps its standardised statistics at (about) 0
            # rather than magnifying rounding differences.
            scale = np.maximum(std, SCALE_FLOOR) if count > 1 else np.ones_like(std)
            result[key] = np.stack([mean, scale]).astype(np.float32)
        self._table = result
        return result

    def rows(self, speakers) -> np.ndarray:
        """(n, 2, width): the moments of each row's speaker."""
        table = self.table()
        return np.stack([table[key] for key in np.asarray(speakers).tolist()])

    def standardize(self, statistics: np.ndarray, speakers) -> np.ndarray:
        moments = self.rows(speakers)
        return ((statistics - moments[:, 0]) / moments[:, 1]).astype(np.float32)


def needs_speakers(model) -> bool:
    """Whether a model takes speaker moments as a second input (model.stats_normalize)."""
    return len(model.inputs) > 1


def speaker_moments(model, x, speakers) -> SpeakerMoments:
    """The moments, over each speaker's rows of x, of the statistics model's member pools."""
    pooling = model.get_layer(POOLING_LAYER)
    speakers = np.asarray(speakers)
    moments = SpeakerMoments()
    for start, block in zip(range(0, len(x), READ_ROWS), blocks(x), strict=True):
        moments.add(np.asarray(pooling(block)), speakers[start : start + len(block)])
    return moments


def blocks(x):
    """x in consecutive blocks of READ_ROWS rows (what Normalization.adapt takes as batches)."""
    for start in range(0, len(x), READ_ROWS):
        yield np.asarray(x[np.arange(start, min(len(x), start + READ_ROWS))])


def predict_proba(model, x, *, speakers=None, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, num_classes) in batches; x as for fit, read a block at a time.

    speakers: one key per row of x, for a model whose member standardises its statistics
    per speaker (needs_speakers): each speaker's moments are taken over its rows of x.
    """
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    moments = None
    if needs_speakers(model):
        if speakers is None or len(speakers) != len(x):
            raise ValueError(
                "this model standardises its statistics per speaker: give one speaker key "
                "per clip (speakers=)"
            )
        speakers = np.asarray(speakers)
        moments = speaker_moments(model, x, speakers)

    def inputs(rows: np.ndarray, block):
        if moments is None:
            return block
        return [block, moments.rows(speakers[rows])]

    if isinstance(x, np.ndarray):
        everything = np.arange(len(x))
        return np.asarray(
            model.predict(inputs(everything, x), batch_size=batch_size, verbose=0),
            dtype=np.float32,
        )
    # Blocks of whole batches: the model sees the same batches as with x in memory.
    block = max(1, READ_ROWS // batch_size) * batch_size
    parts = []
    for start in range(0, len(x), block):
        rows = np.arange(start, min(len(x), start + block))
        parts.append(
            np.asarray(
                model.predict(inputs(rows, np.asarray(x[rows])), batch_size=batch_size, verbose=0),
                dtype=np.float32,
            )
        )
    return np.concatenate(parts)
