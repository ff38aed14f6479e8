"""Confidences a user can read: temperature scaling (Guo et al. 2017) and its measure, the
expected calibration error.

A network trained with label smoothing and dropout, then averaged with a second member, gives
probabilities whose top value is not the chance of being right. One number, the temperature
T, fitted on the validation speakers after training, rescales them: p_i ∝ p_i ** (1 / T).
The class ranking, and so accuracy, is unchanged.
"""

from __future__ import annotations

import numpy as np

# Bins of the expected calibration error.
CALIBRATION_BINS = 10
# Temperatures tried when fitting (log-spaced): far wider than any fitted value seen.
_GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400))


def calibrate(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(n, classes) probabilities rescaled by the temperature, as float64 rows summing to 1."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature (on a fixed log grid) that minimises the negative log-likelihood of
    the true classes: deterministic, no optimiser state."""
    y_true = np.asarray(y_true)
    if not len(y_true):
        return 1.0
    losses = [
        -np.mean(
            np.log(np.clip(calibrate(probabilities, t)[np.arange(len(y_true)), y_true], 1e-12, 1))
        )
        for t in _GRID
    ]
    return round(float(_GRID[int(np.argmin(losses))]), 4)


def calibration_error(
    probabilities: np.ndarray, y_true: np.ndarray, *, bins: int = CALIBRATION_BINS
) -> float:
    """Expected calibration error: over equal-width bins of confidence (the top probability),
    the gap between mean confidence and accuracy, weighted by the share of clips in the bin."""
    probabilities = np.asarray(probabilities)
    if not len(probabilities):
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    error = 0.0
    for index in range(bins):
        inside = which == index
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def among(probabilities: np.ndarray, allowed: list[int]) -> np.ndarray:
    """(n, classes) probabilities given that the class is one of ``allowed`` (indices): the
    others' set to zero and each row renormalised, as Bayes' rule conditions them. For a user
    whose recordings cannot hold some of the model's classes (song has no disgust)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    kept = np.zeros_like(probabilities)
    kept[:, allowed] = probabilities[:, allowed]
    total = kept.sum(axis=1, keepdims=True)
    # A row with no mass on the allowed classes (underflow) falls back to even odds among them.
    empty = total[:, 0] <= 0
    kept[np.ix_(empty, allowed)] = 1.0
    total[empty] = len(allowed)
    return kept / total
