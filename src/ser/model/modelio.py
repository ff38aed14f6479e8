"""A trained model on disk: model.keras plus model.json (classes, features, labels, training).

The folder is self-sufficient: predicting needs nothing from params.yaml.
"""

from __future__ import annotations

from pathlib import Path

from ser.errors import DataError
from ser.fsutil import atomic_dir, read_json, write_json

MODEL_FILE = "model.keras"
META_FILE = "model.json"


def metadata(
    *,
    labels,
    feature_settings: dict,
    model_params,
    training: dict,
    corpus: str,
    actors: dict[str, list[int | str]],
    validation: dict,
) -> dict:
    """What model.json holds: class order, labels, features, architecture, training, data."""
    from dataclasses import asdict

    return {
        "classes": list(labels.class_names),
        "labels": labels.to_dict(),
        "features": feature_settings,
        "model": asdict(model_params),
        "train": training,
        "corpus": corpus,
        "actors": actors,
        "validation": validation,
    }


def save(folder: Path, model, meta: dict) -> None:
    """Write the model folder atomically (a complete folder or none)."""
    with atomic_dir(Path(folder)) as temporary:
        model.save(temporary / MODEL_FILE)
        write_json(temporary / META_FILE, meta)


def read_meta(folder: Path) -> dict:
    folder = Path(folder)
    if not (folder / META_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise DataError(
            f"{folder}: not a model folder (expected {MODEL_FILE} and {META_FILE}; "
            "train one with `dvc repro`)"
        )
    return read_json(folder / META_FILE)


def load(folder: Path):
    """(keras model, meta dict) from a folder written by :func:`save`."""
    meta = read_meta(folder)
    import keras

    import ser.model.layers  # noqa: F401  (registers the custom layers the saved model may use)

    model = keras.models.load_model(Path(folder) / MODEL_FILE, compile=False)
    return model, meta
