import dataclasses

import librosa
import numpy as np
import pytest
import soundfile as sf

from ser.features import extract
from ser.params import parse_params
from ser.serve.recording import cut_windows


@pytest.fixture
def feature_params(params_dict):
    return parse_params(params_dict).features


@pytest.fixture
def clip(tiny_corpus):
    return tiny_corpus / "speech" / "Actor_01" / "03-01-05-02-01-01-01.wav"


def test_mfcc_features_have_the_fixed_shape_and_are_normalised(feature_params, clip):
    feature_params = dataclasses.replace(feature_params, pad="zeros", normalize="utterance")
    matrix = extract.featurize_file(clip, feature_params)
    assert matrix.shape == extract.shape(feature_params) == (301, 40 + 40 + 64 + 4)
    assert matrix.dtype == np.float32 and np.isfinite(matrix).all()
    voiced = matrix[np.abs(matrix).sum(axis=1) > 0]
    # Each coefficient is standardised over the clip's own frames.
    assert np.allclose(voiced.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(voiced[:, :40].std(axis=0), 1, atol=1e-3)


def test_features_do_not_depend_on_the_file_sample_rate_or_channels(feature_params, clip, tmp_path):
    samples, rate = sf.read(clip)
    stereo = tmp_path / "stereo48k.wav"
    sf.write(
        stereo,
        np.stack([librosa.resample(samples, orig_sr=rate, target_sr=48000)] * 2, axis=1),
        48000,
    )
    original = extract.featurize_file(clip, feature_params)
    converted = extract.featurize_file(stereo, feature_params)
    assert converted.shape == original.shape
    assert np.corrcoef(original.ravel(), converted.ravel())[0, 1] > 0.95


def test_short_clips_repeat_their_frames_to_fill_the_window(feature_params, rng):
    samples = rng.standard_normal(16000).astype(np.float32)  # 1 s: 101 frames
    repeated = extract.compute(samples, feature_params)
    zeros = extract.compute(samples, dataclasses.replace(feature_params, pad="zeros"))
    np.testing.assert_array_equal(repeated[:101], zeros[:101])
    np.testing.assert_array_equal(repeated[101:202], repeated[:101])
    assert not zeros[101:].any()


def test_short_and_empty_audio_is_padded_not_an_error(feature_params):
    short = extract.compute(np.full(400, 0.1, dtype=np.float32), feature_params)
    assert short.shape == (301, 148) and np.isfinite(short).all()
    assert not extract.compute(np.zeros(0, dtype=np.float32), feature_params).any()


def test_feature_blocks_are_mfcc_deltas_log_mels_and_prosody(feature_params):
    rate = feature_params.sample_rate
    time = np.arange(2 * rate) / rate
    # A tone gliding from 150 to 300 Hz that gets louder: F0 and energy both rise.
    pitch = 150 * 2 ** (time / 2)
    samples = (0.05 + 0.4 * time / 2) * np.sin(2 * np.pi * np.cumsum(pitch) / rate)
    matrix = extract.compute(samples.astype(np.float32), dataclasses.replace(feature_params))
    n = 2 * rate // feature_params.hop_length + 1
    mfcc = extract.compute(
        samples.astype(np.float32), dataclasses.replace(feature_params, mels=0, prosody=False)
    )
    np.testing.assert_allclose(matrix[:n, :80], mfcc[:n], rtol=1e-5, atol=1e-4)
    log_f0, log_rms = matrix[5 : n - 5, 144], matrix[5 : n - 5, 146]
    assert np.exp(log_f0[:10]).mean() == pytest.approx(150, rel=0.1)
    assert np.exp(log_f0[-10:]).mean() == pytest.approx(300, rel=0.1)
    assert log_rms[-10:].mean() > log_rms[:10].mean() + 1.0
    assert (matrix[5 : n - 5, 145] > 0).mean() > 0.9  # the F0 delta is rising


def test_window_cuts_long_audio(feature_params, rng):
    long = rng.standard_normal(16000 * 20).astype(np.float32)
    assert len(extract.select_window(long, feature_params)) == 48000


def test_leading_silence_is_trimmed(feature_params, rng):
    voice = 0.5 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 200).astype(np.float32)
    padded = np.concatenate([np.zeros(8000, dtype=np.float32), voice])
    assert len(extract.select_window(padded, feature_params)) < 16000 + 1000


def test_noise_before_and_after_the_speech_is_trimmed_with_trim_noise_db(feature_params):
    from tests.conftest import voice_between_pauses

    rate = feature_params.sample_rate
    clean = voice_between_pauses(rate)
    speech = extract.trim_silence(clean)
    assert abs(len(speech) - rate) < 0.1 * rate
    peak_only = dataclasses.replace(feature_params, trim_noise_db=None)
    floor = dataclasses.replace(feature_params, trim_noise_db=10.0)
    for snr in (20.0, 10.0):
        noisy = voice_between_pauses(rate, snr_db=snr)
        # 40 dB below the peak is far under the noise: the pauses stay, noise alone.
        assert len(extract.trim_silence(noisy)) == len(noisy)
        assert len(extract.select_window(noisy, peak_only)) == len(noisy)
        trimmed = extract.select_window(noisy, floor)
        # Most of the pauses go (pink noise's loudest frames, 32 ms of its lowest tones,
        # can keep a little), and no more than the voice's quietest ends, under the noise.
        assert 0.6 * rate < len(trimmed) < len(noisy) - 0.5 * rate
    # A clean recording loses what it lost before.
    np.testing.assert_array_equal(extract.select_window(clean, floor), speech)
    # A steady sound with no pause (its floor close to its peak) keeps nearly all of it, and
    # digital silence is kept whole, as without the floor.
    steady = (0.1 * np.random.default_rng(1).standard_normal(2 * rate)).astype(np.float32)
    assert len(extract.trim_silence(steady, noise_db=10.0)) > 0.9 * len(steady)
    silence = np.zeros(rate, dtype=np.float32)
    assert len(extract.trim_silence(silence, noise_db=10.0)) == len(extract.trim_silence(silence))


def test_seed_features_equal_the_2019_recipe(feature_params, clip):
    seed = dataclasses.replace(feature_params, kind="seed")
    matrix = extract.featurize_file(clip, seed)
    assert matrix.shape == extract.shape(seed) == (259, 1)
    y, sr = librosa.load(clip, sr=44100, offset=0.5, duration=3)
    reference = np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13), axis=0)
    np.testing.assert_allclose(matrix[: len(reference), 0], reference, rtol=1e-5, atol=1e-4)
    assert not matrix[len(reference) :].any()  # zero-padded


def test_featurize_many_in_parallel_equals_serial_and_reports_failures(
    feature_params, clip, tmp_path
):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    paths = [str(clip), str(broken), str(clip)]
    serial, reasons = extract.featurize_many(paths, feature_params, n_jobs=1)
    parallel, parallel_reasons = extract.featurize_many(paths, feature_params, n_jobs=2)
    assert reasons == parallel_reasons
    assert reasons[0] == "" and reasons[1].startswith("unreadable")
    np.testing.assert_array_equal(serial, parallel)


def test_store_round_trip(feature_params, tmp_path, rng):
    matrix = rng.standard_normal((3, 301, 80)).astype(np.float32)
    extract.save_store(
        tmp_path / "s",
        clip_ids=["a", "b", "c"],
        matrix=matrix,
        settings=extract.describe(feature_params),
    )
    ids, loaded, settings = extract.load_store(tmp_path / "s")
    assert ids == ["a", "b", "c"] and np.array_equal(loaded, matrix)
    assert settings["n_frames"] == 301 and "n_jobs" not in settings


def test_long_recordings_are_trimmed_like_librosa_without_framing_them_whole(rng):
    speech = 0.3 * rng.standard_normal(900_000)
    hum = 1e-4 * rng.standard_normal(200_000)  # quieter than 40 dB below the peak: silence
    tone = 0.2 * np.sin(np.arange(500_000) / 7)
    samples = np.concatenate([np.zeros(300_000), speech, hum, tone, np.zeros(123_457)])
    samples = samples.astype(np.float32)
    assert samples.size > extract.TRIM_BLOCKWISE_SAMPLES
    expected, _ = librosa.effects.trim(samples, top_db=40, frame_length=512, hop_length=128)
    np.testing.assert_array_equal(extract.trim_silence(samples), expected)
    silence = np.zeros(2_000_000, dtype=np.float32)  # no peak to be below: librosa keeps it
    assert extract.trim_silence(silence).size == librosa.effects.trim(silence)[0].size


def test_long_pauses_inside_a_recording_are_shortened_with_max_pause(feature_params):
    from tests.conftest import voice_between_pauses

    rate = feature_params.sample_rate
    two = np.concatenate([voice_between_pauses(rate)] * 2)  # a second's pause between voices
    kept = extract.trim_silence(two, noise_db=10.0)
    assert abs(len(kept) - 3 * rate) < 0.05 * rate
    short = extract.trim_silence(two, noise_db=10.0, max_pause=rate // 5)
    # The pause kept is 0.2 s where only quiet frames reach, and the edges of the loud
    # frames beside it (32 ms frames).
    assert 2.2 * rate <= len(short) < 2.27 * rate
    # Only silence went: every bit of the voices' energy is still there.
    assert np.sum(np.square(short, dtype=np.float64)) == pytest.approx(
        np.sum(np.square(two, dtype=np.float64)), rel=1e-4
    )
    assert len(extract.trim_silence(two, noise_db=10.0, max_pause=2 * rate)) == len(kept)
    # The params' setting, in the window of a clip and in the windows of a recording.
    params = dataclasses.replace(feature_params, max_pause_seconds=0.2)
    assert params.window_seconds * rate > len(short)
    np.testing.assert_array_equal(extract.select_window(two, params), short)
    [(_, window)] = cut_windows(two, params)
    np.testing.assert_array_equal(window, short)
    # Under background noise the pause is noise, and goes as a silent one does.
    noisy = np.concatenate([voice_between_pauses(rate, snr_db=20.0)] * 2)
    assert len(extract.trim_silence(noisy, noise_db=10.0, max_pause=rate // 5)) < 2.4 * rate
    assert len(extract.trim_silence(noisy, noise_db=10.0)) > 2.8 * rate


def test_speed_copies_from_the_analysis_are_close_to_resampled_ones(feature_params):
    from ser.features import audio

    rate = feature_params.sample_rate
    time = np.arange(int(1.5 * rate)) / rate
    # A voice-like tone: harmonics of an F0 gliding from 150 to 300 Hz, getting louder.
    phase = 2 * np.pi * np.cumsum(150 * 2 ** (time / 1.5)) / rate
    voice = sum(np.sin(h * phase) / h for h in range(1, 12)) * (0.05 + 0.3 * time)
    voice = voice.astype(np.float32)
    analysis = extract.analyse(voice, feature_params)
    own = extract.from_analysis(*analysis, feature_params)
    np.testing.assert_array_equal(own, extract.compute(voice, feature_params))
    for speed in (0.9, 1.1):
        target = extract.played_rate(rate, speed)
        played = extract.compute(
            audio.resample(voice, orig_sr=rate, target_sr=target), feature_params
        )
        speed = rate / target
        size = int(np.ceil(voice.size / speed))
        frames = extract.speed_frames(0, size, speed, feature_params, analysis[0].shape[1])
        copy = extract.from_analysis(*analysis, feature_params, speed=speed, frames=frames)
        inside = slice(4, size // feature_params.hop_length - 4)
        for columns in (slice(0, 40), slice(40, 80), slice(80, 144), 144, 146):
            derived = np.abs(copy[inside, columns] - played[inside, columns]).mean()
            unchanged = np.abs(own[inside, columns] - played[inside, columns]).mean()
            # MFCCs, their deltas, log-mels, log F0, log energy: the copy played at that speed
            assert derived < 0.4 * unchanged, (speed, columns)
        # F0 moves with the speed: the glide's frames, as the resampled copy's.
        np.testing.assert_allclose(copy[inside, 144], played[inside, 144], atol=0.02)


def test_level_db_makes_the_features_blind_to_the_recording_gain(feature_params, clip):
    samples = extract.load_window(clip, feature_params)
    levelled = dataclasses.replace(feature_params, level_db=-25.0)
    loud, quiet = extract.compute(samples, levelled), extract.compute(0.1 * samples, levelled)
    np.testing.assert_allclose(loud, quiet, atol=1e-3)
    # As recorded (the default), 20 dB less is 20 dB less in every log-mel band.
    as_recorded = extract.compute(samples, feature_params)
    assert not np.allclose(as_recorded, extract.compute(0.1 * samples, feature_params), atol=1)


def test_log_mels_by_default_are_librosas_mel_spectrogram_in_db(feature_params, clip):
    samples = extract.load_window(clip, feature_params)
    matrix = extract.compute(samples, feature_params)
    p = feature_params
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=samples, sr=p.sample_rate, n_fft=p.n_fft, hop_length=p.hop_length, n_mels=p.mels
        )
    ).T
    first = 2 * p.n_mfcc  # the log-mels follow the MFCCs and their deltas
    np.testing.assert_allclose(
        matrix[: len(reference), first : first + p.mels], reference, rtol=1e-4, atol=1e-3
    )
