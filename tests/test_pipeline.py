"""What users do, with the real dvc command, in a temporary git repo holding a copy of the project.

The corpus is the synthetic one, cut to six actors, and training runs for a few epochs, so
the whole module takes a few minutes on two cores.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXED = ("download", "featurize", "split", "augment", "train", "evaluate")
FOLDS = ("cv_train@1", "cv_train@2", "cv_train@3", "cv_evaluate@1", "cv_evaluate@2")
CV = (*FOLDS, "cv_evaluate@3", "cv_summary")
STAGES = (*FIXED, *CV)
TINY = {
    ("data", "synthetic", "actors"): [1, 2, 3, 4, 5, 6],
    ("split", "test_actors"): [5, 6],
    ("split", "val_actors"): [3, 4],
    ("split", "folds"): [1, 2, 3],
    ("model", "filters"): 8,
    ("model", "stats_epochs"): 4,  # 60 took half of each training here
    # No whole-speaker model (a second training each time): the metrics' single-recording
    # figures, which these tests compare with `ser predict FILE`, never use it, and
    # tests/test_train.py and tests/test_predict.py train and blend it.
    ("model", "speaker_blend"): 0.0,
    ("train", "epochs"): 3,
}
# One cross-validation fold stands for all: they are one stage template (foreach in
# dvc.yaml), and each fold more is another training in every rerun check.
FOLD = ("cv_train@1", "cv_evaluate@1")

pytestmark = pytest.mark.slow


def run(
    args: list[str], cwd: Path, check: bool = True, timeout: float = 1200
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        # Stage commands call `python`: the one running the tests, with the project installed.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Stages import the copy's library, not the checkout's, so that what DVC hashed as a
        # dependency is what runs (the checkout may change while the tests run).
        "PYTHONPATH": str(cwd / "src"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, check=check)


def git(*args: str, cwd: Path) -> str:
    return run(["git", *args], cwd=cwd).stdout


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([\w@-]+)'", output))


def edit_params(project: Path, changes: dict) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for keys, value in changes.items():
        node = params
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def project_files() -> list[str]:
    listed = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


def make_project(target: Path, changes: dict, *stages: str) -> str:
    """Copy the project into git repo `target` with params changed, run `dvc repro [stages]`
    and commit the results; returns the output of the repro."""
    for name in project_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination)
    edit_params(target, changes)
    git("init", "-q", "-b", "main", cwd=target)
    git("add", "-A", cwd=target)
    git("commit", "-qm", "tiny project", cwd=target)
    first = dvc("repro", *stages, cwd=target)
    git("add", "-A", cwd=target)
    git("commit", "-qm", "first run", cwd=target)
    return first.stdout + first.stderr


def tiny_project(tmp_path_factory, name: str) -> tuple[Path, str]:
    """A copy of the project with TINY params after its first `dvc repro` (and the repro's
    output), in a new folder ``name``.

    The repro runs once per test run: the xdist workers of one run share it, the first to
    ask building it under a lock while the others wait, then copy it. Two workers building
    their own on two cores took as long as each waiting for one.
    """
    target = tmp_path_factory.mktemp(name)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:  # one process: nothing to share
        return target, make_project(target, TINY)
    shared = tmp_path_factory.getbasetemp().parent / f"tiny-project-{run_id}"
    output = shared.with_suffix(".out")
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not output.exists():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            output.write_text(make_project(shared, TINY))
    shutil.copytree(shared, target, symlinks=True, dirs_exist_ok=True)
    return target, output.read_text()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, str]:
    """A fresh clone-like copy of the project with tiny params, after its first `dvc repro`."""
    return tiny_project(tmp_path_factory, "project")


def reset(project: Path) -> None:
    git("reset", "-q", "--hard", "HEAD", cwd=project)
    dvc("checkout", "--force", cwd=project)


def test_repro_on_a_fresh_copy_runs_every_stage(project):
    folder, output = project
    assert stages_run(output) == set(STAGES)
    metrics = json.loads((folder / "metrics" / "evaluate.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert set(metrics["per_class_recall"]) == set(metrics["classes"])
    assert metrics["clips"] == {"train": 120, "val": 120, "test": 120}
    assert metrics["corpus"] == "synthetic"
    confusion = (folder / "plots" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "clip_id,actual,predicted" and len(confusion) == 121
    # Each clip judged alone too, beside all of a speaker's clips, with calibration and
    # the collapse share; and accuracy against recordings per speaker as a plot.
    for scores in (metrics, metrics["single"]):
        assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["ece"] <= 1.0
        assert 0.0 < scores["ece_floor"] < 0.5  # 120 clips: a calibrated model is not at 0
        assert 1 / len(metrics["classes"]) <= scores["collapse"] <= 1.0
    curve = (folder / "plots" / "recordings.csv").read_text().splitlines()
    assert curve[0] == "recordings,accuracy,uar"
    assert [line.split(",")[0] for line in curve[1:]] == ["1", "2", "4", "8", "all"]
    assert float(curve[1].split(",")[1]) == pytest.approx(metrics["single"]["accuracy"])
    assert float(curve[-1].split(",")[1]) == pytest.approx(metrics["accuracy"])
    # Image plots, which render with no network.
    for image in ("confusion_single", "confusion_all", "recall", "recordings"):
        assert (folder / "plots" / "images" / f"{image}.png").read_bytes()[
            :8
        ] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "plots" / "train" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "plots" / "train" / "plots" / "metrics" / "val_loss.tsv").is_file()
    meta = json.loads((folder / "data" / "model" / "model.json").read_text())
    assert meta["classes"] == metrics["classes"]
    assert meta["actors"] == {"train": [1, 2], "val": [3, 4], "test": [5, 6]}


def test_cross_validation_summarises_every_fold(project):
    folder, _ = project
    summary = json.loads((folder / "metrics" / "cv.json").read_text())
    folds = [json.loads((folder / f"metrics/cv/{k}/evaluate.json").read_text()) for k in (1, 2, 3)]
    assert summary["runs"] == 3
    singles = [fold["single"]["accuracy"] for fold in folds]
    assert summary["single"]["accuracy"]["mean"] == pytest.approx(sum(singles) / 3, abs=1e-6)
    accuracies = [fold["accuracy"] for fold in folds]
    assert summary["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 3, abs=1e-6)
    assert summary["fold_accuracy"] == {
        str(k): a for k, a in zip((1, 2, 3), accuracies, strict=True)
    }
    # Folds of whole actors, the test actors (5, 6) in none; each fold's model never saw them.
    tested = [actor for fold in folds for actor in fold["test_actors"]]
    assert sorted(tested) == [1, 2, 3, 4]
    for k in (1, 2, 3):
        meta = json.loads((folder / f"data/cv/{k}/model/model.json").read_text())
        seen = meta["actors"]["train"] + meta["actors"]["val"]
        assert not set(seen) & set(meta["actors"]["test"])
        assert not set(seen) & {5, 6}
    shown = dvc("metrics", "show", "--json", cwd=folder).stdout
    assert '"metrics/cv.json"' in shown


def test_evaluate_judges_each_clip_as_ser_predict_does(project):
    """The metrics' single-recording figures are what `ser predict FILE` gives, clip for clip."""
    folder, _ = project
    single = [
        line.split(",")
        for line in (folder / "plots/confusion_single.csv").read_text().splitlines()[1:]
    ]
    manifest = {
        row.split(",")[0]: row.split(",")[1]
        for row in (folder / "data/manifest.csv").read_text().splitlines()[1:]
    }
    files = [str(folder / manifest[clip]) for clip, _, _ in single]
    result = run(
        [
            str(Path(sys.executable).parent / "ser"),
            "predict",
            *files,
            "--format",
            "json",
            "--model",
            str(folder / "data/model"),
        ],
        cwd=folder,
    )
    assert result.stderr == ""
    predicted = [row["label"] for row in json.loads(result.stdout)]
    assert predicted == [label for _, _, label in single]


def test_second_repro_runs_nothing(project):
    folder, _ = project
    started = time.monotonic()
    again = dvc("repro", cwd=folder)
    assert stages_run(again.stdout) == set()
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("augment.noise=true", {"augment", "train", "evaluate", *FOLD}),
        ("features.n_mfcc=20", {"featurize", "augment", "train", "evaluate", *FOLD}),
    ],
)
def test_exp_run_reruns_exactly_the_affected_stages(project, setting, expected):
    folder, _ = project
    try:
        result = dvc("exp", "run", "-S", setting, "evaluate", FOLD[-1], cwd=folder)
        assert stages_run(result.stdout) == expected
    finally:
        reset(folder)


def test_exp_show_lists_params_and_metrics(project):
    folder, _ = project
    shown = dvc("exp", "show", "--json", cwd=folder).stdout
    assert '"noise": false' in shown and '"grouping": "emotions8"' in shown
    assert '"accuracy"' in shown and '"uar"' in shown


def test_metrics_and_plots_diff_between_branches(project):
    folder, _ = project
    try:
        git("checkout", "-q", "-b", "valence2", cwd=folder)
        # Which members train on the copies is the train stage's business only, as the
        # grouping is: augment and the stages before it stay.
        edit_params(
            folder,
            {("labels", "grouping"): "valence2", ("augment", "members"): ["statistics"]},
        )
        ran = stages_run(dvc("repro", "evaluate", FOLD[-1], cwd=folder).stdout)
        assert ran == {"train", "evaluate", *FOLD}
        git("add", "-A", cwd=folder)
        git("commit", "-qm", "valence2", cwd=folder)
        diff = dvc("metrics", "diff", "main", "valence2", "--json", cwd=folder).stdout
        changes = json.loads(diff)["metrics/evaluate.json"]
        assert "accuracy" in changes and changes["accuracy"]["old"] != changes["accuracy"]["new"]
        rendered = folder / "plots-diff"
        dvc("plots", "diff", "main", "valence2", "-o", str(rendered), cwd=folder)
        page = (rendered / "index.html").read_text()
        assert "confusion" in page.lower() and "val_loss" in page
    finally:
        git("checkout", "-q", "main", cwd=folder)
        reset(folder)


def test_queued_experiment_runs_with_queue_start(project):
    folder, _ = project
    queued = dvc("exp", "run", "--queue", "-S", "split.val_actors=[2,4]", cwd=folder).stdout
    names = re.findall(r"Queued experiment '([\w-]+)'", queued)
    assert len(names) == 1, queued
    dvc("queue", "start", cwd=folder)
    deadline = time.monotonic() + 300
    status = ""
    while time.monotonic() < deadline:
        status = dvc("queue", "status", cwd=folder).stdout
        if "Success" in status or "Failed" in status:
            break
        time.sleep(3)
    dvc("queue", "stop", "--kill", cwd=folder, check=False)
    assert "Success" in status, status
    shown = json.loads(dvc("exp", "show", "--json", cwd=folder).stdout)
    assert '"val_actors": [2, 4]' in json.dumps(shown)
    # Another validation speaker changes the split and what follows it, not the features or
    # the cross-validation folds (which never use split.val_actors).
    logs = dvc("queue", "logs", names[0], cwd=folder).stdout
    assert stages_run(logs) == {"split", "augment", "train", "evaluate"}, logs


def test_a_test_corpus_is_tested_on_alone_and_named_by_speaker(tmp_path):
    from tests.test_corpora import write_clips

    # Two EmoDB speakers, one clip per emotion; boredom (L) is in no class of emotions8.
    names = [f"wav/{speaker:02d}a01{code}a.wav" for speaker in (3, 8) for code in "WAFTNL"]
    source = write_clips(tmp_path / "emodb", names)
    folder = tmp_path / "project"
    changes = {
        **TINY,
        ("data", "corpus"): ["synthetic", "emodb"],
        ("data", "emodb", "url"): str(source),
        ("split", "test_corpus"): "emodb",
    }
    output = make_project(folder, changes, "evaluate")
    assert stages_run(output) == set(FIXED)
    assert "split.test_actors is not used" in output
    metrics = json.loads((folder / "metrics" / "evaluate.json").read_text())
    assert metrics["test_actors"] == ["emodb:3", "emodb:8"]
    # Synthetic actors 1-6 train and validate (3 and 4; emodb:3 is a test speaker), 60 clips each.
    assert metrics["clips"] == {"train": 240, "val": 120, "test": 10}
    assert metrics["corpus"] == "synthetic+emodb"
    assert len((folder / "plots" / "confusion.csv").read_text().splitlines()) == 1 + 10
    meta = json.loads((folder / "data" / "model" / "model.json").read_text())
    assert meta["actors"] == {
        "train": ["synthetic:1", "synthetic:2", "synthetic:5", "synthetic:6"],
        "val": ["synthetic:3", "synthetic:4"],
        "test": ["emodb:3", "emodb:8"],
    }
    folds = (folder / "data" / "folds.csv").read_text().splitlines()[1:]
    assert len(folds) == 360 and not [row for row in folds if row.startswith("emodb:")]


def test_bad_params_fail_before_any_work_with_one_line(project):
    folder, _ = project
    try:
        edit_params(folder, {("data", "corpus"): "crema"})
        result = dvc("repro", cwd=folder, check=False)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [
            "error: data.corpus: 'crema' is not allowed; choose one of: synthetic, ravdess, "
            "emodb, tess, cremad, savee"
        ]
        assert stages_run(result.stdout) == {"download"}
    finally:
        reset(folder)


def test_rerun_from_scratch_gives_byte_identical_metrics(project):
    """A forced rerun of a training and what reads it gives the same bytes. The chain from
    download to evaluate is rerun from scratch, killed and not, in tests/test_recovery.py;
    here the cross-validation stages, a fold and the summary of all folds."""
    folder, _ = project
    before = {
        name: (folder / "metrics" / name).read_bytes() for name in ("cv.json", "cv/2/evaluate.json")
    }
    rerun = ("cv_train@2", "cv_evaluate@2", "cv_summary")
    forced = dvc("repro", "--force", "--single-item", *rerun, cwd=folder)
    assert stages_run(forced.stdout) == set(rerun)
    for name, content in before.items():
        assert (folder / "metrics" / name).read_bytes() == content, name


def experiments(shown: list[dict]) -> dict[str, dict]:
    """Name -> {"state", "params", "metrics"} of every experiment in `dvc exp show --json`."""
    found = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for state in experiment["revs"]:
                data = state.get("data") or {}
                found[state["name"]] = {
                    "state": (experiment.get("executor") or {}).get("state"),
                    "params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                    "metrics": {
                        path: result.get("data", {})
                        for path, result in data.get("metrics", {}).items()
                    },
                }
    return found


def test_a_sweep_runs_one_experiment_per_value_in_the_queue(project):
    folder, _ = project
    baseline = json.loads((folder / "metrics" / "evaluate.json").read_text())
    try:
        # Up to evaluate only: the CV stages would add six trainings to the test's run time.
        sweep = ["exp", "run", "--queue", "-S", "augment.noise=true,false", "evaluate"]
        queued = dvc(*sweep, cwd=folder)
        names = re.findall(r"Queued experiment '([\w-]+)'", queued.stdout)
        assert len(names) == 2, queued.stdout
        status = dvc("queue", "status", cwd=folder).stdout
        assert status.count("Queued") == 2, status
        dvc("queue", "start", "-j", "2", cwd=folder)
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            status = dvc("queue", "status", cwd=folder).stdout
            if not re.search(r"\b(Queued|Running)\b", status):
                break
            time.sleep(3)
        assert not re.search(r"\b(Queued|Running|Failed)\b", status), status
        shown = experiments(json.loads(dvc("exp", "show", "--json", cwd=folder).stdout))
        swept = {name: shown[name] for name in names}
        assert sorted(run["params"]["augment"]["noise"] for run in swept.values()) == [
            False,
            True,
        ]
        for name, run in swept.items():
            assert run["state"] == "success", (name, run["state"])
            scores = run["metrics"]["metrics/evaluate.json"]
            assert 0.0 <= scores["accuracy"] <= 1.0 and "uar" in scores, name
            if not run["params"]["augment"]["noise"]:  # the baseline's settings, its scores
                for metric in ("accuracy", "macro_f1", "uar", "per_class_recall"):
                    assert scores[metric] == baseline[metric], (name, metric)
    finally:
        dvc("queue", "stop", "--kill", cwd=folder, check=False)
        dvc("queue", "remove", "--all", cwd=folder, check=False)
