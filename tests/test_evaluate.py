import numpy as np

from ser.evaluate import scores


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
