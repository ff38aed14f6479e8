"""Predicting emotions of recordings with a trained model folder: the API the CLI uses.

    from ser.predict import Predictor
    predictor = Predictor("data/model")          # loads once
    result = predictor.predict_file("me.wav")    # or predictor.predict_array(samples, rate)
    print(result.label, result.confidence)

The model folder carries its class order and feature settings, so params.yaml is not needed.
Recordings longer than the model's analysis window are cut into windows (hop: half a
window); the file's probabilities are the mean over its windows.

Many files go faster through ``predictor.predict_files(paths, n_jobs=...)``: features in
worker processes, the model once per batch of windows.

A model trained with ``features.normalize: speaker`` standardises features over all
recordings of a speaker. ``predict_files`` takes one speaker key per file (``speakers``;
default: the file's folder) and standardises each speaker's windows together; a single
recording (predict_file, predict_array) is its own speaker, which works less well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser import audio, features, modelio
from ser.errors import DataError
from ser.parallel import map_clips
from ser.params import FeatureParams

# Below this peak amplitude a recording is called silent; below MIN_SECONDS, too short.
SILENCE_PEAK = 1e-4
MIN_SECONDS = 0.25
# Windows per model call: large enough to amortise a call, small enough to bound memory.
BATCH_WINDOWS = 256


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


@dataclass
class _Windows:
    """A recording's analysis windows, ready for the model: start seconds and features."""

    source: str
    starts: list[float]
    batch: np.ndarray  # (windows, n_frames, n_features)


class Predictor:
    """A model folder's feature settings, and its model (loaded at first use)."""

    def __init__(self, model_dir: str | Path = "data/model"):
        self.model_dir = Path(model_dir)
        self.meta = modelio.read_meta(self.model_dir)
        settings = {
            key: value
            for key, value in self.meta["features"].items()
            if key in {f.name for f in dataclasses.fields(FeatureParams)}
        }
        self.feature_params = FeatureParams(**{"n_jobs": 1, **settings})
        self.classes: list[str] = list(self.meta["classes"])
        self.rate = features.analysis_rate(self.feature_params)
        self._model = None

    @property
    def by_speaker(self) -> bool:
        """Whether the model wants each speaker's recordings standardised together."""
        return features.by_speaker(self.feature_params)

    @property
    def model(self):
        """The Keras model. Loading it starts TensorFlow, which takes seconds: on first use."""
        if self._model is None:
            self._model, _ = modelio.load(self.model_dir)
        return self._model

    def windows(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(start second, analysis window) pairs covering a mono recording at self.rate."""
        return _windows(samples, self.feature_params)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(n, n_frames, n_features) features -> (n, classes) probabilities."""
        # predict_on_batch, not predict: predict builds a data pipeline on every call, which
        # cost 80 ms for one clip where the model itself takes about 1 ms.
        parts = [
            self.model.predict_on_batch(batch[start : start + BATCH_WINDOWS])
            for start in range(0, len(batch), BATCH_WINDOWS)
        ]
        return np.asarray(np.concatenate(parts), dtype=float)

    def predict_array(
        self, samples: np.ndarray, sample_rate: int, *, source: str = "<array>"
    ) -> Prediction:
        """Predict one recording given as (n,) or (n, channels) samples at sample_rate."""
        try:
            mono = audio.resample(audio.to_mono(samples), orig_sr=sample_rate, target_sr=self.rate)
        except DataError as error:
            return Prediction(source=source, status="error", message=str(error))
        item = _prepare(mono, source, self.feature_params)
        return self._predict(self._normalise([item], [source]))[0]

    def predict_file(self, path: str | Path) -> Prediction:
        """Predict one audio file; decoding problems give status 'error', never an exception."""
        item = _prepare_file((str(path), self.feature_params))
        return self._predict(self._normalise([item], [str(path)]))[0]

    def predict_files(
        self,
        paths: Iterable[str | Path],
        *,
        n_jobs: int = 1,
        progress: bool | None = None,
        speakers: list[str] | None = None,
    ) -> Iterator[Prediction]:
        """Predict many files, in order: what predict_file gives for each, faster.

        Features are computed in ``n_jobs`` worker processes, and the model runs once per
        batch of windows. The workers start before TensorFlow does: the model loads while
        they work. For a speaker-normalised model, ``speakers`` names each file's speaker
        (default: its folder); every file is prepared before the first prediction.
        """
        paths = [str(path) for path in paths]
        jobs = [(path, self.feature_params) for path in paths]
        if n_jobs > 1 and len(jobs) > 1:
            _warm_up(self.feature_params)
        prepared = map_clips(
            _prepare_file, jobs, n_jobs=n_jobs, desc="predict", unit="file", progress=progress
        )
        if self.by_speaker:
            keys = speakers if speakers is not None else speaker_folders(paths)
            yield from self._predict(self._normalise(list(prepared), keys))
            return
        pending: list[Prediction | _Windows] = []
        pending_windows = 0
        for item in prepared:
            if self._model is None:
                self.model  # noqa: B018  (load now, while the workers compute features)
            pending.append(item)
            pending_windows += len(item.starts) if isinstance(item, _Windows) else 0
            if pending_windows >= BATCH_WINDOWS:
                yield from self._predict(pending)
                pending, pending_windows = [], 0
        yield from self._predict(pending)

    def _normalise(
        self, items: list[Prediction | _Windows], speakers: list[str]
    ) -> list[Prediction | _Windows]:
        """Standardise the windows of each speaker's recordings together (speaker models)."""
        ready = [(item, key) for item, key in zip(items, speakers, strict=True)]
        ready = [(item, key) for item, key in ready if isinstance(item, _Windows)]
        if not self.by_speaker or not ready:
            return items
        batch = np.concatenate([item.batch for item, _ in ready])
        keys = [key for item, key in ready for _ in item.starts]
        normalised = features.normalize_by_speaker(batch, keys)
        start = 0
        for item, _ in ready:
            item.batch, start = (
                normalised[start : start + len(item.starts)],
                start + len(item.starts),
            )
        return items

    def _predict(self, items: list[Prediction | _Windows]) -> list[Prediction]:
        """Finish prepared recordings: one model call for the windows of all of them."""
        ready = [item for item in items if isinstance(item, _Windows)]
        if not ready:
            return list(items)
        rows = iter(self.probabilities(np.concatenate([item.batch for item in ready])))
        return [
            item
            if isinstance(item, Prediction)
            else self._result(item, np.stack([next(rows) for _ in item.starts]))
            for item in items
        ]

    def _result(self, item: _Windows, probabilities: np.ndarray) -> Prediction:
        mean = probabilities.mean(axis=0)
        best = int(mean.argmax())
        return Prediction(
            source=item.source,
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
                for start, row in zip(item.starts, probabilities, strict=True)
            ],
        )


def speaker_folders(paths: list[str]) -> list[str]:
    """The default speaker of each file: the folder it is in."""
    return [str(Path(path).resolve().parent) for path in paths]


def _windows(samples: np.ndarray, params: FeatureParams) -> list[tuple[float, np.ndarray]]:
    rate = features.analysis_rate(params)
    length = features.window_samples(params)
    if params.kind == "seed":
        if len(samples) <= length * 1.5:
            return [(0.0, features.select_window(samples, params))]
        trimmed = samples
    else:
        trimmed = features.trim_silence(samples)
        if len(trimmed) <= length * 1.5:
            # What select_window gives, without trimming a second time.
            start = int(round(params.offset_seconds * params.sample_rate))
            return [(0.0, trimmed[start : start + length])]
    hop = length // 2
    starts = range(0, len(trimmed) - length + hop, hop)
    return [(start / rate, trimmed[start : start + length]) for start in starts]


def _prepare(mono: np.ndarray, source: str, params: FeatureParams) -> Prediction | _Windows:
    """A recording's windows and their features, or the reason it gets no prediction."""
    rate = features.analysis_rate(params)
    if len(mono) < MIN_SECONDS * rate:
        return Prediction(source, "too_short", message=f"{len(mono) / rate:.2f} s of audio")
    if float(np.max(np.abs(mono))) < SILENCE_PEAK:
        return Prediction(source, "silent", message="no sound above the silence threshold")
    spans = _windows(mono, params)
    batch = np.stack([features.compute(window, params) for _, window in spans])
    return _Windows(source, [start for start, _ in spans], batch)


def _warm_up(params: FeatureParams) -> None:
    """Run the feature code once before worker processes fork: they inherit its imports
    (librosa's take seconds) instead of each importing them again."""
    rate = features.analysis_rate(params)
    tone = 0.1 * np.sin(2 * np.pi * 220.0 * np.arange(rate) / rate, dtype=np.float32)
    _prepare(tone, "<warm-up>", params)


def _prepare_file(job: tuple[str, FeatureParams]) -> Prediction | _Windows:
    """_prepare for a file (a worker's job); a file that cannot be decoded gets status error."""
    path, params = job
    try:
        mono = audio.load(path, sample_rate=features.analysis_rate(params))
    except Exception as error:  # any decoding failure is reported for this file only
        return Prediction(source=path, status="error", message=str(error))
    return _prepare(mono, path, params)
