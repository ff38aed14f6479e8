"""One training run, as the train stage does it: data, fit, validation summary, calibration,
and the whole-speaker model blended in for many recordings (model.speaker_blend).

The train stage and benchmarks/recordings_cv.py both call :func:`train_run` and save with
:meth:`Trained.save`, so a figure measured by the benchmark is the pipeline's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ser.data.labels import LabelSpec
from ser.model import modelio
from ser.model.calibration import calibrate, calibration_error, fit_temperature
from ser.params import Params
from ser.training.data import TrainingData, build_training_data
from ser.training.train import TrainingSettings, fit, held_out_validation


@dataclass
class Trained:
    """What train_run gives: the Keras model, metrics/train.json's content (summary), what
    modelio.metadata needs beyond labels, features, corpus and actors (fields), the
    per-epoch losses and accuracies (history), and the whole-speaker model's own run."""

    model: Any
    summary: dict
    fields: dict
    history: dict
    whole_speaker: Trained | None = None

    def save(
        self, folder: Path, *, labels: LabelSpec, feature_settings: dict, corpus, actors: dict
    ) -> dict:
        """Write the model folder (the whole-speaker model in a subfolder); its model.json."""
        context = {
            "labels": labels,
            "feature_settings": feature_settings,
            "corpus": corpus,
            "actors": actors,
        }
        meta = modelio.metadata(**context, **self.fields)
        companion = None
        if self.whole_speaker is not None:
            meta["blend"] = {
                "folder": modelio.WHOLE_SPEAKER_DIR,
                "recordings": self.fields["model_params"].speaker_blend,
            }
            companion = (
                self.whole_speaker.model,
                modelio.metadata(**context, **self.whole_speaker.fields),
            )
        modelio.save(folder, self.model, meta, whole_speaker=companion)
        return meta


def train_run(
    clips: pd.DataFrame,
    store,
    params: Params,
    spec: LabelSpec,
    *,
    copies: pd.DataFrame | None = None,
    augmented=None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 0,
    log: Callable[[TrainingData], None] | None = None,
    start=None,
) -> Trained:
    """Train on ``clips`` (see build_training_data for its columns); with model.speaker_blend,
    the whole-speaker model too (Params.whole_speaker), on the same clips, from the first
    model's network with model.speaker_blend_warm_start. start: see train.fit."""
    mine = copies
    if copies is not None and params.model.first_copies is not None:
        # model.first_copies: this model trains on the first copies of each clip, the
        # whole-speaker model below on all of them (its params have no such limit).
        mine = copies[copies["copy"] < params.model.first_copies]
    data = build_training_data(clips, store, params, copies=mine, augmented=augmented)
    if log is not None:
        log(data)
    model, history = fit(
        data,
        num_classes=len(spec.class_names),
        model_params=params.model,
        train_params=params.train,
        on_epoch_end=on_epoch_end,
        verbose=verbose,
        start=start,
    )
    best = history["best_epoch"]
    summary = {
        "best_epoch": best,
        "epochs_run": len(history["loss"]),
        "val_loss": round(history["val_loss"][best - 1], 6),
        "val_accuracy": round(history["val_accuracy"][best - 1], 6),
        "clips": data.counts,
    }
    if "ensemble" in history:  # model.ensemble > 1: the first member's epochs above
        summary["members"] = [
            {key: round(value, 6) for key, value in member.items()} for member in history["members"]
        ]
        summary["ensemble"] = {key: round(v, 6) for key, v in history["ensemble"].items()}
    # model.stats_weight > 0: the statistics member, trained on the train and val clips. The
    # val scores above are the network's, which chose its epoch on them.
    if "statistics" in history:
        summary["statistics"] = history["statistics"]
    # Temperature scaling (Guo et al. 2017) needs clips the model did not learn from; the
    # statistics member trains on the validation clips, so the temperature is fitted on
    # validation probabilities with that member retrained on the training clips alone.
    validation = held_out_validation(
        model,
        data,
        num_classes=len(spec.class_names),
        model_params=params.model,
        train_params=params.train,
    )
    temperature = fit_temperature(validation, data.y_val)
    summary["calibration"] = {
        "temperature": temperature,
        "val_ece": round(calibration_error(calibrate(validation, temperature), data.y_val), 6),
        "val_ece_before": round(calibration_error(validation, data.y_val), 6),
    }
    fields = {
        "model_params": params.model,
        "training": {
            **vars(TrainingSettings.resolve(params.model, params.train)),
            "seed": params.train.seed,
            "epochs": params.train.epochs,
        },
        "validation": summary,
        "normalizer": data.normalizer,
        "temperature": temperature,
    }
    trained = Trained(model, summary, fields, history)
    whole = params.whole_speaker
    if whole is not None:
        trained.whole_speaker = train_run(
            clips,
            store,
            whole,
            spec,
            copies=copies,
            augmented=augmented,
            verbose=verbose,
            start=model if params.model.speaker_blend_warm_start else None,
        )
        summary["whole_speaker"] = trained.whole_speaker.summary
    return trained
