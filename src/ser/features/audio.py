"""Reading audio: any format libsndfile reads, any sample rate, mono or multichannel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.errors import DataError

# A lower sample rate is a damaged header, not audio: resampling to the analysis rate would
# multiply the samples by up to 16000 (a 10 s file claiming 1 Hz needs 10 GB, or crashes soxr).
MIN_SAMPLE_RATE = 1000


def check_sample_rate(sample_rate: int, source: str | Path) -> None:
    """Raise DataError when ``sample_rate`` cannot be that of a recording."""
    if sample_rate < MIN_SAMPLE_RATE:
        raise DataError(
            f"{source}: sample rate {sample_rate} Hz is not plausible for audio "
            f"(at least {MIN_SAMPLE_RATE} Hz); the file's header is probably damaged"
        )


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channels averaged, non-finite samples zeroed."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    return np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)


def resample(samples: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono signal with soxr (high quality, as librosa.load does by default)."""
    if orig_sr == target_sr or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    check_sample_rate(orig_sr, "input")
    import soxr

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32)


def frames_at(path: str | Path, sample_rate: int) -> int:
    """How many samples the file holds when resampled to ``sample_rate`` (from its header;
    0 when libsndfile cannot tell). Raises DataError for a file that cannot be opened."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as error:
        raise DataError(f"{path}: cannot read audio ({' '.join(str(error).split())})") from None
    if info.samplerate <= 0:
        return 0
    return int(info.frames * sample_rate / info.samplerate)


def centred(samples: np.ndarray) -> np.ndarray:
    """Samples less their mean: without the constant offset (DC) a cheap microphone or sound
    card adds. An offset of 0.002 filled the quiet frames the silence trim measures its noise
    floor on, and the lowest mel band, and changed the class of a third of the RAVDESS clips it
    was added to (docs/robustness.md: a constant offset). It goes before resampling, whose
    filter would ring at the step from silence to the offset at either end."""
    if samples.size == 0:
        return samples
    return samples - np.asarray(samples.mean(dtype=np.float64), dtype=samples.dtype)


def mono_at(
    samples: np.ndarray, *, orig_sr: int, target_sr: int, centre: bool = True
) -> np.ndarray:
    """(n,) or (n, channels) samples at ``orig_sr`` -> mono float32 at ``target_sr``, less
    their mean unless ``centre`` is false: what every recording's analysis starts from."""
    mono = to_mono(samples)
    return resample(centred(mono) if centre else mono, orig_sr=orig_sr, target_sr=target_sr)


def blocks(
    path: str | Path, *, sample_rate: int, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """The whole file as mono float32 at ``sample_rate``, a block at a time: concatenated,
    the blocks are what :func:`load` returns with ``centre=False`` (soxr streams with the
    same filter state).

    Holds one block, so an hour-long file costs what ``block_seconds`` of it costs.
    Raises DataError for a file that cannot be decoded.
    """
    import soxr

    try:
        with sf.SoundFile(str(path)) as handle:
            native_rate = handle.samplerate
            check_sample_rate(native_rate, path)
            stream = None
            if native_rate != sample_rate:
                stream = soxr.ResampleStream(
                    native_rate, sample_rate, 1, dtype="float32", quality="HQ"
                )
            size = max(1, int(block_seconds * native_rate))
            while True:
                data = handle.read(frames=size, dtype="float32", always_2d=True)
                last = len(data) < size
                mono = to_mono(data)
                if stream is not None:
                    mono = stream.resample_chunk(mono, last=last)
                if mono.size:
                    yield mono
                if last:
                    return
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as error:
        raise DataError(f"{path}: cannot read audio ({' '.join(str(error).split())})") from None


def load(
    path: str | Path,
    *,
    sample_rate: int,
    offset: float = 0.0,
    duration: float | None = None,
    centre: bool = True,
) -> np.ndarray:
    """Read ``duration`` seconds from ``offset`` as mono float32 at ``sample_rate``: shape (n,),
    less their mean unless ``centre`` is false (mono_at).

    Only the requested frames are read, so an hour-long file costs what its window costs.
    Raises DataError for a file that cannot be decoded.
    """
    try:
        with sf.SoundFile(str(path)) as handle:
            native_rate = handle.samplerate
            check_sample_rate(native_rate, path)
            start = int(round(offset * native_rate))
            if start >= handle.frames:
                return np.zeros(0, dtype=np.float32)
            handle.seek(start)
            count = -1 if duration is None else int(round(duration * native_rate))
            samples = handle.read(frames=count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as error:
        raise DataError(f"{path}: cannot read audio ({' '.join(str(error).split())})") from None
    return mono_at(samples, orig_sr=native_rate, target_sr=sample_rate, centre=centre)
