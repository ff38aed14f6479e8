"""The benchmark scripts run end to end on a tiny RAVDESS-like corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def six_actors(tmp_path_factory) -> Path:
    """Synthetic RAVDESS-like clips of actors 1-6 (360 clips): enough for 3 actor folds."""
    from ser.data.corpora import synthetic

    root = tmp_path_factory.mktemp("six") / "speech"
    synthetic.generate(root, seed=1, actors=[1, 2, 3, 4, 5, 6], sample_rate=16000)
    return root


def test_recordings_cv_judges_each_fold_at_every_number_of_recordings(six_actors, tmp_path):
    out, cache = tmp_path / "cv.json", tmp_path / "cache"

    def recordings_cv(*extra: str) -> dict:
        result = subprocess.run(
            [
                sys.executable, str(ROOT / "benchmarks" / "recordings_cv.py"), str(six_actors),
                "--folds", "3", "--only-folds", "2", "--out", str(out), "--cache", str(cache),
                "-S", "train.epochs=1", "-S", "model.filters=8", "-S", "model.stats_epochs=2",
                "-S", "augment.pitch=false", "-S", "augment.speed=false", *extra,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(out.read_text())

    models = tmp_path / "models"
    results = recordings_cv("--blends", "8", "--keep-models", str(models))
    # --cache: a second run with the same params reads the features and copies the first
    # wrote, and judges as it did; another augment param makes them again.
    stores = sorted((cache / "features").glob("*.npy")) + sorted(
        (cache / "augmented").glob("*.npy")
    )
    written = [path.stat().st_mtime_ns for path in stores]
    again = recordings_cv()
    assert [path.stat().st_mtime_ns for path in stores] == written
    assert again["runs"][0]["clips"] == results["runs"][0]["clips"]
    copies = len((cache / "augmented" / "copies.csv").read_text().splitlines())
    recordings_cv("-S", "augment.copies=1")
    assert len((cache / "augmented" / "copies.csv").read_text().splitlines()) < copies
    (run,) = results["runs"]
    # Fold 2 of actors 1-6 dealt by gender in turn: females 2, 4, 6 then males 1, 3, 5.
    assert run["fold"] == 2 and run["test_actors"] == [3, 4]
    for k in ("1", "2", "4", "8", "all"):
        assert 0.0 <= run[k]["accuracy"] <= 1.0
        assert results["summary"][k]["accuracy"]["mean"] == pytest.approx(
            run[k]["accuracy"], abs=1e-4
        )
    assert run["1"] != run["all"]  # a clip alone and with its speaker's are judged apart
    # Pooled over runs (one here): the run's own figures, beside the ECE floor of as many
    # clips under perfect calibration, which is above zero for a sample this small.
    pooled = results["summary"]["pooled"]
    assert pooled["clips"] == len(run["clips"]["y"]) == 120
    for k in ("1", "all"):
        assert pooled[k]["accuracy"] == pytest.approx(run[k]["accuracy"], abs=1e-4)
        assert pooled[k]["ece"] == pytest.approx(run[k]["ece"], abs=1e-4)
        assert 0.0 < pooled[k]["ece_floor"] < 0.5
    # The blend variants judge the same models; the Predictor's own weighting is "others".
    assert set(run["blends"]) == {"none", "windows:8", "others:8"}
    for k in ("1", "2", "4", "8", "all"):
        assert run["blends"]["others:8"][k]["accuracy"] == run[k]["accuracy"]
    assert run["blends"]["none"]["1"] == run["blends"]["others:8"]["1"]  # weight 0 alone
    assert results["summary"]["blends"]["windows:8"]["all"]["accuracy"]["mean"] == (
        pytest.approx(run["blends"]["windows:8"]["all"]["accuracy"], abs=1e-4)
    )
    # --rejudge: the kept model judged again, no training: as the run judged it with the
    # params it trained with, otherwise without speed copies.
    rejudged = recordings_cv("--rejudge", str(models))["runs"][0]
    assert rejudged["clips"] == run["clips"]
    assert rejudged["calibration"] == run["calibration"]
    plain = recordings_cv("--rejudge", str(models), "-S", "model.test_speeds=[]")["runs"][0]
    assert plain["clips"]["1"] != run["clips"]["1"]


def test_fit_speed_times_the_network_from_memory_and_streamed(six_actors, tmp_path):
    out = tmp_path / "fit.json"
    result = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "fit_speed.py"), str(six_actors),
            "--val-actors", "5", "6", "--epochs", "3", "--json", str(out),
            "-S", "model.filters=8", "-S", "augment.pitch=false", "-S", "augment.speed=false",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    # Actors 1-4 train, 5-6 validate: 60 clips each, two speaker draws of every clip and of
    # its two augmented copies (the default params) for training, two of each for validation.
    assert report["training_rows"] == 4 * 60 * 3 * 2
    assert report["validation_rows"] == 2 * 60 * 2
    assert report["pipeline_path"] == "memory"  # far below the limit
    for path in ("memory", "streamed"):
        assert len(report[path]["epochs_s"]) == 2  # the epochs after the first
        assert all(seconds > 0 for seconds in report[path]["epochs_s"])
    assert "| streamed |" in result.stdout


def _archive_report(corpus: Path, every: int, folder: Path, script: str, *options: str) -> dict:
    """Every ``every``-th clip of the corpus zipped as a RAVDESS-like archive, the benchmark
    run on it with ``options``, and the JSON report it writes."""
    import zipfile

    archive, out = folder / "speech.zip", folder / f"{script}.json"
    with zipfile.ZipFile(archive, "w") as bundle:
        for clip in sorted((corpus / "speech").rglob("*.wav"))[::every]:
            bundle.write(clip, f"{clip.parent.name}/{clip.name}")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), str(archive), *options]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_voice_check_refuses_noise_and_reports_every_condition(tiny_corpus, tmp_path):
    from ser.features import channel

    report = _archive_report(tiny_corpus, 40, tmp_path, "voice_check")
    conditions = ["clean", *channel.names(), "noise_5db", "noise_0db"]
    assert list(report["clips"]) == [f"speech.zip {name}" for name in conditions]
    clean = report["clips"]["speech.zip clean"]
    assert clean["clips"] == 6 and clean["refused"] == 0 and clean["least_voiced_s"] > 0.3
    assert len(report["noise"]) == 10
    assert all(row["refused"] and row["voiced_s"] < 0.06 for row in report["noise"].values())


def test_offset_check_judges_each_models_test_actors_with_and_without_an_offset(
    tiny_corpus, tiny_model, tmp_path
):
    from ser.model.modelio import read_meta

    options = ["--models", str(tiny_model), "--offsets", "0.01", "-0.1"]
    report = _archive_report(tiny_corpus, 4, tmp_path, "offset_check", *options)
    tested = read_meta(tiny_model)["actors"]["test"]
    assert list(report) == ["0.01", "-0.1"]
    for row in report.values():
        assert row["clips"] == 15 * len(tested)  # every fourth of the tested actors' 60 clips
        assert row["class_changed"] == 0 and row["mean_distance"] < 1e-3
        assert row["accuracy"] == row["accuracy_without"]
