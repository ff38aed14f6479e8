"""Stage 6: the kept model on the test actors -> metrics/evaluate.json, plots/confusion.csv.

``python stages/evaluate.py --fold K`` evaluates cross-validation fold K's model on the
fold's test actors instead -> metrics/cv/K/evaluate.json.
"""

import argparse
import logging
from pathlib import Path

import pandas as pd

from ser import stage
from ser.data.dataset import Rows, labelled_clips, rows_of
from ser.data.labels import LabelSpec
from ser.data.manifest import read_manifest, write_csv
from ser.data.split import fold_subsets
from ser.features import extract
from ser.fsutil import write_json
from ser.model import modelio
from ser.model.inference import predict_proba
from ser.params import load_params
from ser.training.evaluate import scores

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
FOLDS = Path("data/folds.csv")
FEATURES = Path("data/features")


def outputs(fold: int | None) -> tuple[Path, Path, Path | None]:
    """(model folder, metrics file, confusion table or None) of the fixed split or a fold."""
    if fold is None:
        return Path("data/model"), Path("metrics/evaluate.json"), Path("plots/confusion.csv")
    return Path(f"data/cv/{fold}/model"), Path(f"metrics/cv/{fold}/evaluate.json"), None


log = logging.getLogger("evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, help="cross-validation fold to evaluate")
    fold = parser.parse_args().fold
    model_dir, metrics_path, confusion_path = outputs(fold)

    if fold is None:
        split = pd.read_csv(SPLIT)
    else:
        split = fold_subsets(pd.read_csv(FOLDS), fold, load_params().split.fold_count)
    model, meta = modelio.load(model_dir)
    spec = LabelSpec.from_dict(meta["labels"])
    manifest = read_manifest(MANIFEST)
    store_ids, store, _ = extract.load_store(FEATURES)
    clips = labelled_clips(manifest, split, spec)
    clips = clips.assign(row=rows_of(store_ids, clips["clip_id"]))
    test = clips[(clips["subset"] == "test") & (clips["row"] >= 0)]

    # A member with statistics standardised per speaker takes them over each test
    # speaker's test clips (as the features were over all of its clips).
    speaker_of = dict(zip(manifest["clip_id"], extract.speakers_of(manifest), strict=True))
    probabilities = predict_proba(
        model,
        Rows((store, test["row"].to_numpy())),
        speakers=test["clip_id"].map(speaker_of).to_numpy(),
    )
    predicted = probabilities.argmax(axis=1)
    names = list(spec.class_names)

    excluded = pd.concat(
        [
            manifest.loc[manifest["excluded"] != "", ["clip_id", "excluded"]],
            pd.read_csv(FEATURES / "excluded.csv", keep_default_na=False),
        ]
    )
    subsets = clips.assign(usable=clips["row"] >= 0).groupby("subset")["usable"].sum()
    metrics = {
        **scores(test["y"].to_numpy(), predicted, names),
        "clips": {subset: int(subsets.get(subset, 0)) for subset in ("train", "val", "test")},
        "clips_excluded": len(excluded),
        "excluded": {c: r for c, r in zip(excluded["clip_id"], excluded["excluded"], strict=True)},
        "classes": names,
        "corpus": meta["corpus"],
        "test_actors": meta["actors"]["test"],
    }
    write_json(metrics_path, metrics)
    if confusion_path is not None:
        write_csv(
            pd.DataFrame(
                {"actual": test["label"].to_numpy(), "predicted": [names[i] for i in predicted]}
            ),
            confusion_path,
        )
    log.info(
        "%stest (%d clips, actors %s): accuracy %.4f, macro F1 %.4f, UAR %.4f",
        "" if fold is None else f"fold {fold}: ",
        len(test),
        meta["actors"]["test"],
        metrics["accuracy"],
        metrics["macro_f1"],
        metrics["uar"],
    )


if __name__ == "__main__":
    stage.run(main)
