"""The benchmark scripts run end to end on a tiny RAVDESS-like corpus (SVM config only: fast)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speech_and_song(tiny_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny corpus as speech, and its calm/happy/sad/angry/fearful clips renamed as song."""
    song = tmp_path_factory.mktemp("song")
    for clip in sorted((tiny_corpus / "speech").rglob("*.wav")):
        parts = clip.stem.split("-")
        if parts[2] in {"02", "03", "04", "05", "06"}:
            parts[1] = "02"
            (song / clip.parent.name).mkdir(exist_ok=True)
            shutil.copy(clip, song / clip.parent.name / ("-".join(parts) + ".wav"))
    return tiny_corpus / "speech", song


def run_settings(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "settings.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def scores_of(path: Path) -> list[dict]:
    """The --json results without the timings."""
    results = json.loads(path.read_text())["results"]
    for row in results:
        row["svm"].pop("train_seconds")
    return results


def test_settings_writes_its_features_cache_and_gives_the_same_results_from_it(
    speech_and_song, tmp_path
):
    speech, song = speech_and_song
    cache = tmp_path / "features.npz"
    common = ["--configs", "svm", "--folds", "2", "--settings", "2", "6", "--features-cache"]
    first = run_settings(
        "--speech", str(speech), "--song", str(song), *common, str(cache),
        "--json", str(tmp_path / "first.json"),
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert cache.is_file()
    assert not list(tmp_path.glob("*.partial*"))
    # Read back: no archives needed, the same table.
    second = run_settings(*common, str(cache), "--json", str(tmp_path / "second.json"))
    assert second.returncode == 0, second.stderr
    assert "features read from" in second.stdout
    results = scores_of(tmp_path / "first.json")
    assert scores_of(tmp_path / "second.json") == results
    assert [row["setting"] for row in results] == [2, 6]
    # Setting 2: actors 1 and 3, five emotions x 8 clips, speech and song. Setting 6: speech
    # only, every clip of the 4 actors.
    assert results[0]["clips"] == 2 * 40 * 2
    assert results[1]["clips"] == 240
    assert 0.0 <= results[1]["svm"]["accuracy"]["mean"] <= 1.0


def test_settings_trains_on_copies_of_the_training_actors_clips_only(speech_and_song, tmp_path):
    """Pitch- and speed-shifted copies (augment.*), one per clip: the network's of the
    training clips, the statistics member's of the training and validation clips."""
    speech, song = speech_and_song
    result = run_settings(
        "--speech", str(speech), "--song", str(song), "--configs", "default", "--folds", "3",
        "--settings", "6", "-S", "train.epochs=1", "-S", "model.filters=8",
        "-S", "augment.pitch=true", "-S", "augment.speed=true", "-S", "model.stats_epochs=2",
        "-S", "augment.members=[network,statistics]",
        "--json", str(tmp_path / "runs.json"), "--features-cache", str(tmp_path / "cache.npz"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = re.findall(
        r"test actors \[([\d, ]+)\] .*?(\d+) training clips, (\d+) of them copies; "
        r"(\d+) copies for the statistics member",
        result.stdout,
    )
    assert len(runs) == 3
    for tested, clips, copies, member_copies in runs:
        # One copy per training clip: 60 speech clips per training actor. The test actors and
        # the validation fold (at least one actor) contribute none.
        assert int(clips) == 2 * int(copies)
        assert int(copies) % 60 == 0
        assert 60 <= int(copies) <= 60 * (4 - len(tested.split(",")) - 1)
        # The member's: every actor's but the test actors'.
        assert int(member_copies) == 60 * (4 - len(tested.split(",")))
    assert json.loads((tmp_path / "runs.json").read_text())["results"][0]["default"]
    # The cache holds the copies with the augment params that made them: others are refused.
    other = run_settings(
        "--configs", "default", "-S", "augment.pitch=true", "-S", "augment.speed=true",
        "-S", "augment.pitch_max=3", "--features-cache",
        str(tmp_path / "cache.npz"),
    )  # fmt: skip
    assert other.returncode != 0
    assert "holds no augmented copies of the default config with these params" in other.stderr


def test_settings_refuses_a_cache_without_the_features_a_config_needs(speech_and_song, tmp_path):
    speech, song = speech_and_song
    cache = tmp_path / "features.npz"
    made = run_settings(
        "--speech", str(speech), "--song", str(song), "--configs", "svm", "--settings",
        "--features-cache", str(cache),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    refused = run_settings("--configs", "seed", "--features-cache", str(cache))
    assert refused.returncode != 0
    assert "holds no features of the seed config" in refused.stderr


def test_settings_needs_the_archives_without_a_cache(tmp_path):
    result = run_settings("--configs", "svm", "--features-cache", str(tmp_path / "none.npz"))
    assert result.returncode != 0
    assert "--speech and --song are needed" in result.stderr
    assert not (tmp_path / "none.npz").exists()


@pytest.fixture(scope="module")
def six_actors(tmp_path_factory) -> Path:
    """Synthetic RAVDESS-like clips of actors 1-6 (360 clips): enough for 3 actor folds."""
    from ser.data.corpora import synthetic

    root = tmp_path_factory.mktemp("six") / "speech"
    synthetic.generate(root, seed=1, actors=[1, 2, 3, 4, 5, 6], sample_rate=16000)
    return root


def test_actor_cv_trains_each_fold_on_its_training_actors_copies(six_actors, tmp_path):
    summary = tmp_path / "cv.json"
    result = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "actor_cv.py"), str(six_actors),
            "--folds", "3", "--json", str(summary),
            "-S", "train.epochs=1", "-S", "features.mels=0", "-S", "features.prosody=false",
            "-S", "augment.noise=true",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "360 clips (+360 augmented copies), 3 actor folds" in result.stdout
    network, svm = json.loads(summary.read_text())
    assert network["runs"] == svm["runs"] == 3
    assert (
        network["config"]
        == "train.epochs=1 features.mels=0 features.prosody=false augment.noise=true"
    )
    assert 0.0 <= network["accuracy"] <= 1.0
    assert svm["accuracy"] > 0.3  # chance: 1/8; the synthetic emotions are learnable
