"""A Prediction as the JSON object that `ser predict --format json` prints for a file and
`ser serve` answers to POST /predict: one definition for both."""

from __future__ import annotations


def as_dict(result, *, per_window: bool) -> dict:
    """The JSON object of one Prediction (ser.serve.predict): file, status, label,
    confidence, probabilities, the message if any, and with ``per_window`` its windows."""
    data = {
        "file": result.source,
        "status": result.status,
        "label": result.label,
        "confidence": result.confidence,
        "probabilities": result.probabilities,
    }
    if result.message:
        data["message"] = result.message
    if per_window:
        data["windows"] = result.windows
    return data
