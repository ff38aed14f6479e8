"""Actor cross-validation of the pipeline at every number of recordings per test speaker.

    python benchmarks/recordings_cv.py ../shared/data/ravdess-speech-actors01-20-24k.zip \
        --seeds 0 1 2 --out /tmp/recordings_cv.json
    python benchmarks/recordings_cv.py ARCHIVE -S features.normalize=none \
        -S model.stats_normalize=none

Every actor of the archive is dealt into --folds folds of whole actors by the pipeline's own
split (ser.data.split.assign_folds: genders dealt in turn); fold K tests, fold K+1 validates,
the others train (ser.data.split.fold_subsets), as the cv_train/cv_evaluate stages do. Each
run trains through ser.training.run.train_run (what the train stage calls, augmented copies
included) and judges every test clip through the Predictor that `ser predict` runs
(ser.training.evaluate.judge_recordings): each clip alone (k = 1), in groups of 2, 4, 8 of
its speaker's clips, and all of them. Prints and writes (--out) accuracy, macro F1 and UAR
at each k: per run, and mean and std over folds and seeds. Results are written after every
run, so an interrupted benchmark keeps what it measured. --cache DIR keeps the features and
augmented copies (about 5 minutes of the run on RAVDESS) for the next run with the same
source, feature and augment params. --keep-models DIR keeps each run's model, for
benchmarks/robustness.py --cv-models DIR (channels and song in the same actor CV).

--rejudge DIR judges the models a run kept in DIR (--keep-models) again instead of training
(same seeds and folds), with the prediction-time settings of the params (model.test_speeds
and model.test_temperature: speed copies judged beside each clip): a prediction setting
paired on the same models.

--blends C ... also judges each run's models with other weightings of the whole-speaker
model (model.speaker_blend) from the same trainings: "windows" weighs it k / (k + C),
"others" (k - 1) / (k - 1 + C) (the Predictor's), "none" leaves it out; accuracy, UAR and
ECE of each at each k go under "blends" in the run and the summary.

The ECE of 240 clips is noisy and biased upward: a perfectly calibrated model scores about
0.06 on so few. So each run also keeps every test clip's probabilities at each k ("clips"),
and the summary gives, under "pooled", the accuracy and ECE of all runs' clips together
beside "ece_floor": the mean ECE a perfectly calibrated model with the same confidences
would score on as many clips (each clip right with the chance it claims; 200 seeded draws).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from ser import stage
from ser.data.dataset import labelled_clips, rows_of
from ser.data.download import extract_zip, fetch
from ser.data.labels import LabelSpec
from ser.data.manifest import build_manifest
from ser.data.split import assign_folds, fold_subsets, speakers_by_subset
from ser.errors import ConfigError
from ser.features import augment, extract
from ser.model.calibration import calibration_error
from ser.params import override, parse_params
from ser.serve.predict import Predictor
from ser.training.evaluate import RECORDINGS, calibration_floor, judge, judge_recordings
from ser.training.run import train_run

ROOT = Path(__file__).resolve().parents[1]


def project_params(assignments: list[str]):
    """The project's params.yaml with -S key=value overrides, as `dvc exp run -S` applies
    them; a bad one ends the benchmark with a one-line error."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    try:
        for assignment in assignments:
            override(raw, assignment)
        return parse_params(raw)
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None


def split_clips(manifest, split, store_ids, spec):
    """The labelled clips of ``split`` (clip_id, subset), each with its feature store row
    and its speaker key, as the train stage takes them."""
    speaker_of = dict(zip(manifest["clip_id"], extract.speakers_of(manifest), strict=True))
    clips = labelled_clips(manifest, split, spec)
    return clips.assign(
        row=rows_of(store_ids, clips["clip_id"]), speaker=clips["clip_id"].map(speaker_of)
    )


def prepare(source: str, work: Path, params) -> tuple:
    """Manifest, feature store and augmented copies of an archive or folder, as the pipeline's
    download, featurize and augment stages make them.

    What an earlier call left in ``work`` for the same source, feature and augment params
    (work/prepared.json) is read instead of computed again (--cache)."""
    recipe = {
        "source": str(source),
        "features": extract.describe(params.features),
        "augment": dataclasses.asdict(params.augment),
    }
    recipe = json.loads(json.dumps(recipe))  # as it reads back: tuples become lists
    stamp = work / "prepared.json"
    ready = stamp.exists() and json.loads(stamp.read_text()) == recipe
    if not ready:
        stamp.unlink(missing_ok=True)
        for name in ("raw", "features", "augmented"):
            shutil.rmtree(work / name, ignore_errors=True)
    folder = Path(source)
    if not folder.is_dir():
        folder = work / "raw"
        if not ready:
            archive = fetch(source, cache_dir=work / "downloads")
            extract_zip(archive, folder, max_bytes=4 * 10**9, suffixes=(".wav",))
    manifest = build_manifest(folder, corpus="ravdess", silence_threshold=1e-4, root=folder)
    manifest["path"] = [str(folder / path) for path in manifest["path"]]
    manifest = manifest[manifest["excluded"] == ""].reset_index(drop=True)
    pairs = list(zip(manifest["clip_id"], manifest["path"], strict=True))
    if not ready:
        extract.featurize_to_store(work / "features", pairs, params.features, n_jobs=2)
        if params.augment.any_enabled:
            augment.augment_to_store(
                work / "augmented",
                pairs,
                feature_params=params.features,
                augment_params=params.augment,
                n_jobs=2,
            )
        stamp.write_text(json.dumps(recipe))
    store_ids, store, _ = extract.load_store(work / "features")
    if not params.augment.any_enabled:
        return manifest, store_ids, store, None, None
    copies, augmented = augment.load_copies(work / "augmented")
    return manifest, store_ids, store, copies, augmented


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a RAVDESS-like archive (path or URL) or folder")
    parser.add_argument("-S", "--set", action="append", default=[], help="params key=value")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only-folds", type=int, nargs="*", help="run these folds only")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the features and copies in this folder and reuse them on the next run with "
        "the same source, feature and augment params (delete it after changing packages)",
    )
    parser.add_argument(
        "--keep-models",
        type=Path,
        metavar="DIR",
        help="keep each run's model in DIR/model-SEED-FOLD (its meta names the test actors), "
        "for benchmarks/robustness.py --cv-models",
    )
    parser.add_argument(
        "--blends",
        type=float,
        nargs="*",
        default=[],
        help="also judge with these blend constants, in both weightings (see above)",
    )
    parser.add_argument(
        "--rejudge",
        type=Path,
        metavar="DIR",
        help="judge the models kept in DIR (model-SEED-FOLD) again, with the params' "
        "model.test_speeds and test_temperature, instead of training",
    )
    args = parser.parse_args()

    params = project_params(args.set)
    spec = LabelSpec.from_params(params.labels)
    names = list(spec.class_names)
    results: dict = {"settings": args.set, "folds": args.folds, "runs": []}
    with tempfile.TemporaryDirectory(prefix="recordings-cv-") as work:
        work = Path(work)
        start = time.time()
        for folder in (args.cache, args.keep_models):
            if folder:
                folder.mkdir(parents=True, exist_ok=True)
        manifest, store_ids, store, copies, augmented = prepare(
            args.source, args.cache or work, params
        )
        results["prepare_seconds"] = round(time.time() - start, 1)
        split_params = dataclasses.replace(
            params.split, test_actors=(), folds=tuple(range(1, args.folds + 1))
        )
        fold_of = assign_folds(manifest, split_params)
        path_of = dict(zip(manifest["clip_id"], manifest["path"], strict=True))

        def predictor_of(folder: Path) -> Predictor:
            """The model's Predictor; with --rejudge, at the params' prediction settings."""
            predictor = Predictor(folder)
            if args.rejudge:
                predictor.speeds = params.model.test_speeds
                predictor.speed_temperature = params.model.test_temperature
            return predictor

        folds = manifest[["clip_id", "actor"]].assign(
            fold=manifest["actor"].astype(int).map(fold_of)
        )
        for seed in args.seeds:
            run_params = dataclasses.replace(
                params, train=dataclasses.replace(params.train, seed=seed)
            )
            for fold in args.only_folds or range(1, args.folds + 1):
                began = time.time()
                clips = split_clips(
                    manifest, fold_subsets(folds, fold, args.folds), store_ids, spec
                )
                if args.rejudge:
                    folder = args.rejudge / f"model-{seed}-{fold}"
                    meta = predictor_of(folder).meta
                else:
                    trained = train_run(
                        clips, store, run_params, spec, copies=copies, augmented=augmented
                    )
                    folder = (args.keep_models or work) / f"model-{seed}-{fold}"
                    meta = trained.save(
                        folder,
                        labels=spec,
                        feature_settings=extract.describe(params.features),
                        corpus="ravdess",
                        actors=speakers_by_subset(clips, manifest),
                    )
                predictor = predictor_of(folder)
                test = clips[clips["subset"] == "test"]
                windows = [store[np.array([row])] for row in test["row"].to_numpy()]
                paths = test["clip_id"].map(path_of)
                clip_copies = predictor.file_copies(
                    list(paths), n_jobs=stage.workers(params.features.n_jobs)
                )
                judged = judge_recordings(
                    predictor,
                    windows,
                    test["speaker"].to_numpy(),
                    list(test["clip_id"]),
                    names,
                    clip_copies,
                )
                y_true = test["y"].to_numpy()
                clip_probabilities = {str(k): np.round(judged[k], 5).tolist() for k in RECORDINGS}
                run = {
                    "seed": seed,
                    "fold": fold,
                    "test_actors": meta["actors"]["test"],
                    "seconds": round(time.time() - began, 1),
                    "calibration": meta["validation"]["calibration"],
                    "whole_speaker_calibration": meta["validation"]
                    .get("whole_speaker", {})
                    .get("calibration"),
                    **{
                        str(k): {
                            key: value
                            for key, value in judge(judged[k], y_true, names).items()
                            if key
                            in ("accuracy", "macro_f1", "uar", "ece", "ece_floor", "collapse")
                        }
                        for k in RECORDINGS
                    },
                    "clips": {"y": y_true.tolist(), **clip_probabilities},
                }
                if args.blends and predictor.whole_speaker is not None:
                    run["blends"] = {}
                    for name, weight in blend_variants(args.blends).items():
                        predictor = predictor_of(folder)
                        predictor.blend_weight = weight
                        judged = judge_recordings(
                            predictor,
                            windows,
                            test["speaker"].to_numpy(),
                            list(test["clip_id"]),
                            names,
                            clip_copies,
                        )
                        run["blends"][name] = {
                            str(k): {
                                key: value
                                for key, value in judge(judged[k], y_true, names).items()
                                if key in ("accuracy", "uar", "ece")
                            }
                            for k in RECORDINGS
                        }
                results["runs"].append(run)
                results["summary"] = summarise(results["runs"])
                print(
                    json.dumps(
                        {k: run[k] for k in ("seed", "fold", "seconds")}
                        | {str(k): run[str(k)]["accuracy"] for k in RECORDINGS}
                    ),
                    flush=True,
                )
                if args.out:
                    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results["summary"], indent=1))


def blend_weight(form: str, constant: float, recordings: int) -> float:
    """The whole-speaker model's share at k = ``recordings`` under one weighting."""
    k = recordings - 1 if form == "others" else recordings
    return k / (k + constant) if k > 0 else 0.0


def blend_variants(constants: list[float]) -> dict:
    """{name: weight(recordings)} for --blends."""
    variants = {"none": lambda recordings: 0.0}
    for form in ("windows", "others"):
        for constant in constants:
            variants[f"{form}:{constant:g}"] = functools.partial(blend_weight, form, constant)
    return variants


def summarise(runs: list[dict]) -> dict:
    """Mean and sample std over runs of each score at each k (and of each --blends
    variant's)."""
    summary = {"runs": len(runs), **_mean_std(runs, ("accuracy", "macro_f1", "uar", "ece"))}
    names = [name for name in runs[0].get("blends", {})]
    if names:
        summary["blends"] = {
            name: _mean_std([run["blends"][name] for run in runs], ("accuracy", "uar", "ece"))
            for name in names
        }
    if all("clips" in run for run in runs):
        summary["pooled"] = pooled(runs)
    return summary


def pooled(runs: list[dict]) -> dict:
    """Accuracy, ECE and the ECE floor at each k over every run's test clips together."""
    y_true = np.concatenate([run["clips"]["y"] for run in runs])
    result = {"clips": len(y_true)}
    for k in RECORDINGS:
        probabilities = np.concatenate([run["clips"][str(k)] for run in runs])
        result[str(k)] = {
            "accuracy": round(float(np.mean(probabilities.argmax(axis=1) == y_true)), 4),
            "ece": round(calibration_error(probabilities, y_true), 4),
            "ece_floor": round(calibration_floor(probabilities), 4),
        }
    return result


def _mean_std(runs: list[dict], metrics: tuple[str, ...]) -> dict:
    summary = {}
    for k in RECORDINGS:
        summary[str(k)] = {}
        for metric in metrics:
            values = [run[str(k)][metric] for run in runs]
            summary[str(k)][metric] = {
                "mean": round(float(np.mean(values)), 4),
                "std": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else 0.0,
            }
    return summary


if __name__ == "__main__":
    main()
