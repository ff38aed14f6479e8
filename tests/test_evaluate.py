import numpy as np
import pytest

from ser.training.evaluate import scores


def test_scores_on_a_known_case():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    result = scores(y_true, y_pred, ["a", "b", "c"])
    assert result["accuracy"] == 0.75
    assert result["per_class_recall"] == {"a": 0.75, "b": 0.5, "c": 1.0}
    assert result["uar"] == round((0.75 + 0.5 + 1.0) / 3, 6)
    # F1: a = 2*.75*.75/1.5 = .75, b = 2*.5*.5/1 = .5, c = 1
    assert result["macro_f1"] == round((0.75 + 0.5 + 1.0) / 3, 6)


def test_a_class_absent_from_the_test_set_has_no_recall():
    result = scores(np.array([0, 0]), np.array([0, 1]), ["a", "b"])
    assert result["per_class_recall"]["b"] is None
    assert result["uar"] == 0.5


def test_fold_summary_is_mean_and_sample_std():
    from ser.training.evaluate import summarise_folds

    runs = [
        {"accuracy": 0.4, "macro_f1": 0.3, "uar": 0.35},
        {"accuracy": 0.6, "macro_f1": 0.5, "uar": 0.55},
        {"accuracy": 0.5, "macro_f1": None, "uar": 0.45},
    ]
    summary = summarise_folds(runs)
    assert summary["runs"] == 3
    assert summary["accuracy"] == {"mean": 0.5, "std": 0.1}
    assert summary["macro_f1"] == {"mean": 0.4, "std": pytest.approx(0.141421, abs=1e-6)}
    assert summarise_folds(runs[:1])["uar"] == {"mean": 0.35, "std": 0.0}
