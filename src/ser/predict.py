"""Predicting emotions of recordings with a trained model folder: the API the CLI uses.

    from ser.predict import Predictor
    predictor = Predictor("data/model")          # loads once
    result = predictor.predict_file("me.wav")    # or predictor.predict_array(samples, rate)
    print(result.label, result.confidence)

The model folder carries its class order and feature settings, so params.yaml is not needed.
Recordings longer than the model's analysis window are cut into windows (hop: half a
window); the file's probabilities are the mean over its windows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser import audio, features, modelio
from ser.errors import DataError
from ser.params import FeatureParams

# Below this peak amplitude a recording is called silent; below MIN_SECONDS, too short.
SILENCE_PEAK = 1e-4
MIN_SECONDS = 0.25


@dataclass
class Prediction:
    """The result for one recording. ``status`` is ok, silent, too_short or error."""

    source: str
    status: str
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    windows: list[dict] = field(default_factory=list)
    message: str = ""

    def top(self, count: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:count]


class Predictor:
    """A loaded model plus the feature settings it was trained with."""

    def __init__(self, model_dir: str | Path = "data/model"):
        self.model, self.meta = modelio.load(Path(model_dir))
        settings = {
            key: value
            for key, value in self.meta["features"].items()
            if key in {f.name for f in dataclasses.fields(FeatureParams)}
        }
        self.feature_params = FeatureParams(**{"n_jobs": 1, **settings})
        self.classes: list[str] = list(self.meta["classes"])
        self.rate = features.analysis_rate(self.feature_params)

    def windows(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(start second, analysis window) pairs covering a mono recording at self.rate."""
        length = features.window_samples(self.feature_params)
        trimmed = samples if self.feature_params.kind == "seed" else features.trim_silence(samples)
        if len(trimmed) <= length * 1.5:
            return [(0.0, features.select_window(samples, self.feature_params))]
        hop = length // 2
        starts = range(0, len(trimmed) - length + hop, hop)
        return [(start / self.rate, trimmed[start : start + length]) for start in starts]

    def predict_array(
        self, samples: np.ndarray, sample_rate: int, *, source: str = "<array>"
    ) -> Prediction:
        """Predict one recording given as (n,) or (n, channels) samples at sample_rate."""
        try:
            mono = audio.resample(audio.to_mono(samples), orig_sr=sample_rate, target_sr=self.rate)
        except DataError as error:
            return Prediction(source=source, status="error", message=str(error))
        return self._predict_mono(mono, source)

    def predict_file(self, path: str | Path) -> Prediction:
        """Predict one audio file; decoding problems give status 'error', never an exception."""
        try:
            mono = audio.load(path, sample_rate=self.rate)
        except Exception as error:  # any decoding failure is reported for this file only
            return Prediction(source=str(path), status="error", message=str(error))
        return self._predict_mono(mono, str(path))

    def _predict_mono(self, mono: np.ndarray, source: str) -> Prediction:
        if len(mono) < MIN_SECONDS * self.rate:
            seconds = len(mono) / self.rate
            return Prediction(source, "too_short", message=f"{seconds:.2f} s of audio")
        if float(np.max(np.abs(mono))) < SILENCE_PEAK:
            return Prediction(source, "silent", message="no sound above the silence threshold")
        spans = self.windows(mono)
        batch = np.stack([features.compute(window, self.feature_params) for _, window in spans])
        probabilities = np.asarray(self.model.predict(batch, verbose=0), dtype=float)
        mean = probabilities.mean(axis=0)
        best = int(mean.argmax())
        return Prediction(
            source=source,
            status="ok",
            label=self.classes[best],
            confidence=float(mean[best]),
            probabilities={name: float(p) for name, p in zip(self.classes, mean, strict=True)},
            windows=[
                {
                    "start": round(start, 3),
                    "label": self.classes[int(row.argmax())],
                    "confidence": float(row.max()),
                }
                for (start, _), row in zip(spans, probabilities, strict=True)
            ],
        )
