"""Stage 6: the kept model on the test actors -> metrics/evaluate.json, plots/confusion.csv."""

import logging
from pathlib import Path

import pandas as pd

from ser import features, modelio, stage
from ser.dataset import labelled_clips, rows_of
from ser.evaluate import scores
from ser.fsutil import write_json
from ser.labels import LabelSpec
from ser.manifest import read_manifest, write_csv
from ser.train import predict_proba

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
FEATURES = Path("data/features")
MODEL = Path("data/model")
METRICS = Path("metrics/evaluate.json")
CONFUSION = Path("plots/confusion.csv")

log = logging.getLogger("evaluate")


def main() -> None:
    model, meta = modelio.load(MODEL)
    spec = LabelSpec.from_dict(meta["labels"])
    manifest = read_manifest(MANIFEST)
    store_ids, store, _ = features.load_store(FEATURES)
    clips = labelled_clips(manifest, pd.read_csv(SPLIT), spec)
    clips = clips.assign(row=rows_of(store_ids, clips["clip_id"]))
    test = clips[(clips["subset"] == "test") & (clips["row"] >= 0)]

    probabilities = predict_proba(model, store[test["row"].to_numpy()])
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
    write_json(METRICS, metrics)
    write_csv(
        pd.DataFrame(
            {"actual": test["label"].to_numpy(), "predicted": [names[i] for i in predicted]}
        ),
        CONFUSION,
    )
    log.info(
        "test (%d clips, actors %s): accuracy %.4f, macro F1 %.4f, UAR %.4f",
        len(test),
        meta["actors"]["test"],
        metrics["accuracy"],
        metrics["macro_f1"],
        metrics["uar"],
    )


if __name__ == "__main__":
    stage.run(main)
