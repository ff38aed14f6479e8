import numpy as np
import pytest

from ser.model.calibration import among, calibrate, calibration_error, fit_temperature
from ser.training.evaluate import calibration_floor


def calibrated_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n clips of 8 classes whose labels follow their probabilities: calibrated by design."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(8, 0.4), size=n)
    labels = np.array([rng.choice(8, p=row) for row in probabilities])
    return probabilities, labels


def test_calibration_error_is_the_gap_between_confidence_and_accuracy_per_bin():
    # Two clips at confidence 0.9 (one right), two at 0.55 (both right): bins 9 and 6.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.45, 0.55], [0.45, 0.55]])
    y_true = np.array([0, 1, 1, 1])
    assert calibration_error(probabilities, y_true) == pytest.approx(
        0.5 * abs(0.9 - 0.5) + 0.5 * abs(0.55 - 1.0)
    )


def test_a_temperature_that_sharpened_calibrated_probabilities_is_found_and_undone():
    probabilities, labels = calibrated_sample(4000, seed=1)
    overconfident = calibrate(probabilities, 0.5)
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(2.0, rel=0.15)
    assert calibration_error(calibrate(overconfident, temperature), labels) < 0.5 * (
        calibration_error(overconfident, labels)
    )


def test_the_floor_is_what_a_calibrated_model_scores_and_shrinks_with_the_sample():
    small, small_labels = calibrated_sample(240, seed=2)
    large, large_labels = calibrated_sample(6000, seed=3)
    floor_small, floor_large = calibration_floor(small), calibration_floor(large)
    # A perfectly calibrated model does not score 0 on 240 clips; on 6,000 it nearly does.
    assert 0.03 < floor_small < 0.12 and floor_large < 0.02
    assert calibration_error(large, large_labels) < 2 * floor_large + 0.01
    assert calibration_floor(small) == floor_small  # seeded
    assert calibration_floor(calibrate(small, 0.3)) != floor_small  # it reads the confidences


def test_probabilities_among_some_classes_are_conditioned_on_them():
    probabilities = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.2, 0.6, 0.1], [1.0, 0.0, 0.0, 0.0]])
    kept = among(probabilities, [1, 2])
    np.testing.assert_allclose(kept[0], [0, 0.75, 0.25, 0])
    np.testing.assert_allclose(kept[1], [0, 0.25, 0.75, 0])
    # No mass on the allowed classes at all: even odds among them, never NaN.
    np.testing.assert_allclose(kept[2], [0, 0.5, 0.5, 0])
