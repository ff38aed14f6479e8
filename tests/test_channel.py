import numpy as np
import pytest
from scipy import signal

from ser.errors import ConfigError
from ser.features import channel

RATE = 16000


def speech_like(rng: np.random.Generator, *, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """A harmonic burst (120 Hz voice, harmonics to 6 kHz) between 0.2 s of silence each side:
    speech-like enough for the filters, with a known active region [0.2 s, end - 0.2 s)."""
    times = np.arange(int(seconds * rate)) / rate
    voice = sum(
        np.sin(2 * np.pi * 120 * k * times + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 50)
    )
    voice = 0.1 * voice / np.max(np.abs(voice))
    edge = int(0.2 * rate)
    voice[:edge] = 0.0
    voice[-edge:] = 0.0
    return voice.astype(np.float32)


def band_share(samples: np.ndarray, rate: int, low: float, high: float) -> float:
    """The share of the signal's energy between low and high Hz."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    inside = (frequencies >= low) & (frequencies <= high)
    return float(spectrum[inside].sum() / spectrum.sum())


def tone_gain_db(name: str, frequency: float, rate: int = RATE) -> float:
    """How many dB perturbation ``name`` adds to a steady tone (middle half, past transients)."""
    times = np.arange(rate) / rate
    tone = (0.1 * np.sin(2 * np.pi * frequency * times)).astype(np.float32)
    out = channel.perturb(tone, name=name, sample_rate=rate, seed=0)
    middle = slice(rate // 4, 3 * rate // 4)
    return 20 * np.log10(np.std(out[middle]) / np.std(tone[middle]))


@pytest.mark.parametrize("name", channel.names())
@pytest.mark.parametrize("rate", [16000, 24000])
def test_each_perturbation_keeps_length_and_rate_and_is_deterministic(rng, name, rate):
    clip = speech_like(rng, rate=rate)
    first = channel.perturb(clip, name=name, sample_rate=rate, seed=5)
    again = channel.perturb(clip, name=name, sample_rate=rate, seed=5)
    assert first.shape == clip.shape and first.dtype == np.float32
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, clip, atol=1e-4)


@pytest.mark.parametrize("name", ["reverb", "noise_20db", "noise_10db"])
def test_random_perturbations_differ_between_seeds(rng, name):
    clip = speech_like(rng)
    first = channel.perturb(clip, name=name, sample_rate=RATE, seed=1)
    other = channel.perturb(clip, name=name, sample_rate=RATE, seed=2)
    assert not np.allclose(first, other)


def test_registry_names_what_the_benchmark_measures():
    assert set(channel.names()) == {
        "telephone",
        "mp3",
        "opus",
        "reverb",
        "noise_20db",
        "noise_10db",
        "quiet",
        "cheap_mic",
    }
    assert all(item.name == name for name, item in channel.PERTURBATIONS.items())


def test_unknown_perturbation_is_refused_by_name(rng):
    with pytest.raises(ConfigError, match="perturbation must be one of .*got 'radio'"):
        channel.perturb(speech_like(rng), name="radio", sample_rate=RATE)


def test_empty_clip_stays_empty():
    empty = np.zeros(0, dtype=np.float32)
    assert channel.perturb(empty, name="telephone", sample_rate=RATE).shape == (0,)


@pytest.mark.parametrize("rate", [16000, 24000, 44100])
def test_telephone_removes_energy_outside_300_to_3400_hz(rng, rate):
    noise = (0.1 * rng.standard_normal(rate)).astype(np.float32)
    before = 1 - band_share(noise, rate, 300, 3400)
    after = 1 - band_share(channel.telephone(noise, sample_rate=rate), rate, 300, 3400)
    assert before > 0.5
    assert after < 0.05
    # Nothing a narrowband line can carry above 4 kHz.
    assert band_share(channel.telephone(noise, sample_rate=rate), rate, 4100, rate / 2) < 1e-3


@pytest.mark.parametrize("name", ["mp3", "opus"])
def test_codec_output_differs_but_correlates(rng, name):
    clip = speech_like(rng)
    decoded = channel.perturb(clip, name=name, sample_rate=RATE)
    assert np.corrcoef(clip, decoded)[0, 1] > 0.9
    error = np.mean((decoded - clip) ** 2) / np.mean(clip**2)
    assert error > 1e-4  # lossy: not the input back


@pytest.mark.parametrize(("format", "subtype"), [("MP3", "MPEG_LAYER_III"), ("OGG", "OPUS")])
def test_codec_bitrate_is_between_16_and_32_kbps(rng, format, subtype):
    seconds = 3.0
    noise = (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
    encoded = channel.encode(noise, sample_rate=RATE, format=format, subtype=subtype)
    kbps = len(encoded) * 8 / seconds / 1000
    assert 16 <= kbps <= 32


def test_mp3_encoder_delay_is_removed(rng):
    clip = speech_like(rng)
    decoded = channel.mp3(clip, sample_rate=RATE)
    lags = signal.correlation_lags(len(decoded), len(clip))
    best = lags[np.argmax(signal.correlate(decoded, clip))]
    assert abs(best) <= 2


@pytest.mark.parametrize("rt60", [0.3, 0.45, 0.6])
def test_impulse_response_decays_60_db_in_rt60(rt60):
    response = channel.impulse_response(sample_rate=RATE, rt60=rt60, seed=0)
    # Schroeder's backward integration; the slope from -5 to -25 dB, times 3 (T20).
    energy = np.cumsum(response[::-1] ** 2)[::-1]
    decay = 10 * np.log10(energy / energy[0])
    start, stop = np.argmax(decay < -5), np.argmax(decay < -25)
    assert start > 0 and stop > start
    estimated = 3 * (stop - start) / RATE
    assert estimated == pytest.approx(rt60, rel=0.2)


def test_impulse_response_refuses_a_non_positive_rt60():
    with pytest.raises(ConfigError, match="rt60 must be > 0 seconds, got 0"):
        channel.impulse_response(sample_rate=RATE, rt60=0, seed=0)


def test_reverb_smears_the_clip_past_its_end_and_keeps_its_level(rng):
    clip = speech_like(rng)
    wet = channel.reverb(clip, sample_rate=RATE, seed=0)
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(clip**2)), rel=1e-3)
    # The burst ends 0.2 s before the clip does: the room rings on into that silence.
    tail = wet[-int(0.15 * RATE) :]
    assert np.sqrt(np.mean(tail**2)) > 1e-3


@pytest.mark.parametrize("snr_db", [20.0, 10.0])
def test_noise_snr_on_the_speech_is_within_half_a_db(rng, snr_db):
    clip = speech_like(rng)
    name = f"noise_{int(snr_db)}db"
    noisy = channel.perturb(clip, name=name, sample_rate=RATE, seed=3)
    noise = noisy - clip
    active = slice(int(0.2 * RATE), len(clip) - int(0.2 * RATE))
    measured = 10 * np.log10(np.mean(clip[active] ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.5)
    # The silence around the speech does not count: on the whole clip the SNR is lower.
    whole = 10 * np.log10(np.mean(clip**2) / np.mean(noise**2))
    assert whole < snr_db - 1


def test_pink_noise_falls_3_db_per_octave():
    noise = channel.pink_noise(2**16, seed=0)
    frequencies, power = signal.welch(noise, fs=RATE, nperseg=4096)
    low = power[(frequencies >= 250) & (frequencies < 500)].mean()
    high = power[(frequencies >= 2000) & (frequencies < 4000)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(9.0, abs=1.0)  # three octaves


def test_silent_clip_gets_no_noise():
    silence = np.zeros(RATE, dtype=np.float32)
    np.testing.assert_array_equal(
        channel.perturb(silence, name="noise_10db", sample_rate=RATE), silence
    )


def test_quiet_is_20_db_lower(rng):
    clip = speech_like(rng)
    quiet = channel.perturb(clip, name="quiet", sample_rate=RATE)
    ratio = 20 * np.log10(np.max(np.abs(quiet)) / np.max(np.abs(clip)))
    assert ratio == pytest.approx(-20.0, abs=1e-3)


@pytest.mark.parametrize(
    ("frequency", "low", "high"),
    [
        (80.0, -30.0, -10.0),  # below the 200 Hz high-pass
        (1000.0, -1.0, 1.5),  # the flat middle
        (3000.0, 5.0, 7.0),  # the presence peak
        (7800.0, -60.0, -10.0),  # past the 7 kHz low-pass
    ],
)
def test_cheap_microphone_response(frequency, low, high):
    assert low <= tone_gain_db("cheap_mic", frequency) <= high


def test_cheap_microphone_low_pass_at_44_1_khz():
    assert tone_gain_db("cheap_mic", 12000.0, rate=44100) < -20


def test_the_params_name_exactly_the_registered_channels():
    from ser.params import CHANNELS

    assert CHANNELS == channel.names()
