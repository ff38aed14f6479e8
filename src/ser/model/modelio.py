"""A trained model on disk: model.keras plus model.json (classes, features, labels, training).

The folder is self-sufficient: predicting needs nothing from params.yaml.
"""

from __future__ import annotations

from pathlib import Path

from ser.errors import DataError
from ser.fsutil import atomic_dir, read_json, write_json

MODEL_FILE = "model.keras"
META_FILE = "model.json"
# The subfolder of the whole-speaker model blended in for many recordings (model.speaker_blend).
WHOLE_SPEAKER_DIR = "whole_speaker"
# model.json's layout. 2: "normalizer" (the speaker standardiser of features.normalize:
# speaker, ser.features.speaker) and "calibration"; 3: "blend" (None, or the whole-speaker
# model's folder and the recordings its weight (k - 1) / (k - 1 + recordings) counts
# against).
# read_meta upgrades older files.
SCHEMA = 4


def metadata(
    *,
    labels,
    feature_settings: dict,
    model_params,
    training: dict,
    corpus: str,
    actors: dict[str, list[int | str]],
    validation: dict,
    normalizer=None,
    temperature: float = 1.0,
) -> dict:
    """What model.json holds: class order, labels, features, architecture, training, data,
    the speaker standardiser (a SpeakerNormalizer, or None) and the calibration temperature
    that divides the log-probabilities."""
    from dataclasses import asdict

    return {
        "schema": SCHEMA,
        "classes": list(labels.class_names),
        "labels": labels.to_dict(),
        "features": feature_settings,
        "model": asdict(model_params),
        "train": training,
        "corpus": corpus,
        "actors": actors,
        "validation": validation,
        "normalizer": None if normalizer is None else normalizer.to_dict(),
        "calibration": {"temperature": float(temperature)},
        "blend": None,
    }


def upgrade(meta: dict) -> dict:
    """model.json of any schema, as the current schema has it.

    Schema 1 (no "schema" key) had no normalizer: its speaker-normalised features were
    standardised by all of a speaker's recordings, which the current code does not do, so
    such a model is refused by prediction (see ser.serve.predict) rather than misread.
    """
    meta = dict(meta)
    version = meta.get("schema", 1)
    if version > SCHEMA:
        raise DataError(
            f"model.json schema {version} is newer than this ser reads ({SCHEMA}): update ser"
        )
    if version == 1:
        meta.update(normalizer=None, calibration={"temperature": 1.0})
    meta.setdefault("blend", None)
    if version < 4 and "features" in meta:
        # features.level_db came with schema 4: such a model used the level as recorded.
        meta["features"] = {**meta["features"], "level_db": None}
    meta["schema"] = SCHEMA
    return meta


def save(folder: Path, model, meta: dict, *, whole_speaker: tuple | None = None) -> None:
    """Write the model folder atomically (a complete folder or none); whole_speaker: (keras
    model, meta) of the model blended in for many recordings, written to WHOLE_SPEAKER_DIR."""
    with atomic_dir(Path(folder)) as temporary:
        model.save(temporary / MODEL_FILE)
        write_json(temporary / META_FILE, meta)
        if whole_speaker is not None:
            companion = temporary / WHOLE_SPEAKER_DIR
            companion.mkdir()
            whole_speaker[0].save(companion / MODEL_FILE)
            write_json(companion / META_FILE, whole_speaker[1])


def read_meta(folder: Path) -> dict:
    folder = Path(folder)
    if not (folder / META_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise DataError(
            f"{folder}: not a model folder (expected {MODEL_FILE} and {META_FILE}; "
            "train one with `dvc repro`)"
        )
    return upgrade(read_json(folder / META_FILE))


def load(folder: Path):
    """(keras model, meta dict) from a folder written by :func:`save`."""
    meta = read_meta(folder)
    import keras

    import ser.model.layers  # noqa: F401  (registers the custom layers the saved model may use)

    model = keras.models.load_model(Path(folder) / MODEL_FILE, compile=False)
    return model, meta
