"""Channel perturbations: what a telephone line, a codec, a room, noise, a quiet recording or
a cheap microphone does to a clip.

Each perturbation is a function ``(samples, *, sample_rate, seed) -> samples``: mono float32
samples (n,) in, the same number of samples at the same rate out, the same output for the
same seed. :data:`PERTURBATIONS` names them; the robustness benchmark, the tests and any
stage that augments with them read that registry, so a name means one thing everywhere::

    from ser.features import channel
    noisy = channel.perturb(samples, name="noise_10db", sample_rate=16000, seed=3)

They are built on SciPy's filters, soxr (through :func:`ser.features.audio.resample`) and
libsndfile's MP3 and Opus encoders (through soundfile).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ser.errors import ConfigError
from ser.features import audio

# The telephone band (ITU-T G.712) and the narrowband rate.
TELEPHONE_RATE = 8000
TELEPHONE_LOW_HZ = 300.0
TELEPHONE_HIGH_HZ = 3400.0
MU_LAW = 255.0
# The rate the codecs encode at (both take 16 kHz; the pipeline analyses at 16 kHz).
CODEC_RATE = 16000
# libsndfile's compression level for each codec at about 24 kb/s (its only bitrate control:
# MP3 constant bitrate 0.9 -> 24 kb/s at 16 kHz, Opus VBR 0.93 -> about 24 kb/s).
MP3_LEVEL = 0.9
OPUS_LEVEL = 0.93
# Room reverberation: RT60 drawn uniformly from this range (seconds).
RT60_RANGE = (0.3, 0.6)
# Speech activity for the SNR: 20 ms frames within ACTIVE_DB of the loudest frame.
ACTIVE_FRAME_SECONDS = 0.02
ACTIVE_DB = 40.0
# Cheap microphone: high-pass, a presence peak, low-pass.
MIC_HIGHPASS_HZ = 200.0
MIC_PEAK_HZ = 3000.0
MIC_PEAK_DB = 6.0
MIC_PEAK_Q = 1.0
MIC_LOWPASS_HZ = 7000.0


@dataclass(frozen=True)
class Perturbation:
    """A named channel perturbation: ``apply(samples, sample_rate=, seed=)``."""

    name: str
    description: str
    apply: Callable[..., np.ndarray]


def telephone(samples: np.ndarray, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A narrowband telephone line: 8 kHz, 300-3400 Hz band-pass, 8-bit mu-law, and back.

    (n,) -> (n,) float32 at sample_rate. Deterministic: ``seed`` is not used.
    """
    from scipy import signal

    narrow = audio.resample(_mono(samples), orig_sr=sample_rate, target_sr=TELEPHONE_RATE)
    band = signal.butter(
        4, [TELEPHONE_LOW_HZ, TELEPHONE_HIGH_HZ], btype="bandpass", fs=TELEPHONE_RATE, output="sos"
    )
    narrow = signal.sosfilt(band, narrow)
    narrow = _mu_law(narrow)
    wide = audio.resample(narrow.astype(np.float32), orig_sr=TELEPHONE_RATE, target_sr=sample_rate)
    # Resampling at TELEPHONE_RATE cannot hold anything above 4 kHz, but soxr's transition
    # band and the mu-law noise leave a little below 300 Hz: band-pass once more.
    if sample_rate > 2 * TELEPHONE_HIGH_HZ:
        wide = signal.sosfilt(
            signal.butter(
                4,
                [TELEPHONE_LOW_HZ, TELEPHONE_HIGH_HZ],
                btype="bandpass",
                fs=sample_rate,
                output="sos",
            ),
            wide,
        )
    return _same_length(wide, len(samples))


def _mu_law(samples: np.ndarray) -> np.ndarray:
    """G.711-style companding to 8 bits and back (samples clipped to [-1, 1])."""
    clipped = np.clip(samples, -1.0, 1.0)
    compressed = np.sign(clipped) * np.log1p(MU_LAW * np.abs(clipped)) / np.log1p(MU_LAW)
    quantised = np.round((compressed + 1.0) * 127.5) / 127.5 - 1.0
    return np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU_LAW)) / MU_LAW


def mp3(samples: np.ndarray, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """MP3 (MPEG-2 Layer III) at 24 kb/s constant bitrate, 16 kHz, decoded back.

    (n,) -> (n,) float32 at sample_rate; the encoder's delay is removed. ``seed`` is not used.
    """
    return _codec(samples, sample_rate=sample_rate, format="MP3", subtype="MPEG_LAYER_III")


def opus(samples: np.ndarray, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Opus in Ogg at about 24 kb/s (variable bitrate), 16 kHz, decoded back.

    (n,) -> (n,) float32 at sample_rate. ``seed`` is not used.
    """
    return _codec(samples, sample_rate=sample_rate, format="OGG", subtype="OPUS")


def encode(samples: np.ndarray, *, sample_rate: int, format: str, subtype: str) -> bytes:
    """The bytes of a CODEC_RATE file of the codec (format MP3 or OGG, subtype as soundfile
    names it), at the codec's level above; ``samples`` are (n,) at sample_rate."""
    import soundfile as sf

    narrow = audio.resample(_mono(samples), orig_sr=sample_rate, target_sr=CODEC_RATE)
    buffer = io.BytesIO()
    if format == "MP3":
        options = {"compression_level": MP3_LEVEL, "bitrate_mode": "CONSTANT"}
    else:
        options = {"compression_level": OPUS_LEVEL}
    sf.write(
        buffer, np.clip(narrow, -1.0, 1.0), CODEC_RATE, format=format, subtype=subtype, **options
    )
    return buffer.getvalue()


def _codec(samples: np.ndarray, *, sample_rate: int, format: str, subtype: str) -> np.ndarray:
    import soundfile as sf

    encoded = encode(samples, sample_rate=sample_rate, format=format, subtype=subtype)
    decoded, rate = sf.read(io.BytesIO(encoded), dtype="float32")
    reference = audio.resample(_mono(samples), orig_sr=sample_rate, target_sr=CODEC_RATE)
    # libsndfile's MP3 decoder keeps the encoder's delay and padding: find the delay.
    decoded = decoded[_delay(reference, decoded) :]
    wide = audio.resample(decoded.astype(np.float32), orig_sr=rate, target_sr=sample_rate)
    return _same_length(wide, len(samples))


def _delay(reference: np.ndarray, decoded: np.ndarray, max_delay: int = 4096) -> int:
    """The lag (>= 0, at most max_delay) at which decoded best matches reference."""
    from scipy import signal

    extra = min(max_delay, len(decoded) - len(reference))
    if extra <= 0:
        return 0
    correlation = signal.correlate(decoded[: len(reference) + extra], reference, mode="valid")
    return int(np.argmax(correlation))


def impulse_response(*, sample_rate: int, rt60: float, seed: int) -> np.ndarray:
    """A room's impulse response: a direct path, then Gaussian noise decaying by 60 dB in
    rt60 seconds, cut where it is 60 dB down. Shape (round(rt60 * sample_rate),), float32.
    """
    if not rt60 > 0:
        raise ConfigError(f"rt60 must be > 0 seconds, got {rt60!r}")
    length = max(2, int(round(rt60 * sample_rate)))
    rng = np.random.default_rng(seed)
    times = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * 10 ** (-3.0 * times / rt60)
    # As much energy in the reverberant tail as in the direct sound (0 dB direct-to-reverberant
    # ratio: a talker a metre or two from the microphone in a living room).
    tail *= 1.0 / np.sqrt(np.sum(tail**2))
    response = tail
    response[0] = 1.0
    return response.astype(np.float32)


def reverb(
    samples: np.ndarray, *, sample_rate: int, seed: int = 0, rt60: float | None = None
) -> np.ndarray:
    """Room reverberation: convolution with :func:`impulse_response`, RT60 drawn from
    RT60_RANGE by ``seed`` unless given; the output keeps the input's RMS.

    (n,) -> (n,) float32 (the reverberant tail beyond the clip's end is cut).
    """
    from scipy import signal

    rng = np.random.default_rng(seed)
    if rt60 is None:
        rt60 = float(rng.uniform(*RT60_RANGE))
    response = impulse_response(sample_rate=sample_rate, rt60=rt60, seed=int(rng.integers(2**32)))
    mono = _mono(samples)
    wet = signal.fftconvolve(mono, response)[: len(mono)]
    return _same_length(wet * _ratio(_rms(mono), _rms(wet)), len(samples))


def active_power(samples: np.ndarray, *, sample_rate: int) -> float:
    """Mean power over the clip's speech: its 20 ms frames within ACTIVE_DB of the loudest."""
    mono = _mono(samples).astype(np.float64)
    frame = max(1, int(round(ACTIVE_FRAME_SECONDS * sample_rate)))
    count = max(1, len(mono) // frame)
    frames = mono[: count * frame].reshape(count, -1) if len(mono) >= frame else mono[None, :]
    powers = np.mean(frames**2, axis=1)
    loudest = float(np.max(powers, initial=0.0))
    if loudest == 0.0:
        return 0.0
    return float(np.mean(powers[powers >= loudest * 10 ** (-ACTIVE_DB / 10)]))


def pink_noise(size: int, *, seed: int) -> np.ndarray:
    """Noise whose power falls by 3 dB per octave (1/f), unit RMS, shape (size,)."""
    rng = np.random.default_rng(seed)
    spectrum = rng.standard_normal(size // 2 + 1) + 1j * rng.standard_normal(size // 2 + 1)
    frequencies = np.arange(len(spectrum), dtype=float)
    frequencies[0] = 1.0  # no DC: weight the first bin as the second
    spectrum /= np.sqrt(frequencies)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=size)
    return noise / max(_rms(noise), 1e-12)


def add_noise(samples: np.ndarray, *, sample_rate: int, seed: int, snr_db: float) -> np.ndarray:
    """Pink noise at ``snr_db`` below the speech's power (:func:`active_power`), (n,) -> (n,).

    A silent clip comes back unchanged (no speech to measure the SNR on).
    """
    mono = _mono(samples)
    power = active_power(mono, sample_rate=sample_rate)
    if power == 0.0 or len(mono) < 2:
        return mono.copy()
    noise = pink_noise(len(mono), seed=seed) * np.sqrt(power / 10 ** (snr_db / 10))
    return (mono + noise).astype(np.float32)


def gain(samples: np.ndarray, *, sample_rate: int, seed: int = 0, db: float) -> np.ndarray:
    """Scale the level by ``db`` decibels, (n,) -> (n,). ``seed`` is not used."""
    return (_mono(samples) * 10 ** (db / 20)).astype(np.float32)


def cheap_microphone(samples: np.ndarray, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A cheap microphone's response: high-pass at 200 Hz (2nd order), a +6 dB presence peak
    at 3 kHz, low-pass at 7 kHz (4th order; none when the rate cannot hold 7 kHz).

    (n,) -> (n,) float32. Deterministic: ``seed`` is not used.
    """
    from scipy import signal

    mono = _mono(samples).astype(np.float64)
    out = signal.sosfilt(
        signal.butter(2, MIC_HIGHPASS_HZ, btype="highpass", fs=sample_rate, output="sos"), mono
    )
    if MIC_PEAK_HZ < sample_rate / 2:
        out = signal.sosfilt(_peaking(sample_rate), out)
    if MIC_LOWPASS_HZ < sample_rate / 2 * 0.95:
        out = signal.sosfilt(
            signal.butter(4, MIC_LOWPASS_HZ, btype="lowpass", fs=sample_rate, output="sos"), out
        )
    return out.astype(np.float32)


def _peaking(sample_rate: int) -> np.ndarray:
    """The presence peak as one second-order section (the Audio EQ Cookbook's peaking EQ)."""
    amplitude = 10 ** (MIC_PEAK_DB / 40)
    omega = 2 * np.pi * MIC_PEAK_HZ / sample_rate
    alpha = np.sin(omega) / (2 * MIC_PEAK_Q)
    b = [1 + alpha * amplitude, -2 * np.cos(omega), 1 - alpha * amplitude]
    a = [1 + alpha / amplitude, -2 * np.cos(omega), 1 - alpha / amplitude]
    return np.array([[*(np.array(b) / a[0]), 1.0, a[1] / a[0], a[2] / a[0]]])


def _noise(snr_db: float) -> Callable[..., np.ndarray]:
    def apply(samples: np.ndarray, *, sample_rate: int, seed: int = 0) -> np.ndarray:
        return add_noise(samples, sample_rate=sample_rate, seed=seed, snr_db=snr_db)

    return apply


def _quiet(samples: np.ndarray, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    return gain(samples, sample_rate=sample_rate, seed=seed, db=-20.0)


PERTURBATIONS: dict[str, Perturbation] = {
    item.name: item
    for item in (
        Perturbation("telephone", "8 kHz, 300-3400 Hz, 8-bit mu-law", telephone),
        Perturbation("mp3", "MP3 at 24 kb/s (16 kHz)", mp3),
        Perturbation("opus", "Opus at about 24 kb/s (16 kHz)", opus),
        Perturbation("reverb", "room, RT60 0.3-0.6 s", reverb),
        Perturbation("noise_20db", "pink noise, 20 dB SNR on the speech", _noise(20.0)),
        Perturbation("noise_10db", "pink noise, 10 dB SNR on the speech", _noise(10.0)),
        Perturbation("quiet", "level 20 dB lower", _quiet),
        Perturbation(
            "cheap_mic", "high-pass 200 Hz, +6 dB at 3 kHz, low-pass 7 kHz", cheap_microphone
        ),
    )
}


def names() -> tuple[str, ...]:
    """The registered perturbations' names, in registry order."""
    return tuple(PERTURBATIONS)


def perturb(samples: np.ndarray, *, name: str, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Apply the registered perturbation ``name``: (n,) or (n, channels) -> (n,) float32."""
    if name not in PERTURBATIONS:
        raise ConfigError(f"perturbation must be one of {list(PERTURBATIONS)}, got {name!r}")
    audio.check_sample_rate(sample_rate, "samples")
    mono = _mono(samples)
    if mono.size == 0:
        return mono
    return np.asarray(
        PERTURBATIONS[name].apply(mono, sample_rate=sample_rate, seed=seed), dtype=np.float32
    )


def _mono(samples: np.ndarray) -> np.ndarray:
    return audio.to_mono(np.asarray(samples))


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def _ratio(target: float, current: float) -> float:
    return target / current if current > 0 else 1.0


def _same_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad to ``length`` samples (resampling may be a sample off)."""
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))
