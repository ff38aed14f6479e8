"""Custom Keras layers, registered so that saved models load without this code's help."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ser.params import UTTERANCE_STATISTICS


@keras.saving.register_keras_serializable(package="ser")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking (Park et al. 2019) of (batch, frames, features) inputs.

    While training, sets ``time_masks`` random spans of up to ``max_frames`` frames and
    ``feature_masks`` random bands of up to ``max_features`` features to zero (the mean,
    after standardisation). At inference it passes inputs through unchanged.
    """

    def __init__(
        self,
        time_masks: int = 2,
        max_frames: int = 30,
        feature_masks: int = 2,
        max_features: int = 8,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.time_masks = time_masks
        self.max_frames = max_frames
        self.feature_masks = feature_masks
        self.max_features = max_features
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _mask(self, batch, length, count, widest):
        positions = ops.arange(length)[None, :]
        keep = ops.ones((batch, length))
        for _ in range(count):
            width = keras.random.randint((batch, 1), 0, widest + 1, seed=self.seed_generator)
            start = keras.random.randint((batch, 1), 0, length, seed=self.seed_generator)
            inside = ops.logical_and(positions >= start, positions < start + width)
            keep = keep * (1.0 - ops.cast(inside, keep.dtype))
        return keep

    def call(self, inputs, training=False):
        if not training:
            return inputs
        batch = ops.shape(inputs)[0]
        frames, features = inputs.shape[1], inputs.shape[2]
        time_keep = self._mask(batch, frames, self.time_masks, self.max_frames)
        feature_keep = self._mask(batch, features, self.feature_masks, self.max_features)
        return inputs * time_keep[:, :, None] * feature_keep[:, None, :]

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "max_frames": self.max_frames,
            "feature_masks": self.feature_masks,
            "max_features": self.max_features,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="ser")
class StatisticsPooling(keras.layers.Layer):
    """(batch, frames, channels) -> (batch, 2 * channels): mean and standard deviation over time.

    Utterance statistics, as in x-vector speaker embeddings; emotion lives largely in how
    features are distributed over an utterance, less in exactly where things happen.
    """

    def call(self, inputs):
        mean = ops.mean(inputs, axis=1)
        std = ops.sqrt(ops.var(inputs, axis=1) + 1e-5)
        return ops.concatenate([mean, std], axis=-1)


@keras.saving.register_keras_serializable(package="ser")
class UtteranceStatistics(keras.layers.Layer):
    """(batch, frames, channels) -> (batch, len(statistics) * channels): the named statistics
    of every channel over time, one block of channels per statistic, in the order given.

    ``mean``; ``std`` (as StatisticsPooling: sqrt(var + 1e-5)); ``diff``, the mean absolute
    change from one frame to the next (how fast the channel moves); ``min``; ``max``; and
    percentiles ``p10`` ... ``p90``, interpolated linearly between the two nearest sorted
    frames as numpy.percentile does by default. Only the percentiles sort the frames.
    """

    def __init__(self, statistics=("mean", "std"), **kwargs):
        super().__init__(**kwargs)
        unknown = [name for name in statistics if name not in UTTERANCE_STATISTICS]
        if unknown or not statistics:
            raise ValueError(
                f"statistics: {unknown or list(statistics)} not allowed; choose from "
                + ", ".join(UTTERANCE_STATISTICS)
            )
        self.statistics = tuple(statistics)

    def call(self, inputs):
        frames = inputs.shape[1]
        ordered = None
        blocks = []
        for name in self.statistics:
            if name == "mean":
                blocks.append(ops.mean(inputs, axis=1))
            elif name == "std":
                blocks.append(ops.sqrt(ops.var(inputs, axis=1) + 1e-5))
            elif name == "diff":
                steps = inputs[:, 1:] - inputs[:, :-1]
                blocks.append(ops.mean(ops.abs(steps), axis=1))
            elif name == "min":
                blocks.append(ops.min(inputs, axis=1))
            elif name == "max":
                blocks.append(ops.max(inputs, axis=1))
            else:
                if ordered is None:
                    ordered = ops.sort(inputs, axis=1)
                position = UTTERANCE_STATISTICS[name] / 100.0 * (frames - 1)
                low = int(position)
                high = min(low + 1, frames - 1)
                share = position - low
                blocks.append(ordered[:, low] * (1.0 - share) + ordered[:, high] * share)
        return ops.concatenate(blocks, axis=-1)

    def numpy(self, inputs) -> np.ndarray:
        """The same statistics computed in NumPy (float32): for code outside the model that
        needs them a window at a time (ser predict), without TensorFlow's cost per call
        (1.6 ms against 0.1 ms for one window of 301 x 148)."""
        inputs = np.asarray(inputs, dtype=np.float32)
        blocks = []
        for name in self.statistics:
            if name == "mean":
                blocks.append(inputs.mean(axis=1))
            elif name == "std":
                blocks.append(np.sqrt(inputs.var(axis=1) + 1e-5))
            elif name == "diff":
                blocks.append(np.abs(np.diff(inputs, axis=1)).mean(axis=1))
            elif name == "min":
                blocks.append(inputs.min(axis=1))
            elif name == "max":
                blocks.append(inputs.max(axis=1))
            else:
                blocks.append(np.percentile(inputs, UTTERANCE_STATISTICS[name], axis=1))
        return np.concatenate(blocks, axis=-1).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "statistics": list(self.statistics)}


@keras.saving.register_keras_serializable(package="ser")
class SpeakerStandardize(keras.layers.Layer):
    """[(batch, width) statistics, (batch, 2, width) speaker moments] -> (batch, width):
    each clip's statistics minus its speaker's mean (moments[:, 0]), divided by its
    speaker's scale (moments[:, 1]: the standard deviation, floored), as
    ser.model.inference.SpeakerMoments computes them over the speaker's clips."""

    def call(self, inputs):
        statistics, moments = inputs
        return (statistics - moments[:, 0]) / moments[:, 1]
