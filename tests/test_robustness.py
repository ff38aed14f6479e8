"""benchmarks/robustness.py: its argument checks, its scoring, and a run on a tiny workspace."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser.data.manifest import build_manifest, write_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def robustness():
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "benchmarks/robustness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = module  # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workspace(tiny_corpus, tiny_model, tmp_path_factory) -> Path:
    """What a pipeline run leaves: manifest, split (actor 4 tests), folds (fold 1 = actor 4),
    the fixed split's model and fold 1's (the same tiny model)."""
    root = tmp_path_factory.mktemp("run")
    shutil.copytree(tiny_corpus / "speech", root / "data/raw/speech")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    manifest = build_manifest(
        root / "data/raw", corpus="synthetic", silence_threshold=1e-4, root=root
    )
    write_csv(manifest, root / "data/manifest.csv")
    actors = manifest["actor"]
    pd.DataFrame(
        {
            "clip_id": manifest["clip_id"],
            "actor": actors,
            "subset": np.where(actors == 4, "test", "train"),
        }
    ).to_csv(root / "data/split.csv", index=False)
    pd.DataFrame(
        {"clip_id": manifest["clip_id"], "actor": actors, "fold": np.where(actors == 4, 1, 2)}
    ).to_csv(root / "data/folds.csv", index=False)
    shutil.copytree(tiny_model, root / "data/model")
    shutil.copytree(tiny_model, root / "data/cv/1/model")
    return root


@pytest.fixture(scope="module")
def song(tiny_corpus, tmp_path_factory) -> Path:
    """The tiny corpus's neutral/calm/happy/sad/angry/fearful clips renamed as song."""
    folder = tmp_path_factory.mktemp("song")
    for clip in sorted((tiny_corpus / "speech").rglob("*.wav")):
        parts = clip.stem.split("-")
        if parts[2] in {"01", "02", "03", "04", "05", "06"}:
            parts[1] = "02"
            (folder / clip.parent.name).mkdir(exist_ok=True)
            shutil.copy(clip, folder / clip.parent.name / ("-".join(parts) + ".wav"))
    return folder


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--perturbations", "radio"], r"--perturbations: unknown \['radio'\]"),
        (["--models", "best"], "--models: expected 'fixed' or a fold number, got 'best'"),
        (["--corpus", "iemocap=x"], "--corpus: expected NAME=SOURCE with NAME in"),
        (["--corpus", "emodb=/no/such/emodb.zip"], "--corpus emodb: no such zip or folder"),
        (["--models", "3"], r"data/cv/3/model is missing \(did the run train it\?\)"),
        (["--clips-per-actor", "-1"], "--clips-per-actor must be >= 0"),
    ],
)
def test_arguments_that_cannot_run_are_refused_by_name(
    robustness, workspace, capsys, arguments, message
):
    with pytest.raises(SystemExit):
        robustness.parse_args(["--workspace", str(workspace), *arguments])
    assert re.search(message, capsys.readouterr().err)


def test_a_user_corpus_is_accepted_as_an_argument(robustness, workspace, tmp_path):
    args = robustness.parse_args(["--workspace", str(workspace), "--corpus", f"emodb={tmp_path}"])
    assert args.corpus == {"emodb": str(tmp_path)}


def test_unseen_actors_follow_the_split_and_the_folds(robustness, workspace):
    assert robustness.unseen_actors(workspace, "fixed") == [4]
    assert robustness.unseen_actors(workspace, "1") == [4]
    assert robustness.unseen_actors(workspace, "2") == [1, 2, 3]


def test_a_clip_without_prediction_counts_as_wrong_and_not_in_collapse(robustness):
    outcome = robustness.Outcome(
        "fixed", "clean", true=[0, 1, 2, 3], emotions=["neutral"] * 4, single=[0, 0, 0, -1]
    )
    outcome.together = [0, 1, 2, 3]
    result = robustness.summarise([outcome], ["a", "b", "c", "d"])
    assert result["k_1"]["accuracy"] == 0.25
    assert result["k_1"]["collapse"] == 1.0 and result["k_1"]["most_predicted"] == "a"
    assert result["k_1"]["unpredicted"] == 1
    assert result["k_all"]["accuracy"] == 1.0 and result["k_all"]["collapse"] == 0.25


def test_the_answer_among_some_classes_is_the_most_probable_of_them(robustness):
    probabilities = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [np.nan, np.nan, np.nan]])
    assert robustness.decide_among(probabilities, [1, 2]).tolist() == [1, 2, -1]
    outcome = robustness.Outcome("1", "clean", true=[1, 2, 1], emotions=["calm"] * 3)
    outcome.single, outcome.together = [0, 2, -1], [0, 2, -1]
    outcome.single_probabilities = list(probabilities)
    outcome.together_probabilities = list(probabilities)
    assert robustness.classes_of([outcome], ["a", "b", "c"]) == ["b", "c"]
    plain = robustness.summarise([outcome], ["a", "b", "c"])
    among = robustness.summarise([outcome], ["a", "b", "c"], among=["b", "c"])
    assert plain["k_1"]["accuracy"] == pytest.approx(1 / 3)
    assert among["k_1"]["accuracy"] == pytest.approx(2 / 3)
    assert among["k_all"]["unpredicted"] == 1


def test_benchmark_runs_on_a_tiny_workspace(robustness, workspace, song, tmp_path):
    out, plot = tmp_path / "robustness.json", tmp_path / "robustness.csv"
    robustness.main(
        [
            "--workspace",
            str(workspace),
            "--models",
            "fixed",
            "1",
            "--clips-per-actor",
            "6",
            "--perturbations",
            "quiet",
            "telephone",
            "--song",
            str(song),
            "--groupings",
            "speaker_emotion",
            "all_speakers",
            "--out",
            str(out),
            "--plot",
            str(plot),
        ]
    )
    report = json.loads(out.read_text())
    assert list(report["speech"]) == ["clean", "quiet", "telephone"]
    assert report["protocol"]["tested_actors"] == {"fixed": [4], "1": [4]}
    for condition in report["speech"].values():
        assert condition["clips"] == 12  # 6 clips of actor 4, once per model
        for recordings in ("k_1", "k_all"):
            scored = condition[recordings]
            assert 0 <= scored["accuracy"] <= 1 and 1 / 8 <= scored["collapse"] <= 1
    assert report["song"]["emotions"] == ["angry", "calm", "fearful", "happy", "neutral", "sad"]
    assert report["song"]["song"]["clips"] == 12
    order = ["neutral", "calm", "happy", "sad", "angry", "fearful"]  # the song's, in emotions8
    found = report["song"]["classes"]
    assert found == [name for name in order if name in found]
    assert report["song"]["song_among_its_classes"]["clips"] == 12
    assert set(report["groupings"]) == {"speaker_emotion", "all_speakers"}
    assert report["groupings"]["all_speakers"]["clips"] == 12
    table = pd.read_csv(plot)
    assert set(table["recordings"].astype(str)) == {"1", "all"}
    assert "song" in set(table["condition"])


def test_recordings_of_several_sentences_are_judged_alone(robustness, workspace, tmp_path):
    out, plot = tmp_path / "robustness.json", tmp_path / "robustness.csv"
    arguments = ["--workspace", str(workspace), "--models", "fixed", "--no-perturbations"]
    robustness.main(
        [*arguments, "--sentences", "1", "3", "--max-pause-seconds", "none", "--out", str(out)]
        + ["--plot", str(plot)]
    )
    report = json.loads(out.read_text())
    assert report["protocol"]["max_pause_seconds"] == "none"
    joined = report["sentences"]
    # One clip a recording is every clip alone, as clean speech judges it.
    assert joined["1"]["clips"] == report["speech"]["clean"]["clips"]
    assert joined["1"]["k_1"] == report["speech"]["clean"]["k_1"]
    assert "k_all" not in joined["1"]
    # Three clips of an emotion a recording: a third as many recordings, fewer what is left.
    assert joined["3"]["clips"] == sum(count // 3 for count in _clips_per_emotion(workspace))
    assert "speech clean, 3 joined" in set(pd.read_csv(plot)["condition"])
    with pytest.raises(SystemExit):
        robustness.parse_args([*arguments, "--max-pause-seconds", "-1"])
    with pytest.raises(SystemExit):
        robustness.parse_args([*arguments, "--sentences", "0"])


def _clips_per_emotion(workspace: Path) -> list[int]:
    """How many usable clips each test actor (4) has of each emotion, in the workspace."""
    from ser.data.manifest import read_manifest

    manifest = read_manifest(workspace / "data/manifest.csv")
    usable = manifest[(manifest["excluded"] == "") & (manifest["actor"] == 4)]
    return usable.groupby("emotion").size().tolist()


@pytest.fixture(scope="module")
def cv_models(tiny_model, tmp_path_factory) -> Path:
    """What recordings_cv.py --keep-models leaves: model-SEED-FOLD folders whose meta names
    the actors each never saw (the tiny model twice, testing actor 4 and actor 3)."""
    from ser.fsutil import read_json, write_json
    from ser.model import modelio

    root = tmp_path_factory.mktemp("cv-models")
    for name, actor in (("model-0-1", 4), ("model-0-2", 3)):
        shutil.copytree(tiny_model, root / name)
        meta = read_json(root / name / modelio.META_FILE)
        meta["actors"] = {**meta["actors"], "test": [actor]}
        meta["train"] = {**meta["train"], "seed": 0}
        write_json(root / name / modelio.META_FILE, meta)
    return root


@pytest.fixture(scope="module")
def cv_models_seed1(cv_models, tmp_path_factory) -> Path:
    """A second seed's --keep-models folder: model-1-1, testing actor 4 as model-0-1 does."""
    from ser.fsutil import read_json, write_json
    from ser.model import modelio

    root = tmp_path_factory.mktemp("cv-models-seed1")
    shutil.copytree(cv_models / "model-0-1", root / "model-1-1")
    meta = read_json(root / "model-1-1" / modelio.META_FILE)
    meta["train"] = {**meta["train"], "seed": 1}
    write_json(root / "model-1-1" / modelio.META_FILE, meta)
    return root


def test_the_same_model_in_two_folders_is_refused(robustness, cv_models, tiny_corpus, capsys):
    with pytest.raises(SystemExit):
        robustness.parse_args(
            ["--cv-models", str(cv_models), str(cv_models), "--speech", str(tiny_corpus)]
        )
    assert "model-0-1 is in both" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "--cv-models: give --speech"),
        (["--speech", "{speech}", "--models", "1"], "--models goes with --workspace"),
    ],
)
def test_cv_models_need_their_speech_and_no_model_names(
    robustness, cv_models, tiny_corpus, capsys, arguments, message
):
    arguments = [item.format(speech=tiny_corpus / "speech") for item in arguments]
    with pytest.raises(SystemExit):
        robustness.parse_args(["--cv-models", str(cv_models), *arguments])
    assert message in capsys.readouterr().err


def test_an_empty_models_folder_and_a_stray_speech_are_refused(
    robustness, workspace, tiny_corpus, tmp_path, capsys
):
    with pytest.raises(SystemExit):
        robustness.parse_args(["--cv-models", str(tmp_path), "--speech", str(tiny_corpus)])
    assert "no model-SEED-FOLD folder in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        robustness.parse_args(["--workspace", str(workspace), "--speech", str(tiny_corpus)])
    assert "--speech goes with --cv-models" in capsys.readouterr().err


def test_benchmark_tests_each_cv_model_on_the_actors_it_never_saw(
    robustness, cv_models, cv_models_seed1, tiny_corpus, tmp_path
):
    out, plot = tmp_path / "robustness.json", tmp_path / "robustness.csv"
    robustness.main(
        [
            "--cv-models",
            str(cv_models),
            str(cv_models_seed1),
            "--speech",
            str(tiny_corpus / "speech"),
            "--clips-per-actor",
            "5",
            "--perturbations",
            "noise_10db",
            "--out",
            str(out),
            "--plot",
            str(plot),
        ]
    )
    report = json.loads(out.read_text())
    assert report["protocol"]["tested_actors"] == {
        "model-0-1": [4],
        "model-0-2": [3],
        "model-1-1": [4],
    }
    assert report["protocol"]["models"] == f"{cv_models} {cv_models_seed1}"
    assert list(report["speech"]) == ["clean", "noise_10db"]
    assert report["speech"]["clean"]["clips"] == 15  # 5 of actor 4 twice and 5 of actor 3
    assert set(report["by_model"]) == {"model-0-1", "model-0-2", "model-1-1"}
    assert report["by_model"]["model-0-2"]["noise_10db"]["clips"] == 5
    # Each seed scored on its own clips, then averaged: seed 1 has one fold, seed 0 two.
    by_seed = report["by_seed"]
    assert {seed: by_seed[seed]["clean"]["clips"] for seed in by_seed} == {"0": 10, "1": 5}
    assert by_seed["1"]["noise_10db"] == report["by_model"]["model-1-1"]["noise_10db"]
    for recordings in ("k_1", "k_all"):
        below = [
            by_seed[seed]["clean"][recordings]["uar"]
            - by_seed[seed]["noise_10db"][recordings]["uar"]
            for seed in ("0", "1")
        ]
        found = report["over_seeds"]["noise_10db"][recordings]
        assert found["uar_below_clean"]["mean"] == pytest.approx(np.mean(below))
        assert found["uar_below_clean"]["std"] == pytest.approx(np.std(below))
        assert found["seeds"] == 2
        assert report["over_seeds"]["clean"][recordings]["uar_below_clean"]["mean"] == 0


def test_test_speeds_override_the_models_own(robustness, cv_models, tiny_corpus, tmp_path):
    def run(*extra: str) -> dict:
        out = tmp_path / f"robustness{len(extra)}.json"
        robustness.main(
            [
                "--cv-models", str(cv_models), "--speech", str(tiny_corpus / "speech"),
                "--clips-per-actor", "5", "--no-perturbations", "--out", str(out),
                "--plot", str(tmp_path / "robustness.csv"), *extra,
            ]
        )  # fmt: skip
        return json.loads(out.read_text())

    own, alone = run(), run("--test-speeds")
    assert own["protocol"]["test_speeds"] == "each model's own"
    assert alone["protocol"]["test_speeds"] == []
    assert own["speech"]["clean"]["clips"] == alone["speech"]["clean"]["clips"] == 10
