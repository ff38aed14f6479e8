"""Stage 5: train the Keras model on the training actors -> data/model/, curves in plots/train/.

``python stages/train.py --fold K`` trains cross-validation fold K instead (fold K tests,
fold K+1 validates, the other folds train) -> data/cv/K/model, metrics/cv/K/train.json.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ser import stage
from ser.data.dataset import Rows, check_subsets, labelled_clips, rows_of
from ser.data.labels import LabelSpec
from ser.data.manifest import read_manifest
from ser.data.split import fold_subsets, speakers_by_subset
from ser.features import extract
from ser.fsutil import write_json
from ser.model import modelio
from ser.params import load_params
from ser.training.train import TrainingSettings, fit

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
FOLDS = Path("data/folds.csv")
FEATURES = Path("data/features")
AUGMENTED = Path("data/augmented")

log = logging.getLogger("train")


def outputs(fold: int | None) -> tuple[Path, Path, Path | None]:
    """(model folder, metrics file, curves folder or None) of the fixed split or a fold."""
    if fold is None:
        return Path("data/model"), Path("metrics/train.json"), Path("plots/train")
    return Path(f"data/cv/{fold}/model"), Path(f"metrics/cv/{fold}/train.json"), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, help="cross-validation fold to train")
    fold = parser.parse_args().fold
    model_dir, metrics_path, curves = outputs(fold)

    params = load_params()
    spec = LabelSpec.from_params(params.labels)
    store_ids, store, settings = extract.load_store(FEATURES)
    if fold is None:
        split = pd.read_csv(SPLIT)
    else:
        split = fold_subsets(pd.read_csv(FOLDS), fold, params.split.fold_count)
    manifest = read_manifest(MANIFEST)
    clips = labelled_clips(manifest, split, spec)
    clips = clips.assign(row=rows_of(store_ids, clips["clip_id"]))
    clips = clips[clips["row"] >= 0]
    if fold is not None:
        test_key = "split.folds"
    elif params.split.test_corpus:
        test_key = "split.test_corpus"
    else:
        test_key = "split.test_actors"
    check_subsets(clips, spec, test_key=test_key)

    train = clips[clips["subset"] == "train"]
    val = clips[clips["subset"] == "val"]
    augmented_ids, augmented, _ = extract.load_store(AUGMENTED)
    chosen = set(params.augment.only_classes) or set(spec.class_names)

    def copies_of(subsets: pd.DataFrame) -> list[tuple[int, int]]:
        """(row in the augmented store, class) of the copies of these clips' chosen classes."""
        label_of = dict(zip(subsets["clip_id"], subsets["y"], strict=True))
        return [
            (row, label_of[clip])
            for row, clip in enumerate(augmented_ids)
            if clip in label_of and spec.class_names[label_of[clip]] in chosen
        ]

    # augment.members: the network trains on the copies of the training clips; the
    # statistics member, which trains on the validation clips too, on theirs as well.
    extra = copies_of(train) if params.augment.network_copies else []
    member_copies = (
        copies_of(pd.concat([train, val]))
        if params.augment.statistics_copies and params.model.statistics_member
        else []
    )
    # Rows of the stores on disk, read when training asks for them.
    x_train = Rows(
        (store, train["row"].to_numpy()), (augmented, np.array([r for r, _ in extra], dtype=int))
    )
    y_train = np.concatenate([train["y"].to_numpy(), np.array([y for _, y in extra], dtype=int)])
    x_val, y_val = Rows((store, val["row"].to_numpy())), val["y"].to_numpy()
    x_copies = Rows((augmented, np.array([r for r, _ in member_copies], dtype=int)))
    y_copies = np.array([y for _, y in member_copies], dtype=int)
    # Each clip's speaker, for a member that standardises its statistics per speaker.
    speaker_of = dict(zip(manifest["clip_id"], extract.speakers_of(manifest), strict=True))
    train_speakers = np.concatenate(
        [
            train["clip_id"].map(speaker_of).to_numpy(),
            [speaker_of[augmented_ids[r]] for r, _ in extra],
        ]
    )
    val_speakers = val["clip_id"].map(speaker_of).to_numpy()
    copy_speakers = np.array([speaker_of[augmented_ids[r]] for r, _ in member_copies])
    log.info(
        "%strain: %d clips (+%d augmented), val: %d clips, statistics member's copies: %d, "
        "classes: %s",
        "" if fold is None else f"fold {fold}: ",
        len(train),
        len(extra),
        len(val),
        len(member_copies),
        ", ".join(spec.class_names),
    )

    def train_model(on_epoch_end=None):
        return fit(
            x_train,
            y_train,
            x_val,
            y_val,
            num_classes=len(spec.class_names),
            model_params=params.model,
            train_params=params.train,
            on_epoch_end=on_epoch_end,
            verbose=1 if sys.stdout.isatty() else 0,
            x_copies=x_copies if member_copies else None,
            y_copies=y_copies,
            train_speakers=train_speakers,
            val_speakers=val_speakers,
            copy_speakers=copy_speakers,
        )

    if curves is None:
        model, history = train_model()
    else:
        from dvclive import Live

        with Live(dir=str(curves), save_dvc_exp=False, dvcyaml=False) as live:

            def log_epoch(epoch, logs):
                for name, value in logs.items():
                    key = name if name.startswith("val_") else f"train_{name}"
                    live.log_metric(key, float(value))
                live.next_step()

            model, history = train_model(log_epoch)
    best = history["best_epoch"]
    summary = {
        "best_epoch": best,
        "epochs_run": len(history["loss"]),
        "val_loss": round(history["val_loss"][best - 1], 6),
        "val_accuracy": round(history["val_accuracy"][best - 1], 6),
        "clips": {"train": len(train), "train_augmented": len(extra), "val": len(val)},
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
    meta = modelio.metadata(
        labels=spec,
        feature_settings=settings,
        model_params=params.model,
        training={
            **vars(TrainingSettings.resolve(params.model, params.train)),
            "seed": params.train.seed,
            "epochs": params.train.epochs,
        },
        corpus=params.data.corpus,
        # "corpus:actor" with several corpora: actor 3 of two corpora is two speakers.
        actors=speakers_by_subset(clips, manifest),
        validation=summary,
    )
    modelio.save(model_dir, model, meta)
    write_json(metrics_path, summary)
    log.info(
        "kept epoch %d of %d: val_loss %.4f, val_accuracy %.4f",
        best,
        summary["epochs_run"],
        summary["val_loss"],
        summary["val_accuracy"],
    )


if __name__ == "__main__":
    stage.run(main)
