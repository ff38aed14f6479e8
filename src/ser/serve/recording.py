"""How a recording becomes what the model judges: decoding, the silence, length and voice checks,
analysis windows (hop: half a window) and their features. A recording too long to hold is
decoded and featurised a block at a time through temporary files. The Predictor
(ser.serve.predict) runs these in worker processes and the model on what they return.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.errors import DataError
from ser.features import audio, extract
from ser.params import FeatureParams

# Below this peak amplitude a recording is called silent; below MIN_SECONDS, too short.
SILENCE_PEAK = 1e-4
MIN_SECONDS = 0.25
# A recording whose speech (what trimming its leading and trailing quiet leaves) is shorter
# than this gets no prediction: a click in silence trims to about 0.03 s, and the model,
# given its frames repeated over a window, was sure of an emotion. The shortest RAVDESS
# sentence trims to about 1 s, a 0.15 s syllable to 0.16 s.
MIN_SPEECH_SECONDS = 0.1
# Nor does one whose speech holds less voice than this (three frames of VOICE_HOP): frames
# whose waveform repeats with the period of a voice, 60 to 1000 Hz. Noise alone (hiss, a
# fan, a room) passes the checks above, and the model judged it calm with a confidence of
# up to 0.96. White, pink and fan noise have no voiced frame, brown noise one in thousands;
# every RAVDESS clip of actors 01-20, spoken or sung, has 0.14 s or more through every
# channel of ser.features.channel (docs/robustness.md: recordings without speech).
MIN_VOICED_SECONDS = 0.06
# A frame is voiced when its cumulative mean normalised difference (YIN's, de Cheveigné and
# Kawahara 2002) falls below VOICE_THRESHOLD at some period of VOICE_LAGS, computed at
# VOICE_RATE over VOICE_FRAME samples every VOICE_HOP. Noise stays above 0.35 (brown) to
# 0.69 (white); voiced speech at 10 dB SNR dips below it.
VOICE_THRESHOLD = 0.4
VOICE_RATE, VOICE_FRAME, VOICE_HOP = 8000, 256, 160
VOICE_LAGS = (8, 134)  # periods of 1000 Hz and 60 Hz at VOICE_RATE
VOICE_CHUNK = 8  # frames judged at a time (_voiced_frames)
# Recordings with more samples than this at the analysis rate are decoded and featurised a
# block at a time, through temporary files.
STREAM_SAMPLES = 1 << 21  # about 131 s at 16 kHz
STREAM_BLOCK_SECONDS = 30.0


@dataclass
class Prediction:
    """The result for one recording. ``status`` is ok, silent, too_short, no_speech or
    error."""

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
class Windows:
    """A recording's analysis windows, ready for the model: start seconds and features.

    The features are in memory (``batch``) or, for a long recording, in a raw float32 file
    (``spilled``), read back a chunk at a time.
    """

    source: str
    starts: list[float]
    batch: np.ndarray | None  # (windows, n_frames, n_features)
    spilled: Path | None = None
    shape: tuple[int, int] = (0, 0)  # (n_frames, n_features) of one window
    # The recording's speed copies (model.test_speeds; speed_copies), judged beside it.
    copies: list[Windows] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Bytes of features held in memory, the copies' included."""
        own = self.batch.nbytes if self.batch is not None else 0
        return own + sum(copy.nbytes for copy in self.copies)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The windows' features, at most ``size`` windows at a time."""
        for first in range(0, len(self.starts), size):
            count = min(size, len(self.starts) - first)
            if self.batch is not None:
                yield self.batch[first : first + count]
                continue
            per_window = self.shape[0] * self.shape[1]
            flat = np.fromfile(
                self.spilled,
                dtype=np.float32,
                count=count * per_window,
                offset=first * per_window * 4,
            )
            yield flat.reshape(count, *self.shape)

    def spill(self, folder: Path) -> None:
        """Move the features (and the copies') from memory to files in ``folder``."""
        for copy in self.copies:
            copy.spill(folder)
        if self.batch is None:
            return
        handle, name = tempfile.mkstemp(dir=folder, suffix=".f32")
        with open(handle, "wb") as out:
            out.write(np.ascontiguousarray(self.batch, dtype=np.float32).tobytes())
        self.shape = self.batch.shape[1:]
        self.batch, self.spilled = None, Path(name)


def cut_windows(
    samples: np.ndarray, params: FeatureParams, *, trimmed=None
) -> list[tuple[float, np.ndarray]]:
    """The analysis windows of a recording: (start seconds, samples) each. ``trimmed``: its
    speech (extract.speech), when the caller has it already."""
    rate = extract.analysis_rate(params)
    length = extract.window_samples(params)
    if params.kind == "seed":
        if len(samples) <= length * 1.5:
            return [(0.0, extract.select_window(samples, params))]
        starts = range(0, len(samples) - length + length // 2, length // 2)
        return [(start / rate, samples[start : start + length]) for start in starts]
    trimmed = extract.speech(samples, params) if trimmed is None else trimmed
    return [
        (start / rate, trimmed[start:stop]) for start, stop in window_spans(len(trimmed), params)
    ]


def window_spans(size: int, params: FeatureParams) -> list[tuple[int, int]]:
    """Where the analysis windows of a trimmed recording of ``size`` samples (``mfcc``) lie:
    the window select_window takes when the recording is at most one and a half windows
    long, else windows a hop of half a window apart, the last one reaching its end."""
    length = extract.window_samples(params)
    if size <= length * 1.5:
        # What select_window gives, without trimming a second time.
        start = int(round(params.offset_seconds * params.sample_rate))
        return [(start, min(size, start + length))]
    hop = length // 2
    return [(start, min(size, start + length)) for start in range(0, size - length + hop, hop)]


def speed_copies(
    mono: np.ndarray, source: str, params: FeatureParams, speeds: tuple[float, ...]
) -> list[Windows]:
    """The recording (mono, at the analysis rate) played at each of ``speeds`` (pitch and
    tempo together, as augment.speed: speed r is a resampling to rate / r), cut into windows
    as the recording is, their features taken from its own analysis (_with_copies). The
    model trained on such copies; the mean of its
    probabilities over a recording and its copies judges one recording alone better than
    the recording does (docs/experiments.md E59)."""
    return _with_copies(mono, source, params, speeds)[1]


def _with_copies(
    mono: np.ndarray,
    source: str,
    params: FeatureParams,
    speeds: tuple[float, ...],
    speech: np.ndarray | None = None,
) -> tuple[Windows, list[Windows]]:
    """featurised(mono) and its speed_copies; ``speech``: extract.speech(mono), when the
    caller has it already.

    A copy's features come from an analysis of the recording's trimmed speech
    (extract.from_analysis): its windows lie where cut_windows would cut the speech played
    at that speed, their frames those of the speech nearest in time. Resampling the
    recording and analysing each copy again cost twice what the recording's own features
    do (docs/experiments.md E63). A recording that is one window, all of its speech, shares
    the analysis with its own features."""
    rate = extract.analysis_rate(params)
    if params.kind != "mfcc":
        return featurised(mono, source, params), [
            featurised(audio.resample(mono, orig_sr=rate, target_sr=played), source, params)
            for played in (extract.played_rate(rate, speed) for speed in speeds)
        ]
    speech = np.asarray(extract.speech(mono, params) if speech is None else speech)
    own = window_spans(speech.size, params)
    windows = [(start / rate, speech[start:stop]) for start, stop in own]
    if not speeds or speech.size == 0:
        item = featurised(speech, source, params, windows)
        return item, [Windows(source, item.starts, item.batch.copy()) for _ in speeds]
    power, contours = extract.analyse(speech, params)
    if own == [(0, speech.size)]:
        item = Windows(source, [0.0], extract.from_analysis(power, contours, params)[None])
    else:
        item = featurised(speech, source, params, windows)
    copies = []
    for speed in speeds:
        speed = rate / extract.played_rate(rate, speed)
        played = window_spans(int(np.ceil(speech.size / speed)), params)
        batch = [
            extract.from_analysis(
                power,
                contours,
                params,
                speed=speed,
                frames=extract.speed_frames(start, stop, speed, params, power.shape[1]),
            )
            for start, stop in played
        ]
        copies.append(Windows(source, [start / rate for start, _ in played], np.stack(batch)))
    return item, copies


def featurised(samples: np.ndarray, source: str, params: FeatureParams, spans=None) -> Windows:
    """A recording's windows (cut_windows, unless ``spans`` gives them) and their features,
    in memory."""
    spans = cut_windows(samples, params) if spans is None else spans
    batch = np.stack([extract.compute(np.asarray(window), params) for _, window in spans])
    return Windows(source, [start for start, _ in spans], batch)


def file_copies(job: tuple[str, FeatureParams, tuple[float, ...]]) -> list[np.ndarray]:
    """The windows' features of each speed copy of an audio file (one array per speed), as
    prepare_file computes them (a worker's job: the evaluate stage's for its test clips);
    none for a recording prepare_file decodes block by block, which it judges without."""
    path, params, speeds = job
    rate = extract.analysis_rate(params)
    if audio.frames_at(path, rate) > STREAM_SAMPLES:
        return []
    mono = audio.load(path, sample_rate=rate, centre=extract.centres(params))
    return [copy.batch for copy in speed_copies(mono, path, params, speeds)]


def prepare(
    mono: np.ndarray | SignalFile,
    source: str,
    params: FeatureParams,
    *,
    spill: Path | None = None,
    speeds: tuple[float, ...] = (),
) -> Prediction | Windows:
    """A recording's windows and their features, or the reason it gets no prediction.

    ``mono`` is an array, or for a long recording a SignalFile; the features of a long
    recording go to a file in ``spill`` as they are computed. ``speeds``: the speed copies
    (speed_copies) to judge beside it; a recording decoded block by block (longer than
    STREAM_SAMPLES) gets none, its many windows being judged anyway.
    """
    rate = extract.analysis_rate(params)
    if len(mono) < MIN_SECONDS * rate:
        return Prediction(source, "too_short", message=f"{len(mono) / rate:.2f} s of audio")
    peak = mono.peak if isinstance(mono, SignalFile) else float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        return Prediction(source, "silent", message="no sound above the silence threshold")
    if spill is None or not isinstance(mono, SignalFile):
        mono = np.asarray(mono)
    speech, missing = speech_of(mono, params)
    if missing:
        return Prediction(source, "no_speech", message=missing)
    if isinstance(mono, np.ndarray):
        item, item.copies = _with_copies(mono, source, params, speeds, speech)
        return item
    spans = cut_windows(mono, params, trimmed=speech)
    starts = [start for start, _ in spans]
    handle, name = tempfile.mkstemp(dir=spill, suffix=".f32")
    with open(handle, "wb") as out:
        for _, window in spans:
            out.write(extract.compute(np.asarray(window), params).tobytes())
    return Windows(source, starts, None, Path(name), extract.shape(params))


def speech_of(mono, params: FeatureParams) -> tuple[np.ndarray, str]:
    """A recording's speech (extract.speech: its quiet trimmed) and, when there is too
    little of it to judge (MIN_SPEECH_SECONDS, MIN_VOICED_SECONDS), why; else ""."""
    rate = extract.analysis_rate(params)
    speech = extract.speech(mono, params)
    if len(speech) < MIN_SPEECH_SECONDS * rate:
        return speech, (
            f"only {len(speech) / rate:.2f} s of sound stands out from the quiet around it; "
            f"at least {MIN_SPEECH_SECONDS} s of speech is needed"
        )
    if voiced_seconds(speech, rate, enough=MIN_VOICED_SECONDS) < MIN_VOICED_SECONDS:
        return speech, (
            f"no voice: under {MIN_VOICED_SECONDS} s of sound with the pitch of a voice "
            "(noise alone?)"
        )
    return speech, ""


def voiced_seconds(speech, rate: int, *, enough: float = np.inf) -> float:
    """Seconds of a recording's frames that are voiced (VOICE_THRESHOLD), counted a block
    of STREAM_BLOCK_SECONDS at a time, the loudest frames first, until there are ``enough``
    (then possibly fewer than all). ``speech``: an array, or anything that slices into
    arrays (a long recording's trimmed speech on disk)."""
    needed = math.ceil(enough * VOICE_RATE / VOICE_HOP - 1e-9) if math.isfinite(enough) else 0
    block = int(STREAM_BLOCK_SECONDS * rate)
    frames = 0
    for start in range(0, len(speech), block):
        part = np.asarray(speech[start : start + block], dtype=np.float32)
        low = audio.resample(part, orig_sr=rate, target_sr=VOICE_RATE)
        frames += _voiced_frames(low, needed - frames if needed else 0)
        if needed and frames >= needed:
            break
    return frames * VOICE_HOP / VOICE_RATE


def _voiced_frames(samples: np.ndarray, enough: int = 0) -> int:
    """How many frames of ``samples`` (at VOICE_RATE) within 40 dB of the loudest are
    voiced, counted VOICE_CHUNK at a time from the loudest until there are ``enough`` (0:
    all). The loudest frames of speech are its vowels: a few chunks settle it, where
    judging every frame cost as much again as the model (about 1 ms a clip)."""
    span = VOICE_FRAME + VOICE_LAGS[1]
    samples = np.pad(samples.astype(np.float64), (0, max(0, span - samples.size)))
    count = 1 + (samples.size - span) // VOICE_HOP
    segments = np.lib.stride_tricks.sliding_window_view(samples, span)[::VOICE_HOP][:count]
    running = np.concatenate([[0.0], np.cumsum(samples**2)])
    starts = np.arange(count) * VOICE_HOP
    power = running[starts + VOICE_FRAME] - running[starts]
    loud = np.flatnonzero(power > power.max() * 10 ** (-extract.TRIM_TOP_DB / 10))
    order = loud[np.argsort(-power[loud], kind="stable")]
    found = 0
    for first in range(0, order.size, VOICE_CHUNK):
        found += int(np.count_nonzero(_periodic(segments[order[first : first + VOICE_CHUNK]])))
        if enough and found >= enough:
            break
    return found


def _periodic(segments: np.ndarray) -> np.ndarray:
    """Whether each frame (the first VOICE_FRAME samples of each row of ``segments``, the
    rest its lags) dips below VOICE_THRESHOLD at a period of VOICE_LAGS."""
    low, high = VOICE_LAGS
    # The difference d(t) = sum over the frame of (x[j] - x[j + t])^2, for every lag t,
    # from the frame's correlation with its segment (by FFT: j + t < span, so a transform
    # of span points does not wrap) and running energies.
    span = segments.shape[1]
    size = 1 << int(np.ceil(np.log2(span)))
    correlation = np.fft.irfft(
        np.conj(np.fft.rfft(segments[:, :VOICE_FRAME], size)) * np.fft.rfft(segments, size),
        size,
    )[:, : high + 1]
    energy = np.concatenate([np.zeros((len(segments), 1)), np.cumsum(segments**2, axis=1)], axis=1)
    own = energy[:, VOICE_FRAME : VOICE_FRAME + 1]
    shifted = energy[:, VOICE_FRAME : VOICE_FRAME + high + 1] - energy[:, : high + 1]
    difference = (own + shifted - 2 * correlation)[:, 1:]
    lags = np.arange(1, high + 1)
    normalised = difference * lags / np.maximum(np.cumsum(difference, axis=1), 1e-20)
    return normalised[:, low - 1 :].min(axis=1) < VOICE_THRESHOLD


class SignalFile:
    """Mono float32 samples in a raw file, read only where sliced (a long recording).

    Slicing gives another SignalFile; ``np.asarray`` reads its samples, less ``offset`` (the
    recording's mean, which extract.speech removes from a recording in memory). Lets the
    windowing and silence trimming run over an hour of audio holding one block at a time.
    """

    def __init__(
        self, path: Path, *, start: int = 0, size: int, peak: float = 0.0, offset: float = 0.0
    ):
        self.path, self.start, self.size, self.peak = path, start, size, peak
        self.offset = offset

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice) -> SignalFile:
        first, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("a SignalFile slices with step 1 only")
        return SignalFile(
            self.path,
            start=self.start + first,
            size=max(0, stop - first),
            peak=self.peak,
            offset=self.offset,
        )

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        samples = np.fromfile(self.path, dtype=np.float32, count=self.size, offset=self.start * 4)
        samples -= np.float32(self.offset)
        return samples if dtype is None else samples.astype(dtype)


def decode_long(path: str, rate: int, folder: Path, *, centre: bool = True) -> SignalFile | None:
    """A recording longer than STREAM_SAMPLES at ``rate``, decoded block by block into a raw
    file in ``folder`` (the samples audio.load would give, read back less their mean unless
    ``centre`` is false); None for a shorter one."""
    if audio.frames_at(path, rate) <= STREAM_SAMPLES:
        return None
    handle, name = tempfile.mkstemp(dir=folder, suffix=".pcm")
    size, peak, total = 0, 0.0, 0.0
    with open(handle, "wb") as out:
        for block in audio.blocks(path, sample_rate=rate, block_seconds=STREAM_BLOCK_SECONDS):
            out.write(block.tobytes())
            size += block.size
            peak = max(peak, float(np.max(np.abs(block), initial=0.0)))
            total += float(np.sum(block, dtype=np.float64))
    offset = total / max(size, 1) if centre else 0.0
    return SignalFile(Path(name), size=size, peak=peak, offset=offset)


def warm_up(params: FeatureParams) -> None:
    """Run the feature code once before worker processes fork: they inherit its imports
    (librosa's take seconds) instead of each importing them again. ser.serve.warm runs it in the
    server that predict_files(fork_server=True) forks its workers from."""
    rate = extract.analysis_rate(params)
    tone = 0.1 * np.sin(2 * np.pi * 220.0 * np.arange(rate) / rate, dtype=np.float32)
    prepare(tone, "<warm-up>", params, speeds=(1.05,))


def prepare_file(
    job: tuple[str, FeatureParams, Path, tuple[float, ...]],
) -> Prediction | Windows:
    """prepare for a file (a worker's job); a file that cannot be decoded gets status error.

    A long recording streams through ``spill`` (a folder for temporary files); ``speeds``:
    prepare's."""
    path, params, spill, speeds = job
    rate = extract.analysis_rate(params)
    long = None
    try:
        long = decode_long(path, rate, spill, centre=extract.centres(params))
        if long is None:
            mono = audio.load(path, sample_rate=rate, centre=extract.centres(params))
        else:
            mono = long
        return prepare(mono, path, params, spill=spill, speeds=speeds)
    except DataError as error:  # any decoding failure is reported for this file only
        return Prediction(source=path, status="error", message=str(error))
    finally:
        if long is not None:
            long.path.unlink(missing_ok=True)
