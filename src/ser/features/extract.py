"""How a clip becomes a feature matrix: one place, used by featurize, augment and predict.

Two kinds (``features.kind``):

* ``mfcc`` (default): audio at ``sample_rate``, leading and trailing silence trimmed, a
  window of ``window_seconds`` from ``offset_seconds``; ``n_mfcc`` MFCCs per frame, with
  their deltas when ``deltas``; then ``mels`` log-mel band energies (dB) when ``mels > 0``;
  then, when ``prosody``, four prosodic contours: log F0 (YIN, 60-500 Hz) and log RMS
  energy, each with its delta. Padded to a fixed number of frames by repeating the clip's
  frames (``pad: repeat``) or with zeros. Shape ``(n_frames, n_features)`` with
  ``n_features = n_mfcc * (2 if deltas else 1) + mels + (4 if prosody else 0)``.
* ``seed``: the 2019 feature exactly: ``librosa.load(sr=44100, offset=0.5, duration=3)``,
  then ``np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13), axis=0)``, zero-padded to
  259 frames. Shape ``(259, 1)``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ser.features import audio
from ser.features.librosa_import import import_librosa
from ser.params import FeatureParams

SEED_SAMPLE_RATE = 44100
SEED_OFFSET = 0.5
SEED_DURATION = 3.0
SEED_N_MFCC = 13
SEED_HOP = 512  # librosa's default hop length
# Leading/trailing parts quieter than this (dB below the clip's peak) count as silence.
TRIM_TOP_DB = 40.0
# F0 search range and analysis frame of the prosody contours (covers adult speech and song).
F0_MIN, F0_MAX = 60.0, 500.0
F0_FRAME_SECONDS = 0.064
# YIN runs on audio resampled to this rate: F0 <= 500 Hz needs no more, and it costs half
# of YIN at 16 kHz (F0 within 0.3% of it, median, on RAVDESS speech).
F0_SAMPLE_RATE = 8000
PROSODY_FEATURES = 4


def window_samples(params: FeatureParams) -> int:
    """Samples in the analysis window that load_window returns (at most)."""
    if params.kind == "seed":
        return int(round(SEED_DURATION * SEED_SAMPLE_RATE))
    return int(round(params.window_seconds * params.sample_rate))


def analysis_rate(params: FeatureParams) -> int:
    """The sample rate features are computed at."""
    return SEED_SAMPLE_RATE if params.kind == "seed" else params.sample_rate


def shape(params: FeatureParams) -> tuple[int, int]:
    """(n_frames, n_features) of every feature matrix of these params."""
    if params.kind == "seed":
        return 1 + window_samples(params) // SEED_HOP, 1
    width = (
        params.n_mfcc * (2 if params.deltas else 1)
        + params.mels
        + (PROSODY_FEATURES if params.prosody else 0)
    )
    return 1 + window_samples(params) // params.hop_length, width


def centres(params: FeatureParams) -> bool:
    """Whether a recording loses its mean (audio.centred) before its analysis: for every
    kind but ``seed``, which reads the file as the 2019 code did."""
    return params.kind != "seed"


def load_window(path: str | Path, params: FeatureParams) -> np.ndarray:
    """Read the part of a file the features look at, mono float32 at analysis_rate: (n,)."""
    if params.kind == "seed":
        # As the 2019 code read it (librosa.load): offset and all.
        return audio.load(
            path,
            sample_rate=SEED_SAMPLE_RATE,
            offset=SEED_OFFSET,
            duration=SEED_DURATION,
            centre=False,
        )
    # Read generously (offset + window + 2 s of possible leading silence), trim, then cut.
    samples = audio.load(
        path,
        sample_rate=params.sample_rate,
        duration=params.offset_seconds + params.window_seconds + 2.0,
    )
    return select_window(samples, params)


def select_window(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Trim silence from a whole mono clip at analysis_rate and cut the analysis window."""
    if params.kind == "seed":
        start = int(round(SEED_OFFSET * SEED_SAMPLE_RATE))
        return samples[start : start + window_samples(params)]
    samples = speech(samples, params)
    start = int(round(params.offset_seconds * params.sample_rate))
    return samples[start : start + window_samples(params)]


def speech(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """A recording at analysis_rate (``mfcc``) without its leading and trailing silence and
    with its long pauses shortened: trim_silence by the params' rules."""
    pause = params.max_pause_seconds
    return trim_silence(
        samples,
        noise_db=params.trim_noise_db,
        max_pause=None if pause is None else int(round(pause * params.sample_rate)),
    )


TRIM_FRAME, TRIM_HOP = 512, 128
# Above this many samples, trim_silence computes frame energies block by block.
TRIM_BLOCKWISE_SAMPLES = 1 << 20
# With noise_db, the noise floor is this percentile of a recording's frame energies (dB):
# a tenth of the frames is quieter, which the pauses of a clip of speech hold.
TRIM_FLOOR_PERCENTILE = 10.0


def trim_silence(
    samples: np.ndarray,
    *,
    top_db: float = TRIM_TOP_DB,
    noise_db: float | None = None,
    max_pause: int | None = None,
) -> np.ndarray:
    """Drop leading and trailing frames quieter than top_db below the peak.

    What ``librosa.effects.trim(samples, top_db, frame_length=512, hop_length=128)`` gives.
    librosa frames the whole signal at once (about 8 bytes per sample per 4 of audio: 1.8 GB
    for an hour at 16 kHz), so long recordings take the same bounds from frame energies
    computed block by block. ``samples`` may be any array-like that slices into arrays (such
    as predict's recordings on disk); above that size it is only ever sliced.

    ``noise_db`` (features.trim_noise_db): frames no more than this above the recording's
    noise floor (the TRIM_FLOOR_PERCENTILE of its frame energies, dB) are silence too, or no
    more than half of the way from the floor to the peak when the two are closer than
    2 * noise_db (a recording with no pause). Background noise 40 dB or less below the
    speech otherwise keeps every leading and trailing pause, and a noisy recording's window
    would hold a third of noise alone where a clean one holds speech.

    ``max_pause`` (samples; features.max_pause_seconds): every pause between the first and
    the last loud frame that is longer than this (the samples that only frames at or below
    the same threshold cover) loses its middle, down to this length. The model trained on
    clips of one sentence, whose pauses are shorter; a recording of several sentences,
    their pauses kept, was judged worse than one of its sentences alone (docs/experiments.md
    E60). A recording that is only sliced comes back as a Spliced one.
    """
    if samples.size == 0:
        return samples
    if noise_db is not None or max_pause is not None:
        return _trim_above(samples, _frame_energy(samples), top_db, noise_db, max_pause)
    if samples.size <= TRIM_BLOCKWISE_SAMPLES:
        librosa = import_librosa()

        trimmed, _ = librosa.effects.trim(
            np.asarray(samples), top_db=top_db, frame_length=TRIM_FRAME, hop_length=TRIM_HOP
        )
        return trimmed
    return _trim_above(samples, _frame_energy(samples), top_db, None)


def _trim_above(
    samples, energy: np.ndarray, top_db: float, noise_db: float | None, max_pause: int | None = None
) -> np.ndarray:
    """samples from the first to the last frame louder than top_db below the peak (as
    librosa's power_to_db(energy, ref=np.max) > -top_db decides) and, with noise_db, than the
    noise floor's margin, pauses longer than max_pause shortened (trim_silence)."""
    level = 10.0 * np.log10(np.maximum(1e-10, energy))
    peak = float(level.max())
    threshold = peak - top_db
    if noise_db is not None:
        floor = float(np.percentile(level, TRIM_FLOOR_PERCENTILE))
        if floor < peak:  # with no spread (digital silence) there is no floor to stand out from
            threshold = max(threshold, floor + min(noise_db, 0.5 * (peak - floor)))
    voiced = np.flatnonzero(level > threshold)
    if voiced.size == 0:
        return samples[:0]
    start = int(voiced[0]) * TRIM_HOP
    end = min(samples.size, (int(voiced[-1]) + 1) * TRIM_HOP)
    if max_pause is None:
        return samples[start:end]
    # Frame i covers samples [i * hop - frame / 2, i * hop + frame / 2): between two loud
    # frames a and b, only quiet frames cover [a * hop + frame / 2, b * hop - frame / 2).
    before = np.flatnonzero(np.diff(voiced) > 1)
    quiet_from = voiced[before] * TRIM_HOP + TRIM_FRAME // 2
    quiet_to = voiced[before + 1] * TRIM_HOP - TRIM_FRAME // 2
    long = quiet_to - quiet_from > max_pause
    if not long.any():
        return samples[start:end]
    cut_from = quiet_from[long] + max_pause // 2
    cut_to = quiet_to[long] - (max_pause - max_pause // 2)
    keep = list(zip([start, *cut_to.tolist()], [*cut_from.tolist(), end], strict=True))
    if isinstance(samples, np.ndarray):
        return np.concatenate([samples[first:last] for first, last in keep])
    return Spliced(samples, keep)


class Spliced:
    """Parts of a recording that is only ever sliced (predict's long recordings on disk),
    read as the one recording their concatenation is: a slice reads only the parts it
    covers."""

    def __init__(self, samples, parts: list[tuple[int, int]]):
        self.samples, self.parts = samples, parts
        self.starts = np.cumsum([0] + [last - first for first, last in parts])

    @property
    def size(self) -> int:
        return int(self.starts[-1])

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("a Spliced recording slices with step 1 only")
        pieces = [
            np.asarray(self.samples[first + low - offset : first + high - offset])
            for (first, last), offset in zip(self.parts, self.starts, strict=False)
            for low, high in [(max(start, offset), min(stop, offset + last - first))]
            if low < high
        ]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _frame_energy(samples: np.ndarray) -> np.ndarray:
    """Mean square of each centred frame (zero-padded ends), as librosa.feature.rms ** 2."""
    from numpy.lib.stride_tricks import sliding_window_view

    half = TRIM_FRAME // 2
    count = 1 + samples.size // TRIM_HOP
    energy = np.empty(count, dtype=np.float64)
    block = 8192  # frames per block
    for first in range(0, count, block):
        last = min(count, first + block)
        # Frame i covers padded[i * hop : i * hop + frame] = samples[i * hop - half : ...].
        lo, hi = first * TRIM_HOP - half, (last - 1) * TRIM_HOP - half + TRIM_FRAME
        segment = np.zeros(hi - lo, dtype=np.float64)
        inside = samples[max(lo, 0) : min(hi, samples.size)]
        segment[max(lo, 0) - lo : max(lo, 0) - lo + inside.size] = inside
        frames = sliding_window_view(segment**2, TRIM_FRAME)[::TRIM_HOP]
        energy[first:last] = frames.mean(axis=-1)
    return energy


def compute(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Features of an analysis window (from load_window/select_window): (n_frames, n_features).

    A window shorter than the params' window is padded; it is never an error. The result
    is float32 and finite.
    """
    librosa = import_librosa()

    n_frames, n_features = shape(params)
    padded = np.zeros((n_frames, n_features), dtype=np.float32)
    if samples.size == 0:
        return padded
    if params.kind == "seed":
        mfcc = librosa.feature.mfcc(y=samples, sr=SEED_SAMPLE_RATE, n_mfcc=SEED_N_MFCC)
        contour = np.mean(mfcc, axis=0)[:n_frames]
        padded[: contour.shape[0], 0] = contour
        # A huge (finite) float sample overflows the power spectrum: inf - inf gives NaN.
        return np.nan_to_num(padded, nan=0.0, posinf=0.0, neginf=0.0)
    return from_analysis(*analyse(samples, params), params)


def analyse(samples: np.ndarray, params: FeatureParams) -> tuple[np.ndarray, np.ndarray | None]:
    """What compute's features of ``samples`` are made of (``mfcc``): the STFT power
    (n_fft // 2 + 1, frames) and the prosody contours (log F0, log RMS energy: (2, frames);
    None without features.prosody)."""
    librosa = import_librosa()

    if params.level_db is not None:
        samples = at_level(samples, params.level_db, sample_rate=params.sample_rate)
    power = np.abs(librosa.stft(samples, n_fft=params.n_fft, hop_length=params.hop_length)) ** 2
    return power, _contours(samples, power, params) if params.prosody else None


def from_analysis(
    power: np.ndarray,
    contours: np.ndarray | None,
    params: FeatureParams,
    *,
    speed: float = 1.0,
    frames: np.ndarray | None = None,
) -> np.ndarray:
    """compute's features from an analysis (analyse) of the samples, or with ``speed`` and
    ``frames`` (indices into the analysis' frames: speed_frames) those of part of the
    recording played at that speed (pitch and tempo together, as a resampling does).

    Played at speed r, what a recording holds at frequency f and frame t is at r * f and
    t / r: the copy's mel bands are the recording's power spectrum weighed by the mel
    filters at r times each bin's frequency, at the recording's frames nearest to r times
    the copy's; its F0 is r times the recording's, its energy the recording's (a resampling
    keeps the mean square). Resampling and analysing each copy again (YIN most of it) cost
    more than the recording's own features; this is a few matrix products, and judges as
    well (docs/experiments.md E63).
    """
    if frames is not None:
        power = power[:, frames]
        contours = None if contours is None else contours[:, frames]
    if speed != 1.0 and contours is not None:
        contours = contours.copy()
        contours[0] = np.clip(contours[0] + np.log(speed), np.log(F0_MIN), np.log(F0_MAX))
    width = max(64, params.n_mfcc)
    bands = _mel_basis(params.sample_rate, params.n_fft, width, speed) @ power
    mels = None
    # The MFCCs' own bands when the counts agree (the default): the same numbers.
    if params.mels and params.mels != width:
        mels = _mel_basis(params.sample_rate, params.n_fft, params.mels, speed) @ power
    return _matrix(bands, mels, contours, params)


def played_rate(rate: int, speed: float) -> int:
    """The sample rate a recording at ``rate`` is resampled to, read at ``rate`` again, to
    play at ``speed`` (pitch and tempo together, as augment.speed)."""
    return int(round(rate / speed))


def speed_frames(start: int, stop: int, speed: float, params: FeatureParams, available: int):
    """The frames of an analysis of a recording (``available`` of them) that samples
    [start, stop) of the recording played at ``speed`` take theirs from: frame i of that
    part, at sample start + i * hop_length of the copy, is at the recording's sample
    (start + i * hop_length) * speed; its nearest frame. Nearest, not a mean of two:
    interpolated frames would vary less over a clip than the resampled copy's do (E63)."""
    hop = params.hop_length
    positions = start + np.arange(1 + max(0, stop - start) // hop) * hop
    return np.minimum(np.round(positions * speed / hop).astype(int), available - 1)


def _matrix(
    bands: np.ndarray, mels: np.ndarray | None, contours: np.ndarray | None, params: FeatureParams
) -> np.ndarray:
    """The feature matrix (compute's) from a window's mel band powers (max(64, n_mfcc),
    frames), the ``mels`` bands' when their count differs, and its prosody contours (log F0,
    log RMS; _contours)."""
    librosa = import_librosa()

    n_frames, n_features = shape(params)
    log_mel = librosa.power_to_db(bands)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=params.n_mfcc)
    blocks = [mfcc]
    if params.deltas:
        blocks.append(_delta(mfcc))
    if params.mels:
        blocks.append(log_mel if mels is None else librosa.power_to_db(mels))
    if contours is not None:
        contours = contours[:, : mfcc.shape[1]]
        deltas = _delta(contours)
        blocks.append(np.stack([contours[0], deltas[0], contours[1], deltas[1]]))
    matrix = np.concatenate(blocks, axis=0).T[:n_frames]  # (frames, features)
    if params.normalize == "utterance":
        mean = matrix.mean(axis=0, keepdims=True)
        std = matrix.std(axis=0, keepdims=True)
        matrix = (matrix - mean) / np.maximum(std, 1e-5)
    if params.pad == "repeat":
        # Repeat the clip's frames to fill the window: its statistics stay those of speech,
        # where zeros would add a length-dependent share of artificial frames.
        padded = matrix[np.arange(n_frames) % matrix.shape[0]]
    else:
        padded = np.zeros((n_frames, n_features), dtype=np.float32)
        padded[: matrix.shape[0]] = matrix
    return np.nan_to_num(padded, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def at_level(samples: np.ndarray, level_db: float, *, sample_rate: int) -> np.ndarray:
    """samples scaled so that their speech (the active frames: channel.active_power) has an
    RMS of level_db dBFS; silence is returned as it is."""
    from ser.features import channel

    power = channel.active_power(samples, sample_rate=sample_rate)
    if power <= 0.0:
        return samples
    return (samples * (10 ** (level_db / 20) / np.sqrt(power))).astype(np.float32)


def _delta(contours: np.ndarray) -> np.ndarray:
    """Deltas over time of (n, frames) contours; very short clips get a narrower window."""

    frames = contours.shape[1]
    width = min(9, frames if frames % 2 == 1 else frames - 1)
    if width < 3:
        return np.zeros_like(contours)
    # What librosa.feature.delta(contours, width=width, mode="nearest") computes (a
    # Savitzky-Golay derivative filter), bit for bit, without designing the filter per call.
    from scipy.ndimage import convolve1d

    if contours.dtype not in (np.float32, np.float64):
        contours = contours.astype(np.float64)
    return convolve1d(contours, _delta_filter(width), axis=-1, mode="nearest")


@functools.lru_cache(maxsize=8)
def _delta_filter(width: int) -> np.ndarray:
    from scipy.signal import savgol_coeffs

    return savgol_coeffs(width, 1, deriv=1)


def _contours(samples: np.ndarray, power: np.ndarray, params: FeatureParams) -> np.ndarray:
    """(2, frames): log F0 (YIN) and log RMS energy; frames as ``power``'s."""
    librosa = import_librosa()

    rate, hop = params.sample_rate, params.hop_length
    if rate > F0_SAMPLE_RATE and (hop * F0_SAMPLE_RATE) % rate == 0:
        # Same frame grid at the lower rate: frame t still starts at t * hop_length.
        samples = _resample_for_f0(samples, rate)
        rate, hop = F0_SAMPLE_RATE, hop * F0_SAMPLE_RATE // rate
    frame = int(round(F0_FRAME_SECONDS * rate))
    padded = np.pad(samples, (0, max(0, frame - samples.size)))
    f0 = librosa.yin(padded, fmin=F0_MIN, fmax=F0_MAX, sr=rate, frame_length=frame, hop_length=hop)
    log_f0 = np.log(np.nan_to_num(f0, nan=F0_MIN).clip(F0_MIN, F0_MAX))
    log_f0 = np.pad(log_f0, (0, max(0, power.shape[1] - log_f0.size)), mode="edge")
    log_f0 = log_f0[: power.shape[1]]
    # RMS of each frame from its power spectrum (Parseval), as librosa.feature.rms(S=...).
    rms = librosa.feature.rms(S=np.sqrt(power), frame_length=params.n_fft)[0]
    return np.stack([log_f0, np.log(rms + 1e-6)])


def _resample_for_f0(samples: np.ndarray, rate: int) -> np.ndarray:
    """librosa.resample(samples, orig_sr=rate, target_sr=F0_SAMPLE_RATE, res_type="polyphase"),
    bit for bit, with the anti-aliasing filter designed once rather than on every call."""
    librosa = import_librosa()
    from scipy.signal import resample_poly

    librosa.util.valid_audio(samples)
    common = int(np.gcd(rate, F0_SAMPLE_RATE))
    up, down = F0_SAMPLE_RATE // common, rate // common
    size = int(np.ceil(samples.size * F0_SAMPLE_RATE / rate))
    low = resample_poly(samples, up, down, window=_f0_filter(up, down, samples.dtype.str))
    return np.asarray(librosa.util.fix_length(low, size=size), dtype=samples.dtype)


@functools.lru_cache(maxsize=8)
def _f0_filter(up: int, down: int, dtype: str) -> np.ndarray:
    """The low-pass filter scipy's resample_poly designs by default, in the signal's dtype."""
    from scipy.signal import firwin

    half = 10 * max(up, down)
    taps = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
    return taps.astype(np.dtype(dtype)) if np.dtype(dtype).kind == "f" else taps


@functools.lru_cache(maxsize=16)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, speed: float = 1.0) -> np.ndarray:
    """librosa's mel filters; at a ``speed`` other than 1, the same bands and weights taken
    at speed times each bin's frequency (what bin k holds is at speed * f_k in the recording
    played at that speed: from_analysis). Built once: librosa.feature.mfcc(y=...) rebuilds
    the filterbank on every call, which costs more than the rest of the features."""
    librosa = import_librosa()

    if speed == 1.0:
        return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    with warnings.catch_warnings():
        # Slower than 1, the top bands lie above what any bin reaches: a copy played slower
        # has nothing there, and librosa's warning about empty filters says only that.
        warnings.simplefilter("ignore", UserWarning)
        return librosa.filters.mel(
            sr=sample_rate * speed, n_fft=n_fft, n_mels=n_mels, fmax=sample_rate / 2.0
        )


def by_speaker(params: FeatureParams) -> bool:
    """Whether a model on these features standardises them per speaker (``mfcc`` with
    normalize: speaker; ser.features.speaker).

    The ``seed`` recipe is the 2019 one exactly and is never normalised.
    """
    return params.kind == "mfcc" and params.normalize == "speaker"


def speakers_of(clips) -> np.ndarray:
    """The speaker key of each row of a manifest-like frame: corpus and actor."""
    return (clips["corpus"].astype(str) + ":" + clips["actor"].astype(str)).to_numpy()


def featurize_file(path: str | Path, params: FeatureParams) -> np.ndarray:
    """load_window then compute: (n_frames, n_features)."""
    return compute(load_window(path, params), params)


def describe(params: FeatureParams) -> dict:
    """The settings a model needs to compute its input again (stored beside the model)."""
    n_frames, n_features = shape(params)
    # Where features are computed (processes, a Dask cluster) does not change them.
    settings = {
        key: value for key, value in asdict(params).items() if key not in ("n_jobs", "scheduler")
    }
    return {**settings, "n_frames": n_frames, "n_features": n_features}


def _featurize_one(job: tuple[str, FeatureParams]) -> tuple[np.ndarray | None, str]:
    path, params = job
    try:
        return featurize_file(path, params), ""
    except Exception as error:  # any decoding failure excludes the clip, with its reason
        return None, f"unreadable: {' '.join(str(error).split())}"


def iter_features(
    paths: list[str], params: FeatureParams, *, n_jobs: int = 1, progress: bool | None = None
) -> Iterator[tuple[np.ndarray | None, str]]:
    """(features (n_frames, n_features) or None, reason or '') of each file, in order.

    Computed on n_jobs local processes, or on the Dask cluster at ``params.scheduler``.
    """
    from ser.parallel import map_clips

    jobs = [(path, params) for path in paths]
    yield from map_clips(
        _featurize_one,
        jobs,
        n_jobs=n_jobs,
        scheduler=params.scheduler,
        desc="featurize",
        progress=progress,
    )


def featurize_many(
    paths: list[str], params: FeatureParams, *, n_jobs: int = 1, progress: bool | None = None
) -> tuple[np.ndarray, list[str]]:
    """Features of many files, in order: (n, n_frames, n_features) float32, and one reason per
    file ('' when it worked; a failed file's row is all zeros). Holds them all in memory:
    a corpus goes to disk through featurize_to_store instead."""
    n_frames, n_features = shape(params)
    matrix = np.zeros((len(paths), n_frames, n_features), dtype=np.float32)
    reasons = [""] * len(paths)
    results = iter_features(paths, params, n_jobs=n_jobs, progress=progress)
    for index, (features, reason) in enumerate(results):
        if features is None:
            reasons[index] = reason
        else:
            matrix[index] = features
    return matrix, reasons


def featurize_to_store(
    folder: Path,
    clips: list[tuple[str, str]],
    params: FeatureParams,
    *,
    n_jobs: int = 1,
    progress: bool | None = None,
    shard_clips: int | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Features of (clip id, path) pairs written to a sharded store as they are computed.

    Memory does not grow with the number of clips (ser.features.store). Clips that fail are left
    out. Returns (clip ids written, in row order; failures as (clip id, reason)).
    """
    from ser.features import store

    results = iter_features([path for _, path in clips], params, n_jobs=n_jobs, progress=progress)
    return store.write_results(
        folder,
        (
            (clip_id, matrix, reason)
            for (clip_id, _), (matrix, reason) in zip(clips, results, strict=True)
        ),
        row_shape=shape(params),
        settings=describe(params),
        shard_clips=shard_clips,
    )


def save_store(folder: Path, *, clip_ids: list[str], matrix: np.ndarray, settings: dict) -> None:
    """Write an in-memory (n, n_frames, n_features) matrix as a feature store
    (ser.features.store)."""
    from ser.features import store

    store.write(
        folder, zip(clip_ids, matrix, strict=True), row_shape=matrix.shape[1:], settings=settings
    )


def load_store(folder: Path) -> tuple[list[str], np.ndarray, dict]:
    """Read a feature store: (clip ids, rows read on demand (store.ShardedArray), settings).

    The rows index like an (n, n_frames, n_features) array and are read only when indexed.
    """
    from ser.features import store

    return store.load(folder)
