"""Predictor.predict_files: the same results as predict_file, in order, with worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.features import audio, extract
from ser.serve.predict import Predictor, speaker_moments
from ser.serve.recording import prepare


@pytest.fixture(scope="module")
def predictor(tiny_model) -> Predictor:
    return Predictor(tiny_model)


@pytest.fixture(scope="module")
def recordings(tiny_corpus, tmp_path_factory) -> list[Path]:
    """Clips, a long recording, a silent, a too-short, an undecodable file, a click in
    three seconds of silence and three seconds of hiss, mixed."""
    folder = tmp_path_factory.mktemp("recordings")
    clips = sorted((tiny_corpus / "speech" / "Actor_03").glob("*.wav"))[:5]
    speech, rate = sf.read(clips[0])
    sf.write(folder / "long.flac", np.tile(speech, 5), rate)
    sf.write(folder / "silent.wav", np.zeros(32000), 16000)
    sf.write(folder / "short.wav", 0.1 * np.ones(800), 16000)
    (folder / "broken.wav").write_bytes(b"RIFF1234WAVEjunk")
    sf.write(folder / "click.wav", click(3.0), 16000)
    sf.write(folder / "hiss.wav", 0.1 * np.random.default_rng(4).standard_normal(48000), 16000)
    names = ["long.flac", "silent.wav", "short.wav", "broken.wav", "click.wav", "hiss.wav"]
    return [clips[0], *(folder / name for name in names), *clips[1:]]


def click(seconds: float, noise: float = 0.0) -> np.ndarray:
    """Silence (or noise of this rms) with 20 samples at 0.5 in its middle."""
    samples = noise * np.random.default_rng(3).standard_normal(int(16000 * seconds))
    middle = samples.size // 2
    samples[middle : middle + 20] += 0.5
    return samples


@pytest.mark.parametrize(("n_jobs", "fork_server"), [(1, False), (2, False), (2, True)])
def test_predict_files_gives_what_predict_file_gives_in_order(
    predictor, recordings, n_jobs, fork_server
):
    # Each file its own speaker: what predict_file does for a speaker-normalised model.
    alone = [str(path) for path in recordings]
    results = list(
        predictor.predict_files(
            recordings, n_jobs=n_jobs, progress=False, speakers=alone, fork_server=fork_server
        )
    )
    assert [r.source for r in results] == [str(path) for path in recordings]
    statuses = [r.status for r in results]
    expected = ["ok", "ok", "silent", "too_short", "error", "no_speech", "no_speech"]
    assert statuses == expected + ["ok"] * 4
    for result, path in zip(results, recordings, strict=True):
        one = predictor.predict_file(path)
        assert (result.status, result.label, result.message) == (one.status, one.label, one.message)
        assert len(result.windows) == len(one.windows)
        for name, probability in one.probabilities.items():
            assert result.probabilities[name] == pytest.approx(probability, abs=1e-5)
    assert len(results[1].windows) >= 4  # the long recording: several windows, averaged


def test_batches_split_across_model_calls(predictor, recordings, monkeypatch):
    import ser.serve.predict

    monkeypatch.setattr(ser.serve.predict, "BATCH_WINDOWS", 3)
    small = list(predictor.predict_files(recordings, n_jobs=1, progress=False))
    monkeypatch.undo()
    large = list(predictor.predict_files(recordings, n_jobs=1, progress=False))
    for a, b in zip(small, large, strict=True):
        assert a.status == b.status and a.label == b.label
        assert [w["start"] for w in a.windows] == [w["start"] for w in b.windows]
        for name, probability in b.probabilities.items():
            assert a.probabilities[name] == pytest.approx(probability, abs=1e-4)


def test_a_folder_that_is_not_a_model_fails_at_once(tmp_path):
    from ser.errors import DataError

    with pytest.raises(DataError, match="not a model folder"):
        Predictor(tmp_path)


def _same_predictions(first, second) -> None:
    for a, b in zip(first, second, strict=True):
        assert (a.source, a.status, a.label) == (b.source, b.status, b.label)
        assert [w["start"] for w in a.windows] == [w["start"] for w in b.windows]
        for name, probability in b.probabilities.items():
            assert a.probabilities[name] == pytest.approx(probability, abs=1e-4)


def test_long_recordings_stream_through_files_with_the_same_results(
    tiny_model, recordings, monkeypatch
):
    import ser.serve.predict
    import ser.serve.recording

    # A recording decoded block by block gets no speed copies (its many windows are judged
    # anyway): the same results as in memory are those without them.
    predictor = Predictor(tiny_model)
    predictor.speeds = ()
    in_memory = list(predictor.predict_files(recordings, n_jobs=1, progress=False))
    # Every recording above two seconds now takes the block-by-block path, in small blocks,
    # and every speaker's features wait on disk.
    monkeypatch.setattr(ser.serve.recording, "STREAM_SAMPLES", 2 * predictor.rate)
    monkeypatch.setattr(ser.serve.recording, "STREAM_BLOCK_SECONDS", 0.7)
    monkeypatch.setattr(ser.serve.predict, "SPILL_BYTES", 0)
    streamed = list(predictor.predict_files(recordings, n_jobs=2, progress=False))
    _same_predictions(streamed, in_memory)
    assert len(streamed[1].windows) >= 4


def test_long_recordings_get_no_speed_copies_from_their_files_either(
    tiny_model, recordings, monkeypatch
):
    import ser.serve.recording
    from ser.features import audio
    from ser.serve.recording import featurised, file_copies

    # What the evaluate stage does for a test clip (its features, its copies from the file)
    # gives what `ser predict` gives for it, long or not.
    predictor = Predictor(tiny_model)
    assert predictor.speeds
    path = str(recordings[1])
    job = (path, predictor.feature_params, predictor.speeds)
    assert len(file_copies(job)) == len(predictor.speeds)
    monkeypatch.setattr(ser.serve.recording, "STREAM_SAMPLES", 2 * predictor.rate)
    assert file_copies(job) == []
    windows = featurised(
        audio.load(path, sample_rate=predictor.rate), path, predictor.feature_params
    )
    [judged] = predictor.predict_features([windows.batch], [path], [path], [file_copies(job)])
    predicted = predictor.predict_file(path)
    assert len(predicted.windows) >= 4  # the long path's windows, none of them copies
    assert judged.label == predicted.label
    for name, probability in predicted.probabilities.items():
        assert judged.probabilities[name] == pytest.approx(probability, abs=1e-4)
    with pytest.raises(ValueError, match="1 speed copies given"):
        predictor.predict_features([windows.batch], [path], [path], [[windows.batch]])


def test_audio_blocks_are_what_load_gives(tmp_path):
    from ser.features import audio

    rng = np.random.default_rng(0)
    path = tmp_path / "stereo.flac"
    sf.write(path, 0.1 * rng.standard_normal((44100 * 3 + 17, 2)), 44100)
    whole = audio.load(path, sample_rate=16000, centre=False)
    blocks = list(audio.blocks(path, sample_rate=16000, block_seconds=0.45))
    assert len(blocks) > 5
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    assert audio.frames_at(path, 16000) == pytest.approx(whole.size, abs=1)


def _peak_rss_mib(command: list[str]) -> float:
    """Peak resident memory of a command (its largest process), in MiB, run in a fresh
    interpreter so that nothing else this test process ran counts."""
    import subprocess
    import sys

    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "assert done.returncode == 0, done.stderr\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True
    )
    return float(result.stdout.split()[-1])


@pytest.mark.slow
def test_ser_predict_memory_does_not_grow_with_recording_length(tiny_model, recordings, tmp_path):
    """21 minutes of 48 kHz stereo would be 460 MiB decoded and 150 MiB of features, 7
    minutes a third of that: ser predict holds a block of either at a time, so both peak
    alike (each fills a whole batch of BATCH_WINDOWS windows for the model)."""
    import sys

    from ser.features.audio import resample

    speech, rate = sf.read(recordings[0])
    minute = np.tile(resample(speech.astype(np.float32), orig_sr=rate, target_sr=48000), 30)
    minute = np.stack([minute[: 48000 * 60], 0.5 * minute[: 48000 * 60]], axis=1)
    ser = [sys.executable, "-m", "ser.serve.cli", "predict", "--model", str(tiny_model)]
    peaks = {}
    for minutes in (7, 21):
        path = tmp_path / f"{minutes}" / "recording.wav"
        path.parent.mkdir()
        with sf.SoundFile(path, "w", samplerate=48000, channels=2, subtype="PCM_16") as out:
            for _ in range(minutes):
                out.write(minute)
        peaks[minutes] = _peak_rss_mib([*ser, "--format", "json", str(path)])
    # Holding the 21 minutes would add about 400 MiB over the 7 (decoded audio and features).
    # The peak of the same command varies by up to about 100 MiB from run to run (seen on
    # 2026-11-27 with the machine idle, cause not found), so the bound sits between the two.
    assert peaks[21] - peaks[7] < 200, peaks


def test_a_recording_without_speech_gets_no_prediction(predictor, tiny_corpus):
    """A click in silence is loud enough to pass the silence check; trimmed, 0.03 s remain,
    which the model, given them repeated over a window, was sure of an emotion about."""
    for noise in (0.0, 1e-3):
        result = predictor.predict_array(click(2.0, noise), 16000, source="click")
        assert (result.status, result.label, result.probabilities) == ("no_speech", None, {})
        assert result.message.startswith("only 0.03 s of sound") and "0.1 s" in result.message
    # Noise alone passes the silence and length checks, but it has no voice in it; nor
    # has mains hum, its period (20 ms) longer than a voice's.
    time = np.arange(32000) / 16000
    for name, noise in {
        "white": 0.05 * np.random.default_rng(5).standard_normal(32000),
        "brown": 0.001 * np.cumsum(np.random.default_rng(6).standard_normal(32000)),
        "hum": 0.05 * np.sin(2 * np.pi * 50 * time) + 0.02 * np.sin(2 * np.pi * 150 * time),
    }.items():
        result = predictor.predict_array(noise, 16000, source=name)
        assert (result.status, result.label) == ("no_speech", None), name
        assert result.message.startswith("no voice"), name
    # A fifth of a second of speech in silence is enough.
    speech, rate = sf.read(sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[0])
    mono = audio.resample(speech, orig_sr=rate, target_sr=16000)
    trimmed = extract.speech(mono, predictor.feature_params)
    padded = np.concatenate([np.zeros(16000), trimmed[4000:7200], np.zeros(16000)])
    assert predictor.predict_array(padded, 16000).status == "ok"
    # A stream does not count it as a recording of the speaker.
    stream = predictor.stream()
    assert stream.add_array(click(2.0), 16000).status == "no_speech" and not stream.items


def test_a_constant_offset_changes_nothing(predictor, tiny_corpus, tmp_path, monkeypatch):
    """A cheap microphone's DC offset: 0.002 changed the class of a third of the RAVDESS clips
    it was added to, before the mean was taken away ahead of resampling."""
    clip = sorted((tiny_corpus / "speech" / "Actor_03").glob("*.wav"))[0]
    speech, rate = sf.read(clip, dtype="float32")
    faster = audio.resample(speech, orig_sr=rate, target_sr=24000)
    for samples, sample_rate in ((speech, rate), (faster, 24000)):
        clean = predictor.predict_array(samples, sample_rate)
        for offset in (0.002, 0.05, -0.2):
            shifted = predictor.predict_array(samples + offset, sample_rate)
            assert shifted.label == clean.label
            assert shifted.probabilities == pytest.approx(clean.probabilities, abs=1e-3)
    sf.write(tmp_path / "offset.wav", faster + 0.05, 24000, subtype="FLOAT")
    from_file = predictor.predict_file(tmp_path / "offset.wav")
    assert from_file.probabilities == pytest.approx(clean.probabilities, abs=1e-3)
    # A long recording, decoded a block at a time, is read back less its mean.
    import ser.serve.recording as recording

    monkeypatch.setattr(recording, "STREAM_SAMPLES", 16000)
    signal = recording.decode_long(str(tmp_path / "offset.wav"), 16000, tmp_path)
    raw = audio.load(tmp_path / "offset.wav", sample_rate=16000, centre=False)
    np.testing.assert_allclose(np.asarray(signal), raw - raw.mean(dtype=np.float64), atol=1e-6)
    np.testing.assert_allclose(np.asarray(signal[100:200]), np.asarray(signal)[100:200])
    # The mean goes before resampling, whose filter rings at a step from silence to it.
    assert abs(float(np.mean(audio.load(tmp_path / "offset.wav", sample_rate=16000)))) < 1e-6
    assert audio.load(tmp_path / "offset.wav", sample_rate=16000, centre=False).mean() > 0.04


def test_voice_is_counted_the_loudest_frames_first_and_no_further_than_needed(tiny_corpus):
    from ser.serve.recording import VOICE_CHUNK, VOICE_HOP, VOICE_RATE, voiced_seconds

    frame = VOICE_HOP / VOICE_RATE
    for clip in sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[:4]:
        mono = audio.load(clip, sample_rate=16000)
        every = voiced_seconds(mono, 16000)
        assert every > 0.3  # a sentence has a third of a second of voice and more
        # Asked for three frames, it judges one chunk of the loudest, its vowels.
        early = voiced_seconds(mono, 16000, enough=3 * frame)
        assert 3 * frame - 1e-9 <= early <= VOICE_CHUNK * frame + 1e-9
        assert voiced_seconds(mono, 16000, enough=every) == pytest.approx(every)
    assert voiced_seconds(click(2.0, 0.05), 16000, enough=3 * frame) == 0.0


def test_a_stream_of_one_speakers_recordings_ends_where_the_batch_does(predictor, tiny_corpus):
    clips = sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[:6]
    stream = predictor.stream()
    first = stream.add_file(clips[0])
    # The first recording alone is judged as predict_file judges one file.
    alone = predictor.predict_file(clips[0])
    assert first.label == alone.label
    assert first.probabilities == pytest.approx(alone.probabilities, abs=1e-5)
    samples, rate = sf.read(clips[1])
    arrivals = [first, stream.add_array(samples, rate, source=str(clips[1]))]
    arrivals += [stream.add_file(path) for path in clips[2:]]
    assert stream.add_file(Path("missing.wav")).status == "error"  # not added
    batch = list(predictor.predict_files(clips, progress=False, speakers=["one"] * len(clips)))
    # Once all are in: the last arrival, and every recording judged again, are the batch's.
    assert arrivals[-1].probabilities == pytest.approx(batch[-1].probabilities, abs=1e-5)
    for again, expected in zip(stream.again(), batch, strict=True):
        assert again.label == expected.label
        assert again.probabilities == pytest.approx(expected.probabilities, abs=1e-5)
    # The speaker's statistics grew as recordings came: the second file is judged otherwise
    # at arrival (two recordings known) than at the end (six).
    assert arrivals[1].probabilities != pytest.approx(batch[1].probabilities, abs=1e-5)


def test_a_blended_model_weighs_its_whole_speaker_model_by_the_recordings(
    tiny_blended_model, tiny_corpus
):
    # model.speaker_blend: with k windows of a speaker, the whole-speaker model's
    # probabilities weigh (k - 1) / (k - 1 + 8) against the other model's: nothing alone.
    blended = Predictor(tiny_blended_model)
    own = Predictor(tiny_blended_model)
    own.whole_speaker = None
    whole = Predictor(tiny_blended_model / "whole_speaker")
    for predictor in (blended, own, whole):  # the blend alone (no speed copies to average)
        predictor.speeds = ()
    clips = sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[:4]
    for k, speakers in ((1, [str(path) for path in clips]), (len(clips), ["one"] * len(clips))):
        results = list(blended.predict_files(clips, progress=False, speakers=speakers))
        parts = [
            list(predictor.predict_files(clips, progress=False, speakers=speakers))
            for predictor in (own, whole)
        ]
        weight = (k - 1) / (k - 1 + 8.0)
        for result, mine, theirs in zip(results, *parts, strict=True):
            for name, probability in result.probabilities.items():
                expected = (1 - weight) * mine.probabilities[name] + weight * theirs.probabilities[
                    name
                ]
                assert probability == pytest.approx(expected, abs=1e-5)
        if k == 1:  # one recording alone: the first model's
            assert results[0].probabilities == pytest.approx(parts[0][0].probabilities)
            continue
        # The two models disagree, so the blend is neither of them.
        assert results[0].probabilities != pytest.approx(parts[0][0].probabilities, abs=1e-3)
        assert results[0].probabilities != pytest.approx(parts[1][0].probabilities, abs=1e-3)
    # One file: what ser predict does, k = 1.
    one = blended.predict_file(clips[0])
    first = list(blended.predict_files(clips[:1], progress=False))[0]
    assert one.probabilities == pytest.approx(first.probabilities, abs=1e-5)


def test_a_recording_of_several_windows_counts_as_one_recording(
    tiny_blended_model, tiny_corpus, tmp_path
):
    # A voice message of several sentences holds one emotion, as one clip does: its windows
    # are standardised as one recording's and the whole-speaker model gets nothing (E62).
    blended = Predictor(tiny_blended_model)
    own = Predictor(tiny_blended_model)
    own.whole_speaker = None
    speech, rate = sf.read(sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[0])
    sf.write(tmp_path / "message.wav", np.tile(speech, 4), rate)
    result = blended.predict_file(tmp_path / "message.wav")
    assert len(result.windows) > 2
    assert result.probabilities == pytest.approx(
        own.predict_file(tmp_path / "message.wav").probabilities, abs=1e-6
    )
    # The moments of all its windows' frames weigh as one recording's.
    mono = audio.resample(np.tile(speech, 4), orig_sr=rate, target_sr=blended.rate)
    item = prepare(mono, "message", blended.feature_params)
    moments = speaker_moments([item, item], ["one", "one"])["one"]
    assert moments.recordings == 2
    assert moments.frames == 2 * item.batch.shape[0] * item.batch.shape[1]


def test_a_model_trims_noisy_pauses_as_it_was_trained_to(tiny_model, tmp_path, params_dict):
    import json
    import shutil

    from ser.params import parse_params
    from ser.serve.recording import cut_windows
    from tests.conftest import voice_between_pauses

    current = Predictor(tiny_model)
    assert current.feature_params.trim_noise_db == parse_params(params_dict).features.trim_noise_db
    assert current.feature_params.trim_noise_db is not None
    # A model saved before the setting existed keeps the rule it was trained with.
    older = tmp_path / "older"
    shutil.copytree(tiny_model, older)
    meta = json.loads((older / "model.json").read_text())
    del meta["features"]["trim_noise_db"]
    del meta["features"]["max_pause_seconds"]
    (older / "model.json").write_text(json.dumps(meta))
    assert Predictor(older).feature_params.trim_noise_db is None
    assert Predictor(older).feature_params.max_pause_seconds is None
    assert current.feature_params.max_pause_seconds == 0.2

    rate = current.rate
    noisy = voice_between_pauses(rate, snr_db=20.0)
    (start, window), *_ = cut_windows(noisy, current.feature_params)
    (_, untrimmed), *_ = cut_windows(noisy, Predictor(older).feature_params)
    assert start == 0.0 and len(untrimmed) == len(noisy)
    assert len(window) < len(noisy) - 0.5 * rate


def test_a_long_recordings_copies_are_cut_as_its_resampled_copies_are(predictor):
    from ser.serve.recording import featurised, speed_copies

    # 5.8 s of a voice-like tone between pauses: three windows, four played slower.
    rate, params = predictor.rate, predictor.feature_params
    time = np.arange(int(5.8 * rate)) / rate
    phase = 2 * np.pi * np.cumsum(150 + 50 * np.sin(time)) / rate
    voice = 0.2 * sum(np.sin(h * phase) / h for h in range(1, 8))
    pause = np.zeros(rate // 2)
    voice = np.concatenate([pause, voice, pause]).astype(np.float32)
    assert len(featurised(voice, "long", params).starts) == 3
    copies = speed_copies(voice, "long", params, (0.8, 1.25))
    for speed, copy in zip((0.8, 1.25), copies, strict=True):
        resampled = audio.resample(voice, orig_sr=rate, target_sr=round(rate / speed))
        played = featurised(resampled, "long", params)
        assert copy.starts == pytest.approx(played.starts, abs=0.05)
        assert len(copy.starts) == (4 if speed == 0.8 else 3)
        # Windows of the same part of the recording: their mean features agree.
        np.testing.assert_allclose(
            copy.batch.mean(axis=1)[:, 144], played.batch.mean(axis=1)[:, 144], atol=0.05
        )


def test_speed_copies_are_judged_beside_each_recording(tiny_model, tiny_corpus, tmp_path):
    from ser.model.calibration import calibrate
    from ser.serve.recording import featurised, speed_copies

    judged = Predictor(tiny_model)
    # model.test_speeds and model.test_temperature of params.yaml
    assert (judged.speeds, judged.speed_temperature) == ((0.95, 1.05), 0.85)
    plain = Predictor(tiny_model)
    plain.speeds = ()
    rate, params = plain.rate, plain.feature_params
    clips = sorted((tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[:3]
    # Each clip's windows, and its copies' (speed_copies: test_features checks that they are
    # what resampling gives), one list per speed, the clip's own first.
    played = {speed: [] for speed in (1.0, *judged.speeds)}
    for clip in clips:
        mono = audio.load(clip, sample_rate=rate)
        own = featurised(mono, str(clip), params)
        copies = speed_copies(mono, str(clip), params, judged.speeds)
        assert not any(np.allclose(own.batch, copy.batch) for copy in copies)
        for batches, item in zip(played.values(), [own, *copies], strict=True):
            batches.append(item.batch)

    def mean(parts):
        """The mean of the parts' probabilities at the model's test_temperature."""
        names = list(parts[0].probabilities)
        average = np.mean([[part.probabilities[name] for name in names] for part in parts], axis=0)
        return dict(zip(names, calibrate(average[None], 0.85)[0], strict=True))

    # One recording alone: the mean over it and its copies, each judged alone.
    for index, clip in enumerate(clips):
        result = judged.predict_file(clip)
        parts = [
            plain.predict_features([batches[index]], ["alone"])[0] for batches in played.values()
        ]
        assert result.probabilities == pytest.approx(mean(parts), abs=1e-5)
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        # The windows reported are the recording's own.
        assert [w["label"] for w in result.windows] == [w["label"] for w in parts[0].windows]
        assert [w["confidence"] for w in result.windows] == pytest.approx(
            [w["confidence"] for w in parts[0].windows], abs=1e-5
        )
    assert judged.predict_file(clips[0]).probabilities != pytest.approx(
        plain.predict_file(clips[0]).probabilities, abs=1e-4
    )
    # A speaker's recordings together: the copies at one speed are a speaker of their own.
    together = list(judged.predict_files(clips, progress=False, speakers=["one"] * len(clips)))
    groups = [plain.predict_features(batches, ["one"] * len(clips)) for batches in played.values()]
    for index, result in enumerate(together):
        assert result.probabilities == pytest.approx(
            mean([group[index] for group in groups]), abs=1e-4
        )
    # The feature-level entry (the evaluate stage's) needs the copies' windows.
    with pytest.raises(ValueError, match="speed"):
        judged.predict_features([np.zeros((1, 4, 4), dtype=np.float32)], ["one"])
    # A model saved before the setting existed judges each recording alone, as it did.
    import json
    import shutil

    older = tmp_path / "older"
    shutil.copytree(tiny_model, older)
    meta = json.loads((older / "model.json").read_text())
    del meta["model"]["test_speeds"], meta["model"]["test_temperature"]
    (older / "model.json").write_text(json.dumps(meta))
    assert Predictor(older).speeds == ()
    assert Predictor(older).predict_file(clips[0]).probabilities == pytest.approx(
        plain.predict_file(clips[0]).probabilities, abs=1e-5
    )
