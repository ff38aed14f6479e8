"""Predictor.predict_files: the same results as predict_file, in order, with worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.predict import Predictor


@pytest.fixture(scope="module")
def predictor(tiny_model) -> Predictor:
    return Predictor(tiny_model)


@pytest.fixture(scope="module")
def recordings(tiny_corpus, tmp_path_factory) -> list[Path]:
    """Clips, a long recording, a silent, a too-short and an undecodable file, mixed."""
    folder = tmp_path_factory.mktemp("recordings")
    clips = sorted((tiny_corpus / "speech" / "Actor_03").glob("*.wav"))[:5]
    speech, rate = sf.read(clips[0])
    sf.write(folder / "long.flac", np.tile(speech, 5), rate)
    sf.write(folder / "silent.wav", np.zeros(32000), 16000)
    sf.write(folder / "short.wav", 0.1 * np.ones(800), 16000)
    (folder / "broken.wav").write_bytes(b"RIFF1234WAVEjunk")
    names = ["long.flac", "silent.wav", "short.wav", "broken.wav"]
    return [clips[0], *(folder / name for name in names), *clips[1:]]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_predict_files_gives_what_predict_file_gives_in_order(predictor, recordings, n_jobs):
    # Each file its own speaker: what predict_file does for a speaker-normalised model.
    alone = [str(path) for path in recordings]
    results = list(
        predictor.predict_files(recordings, n_jobs=n_jobs, progress=False, speakers=alone)
    )
    assert [r.source for r in results] == [str(path) for path in recordings]
    statuses = [r.status for r in results]
    assert statuses == ["ok", "ok", "silent", "too_short", "error", "ok", "ok", "ok", "ok"]
    for result, path in zip(results, recordings, strict=True):
        one = predictor.predict_file(path)
        assert (result.status, result.label, result.message) == (one.status, one.label, one.message)
        assert len(result.windows) == len(one.windows)
        for name, probability in one.probabilities.items():
            assert result.probabilities[name] == pytest.approx(probability, abs=1e-6)
    assert len(results[1].windows) >= 4  # the long recording: several windows, averaged


def test_batches_split_across_model_calls(predictor, recordings, monkeypatch):
    import ser.predict

    monkeypatch.setattr(ser.predict, "BATCH_WINDOWS", 3)
    small = list(predictor.predict_files(recordings, n_jobs=1, progress=False))
    monkeypatch.undo()
    large = list(predictor.predict_files(recordings, n_jobs=1, progress=False))
    for a, b in zip(small, large, strict=True):
        assert a.status == b.status and a.label == b.label
        assert [w["start"] for w in a.windows] == [w["start"] for w in b.windows]
        for name, probability in b.probabilities.items():
            assert a.probabilities[name] == pytest.approx(probability, abs=1e-6)


def test_a_folder_that_is_not_a_model_fails_at_once(tmp_path):
    from ser.errors import DataError

    with pytest.raises(DataError, match="not a model folder"):
        Predictor(tmp_path)
