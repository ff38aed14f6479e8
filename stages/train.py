"""Stage 5: train the Keras model on the training actors -> data/model/, curves in plots/train/.

``python stages/train.py --fold K`` trains cross-validation fold K instead (fold K tests,
fold K+1 validates, the other folds train) -> data/cv/K/model, metrics/cv/K/train.json.
"""

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from ser import stage
from ser.data.dataset import check_subsets, labelled_clips, rows_of
from ser.data.labels import LabelSpec
from ser.data.manifest import read_manifest
from ser.data.split import fold_subsets, speakers_by_subset
from ser.features import augment, extract
from ser.fsutil import write_json
from ser.params import load_params
from ser.training import figures
from ser.training.run import train_run

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
FOLDS = Path("data/folds.csv")
FEATURES = Path("data/features")
AUGMENTED = Path("data/augmented")
CURVES_IMAGE = Path("plots/train/curves.png")

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

    speaker_of = dict(zip(manifest["clip_id"], extract.speakers_of(manifest), strict=True))
    clips = clips.assign(speaker=clips["clip_id"].map(speaker_of))
    copies, augmented = augment.load_copies(AUGMENTED)

    def log_data(data) -> None:
        log.info(
            "%strain: %d clips (+%d augmented), val: %d clips, statistics member's copies: %d, "
            "classes: %s",
            "" if fold is None else f"fold {fold}: ",
            data.counts["train"],
            data.counts["train_augmented"],
            data.counts["val"],
            0 if data.x_copies is None else len(data.x_copies),
            ", ".join(spec.class_names),
        )

    def train(on_epoch_end=None):
        return train_run(
            clips,
            store,
            params,
            spec,
            copies=copies,
            augmented=augmented,
            on_epoch_end=on_epoch_end,
            verbose=1 if sys.stdout.isatty() else 0,
            log=log_data,
        )

    if curves is None:
        trained = train()
    else:
        from dvclive import Live

        with Live(dir=str(curves), save_dvc_exp=False, dvcyaml=False) as live:

            def log_epoch(epoch, logs):
                for name, value in logs.items():
                    key = name if name.startswith("val_") else f"train_{name}"
                    live.log_metric(key, float(value))
                live.next_step()

            trained = train(log_epoch)
    summary = trained.summary
    trained.save(
        model_dir,
        labels=spec,
        feature_settings=settings,
        corpus=params.data.corpus,
        # "corpus:actor" with several corpora: actor 3 of two corpora is two speakers.
        actors=speakers_by_subset(clips, manifest),
    )
    if curves is not None:
        figures.curves(trained.history, summary["best_epoch"], CURVES_IMAGE)
    write_json(metrics_path, summary)
    log.info(
        "kept epoch %d of %d: val_loss %.4f, val_accuracy %.4f",
        summary["best_epoch"],
        summary["epochs_run"],
        summary["val_loss"],
        summary["val_accuracy"],
    )


if __name__ == "__main__":
    stage.run(main)
