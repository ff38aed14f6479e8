"""A procedural speech-emotion corpus laid out and named exactly like RAVDESS.

The corpus is NOT real speech. Every clip is rendered from a seed by a small source-filter
synthesiser: a glottal-pulse source with an F0 contour (declination, accents, emotion-dependent
movement, jitter, shimmer, breathiness) is passed through formant resonators, one vowel per
syllable, with consonant-like noise bursts between syllables, leading and trailing silence and a
little background noise.

Layout and names follow RAVDESS: ``Actor_XX/03-01-EE-II-SS-RR-XX.wav`` (audio-only modality,
speech channel, emotion, intensity, statement, repetition, actor; odd actors are male, even
actors female; neutral has only normal intensity), 60 clips per actor.

What varies, and where it comes from:

* Actor traits (F0, vocal-tract length, tempo, brightness, breathiness, expressiveness and a
  personal way of rendering each emotion) come from an RNG seeded with ``(seed, actor)`` only.
* Everything else in a clip comes from an RNG seeded with
  ``(seed, actor, emotion, intensity, statement, repetition)``, so any subset of actors renders
  byte-identical files to the full corpus.
* Emotions differ by pitch level and range, final pitch movement, tremor, tempo, loudness,
  spectral tilt, voice quality (open quotient, breathiness), jitter, shimmer and first-formant
  shift. Strong intensity exaggerates the deviation from neutral. Pairs that are close in real
  speech are close here too (calm/neutral, happy/surprised, fearful/sad, angry/disgust), and
  actor differences overlap with emotion cues, so held-out-actor classification is well above
  chance but far from perfect.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ser.data.corpora import ravdess
from ser.data.corpora.source import Corpus, Parse
from ser.errors import ConfigError
from ser.fsutil import atomic_dir

if TYPE_CHECKING:
    from ser.params import DataParams

# scipy, soundfile and tqdm are imported where they are used: the corpus registry imports this
# module whenever params.yaml is validated, and only rendering needs them.

__all__ = ["CORPUS", "generate", "synthesize_clip"]

_MODALITY = 3  # audio-only
_CHANNEL = 1  # speech
_N_ACTORS = 24
_MIN_SAMPLE_RATE = 8000

# Emotion codes as in RAVDESS.
_NEUTRAL, _CALM, _HAPPY, _SAD, _ANGRY, _FEARFUL, _DISGUST, _SURPRISED = range(1, 9)

# Prosodic and voice-quality parameters, in the order of the rows of _DEVIATIONS.
_PARAMS = (
    "pitch_st",  # mean F0 shift, semitones
    "range_st",  # accent height, semitones
    "tempo",  # log speaking-rate factor
    "level_db",  # peak level, dB
    "tilt",  # brightness: > 0 brighter (less low-pass)
    "oq",  # glottal open quotient: larger = softer, breathier
    "jitter",  # relative F0 perturbation
    "shimmer",  # relative amplitude perturbation
    "breath",  # aspiration noise relative to voicing
    "f1",  # relative first-formant shift
    "fscale",  # relative shift of all formants
    "final_st",  # pitch movement on the last syllable, semitones
    "tremor_st",  # 5-7 Hz F0 tremor depth, semitones
)
_P = {name: i for i, name in enumerate(_PARAMS)}

_NEUTRAL_VALUES = np.array(
    [0.0, 2.5, 0.0, -6.0, 0.0, 0.60, 0.006, 0.04, 0.0, 0.0, 0.0, -1.0, 0.0], dtype=np.float64
)

# Deviation of each emotion from neutral at normal intensity (rows: emotions 1..8).
_DEVIATIONS = np.array(
    [
        # pitch range  tempo  level  tilt   oq     jitter  shim   breath f1     fscale final tremor
        [0.0, 0.0, 0.00, 0.0, 0.00, 0.00, 0.000, 0.00, 0.00, 0.00, 0.00, 0.0, 0.0],  # neutral
        [-0.7, -0.6, -0.06, -1.5, -0.12, 0.04, -0.001, -0.01, 0.02, -0.01, 0.00, -0.3, 0.0],  # calm
        [3.0, 2.0, 0.06, 3.0, 0.25, -0.05, 0.000, 0.00, 0.00, 0.04, 0.03, 1.0, 0.0],  # happy
        [-1.8, -1.3, -0.16, -3.0, -0.35, 0.08, 0.004, 0.02, 0.05, -0.04, -0.02, -1.0, 0.15],  # sad
        [2.6, 1.6, 0.08, 5.0, 0.60, -0.13, 0.003, 0.03, 0.00, 0.09, 0.00, -2.0, 0.0],  # angry
        [1.4, -0.9, 0.06, -1.5, -0.2, 0.06, 0.007, 0.03, 0.05, -0.02, 0.00, 0.3, 0.45],  # fearful
        [0.4, 1.1, -0.07, 3.0, 0.40, -0.09, 0.005, 0.02, 0.01, 0.05, -0.01, -1.8, 0.0],  # disgust
        [3.8, 2.5, 0.00, 2.5, 0.20, -0.03, 0.000, 0.00, 0.01, 0.05, 0.01, 4.0, 0.0],  # surprised
    ],
    dtype=np.float64,
)

# Clip-to-clip variation (standard deviations) of each parameter.
_CLIP_SD = np.array(
    [0.6, 0.4, 0.04, 1.0, 0.06, 0.02, 0.001, 0.01, 0.01, 0.015, 0.01, 0.5, 0.05],
    dtype=np.float64,
)

_INTENSITY_GAIN = {1: 1.0, 2: 1.7}

# Male adult vowel formants (Hz) F1..F4 and bandwidths (Hz).
_VOWELS = {
    "i": (270.0, 2290.0, 3010.0, 3600.0),
    "e": (530.0, 1840.0, 2480.0, 3500.0),
    "a": (730.0, 1090.0, 2440.0, 3400.0),
    "o": (450.0, 900.0, 2400.0, 3350.0),
    "O": (570.0, 840.0, 2410.0, 3400.0),
    "u": (300.0, 870.0, 2240.0, 3350.0),
    "@": (500.0, 1500.0, 2500.0, 3500.0),
    "ae": (660.0, 1720.0, 2410.0, 3500.0),
}
_BANDWIDTHS = np.array([60.0, 90.0, 120.0, 180.0])


@dataclass(frozen=True)
class _Consonant:
    """A consonant: silent closure, a noise burst or frication, and residual voicing."""

    closure_s: float
    noise_s: float
    centre_hz: float
    bandwidth_hz: float
    noise_gain: float
    voicing: float  # voicing amplitude kept during the consonant (0 = voiceless)


_CONSONANTS = {
    "": _Consonant(0.0, 0.0, 1000.0, 1000.0, 0.0, 0.0),
    "k": _Consonant(0.045, 0.030, 2000.0, 800.0, 0.5, 0.0),
    "g": _Consonant(0.035, 0.015, 1800.0, 800.0, 0.4, 0.15),
    "t": _Consonant(0.040, 0.040, 4000.0, 1500.0, 0.45, 0.0),
    "d": _Consonant(0.030, 0.012, 3500.0, 1500.0, 0.35, 0.2),
    "b": _Consonant(0.035, 0.010, 900.0, 700.0, 0.35, 0.2),
    "s": _Consonant(0.0, 0.095, 5500.0, 2000.0, 0.35, 0.0),
    "z": _Consonant(0.0, 0.070, 5000.0, 2000.0, 0.25, 0.3),
    "dh": _Consonant(0.0, 0.050, 4000.0, 3000.0, 0.15, 0.3),
    "r": _Consonant(0.0, 0.050, 1500.0, 1000.0, 0.0, 0.45),
    "n": _Consonant(0.0, 0.055, 1000.0, 1000.0, 0.0, 0.3),
}

# (consonant, vowel, stress) per syllable.
_STATEMENTS = {
    # "Kids are talking by the door"
    1: (
        ("k", "i", 1.0),
        ("", "a", 0.2),
        ("t", "O", 1.0),
        ("k", "i", 0.3),
        ("b", "a", 0.6),
        ("dh", "@", 0.1),
        ("d", "o", 0.9),
    ),
    # "Dogs are sitting by the door" (a different syllable and vowel pattern)
    2: (
        ("d", "O", 1.0),
        ("r", "a", 0.2),
        ("s", "i", 1.0),
        ("t", "e", 0.3),
        ("n", "ae", 0.2),
        ("b", "a", 0.6),
        ("dh", "@", 0.1),
        ("d", "u", 0.9),
    ),
}

_CONTROL_RATE = 500.0  # Hz, rate of the F0 and amplitude control contours
_MIN_TOTAL_S = 2.5
_MAX_TOTAL_S = 3.8


@dataclass(frozen=True)
class _Actor:
    """Voice traits of one actor, drawn from the actor-level RNG."""

    male: bool
    f0_hz: float
    vtl_scale: float  # formant scaling (shorter vocal tract -> larger)
    tempo: float  # log speaking-rate offset
    tilt: float
    oq: float
    breath: float
    jitter: float
    range_scale: float
    level_db: float
    expressiveness: float
    style: np.ndarray  # (8, n_params) personal multiplicative factors on emotion deviations
    offsets: np.ndarray  # (8, n_params) personal additive offsets per emotion


def _actor_traits(seed: int, actor: int) -> _Actor:
    """The voice of one actor; depends on (seed, actor) only."""
    rng = np.random.default_rng([seed, actor])
    male = actor % 2 == 1
    f0 = rng.uniform(100.0, 140.0) if male else rng.uniform(180.0, 240.0)
    vtl = rng.uniform(0.95, 1.05) if male else rng.uniform(1.10, 1.22)
    n_params = len(_PARAMS)
    return _Actor(
        male=male,
        f0_hz=float(f0),
        vtl_scale=float(vtl),
        tempo=float(rng.normal(0.0, 0.07)),
        tilt=float(rng.normal(0.0, 0.12)),
        oq=float(rng.normal(0.0, 0.03)),
        breath=float(rng.uniform(0.01, 0.08)),
        jitter=float(rng.uniform(0.0, 0.004)),
        range_scale=float(rng.uniform(0.75, 1.3)),
        level_db=float(rng.normal(0.0, 1.0)),
        expressiveness=float(rng.uniform(0.65, 1.25)),
        style=rng.lognormal(0.0, 0.3, size=(8, n_params)),
        offsets=rng.normal(0.0, 0.5, size=(8, n_params)) * _CLIP_SD,
    )


def _clip_params(
    actor: _Actor, emotion: int, intensity: int, rng: np.random.Generator
) -> dict[str, float]:
    """The prosodic parameters of one clip: neutral + scaled deviation + actor + clip noise."""
    gain = _INTENSITY_GAIN[intensity] * actor.expressiveness
    values = (
        _NEUTRAL_VALUES
        + _DEVIATIONS[emotion - 1] * actor.style[emotion - 1] * gain
        + actor.offsets[emotion - 1]
        + rng.normal(0.0, 1.0, size=len(_PARAMS)) * _CLIP_SD
    )
    p = {name: float(values[i]) for name, i in _P.items()}
    p["range_st"] = max(0.3, p["range_st"] * actor.range_scale)
    p["tempo"] += actor.tempo
    p["level_db"] += actor.level_db
    p["tilt"] += actor.tilt
    p["oq"] = float(np.clip(p["oq"] + actor.oq, 0.35, 0.85))
    p["jitter"] = max(0.001, p["jitter"] + actor.jitter)
    p["shimmer"] = max(0.0, p["shimmer"])
    p["breath"] = max(0.0, p["breath"] + actor.breath)
    p["tremor_st"] = max(0.0, p["tremor_st"])
    return p


def _resonator(freq: float, bandwidth: float, sample_rate: int) -> np.ndarray:
    """Denominator of a 2-pole resonator (unit DC gain is applied by the caller)."""
    r = np.exp(-np.pi * bandwidth / sample_rate)
    theta = 2.0 * np.pi * freq / sample_rate
    return np.array([1.0, -2.0 * r * np.cos(theta), r * r])


def _cascade(
    freqs: Sequence[float], bandwidths: Sequence[float], sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """A cascade of resonators as one (b, a) filter with unit gain at DC."""
    a = np.ones(1)
    nyquist = sample_rate / 2.0
    for f, bw in zip(freqs, bandwidths, strict=True):
        if f < 0.9 * nyquist:
            a = np.convolve(a, _resonator(f, bw, sample_rate))
    return np.array([a.sum()]), a


_TABLE_SIZE = 4096


def _glottal_tables(open_quotient: float) -> tuple[np.ndarray, np.ndarray]:
    """One period of glottal flow (scaled) and the aspiration-noise weight, per table index."""
    frac = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    tp = 0.6 * open_quotient
    opening = 0.5 - 0.5 * np.cos(np.pi * np.minimum(frac, tp) / tp)
    closing = np.cos(0.5 * np.pi * np.clip((frac - tp) / (open_quotient - tp), 0.0, 1.0))
    pulse = np.where(frac < tp, opening, np.where(frac < open_quotient, closing, 0.0))
    weight = np.where(frac < open_quotient, 1.0, 0.4).astype(np.float32)
    return pulse / (4.0 * np.pi), weight


def _smooth_noise(rng: np.random.Generator, n_points: int, n_samples: int) -> np.ndarray:
    """Unit-variance noise at n_points control points, linearly interpolated to n_samples."""
    points = rng.standard_normal(n_points)
    return np.interp(np.linspace(0.0, n_points - 1.0, n_samples), np.arange(n_points), points)


def _validate_clip_args(
    *, actor: int, emotion: int, intensity: int, statement: int, repetition: int, seed: int
) -> None:
    def _check(name: str, value: object, allowed: range) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value not in allowed
        ):
            raise ConfigError(
                f"{name} must be an integer in {allowed.start}..{allowed.stop - 1}, got {value!r}"
            )

    _check("actor", actor, range(1, _N_ACTORS + 1))
    _check("emotion", emotion, range(1, 9))
    _check("intensity", intensity, range(1, 3))
    _check("statement", statement, range(1, 3))
    _check("repetition", repetition, range(1, 3))
    if emotion == _NEUTRAL and intensity != 1:
        raise ConfigError("intensity must be 1 (normal) for emotion 1 (neutral), got 2")
    _validate_seed(seed)


def _validate_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def _validate_sample_rate(sample_rate: int) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | np.integer)
        or sample_rate < _MIN_SAMPLE_RATE
    ):
        raise ConfigError(
            f"sample_rate must be an integer >= {_MIN_SAMPLE_RATE} Hz, got {sample_rate!r}"
        )


def synthesize_clip(
    *,
    actor: int,
    emotion: int,
    intensity: int,
    statement: int,
    repetition: int,
    seed: int,
    sample_rate: int,
) -> np.ndarray:
    """Render one clip of the synthetic corpus.

    Args:
        actor: 1..24; odd actors are male, even actors female.
        emotion: RAVDESS emotion code 1..8 (neutral, calm, happy, sad, angry, fearful,
            disgust, surprised).
        intensity: 1 (normal) or 2 (strong); neutral has only 1.
        statement: 1 or 2 (two different syllable and vowel patterns).
        repetition: 1 or 2.
        seed: corpus seed, a non-negative integer.
        sample_rate: output sample rate in Hz, at least 8000.

    Returns:
        A float32 mono signal in [-1, 1], about 2.5-3.8 s long, peak-normalised to an
        emotion-, intensity- and actor-dependent level below 1.0.

    Raises:
        ConfigError: an argument is out of range.
    """
    from scipy.signal import lfilter

    _validate_clip_args(
        actor=actor,
        emotion=emotion,
        intensity=intensity,
        statement=statement,
        repetition=repetition,
        seed=seed,
    )
    _validate_sample_rate(sample_rate)
    sr = int(sample_rate)
    voice = _actor_traits(int(seed), int(actor))
    rng = np.random.default_rng(
        [int(seed), int(actor), int(emotion), int(intensity), int(statement), int(repetition)]
    )
    p = _clip_params(voice, int(emotion), int(intensity), rng)
    syllables = _STATEMENTS[int(statement)]
    n_syll = len(syllables)

    # --- timing ------------------------------------------------------------------------------
    rate = float(np.exp(p["tempo"]))
    stress = np.array([s for _, _, s in syllables])
    vowel_s = 0.20 * (0.75 + 0.5 * stress) * rng.uniform(0.9, 1.1, n_syll) / rate
    vowel_s[-1] *= 1.4  # final lengthening
    cons = [_CONSONANTS[c] for c, _, _ in syllables]
    cons_s = np.array([c.closure_s + c.noise_s for c in cons]) / np.sqrt(rate)
    cons_s = np.maximum(cons_s, 0.02)  # every syllable gets a short onset
    speech_s = float(vowel_s.sum() + cons_s.sum())
    lead_s = rng.uniform(0.3, 0.6)
    trail_s = rng.uniform(0.3, 0.5)
    if speech_s > _MAX_TOTAL_S - lead_s - trail_s:
        squeeze = (_MAX_TOTAL_S - lead_s - trail_s) / speech_s
        vowel_s *= squeeze
        cons_s *= squeeze
        speech_s *= squeeze
    trail_s = max(trail_s, _MIN_TOTAL_S - lead_s - speech_s)
    total_s = lead_s + speech_s + trail_s
    n = int(round(total_s * sr))

    syll_start = lead_s + np.concatenate([[0.0], np.cumsum(vowel_s + cons_s)[:-1]])
    vowel_start = syll_start + cons_s
    vowel_end = vowel_start + vowel_s
    vowel_mid = 0.5 * (vowel_start + vowel_end)

    # --- control contours (F0 in semitones, voicing amplitude) --------------------------------
    n_ctrl = int(np.ceil(total_s * _CONTROL_RATE)) + 2
    tc = np.arange(n_ctrl) / _CONTROL_RATE
    progress_t = np.clip((tc - lead_s) / speech_s, 0.0, 1.0)
    semis = p["pitch_st"] - 2.0 * progress_t  # declination
    accents = stress * p["range_st"] * rng.uniform(0.6, 1.2, n_syll)
    width = np.maximum(vowel_s * 0.6, 0.04)
    semis = semis + (
        accents[:, None] * np.exp(-0.5 * ((tc[None, :] - vowel_mid[:, None]) / width[:, None]) ** 2)
    ).sum(axis=0)
    final = np.clip((tc - vowel_start[-1]) / vowel_s[-1], 0.0, 1.0)
    semis = semis + p["final_st"] * final
    if p["tremor_st"] > 0.0:
        semis = semis + p["tremor_st"] * np.sin(
            2.0 * np.pi * rng.uniform(5.0, 7.0) * tc + rng.uniform(0.0, 2.0 * np.pi)
        )
    semis = semis + 0.3 * _smooth_noise(rng, max(2, int(total_s * 4)), n_ctrl)  # slow drift
    # Jitter: fast F0 perturbation at the control rate (relative -> semitones).
    semis = semis + 17.3 * p["jitter"] * rng.standard_normal(n_ctrl)

    # Voicing envelope: raised-cosine ramps at the vowel edges; consonant residual voicing.
    ramp = 0.025
    rise = np.clip((tc[None, :] - vowel_start[:, None]) / ramp, 0.0, 1.0)
    fall = np.clip((vowel_end[:, None] - tc[None, :]) / (ramp * 1.6), 0.0, 1.0)
    vowel_env = 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))
    syll_gain = (0.55 + 0.45 * stress) * rng.uniform(0.85, 1.15, n_syll)
    env = (vowel_env * syll_gain[:, None]).sum(axis=0)
    for i, c in enumerate(cons):
        if c.voicing > 0.0:
            inside = (tc >= syll_start[i]) & (tc < vowel_start[i])
            env[inside] = np.maximum(env[inside], c.voicing * syll_gain[i])
    env = env * (1.0 + p["shimmer"] * rng.standard_normal(n_ctrl))  # shimmer

    # --- glottal source at the sample rate ----------------------------------------------------
    # Per-sample phase increment (cycles per sample) from the F0 contour.
    sample_pos = np.arange(n, dtype=np.float64)
    step = np.interp(sample_pos, tc * sr, (voice.f0_hz / sr) * 2.0 ** (semis / 12.0))
    amp = np.interp(sample_pos, tc * sr, env)
    phase = np.cumsum(step)
    phase += rng.uniform()
    # One period of the glottal flow (Rosenberg-like pulse) as a lookup table.
    pulse_table, open_table = _glottal_tables(p["oq"])
    index = (phase * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)
    pulse = pulse_table[index]
    source = np.diff(pulse, prepend=pulse[0])  # flow derivative
    source /= step  # per unit phase, so the level does not depend on F0
    breath = rng.standard_normal(n, dtype=np.float32)
    breath *= open_table[index]
    source += p["breath"] * breath
    source *= amp

    # Spectral tilt: a one-pole low-pass, stronger for soft voices, weaker for bright ones.
    pole = float(np.clip(0.35 - 0.4 * p["tilt"], 0.0, 0.9))
    source = lfilter([1.0 - pole], [1.0, -pole], source)

    # --- formant filtering, one vowel per syllable, cross-faded and overlap-added -------------
    bounds = np.round(np.append(syll_start, vowel_end[-1] + 0.05) * sr).astype(int)
    bounds = np.clip(bounds, 0, n)
    fade = max(1, int(0.008 * sr))  # half-length of the cross-fade between syllables
    ring = int(0.04 * sr)
    out = np.zeros(n + 2 * fade + ring)
    padded = np.concatenate([np.zeros(fade), source, np.zeros(fade)])
    ramp_up = (np.arange(2 * fade) + 0.5) / (2 * fade)
    scale = voice.vtl_scale * (1.0 + p["fscale"])
    bw_scale = 1.0 + 3.0 * p["breath"]
    for i, (_, vowel, _) in enumerate(syllables):
        formants = np.array(_VOWELS[vowel]) * scale
        formants[0] *= 1.0 + p["f1"]
        formants = formants * rng.uniform(0.97, 1.03, 4)
        b, a = _cascade(formants, _BANDWIDTHS * bw_scale, sr)
        lo, hi = bounds[i], bounds[i + 1] + 2 * fade  # indices into padded
        if hi - lo <= 4 * fade:
            continue
        segment = np.concatenate([padded[lo:hi], np.zeros(ring)])
        if i > 0:
            segment[: 2 * fade] *= ramp_up
        if i < n_syll - 1:
            segment[hi - lo - 2 * fade : hi - lo] *= ramp_up[::-1]
        out[lo : hi + ring] += lfilter(b, a, segment)
    out = out[fade : fade + n]

    # --- consonant noise ----------------------------------------------------------------------
    voiced_peak = float(np.max(np.abs(out))) or 1.0
    for i, c in enumerate(cons):
        if c.noise_gain <= 0.0:
            continue
        noise_start = syll_start[i] + c.closure_s / np.sqrt(rate)
        lo = int(round(noise_start * sr))
        hi = int(round(vowel_start[i] * sr))
        if hi - lo < 8:
            continue
        centre = min(c.centre_hz * voice.vtl_scale, 0.8 * sr / 2.0)
        b, a = _cascade([centre], [c.bandwidth_hz], sr)
        burst = lfilter([1.0], a, rng.standard_normal(hi - lo))
        burst /= np.max(np.abs(burst)) or 1.0
        shape = (
            np.hanning(hi - lo) ** 0.5
            if c.closure_s == 0.0
            else np.exp(-np.linspace(0, 4, hi - lo))
        )
        out[lo:hi] += burst * shape * c.noise_gain * voiced_peak * (1.0 + 0.5 * p["tilt"])

    # --- background noise and level ------------------------------------------------------------
    speech_peak = float(np.max(np.abs(out))) or 1.0
    noise_db = rng.uniform(-55.0, -45.0)
    out += rng.standard_normal(n, dtype=np.float32) * speech_peak * 10.0 ** (noise_db / 20.0)
    level_db = min(p["level_db"], -0.5)
    out *= 10.0 ** (level_db / 20.0) / (float(np.max(np.abs(out))) or 1.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _clip_name(actor: int, emotion: int, intensity: int, statement: int, repetition: int) -> str:
    codes = (_MODALITY, _CHANNEL, emotion, intensity, statement, repetition, actor)
    return "-".join(f"{code:02d}" for code in codes) + ".wav"


def _clip_codes() -> Iterator[tuple[int, int, int, int]]:
    """(emotion, intensity, statement, repetition) for the 60 clips of one actor."""
    for emotion in range(1, 9):
        for intensity in (1,) if emotion == _NEUTRAL else (1, 2):
            for statement in (1, 2):
                for repetition in (1, 2):
                    yield emotion, intensity, statement, repetition


def _write_atomic(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(tmp, audio, sample_rate, format="WAV", subtype="PCM_16")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate(
    out_dir: Path,
    *,
    seed: int = 0,
    actors: Sequence[int] = range(1, 25),
    sample_rate: int = 16000,
    progress: bool | None = None,
) -> list[Path]:
    """Write the corpus under out_dir (Actor_XX/...wav, mono 16-bit PCM WAV via soundfile).

    Existing files are overwritten; each file is written to a temporary name in its folder and
    then renamed into place, so a reader never sees a half-written clip.

    Args:
        out_dir: folder to write into; created if missing.
        seed: corpus seed, a non-negative integer. The same seed gives byte-identical files.
        actors: actor numbers in 1..24 (odd = male, even = female); duplicates are ignored.
        sample_rate: sample rate in Hz, at least 8000.
        progress: show a tqdm bar on stderr; None shows one only when stderr is a terminal.

    Returns:
        The paths of the written files, sorted.

    Raises:
        ConfigError: seed, actors or sample_rate is not allowed.
    """
    from tqdm import tqdm

    _validate_seed(seed)
    _validate_sample_rate(sample_rate)
    actor_list = list(actors)
    if not actor_list:
        raise ConfigError("actors must name at least one actor in 1..24, got none")
    for actor in actor_list:
        if (
            isinstance(actor, bool)
            or not isinstance(actor, int | np.integer)
            or not 1 <= actor <= _N_ACTORS
        ):
            raise ConfigError(f"actors must be integers in 1..24, got {actor!r}")
    actor_list = sorted({int(a) for a in actor_list})
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())

    out_dir = Path(out_dir)
    jobs = [(actor, codes) for actor in actor_list for codes in _clip_codes()]
    paths: list[Path] = []
    with tqdm(total=len(jobs), desc="synthetic corpus", unit="clip", disable=not progress) as bar:
        for actor, (emotion, intensity, statement, repetition) in jobs:
            folder = out_dir / f"Actor_{actor:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / _clip_name(actor, emotion, intensity, statement, repetition)
            audio = synthesize_clip(
                actor=actor,
                emotion=emotion,
                intensity=intensity,
                statement=statement,
                repetition=repetition,
                seed=int(seed),
                sample_rate=int(sample_rate),
            )
            _write_atomic(path, audio, int(sample_rate))
            paths.append(path)
            bar.update(1)
    return sorted(paths)


def _materialise(
    params: DataParams, out_dir: Path, *, cache_dir: Path, progress: bool | None
) -> None:
    """Render the corpus as RAVDESS's speech channel (nothing is downloaded, so no cache_dir)."""
    with atomic_dir(out_dir / "speech") as speech:
        generate(
            speech,
            seed=params.synthetic.seed,
            actors=params.synthetic.actors,
            sample_rate=params.synthetic.sample_rate,
            progress=progress,
        )


def _parser(params: DataParams, corpus_dir: Path) -> Parse:
    return ravdess.parse_path  # named exactly like RAVDESS


CORPUS = Corpus(
    name="synthetic",
    title="synthetic",
    speakers=tuple(range(1, _N_ACTORS + 1)),
    codes=(),
    materialise=_materialise,
    parser=_parser,
    describe=lambda params: "synthetic: procedurally generated voices, NOT real speech",
)
