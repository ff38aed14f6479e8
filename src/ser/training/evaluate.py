"""Scores of predictions against true classes."""

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


SUMMARY_METRICS = ("accuracy", "macro_f1", "uar")


def summarise_folds(runs: Sequence[dict]) -> dict:
    """Mean and sample standard deviation over folds (or seeds) of each score of `scores`.

    ``{"runs": k, "accuracy": {"mean": .., "std": ..}, "macro_f1": .., "uar": ..}``; std is
    0.0 for a single run. Runs whose score is null (no test clip) are left out of it.
    """
    summary: dict = {"runs": len(runs)}
    for metric in SUMMARY_METRICS:
        values = [run[metric] for run in runs if run.get(metric) is not None]
        if not values:
            summary[metric] = {"mean": None, "std": None}
            continue
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        summary[metric] = {"mean": _round(np.mean(values)), "std": _round(std)}
    return summary
