"""Stage 6: the kept model on the test actors -> metrics/evaluate.json, plots/.

Every test clip is judged as ``ser predict`` judges it (the same Predictor): alone, as one
recording of a voice never heard ("single" in the metrics), in groups of 2, 4 and 8 clips of
the same speaker, and with all of the speaker's clips (the top-level scores).

``python stages/evaluate.py --fold K`` evaluates cross-validation fold K's model on the
fold's test actors instead -> metrics/cv/K/evaluate.json.
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ser import stage
from ser.data.dataset import labelled_clips, rows_of
from ser.data.labels import LabelSpec
from ser.data.manifest import read_manifest, write_csv
from ser.data.split import fold_subsets
from ser.features import extract
from ser.fsutil import write_json
from ser.params import load_params
from ser.serve.predict import Predictor
from ser.training import figures
from ser.training.evaluate import RECORDINGS, judge, judge_recordings, scores

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
FOLDS = Path("data/folds.csv")
FEATURES = Path("data/features")
PLOTS = Path("plots")
IMAGES = PLOTS / "images"

log = logging.getLogger("evaluate")


def outputs(fold: int | None) -> tuple[Path, Path, bool]:
    """(model folder, metrics file, whether to write plots) of the fixed split or a fold."""
    if fold is None:
        return Path("data/model"), Path("metrics/evaluate.json"), True
    return Path(f"data/cv/{fold}/model"), Path(f"metrics/cv/{fold}/evaluate.json"), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, help="cross-validation fold to evaluate")
    fold = parser.parse_args().fold
    model_dir, metrics_path, with_plots = outputs(fold)

    if fold is None:
        split = pd.read_csv(SPLIT)
    else:
        split = fold_subsets(pd.read_csv(FOLDS), fold, load_params().split.fold_count)
    predictor = Predictor(model_dir)
    meta = predictor.meta
    spec = LabelSpec.from_dict(meta["labels"])
    names = list(spec.class_names)
    manifest = read_manifest(MANIFEST)
    store_ids, store, _ = extract.load_store(FEATURES)
    clips = labelled_clips(manifest, split, spec)
    clips = clips.assign(row=rows_of(store_ids, clips["clip_id"]))
    test = clips[(clips["subset"] == "test") & (clips["row"] >= 0)]
    speaker_of = dict(zip(manifest["clip_id"], extract.speakers_of(manifest), strict=True))
    speakers = test["clip_id"].map(speaker_of).to_numpy()
    y_true = test["y"].to_numpy()
    # One window per clip, as featurize computed it from the file.
    windows = [store[np.array([row])] for row in test["row"].to_numpy()]

    # The speed copies ser predict would judge beside each clip (model.test_speeds), from
    # the clip's file.
    copies = predictor.file_copies(
        test["clip_id"].map(dict(zip(manifest["clip_id"], manifest["path"], strict=True))),
        n_jobs=stage.workers(load_params().features.n_jobs),
    )
    judged = judge_recordings(predictor, windows, speakers, list(test["clip_id"]), names, copies)
    whole, single = judge(judged["all"], y_true, names), judge(judged[1], y_true, names)
    excluded = pd.concat(
        [
            manifest.loc[manifest["excluded"] != "", ["clip_id", "excluded"]],
            pd.read_csv(FEATURES / "excluded.csv", keep_default_na=False),
        ]
    )
    subsets = clips.assign(usable=clips["row"] >= 0).groupby("subset")["usable"].sum()
    metrics = {
        **whole,
        "single": {
            key: single[key]
            for key in ("accuracy", "macro_f1", "uar", "ece", "ece_floor", "collapse")
        },
        "clips": {subset: int(subsets.get(subset, 0)) for subset in ("train", "val", "test")},
        "clips_excluded": len(excluded),
        "excluded": {c: r for c, r in zip(excluded["clip_id"], excluded["excluded"], strict=True)},
        "classes": names,
        "corpus": meta["corpus"],
        "test_actors": meta["actors"]["test"],
    }
    write_json(metrics_path, metrics)
    if with_plots:
        for name, recordings in (("confusion.csv", "all"), ("confusion_single.csv", 1)):
            write_csv(
                pd.DataFrame(
                    {
                        "clip_id": test["clip_id"].to_numpy(),
                        "actual": test["label"].to_numpy(),
                        "predicted": [names[i] for i in judged[recordings].argmax(axis=1)],
                    }
                ),
                PLOTS / name,
            )
        curve = [
            {"recordings": str(recordings), **_accuracy_and_uar(y_true, judged[recordings], names)}
            for recordings in RECORDINGS
        ]
        write_csv(pd.DataFrame(curve), PLOTS / "recordings.csv")
        # The same as images, which render with no network (dvc plots show).
        judgements = {"one recording alone": judged[1], "all of a speaker's": judged["all"]}
        for name, probabilities in judgements.items():
            short = "single" if probabilities is judged[1] else "all"
            figures.confusion(
                test["label"].to_numpy(),
                [names[i] for i in probabilities.argmax(axis=1)],
                names,
                IMAGES / f"confusion_{short}.png",
                title=f"Confusion matrix, test actors, {name}",
            )
        figures.recall_by_class(
            {
                "one recording alone": single["per_class_recall"],
                "all of a speaker's": whole["per_class_recall"],
            },
            IMAGES / "recall.png",
        )
        figures.by_recordings(
            [row["recordings"] for row in curve],
            {"accuracy": [row["accuracy"] for row in curve], "UAR": [row["uar"] for row in curve]},
            IMAGES / "recordings.png",
            chance=1 / len(names),
        )
    log.info(
        "%stest (%d clips, actors %s): one recording alone: accuracy %.4f, UAR %.4f; all of a "
        "speaker's: accuracy %.4f, UAR %.4f",
        "" if fold is None else f"fold {fold}: ",
        len(test),
        meta["actors"]["test"],
        single["accuracy"],
        single["uar"],
        whole["accuracy"],
        whole["uar"],
    )


def _accuracy_and_uar(y_true: np.ndarray, probabilities: np.ndarray, names: list[str]) -> dict:
    judged = scores(y_true, probabilities.argmax(axis=1), names)
    return {"accuracy": judged["accuracy"], "uar": judged["uar"]}


if __name__ == "__main__":
    stage.run(main)
