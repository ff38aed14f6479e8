"""Scores of predictions against true classes, and how test clips are grouped by speaker.

The evaluate stage judges a model as users meet it: each test clip alone (one recording of
a voice never heard, what ``ser predict FILE`` does), in small groups of the same speaker,
and with all of the speaker's clips standardised together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _round(value: float) -> float:
    # Six decimals: stable bytes in metrics files, far finer than any real difference.
    return round(float(value), 6)


def scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """accuracy, macro_f1, uar (unweighted average recall) and per-class recall.

    y_true, y_pred: (n,) class indices into class_names. Classes absent from y_true have no
    recall and are left out of uar and per_class_recall (reported with null).
    """
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    labels = np.arange(len(class_names))
    present = np.unique(y_true)
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    per_class = {
        name: (_round(recalls[index]) if index in present else None)
        for index, name in enumerate(class_names)
    }
    return {
        "accuracy": _round(accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "macro_f1": _round(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        )
        if len(y_true)
        else None,
        "uar": _round(np.mean([recalls[index] for index in present])) if len(present) else None,
        "per_class_recall": per_class,
    }


# Recordings per test speaker at which a model is judged: one alone, a few, all of them.
RECORDINGS = (1, 2, 4, 8, "all")
# The seed of the order in which a test speaker's clips are dealt into groups.
DEAL_SEED = 0
# Above this share of one predicted class on a balanced test set, the model has collapsed.
COLLAPSE_LIMIT = 0.6


def deal_groups(speakers, recordings: int | str, *, seed: int = DEAL_SEED) -> np.ndarray:
    """Each clip's group: its speaker's clips dealt, in a seeded order, into groups of
    ``recordings`` ("all": one group per speaker); a speaker's last group may be smaller.

    speakers: (n,) one key per clip. Returns (n,) group keys "speaker/index". The order of
    a speaker's clips depends on the seed and the speaker's key only.
    """
    speakers = np.asarray(speakers).astype(str)
    groups = np.empty(len(speakers), dtype=object)
    for key in np.unique(speakers):
        members = np.flatnonzero(speakers == key)
        size = len(members) if recordings == "all" else int(recordings)
        order = np.random.default_rng([seed, *key.encode()]).permutation(len(members))
        for start in range(0, len(members), size):
            groups[members[order[start : start + size]]] = f"{key}/{start // size}"
    return groups


def collapse(y_pred: np.ndarray, num_classes: int) -> float:
    """The share of clips given the most-predicted class (1 / num_classes on a balanced test
    set at best; above COLLAPSE_LIMIT the model says one thing for almost everything)."""
    y_pred = np.asarray(y_pred, dtype=int)
    if not len(y_pred):
        return 0.0
    return _round(np.bincount(y_pred, minlength=num_classes).max() / len(y_pred))


def judge_recordings(
    predictor,
    windows: list[np.ndarray],
    speakers,
    sources: list[str],
    names: list[str],
    copies: list | None = None,
) -> dict[int | str, np.ndarray]:
    """Each clip's class probabilities (n, classes), judged by ``predictor`` (a
    ser.serve.predict.Predictor: what ``ser predict`` runs) with the clip's speaker dealt into
    groups of each size of RECORDINGS; {recordings: probabilities}. ``copies``: each clip's
    speed copies (Predictor.file_copies), for a model that judges them."""
    judged = {}
    for recordings in RECORDINGS:
        groups = deal_groups(speakers, recordings)
        results = predictor.predict_features(windows, list(groups), list(sources), copies)
        rows = [[result.probabilities[name] for name in names] for result in results]
        judged[recordings] = np.array(rows, dtype=float).reshape(len(results), len(names))
    return judged


def judge(probabilities: np.ndarray, y_true: np.ndarray, names: list[str]) -> dict:
    """scores, the expected calibration error (beside the floor a perfectly calibrated
    model would show on as many clips) and the collapse share of one judgement."""
    from ser.model.calibration import calibration_error

    predicted = probabilities.argmax(axis=1)
    return {
        **scores(y_true, predicted, names),
        "ece": _round(calibration_error(probabilities, y_true)),
        "ece_floor": _round(calibration_floor(probabilities)),
        "collapse": collapse(predicted, len(names)),
    }


def calibration_floor(probabilities: np.ndarray, *, draws: int = 200, seed: int = 0) -> float:
    """The expected calibration error (ser.model.calibration) a perfectly calibrated model
    with these confidences would show on this many clips: the mean over ``draws`` seeded
    draws in which each clip is right with the chance it claims. Bins of a few clips make the
    error noisy and biased upward, so an ECE reads against this floor (about 0.06 for 240
    clips of 8 classes)."""
    from ser.model.calibration import calibration_error

    probabilities = np.asarray(probabilities)
    if not len(probabilities):
        return 0.0
    confidence = probabilities.max(axis=1)
    top = probabilities.argmax(axis=1)
    wrong = (top + 1) % probabilities.shape[1]  # any label but the top class
    rng = np.random.default_rng(seed)
    errors = [
        calibration_error(probabilities, np.where(rng.random(len(top)) < confidence, top, wrong))
        for _ in range(draws)
    ]
    return float(np.mean(errors))


SUMMARY_METRICS = (
    "accuracy",
    "macro_f1",
    "uar",
    "single.accuracy",
    "single.macro_f1",
    "single.uar",
)


def summarise_folds(runs: Sequence[dict]) -> dict:
    """Mean and sample standard deviation over folds (or seeds) of each score of `scores`.

    ``{"runs": k, "accuracy": {"mean": .., "std": ..}, "macro_f1": .., "uar": ..,
    "single": {"accuracy": .., ...}}`` (single: each clip judged alone); std is 0.0 for a
    single run. Runs whose score is null or missing are left out of it.
    """
    summary: dict = {"runs": len(runs)}
    for metric in SUMMARY_METRICS:
        values = [value for run in runs if (value := _get(run, metric)) is not None]
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        entry = (
            {"mean": _round(np.mean(values)), "std": _round(std)}
            if values
            else {"mean": None, "std": None}
        )
        section, _, name = metric.rpartition(".")
        (summary.setdefault(section, {}) if section else summary)[name] = entry
    return summary


def _get(run: dict, dotted: str):
    """run["a"]["b"] for "a.b"; None where a key is missing."""
    for key in dotted.split("."):
        if not isinstance(run, dict) or key not in run:
            return None
        run = run[key]
    return run
