"""Predicting emotions of recordings with a trained model folder: the API the CLI uses.

    from ser.serve.predict import Predictor
    predictor = Predictor("data/model")          # loads once
    result = predictor.predict_file("me.wav")    # or predictor.predict_array(samples, rate)
    print(result.label, result.confidence)

The model folder carries its class order and feature settings, so params.yaml is not needed.
Recordings longer than the model's analysis window are cut into windows (hop: half a
window); the file's probabilities are the mean over its windows.

Many files go faster through ``predictor.predict_files(paths, n_jobs=...)``: features in
worker processes, the model once per batch of windows.

A model trained with ``features.normalize: speaker`` standardises a speaker's features by
the recordings of that speaker it is given (ser.features.speaker: one recording alone is a
first-class case, the model was trained for it). ``predict_files`` takes one speaker key per
file (``speakers``; default: each file is its own speaker) and standardises each speaker's
windows together; ``predictor.stream()`` takes one speaker's recordings as they arrive,
each judged with the ones before it. A model with ``model.stats_normalize: speaker`` also
standardises its statistics member's statistics over a speaker's windows.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ser.errors import DataError
from ser.features import audio, extract
from ser.features.speaker import Moments, SpeakerNormalizer
from ser.model import modelio
from ser.model.calibration import among, calibrate
from ser.parallel import map_clips
from ser.params import FeatureParams, ModelParams
from ser.serve.recording import (
    Prediction,
    Windows,
    cut_windows,
    file_copies,
    prepare,
    prepare_file,
    warm_up,
)

# Windows per model call: large enough to amortise a call, small enough to bound memory.
BATCH_WINDOWS = 256
# A speaker model's features wait for the model in memory up to this many bytes, then on disk.
SPILL_BYTES = 256 * 2**20
# Windows per step when computing a speaker's statistics (bounds the float64 temporaries).
STATISTICS_WINDOWS = 32


class Predictor:
    """A model folder's feature settings, and its model (loaded at first use).

    ``classes``: the classes a recording may have, when some of the model's cannot occur
    (song has no disgust or surprise): each answer is then the most probable of these, with
    probabilities over these alone (conditioned on them); None: every class of the model.
    """

    def __init__(self, model_dir: str | Path = "data/model", classes: Iterable[str] | None = None):
        self.model_dir = Path(model_dir)
        self.meta = modelio.read_meta(self.model_dir)
        settings = {
            key: value
            for key, value in self.meta["features"].items()
            if key in {f.name for f in dataclasses.fields(FeatureParams)}
        }
        self.feature_params = FeatureParams(**{"n_jobs": 1, **settings})
        # The model params it was trained with (a key model.json lacks: its default).
        names = {f.name for f in dataclasses.fields(ModelParams)}
        self.model_params = ModelParams(
            **{key: value for key, value in self.meta["model"].items() if key in names}
        )
        self.classes: list[str] = list(self.meta["classes"])
        # The classes answers are chosen among (all of the model's unless ``classes``).
        self.answers: list[str] = self.classes
        if classes is not None:
            self.answers = allowed_classes(classes, self.classes, self.model_dir)
        self._answer_rows = [self.classes.index(name) for name in self.answers]
        self.rate = extract.analysis_rate(self.feature_params)
        # The speaker standardiser of a features.normalize: speaker model (ser.features.speaker).
        self.normalizer = None
        if extract.by_speaker(self.feature_params):
            if self.meta["normalizer"] is None:
                raise DataError(
                    f"{self.model_dir}: this model standardises speakers the way ser did before "
                    "model.json schema 2 and cannot be used for prediction; retrain it with "
                    "`dvc repro`"
                )
            self.normalizer = SpeakerNormalizer.from_dict(self.meta["normalizer"])
        self.temperature = float(self.meta["calibration"]["temperature"])
        # Speed copies judged beside every recording (model.test_speeds), and the temperature
        # of the mean over a recording and its copies (model.test_temperature).
        self.speeds: tuple[float, ...] = tuple(self.model_params.test_speeds)
        self.speed_temperature = float(self.model_params.test_temperature)
        self._model = None
        # The whole-speaker model blended in for many recordings (model.speaker_blend): its
        # probabilities weigh blend_weight(k) against this model's.
        self.whole_speaker: Predictor | None = None
        self.blend_recordings = 0.0
        if self.meta["blend"] is not None:
            self.whole_speaker = Predictor(self.model_dir / self.meta["blend"]["folder"])
            self.blend_recordings = float(self.meta["blend"]["recordings"])

    def blend_weight(self, recordings: int) -> float:
        """The whole-speaker model's share of a speaker's probabilities, given its
        ``recordings`` at hand: (k - 1) / (k - 1 + blend_recordings), the recordings beyond
        the first. One recording alone gives that model nothing it was trained for:
        standardised by its own moments, a recording loses what marks its emotion."""
        others = max(recordings - 1, 0)
        return others / (others + self.blend_recordings) if others else 0.0

    @property
    def by_speaker(self) -> bool:
        """Whether the model wants each speaker's recordings standardised together: its
        features (features.normalize: speaker), or its statistics member's statistics
        (model.stats_normalize: speaker), or both."""
        return extract.by_speaker(self.feature_params) or self.speaker_statistics

    @property
    def speaker_statistics(self) -> bool:
        """Whether the model's statistics member standardises its statistics per speaker
        (its Keras model then takes each window's speaker moments as a second input)."""
        return self.model_params.speaker_statistics

    @property
    def model(self):
        """The Keras model. Loading it starts TensorFlow, which takes seconds: on first use."""
        if self._model is None:
            self._model, _ = modelio.load(self.model_dir)
        return self._model

    def warm_model(self, whole_speaker: bool = True) -> None:
        """Load the model and call it once: its first call traces it (half a second); the
        whole-speaker model's too, if asked (else it loads when first blended in)."""
        n_frames, n_features = extract.shape(self.feature_params)
        if self.normalizer is not None:
            n_features = self.normalizer.width
        batch = np.zeros((1, n_frames, n_features), dtype=np.float32)
        self.probabilities(batch, self.neutral_moments(1) if self.speaker_statistics else None)
        if whole_speaker and self.whole_speaker is not None:
            self.whole_speaker.warm_model()

    def neutral_moments(self, count: int) -> np.ndarray:
        """(count, 2, width) speaker moments that leave the statistics as they are."""
        width = int(self.model.inputs[1].shape[-1])
        return np.broadcast_to(
            np.stack([np.zeros(width), np.ones(width)]).astype(np.float32), (count, 2, width)
        )

    def windows(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(start second, analysis window) pairs covering a mono recording at self.rate."""
        return cut_windows(samples, self.feature_params)

    def probabilities(self, batch: np.ndarray, moments: np.ndarray | None = None) -> np.ndarray:
        """(n, n_frames, n_features) model inputs -> (n, classes) calibrated probabilities.

        moments: (n, 2, width), each window's speaker moments, for a model whose statistics
        member standardises per speaker (speaker_statistics; ser.model.inference.SpeakerMoments)."""
        # predict_on_batch, not predict: predict builds a data pipeline on every call, which
        # cost 80 ms for one clip where the model itself takes about 1 ms.
        parts = []
        for start in range(0, len(batch), BATCH_WINDOWS):
            block = batch[start : start + BATCH_WINDOWS]
            if moments is not None:
                block = [block, np.asarray(moments[start : start + BATCH_WINDOWS])]
            parts.append(self.model.predict_on_batch(block))
        return calibrate(np.concatenate(parts), self.temperature)

    def predict_array(
        self, samples: np.ndarray, sample_rate: int, *, source: str = "<array>"
    ) -> Prediction:
        """Predict one recording given as (n,) or (n, channels) samples at sample_rate."""
        try:
            mono = audio.mono_at(
                samples,
                orig_sr=sample_rate,
                target_sr=self.rate,
                centre=extract.centres(self.feature_params),
            )
        except DataError as error:
            return Prediction(source=source, status="error", message=str(error))
        item = prepare(mono, source, self.feature_params, speeds=self.speeds)
        return self._predict([item], [source])[0]

    def predict_features(
        self,
        windows: list[np.ndarray],
        speakers: list[str],
        sources: list[str] | None = None,
        copies: list[list[np.ndarray]] | None = None,
    ) -> list[Prediction]:
        """Predict recordings given as their windows' features, (windows, n_frames,
        n_features) each as ``extract.compute`` gives them, one speaker key per recording:
        the path ``ser predict`` takes once a file's features are computed (the evaluate
        stage uses it on the feature store). ``copies``: each recording's speed copies'
        windows, one array per speed of ``self.speeds`` (file_copies), or none for a
        recording too long to hold (file_copies gives none); needed when there are such
        speeds."""
        sources = sources or [f"<recording {index}>" for index in range(len(windows))]
        if copies is None:
            if self.speeds:
                raise ValueError(
                    f"this model judges each recording with copies at speeds {self.speeds}: "
                    "give their windows (copies)"
                )
            copies = [[] for _ in windows]

        def item(source: str, batch: np.ndarray, extra=()) -> Windows:
            return Windows(
                source,
                [0.0] * len(batch),
                np.asarray(batch, dtype=np.float32),
                copies=[item(source, copy) for copy in extra],
            )

        items = []
        for source, batch, extra in zip(sources, windows, copies, strict=True):
            if len(extra) not in (0, len(self.speeds)):
                raise ValueError(
                    f"{source}: {len(extra)} speed copies given, the model's speeds are "
                    f"{self.speeds}"
                )
            items.append(item(source, batch, extra))
        return self._predict(items, list(speakers))

    def file_copies(self, paths: Iterable[str | Path], *, n_jobs: int = 1) -> list | None:
        """The speed copies' windows (one array per speed) of each audio file, as the
        prediction of the file computes them; None for a model without speed copies.
        For predict_features on features computed elsewhere (the evaluate stage's store)."""
        if not self.speeds:
            return None
        jobs = [(str(path), self.feature_params, self.speeds) for path in paths]
        # Workers fork from a server process, never from this one: a caller that has
        # started TensorFlow (a benchmark that trained) cannot fork safely. The caller's
        # main script must be safe to import (``if __name__ == "__main__":``).
        copies = map_clips(
            file_copies, jobs, n_jobs=n_jobs, desc="speed copies", preload="ser.serve.warm"
        )
        return list(copies)

    def stream(self) -> SpeakerStream:
        """One speaker's recordings, predicted as they arrive (see SpeakerStream)."""
        return SpeakerStream(self)

    def predict_file(self, path: str | Path) -> Prediction:
        """Predict one audio file; decoding problems give status 'error', never an exception."""
        spill = Path(tempfile.mkdtemp(prefix="ser-predict-"))
        try:
            item = prepare_file((str(path), self.feature_params, spill, self.speeds))
            return self._predict([item], [str(path)])[0]
        finally:
            shutil.rmtree(spill, ignore_errors=True)

    def predict_files(
        self,
        paths: Iterable[str | Path],
        *,
        n_jobs: int = 1,
        progress: bool | None = None,
        speakers: list[str] | None = None,
        fork_server: bool = False,
    ) -> Iterator[Prediction]:
        """Predict many files, in order: what predict_file gives for each, faster.

        Features are computed in ``n_jobs`` worker processes, and the model runs once per
        batch of windows. The model loads while the workers compute. The workers fork from
        this process, after it has run the feature code once (its imports take seconds); with
        ``fork_server`` they fork instead from a server process that does that while this
        one loads TensorFlow, which saves seconds of start-up (the CLI does this; your main
        script must then be safe to import: ``if __name__ == "__main__":``).

        For a speaker-normalised model, ``speakers`` names each file's speaker (default: each
        file is its own); every file is prepared before the first prediction.

        Memory stays bounded: a long recording is decoded and featurised a block at a time
        into a temporary file, and a speaker model's features beyond SPILL_BYTES wait on
        disk rather than in memory.
        """
        paths = [str(path) for path in paths]
        spill = Path(tempfile.mkdtemp(prefix="ser-predict-"))
        prepared = None
        try:
            jobs = [(path, self.feature_params, spill, self.speeds) for path in paths]
            parallel = n_jobs > 1 and len(jobs) >= (1 if fork_server else 2)
            keys = speakers if speakers is not None else paths
            if parallel and not fork_server:
                warm_up(self.feature_params)
            prepared = map_clips(
                prepare_file,
                jobs,
                n_jobs=n_jobs,
                desc="predict",
                unit="file",
                progress=progress,
                preload="ser.serve.warm" if fork_server else None,
            )
            if parallel:
                # Now, while the workers compute features; the whole-speaker model only if
                # a speaker has several files (one short file alone never uses it).
                self.warm_model(whole_speaker=len(set(keys)) < len(keys))
            if self.by_speaker:
                items, held = [], 0
                for item in prepared:
                    if isinstance(item, Windows) and item.nbytes:
                        if held + item.nbytes > SPILL_BYTES:
                            item.spill(spill)
                        else:
                            held += item.nbytes
                    items.append(item)
                yield from self._predict(items, keys)
                return
            pending: list[Prediction | Windows] = []
            pending_windows = 0
            for item in prepared:
                pending.append(item)
                pending_windows += len(item.starts) if isinstance(item, Windows) else 0
                if pending_windows >= BATCH_WINDOWS:
                    yield from self._predict(pending)
                    pending, pending_windows = [], 0
            yield from self._predict(pending)
        finally:
            if prepared is not None:
                prepared.close()
            shutil.rmtree(spill, ignore_errors=True)

    def _predict(
        self, items: list[Prediction | Windows], speakers: list[str] | None = None
    ) -> list[Prediction]:
        """Finish prepared recordings, the model called once per BATCH_WINDOWS windows.

        For a speaker-normalised model, ``speakers`` gives each item's speaker, whose
        windows are standardised together. A recording's speed copies are judged as the
        recordings of a speaker of their own (one per speed: the copies at that speed of the
        speaker's recordings), and each recording's answer is the mean over it and its copies.
        """
        count = len(items)
        items, speakers, copies = with_copies(items, speakers)
        frames = speaker_moments(items, speakers) if self.normalizer is not None else {}
        probabilities = self._window_probabilities(items, speakers, frames)
        weights = {}
        if self.whole_speaker is not None:
            weights = {
                index: self.blend_weight(frames[speakers[index]].recordings)
                for index in probabilities
            }
        if any(weights.values()):  # one recording alone never pays for the second model
            whole = self.whole_speaker._window_probabilities(items, speakers, frames)
            for index, weight in weights.items():
                probabilities[index] = (1.0 - weight) * probabilities[index] + weight * whole[index]
        return [
            self._result(
                item, probabilities[index], [probabilities[other] for other in copies[index]]
            )
            if isinstance(item, Windows)
            else item
            for index, item in enumerate(items[:count])
        ]

    def _window_probabilities(
        self,
        items: list[Prediction | Windows],
        speakers: list[str] | None,
        frames: dict[str, Moments],
    ) -> dict[int, np.ndarray]:
        """{index of a Windows item: (windows, classes) calibrated probabilities}; frames:
        each speaker's frame moments (speaker_moments) when the features are standardised
        per speaker."""
        scale = {}
        if self.normalizer is not None:
            scale = {key: self.normalizer.scale(moments) for key, moments in frames.items()}

        def scaled_chunks(index: int, item: Windows) -> Iterator[np.ndarray]:
            for chunk in item.chunks(BATCH_WINDOWS):
                if scale:
                    chunk = self.normalizer.apply(chunk, *scale[speakers[index]])
                yield chunk

        moments = None
        if self.speaker_statistics:
            moments = self._member_moments(items, speakers, scaled_chunks)
        probabilities: dict[int, list[np.ndarray]] = {}
        pending: list[tuple[int, np.ndarray]] = []

        def run() -> None:
            if not pending:
                return
            rows = self.probabilities(
                np.concatenate([chunk for _, chunk in pending]),
                None
                if moments is None
                else np.concatenate(
                    [moments.rows([speakers[index]] * len(chunk)) for index, chunk in pending]
                ),
            )
            start = 0
            for index, chunk in pending:
                probabilities.setdefault(index, []).append(rows[start : start + len(chunk)])
                start += len(chunk)
            pending.clear()

        waiting = 0
        for index, item in enumerate(items):
            if not isinstance(item, Windows):
                continue
            for chunk in scaled_chunks(index, item):
                pending.append((index, chunk))
                waiting += len(chunk)
                if waiting >= BATCH_WINDOWS:
                    run()
                    waiting = 0
        run()
        return {index: np.concatenate(parts) for index, parts in probabilities.items()}

    def _member_moments(self, items, speakers, scaled_chunks):
        """Each speaker's moments of the statistics member's statistics over all windows of
        its recordings (one pass over the features before the model's)."""
        from ser.model.inference import POOLING_LAYER, SpeakerMoments

        pooling = self.model.get_layer(POOLING_LAYER)
        moments = SpeakerMoments()
        for index, item in enumerate(items):
            if isinstance(item, Windows):
                for chunk in scaled_chunks(index, item):
                    moments.add(pooling.numpy(chunk), [speakers[index]] * len(chunk))
        return moments

    def _result(
        self, item: Windows, probabilities: np.ndarray, copies: list[np.ndarray]
    ) -> Prediction:
        """The recording's answer from its windows' probabilities and its speed copies': the
        mean over the recording and the copies of each one's mean over its windows, at the
        model's speed_temperature, conditioned on the classes it may have (``answers``). The
        windows reported are the recording's own."""
        mean = np.mean([part.mean(axis=0) for part in (probabilities, *copies)], axis=0)
        if copies:
            mean = calibrate(mean[None], self.speed_temperature)[0]
        if len(self.answers) < len(self.classes):
            # Conditioned on the classes named (Bayes' rule), the recording's and each window's.
            probabilities = among(probabilities, self._answer_rows)
            mean = among(mean[None], self._answer_rows)[0]
        best = int(mean.argmax())
        return Prediction(
            source=item.source,
            status="ok",
            label=self.classes[best],
            confidence=float(mean[best]),
            probabilities={
                name: float(mean[row])
                for name, row in zip(self.answers, self._answer_rows, strict=True)
            },
            windows=[
                {
                    "start": round(start, 3),
                    "label": self.classes[int(row.argmax())],
                    "confidence": float(row.max()),
                }
                for start, row in zip(item.starts, probabilities, strict=True)
            ],
        )


class SpeakerStream:
    """Recordings of one speaker arriving one after another (a voice message, then another;
    a page where a visitor keeps talking): each is judged with the speaker's recordings so
    far, itself included, so predictions improve as they arrive. Once all are in, ``again``
    gives what ``predict_files`` gives for them as one speaker.

    The recordings' features are held in memory for as long as the stream lives.
    """

    KEY = "stream"

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.items: list[Windows] = []

    def add_array(self, samples: np.ndarray, sample_rate: int, *, source: str = "<array>"):
        """Add one recording given as samples; returns its Prediction."""
        try:
            mono = audio.mono_at(
                samples,
                orig_sr=sample_rate,
                target_sr=self.predictor.rate,
                centre=extract.centres(self.predictor.feature_params),
            )
        except DataError as error:
            return Prediction(source=source, status="error", message=str(error))
        return self._add(
            prepare(mono, source, self.predictor.feature_params, speeds=self.predictor.speeds)
        )

    def add_file(self, path: str | Path) -> Prediction:
        """Add one audio file; returns its Prediction (status error if it cannot be read)."""
        try:
            mono = audio.load(
                str(path),
                sample_rate=self.predictor.rate,
                centre=extract.centres(self.predictor.feature_params),
            )
        except DataError as error:
            return Prediction(source=str(path), status="error", message=str(error))
        return self._add(
            prepare(mono, str(path), self.predictor.feature_params, speeds=self.predictor.speeds)
        )

    def _add(self, item: Prediction | Windows) -> Prediction:
        if not isinstance(item, Windows):
            return item  # silent, too short, no speech: not a recording of the speaker
        self.items.append(item)
        return self.again()[-1]

    def again(self) -> list[Prediction]:
        """Every recording so far, judged with all of them."""
        return self.predictor._predict(self.items, [self.KEY] * len(self.items))


def allowed_classes(names: Iterable[str], classes: list[str], model_dir: Path) -> list[str]:
    """The named classes (a list, or one string of names separated by commas), checked
    against the model's and put in its order."""
    if isinstance(names, str):
        names = names.split(",")
    names = [name.strip() for name in names if name.strip()]
    unknown = [name for name in names if name not in classes]
    if unknown:
        verb = "is not a class" if len(unknown) == 1 else "are not classes"
        raise DataError(
            f"{model_dir}: {', '.join(unknown)} {verb} of this model; "
            f"its classes: {', '.join(classes)}"
        )
    chosen = [name for name in classes if name in names]
    if len(chosen) < 2:
        raise DataError(
            f"name at least two of the model's classes to choose among ({', '.join(classes)}); "
            f"got {', '.join(chosen) or 'none'}"
        )
    return chosen


def with_copies(
    items: list[Prediction | Windows], speakers: list[str] | None
) -> tuple[list[Prediction | Windows], list[str] | None, list[list[int]]]:
    """items followed by their speed copies as items of their own, the speaker keys to go
    with them (a copy's: its recording's speaker and the copy's number) and, for each of the
    given items, the positions of its copies."""
    extended, keys = list(items), None if speakers is None else list(speakers)
    positions: list[list[int]] = []
    for index, item in enumerate(items):
        own = item.copies if isinstance(item, Windows) else []
        positions.append(list(range(len(extended), len(extended) + len(own))))
        extended.extend(own)
        if keys is not None:
            keys.extend(f"{speakers[index]}\x00speed{number}" for number in range(len(own)))
    return extended, keys, positions


def speaker_folders(paths: list[str]) -> list[str]:
    """The default speaker of each file: the folder it is in."""
    return [str(Path(path).resolve().parent) for path in paths]


def speaker_moments(items: list[Prediction | Windows], speakers: list[str]) -> dict[str, Moments]:
    """Each speaker's frame moments over all windows of its recordings, a few windows at a
    time. A recording counts as one recording however many windows it is cut into: a voice
    message of several sentences holds one emotion as a clip of one sentence does, and
    standardised by moments that weighed its windows as that many recordings (and blended
    with the whole-speaker model as if so), it lost what marks that emotion (E62)."""
    moments: dict[str, Moments] = {}
    for item, key in zip(items, speakers, strict=True):
        if not isinstance(item, Windows):
            continue
        own = None
        for chunk in item.chunks(STATISTICS_WINDOWS):
            part = Moments.of(chunk)
            own = part if own is None else own + part
        if own is None:
            continue
        own = dataclasses.replace(own, recordings=1)
        moments[key] = moments[key] + own if key in moments else own
    return moments
