"""Actor k-fold cross-validation of one configuration, beside the classic SVM baseline.

Folds are whole actors, balanced by gender. Fold k is the test set, fold k+1 validates
(early stopping, learning-rate schedule, kept checkpoint), the others train. The SVM
baseline (mean and std over frames of the same MFCC features, StandardScaler, RBF SVM)
trains on train + validation actors and is tested on the same fold.

    python benchmarks/actor_cv.py ../shared/data/ravdess-speech-actors01-20-24k.zip
    python benchmarks/actor_cv.py ARCHIVE -S features.kind=seed --folds 5
    python benchmarks/actor_cv.py ARCHIVE -S labels.grouping=valence2 -S labels.gender=male

Uses the library the pipeline uses (features, labels, training), with params.yaml plus the
-S overrides. Prints mean ± std over folds and seeds of accuracy, macro F1 and UAR.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from ser.data.download import extract_zip, fetch
from ser.data.labels import LabelSpec
from ser.data.manifest import build_manifest
from ser.features import extract
from ser.params import parse_params
from ser.training.evaluate import scores

ROOT = Path(__file__).resolve().parents[1]


def override(params: dict, assignment: str) -> None:
    """Apply one -S key=value (dotted key of params.yaml, YAML value), as `dvc exp run -S`."""
    key, sep, text = assignment.partition("=")
    node = params
    *parents, last = key.split(".")
    for name in parents:
        if not isinstance(node.get(name), dict):
            break
        node = node[name]
    else:
        if sep and last in node:
            node[last] = yaml.safe_load(text)
            return
    raise SystemExit(f"error: -S {assignment!r}: expected key=value with a key of params.yaml")


def actor_folds(actors: list[int], count: int) -> list[list[int]]:
    """Whole actors in `count` folds, males and females dealt out in turn."""
    males = sorted(a for a in actors if a % 2 == 1)
    females = sorted(a for a in actors if a % 2 == 0)
    return [sorted(males[i::count] + females[i::count]) for i in range(count)]


def load_corpus(sources: list[str], work: Path):
    """Extract each archive (or take each folder) and describe its clips."""
    frames = []
    for index, source in enumerate(sources):
        path = Path(source)
        if path.is_dir():
            folder = path
        else:
            archive = fetch(source, cache_dir=work / "downloads")
            folder = work / f"raw{index}"
            extract_zip(archive, folder, max_bytes=4 * 10**9, suffixes=(".wav",))
        frame = build_manifest(folder, corpus="ravdess", silence_threshold=1e-4, root=folder)
        frame["path"] = [str(folder / path) for path in frame["path"]]
        frames.append(frame)
    import pandas as pd

    manifest = pd.concat(frames, ignore_index=True)
    return manifest[manifest["excluded"] == ""].reset_index(drop=True)


def copies_of(manifest, feature_params, augment_params) -> tuple[np.ndarray, np.ndarray]:
    """Features of the augmented copies of every clip, as feature_params compute them, and
    each copy's source row in manifest. No transform enabled -> no copies."""
    from ser.features import augment

    clip_ids = list(manifest["clip_id"])
    sources, copies, failures = augment.augment_many(
        list(zip(clip_ids, manifest["path"], strict=True)),
        feature_params=feature_params,
        augment_params=augment_params,
        n_jobs=2,
    )
    if failures:
        raise SystemExit(f"{len(failures)} clips failed to augment, e.g. {failures[0]}")
    row_of = {clip_id: row for row, clip_id in enumerate(clip_ids)}
    return copies, np.array([row_of[clip_id] for clip_id in sources], dtype=int)


def augmented_copies(manifest, params) -> tuple[np.ndarray, np.ndarray]:
    """Features of the augmented copies of every clip (augment.*), and each copy's source row.

    As the augment stage does: each speaker's copies are standardised together (with
    normalize: speaker). No transform enabled -> no copies.
    """
    copies, copy_of = copies_of(manifest, params.features, params.augment)
    if extract.by_speaker(params.features) and len(copy_of):
        copies = extract.normalize_by_speaker(copies, extract.speakers_of(manifest)[copy_of])
    return copies, copy_of


def svm_scores(x_train, y_train, x_test, y_test, names) -> dict:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def statistics_of(x):
        return np.concatenate([x.mean(axis=1), x.std(axis=1)], axis=1)

    classifier = make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale"))
    classifier.fit(statistics_of(x_train), y_train)
    return scores(y_test, classifier.predict(statistics_of(x_test)), names)


def summarise(name: str, runs: list[dict], seconds: float) -> dict:
    summary = {"config": name, "runs": len(runs), "seconds": round(seconds, 1)}
    for metric in ("accuracy", "macro_f1", "uar"):
        values = [run[metric] for run in runs]
        summary[metric] = round(statistics.mean(values), 4)
        summary[f"{metric}_std"] = round(statistics.pstdev(values), 4)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="RAVDESS-like archives (path or URL) or folders")
    parser.add_argument(
        "-S", "--set", action="append", default=[], help="params override key=value"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per fold")
    parser.add_argument("--no-svm", action="store_true", help="skip the SVM baseline")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for assignment in args.set:
        override(raw, assignment)
    params = parse_params(raw)
    spec = LabelSpec.from_params(params.labels)

    from ser.model.inference import predict_proba
    from ser.training.train import fit

    with tempfile.TemporaryDirectory(prefix="ser-cv-") as work:
        manifest = load_corpus(args.sources, Path(work))
        started = time.perf_counter()
        x, _ = extract.featurize_many(list(manifest["path"]), params.features, n_jobs=2)
        if extract.by_speaker(params.features):  # as the featurize stage: every clip counts
            x = extract.normalize_by_speaker(x, extract.speakers_of(manifest))
        if params.copies_used:
            copies, copy_of = augmented_copies(manifest, params)
        else:
            copies, copy_of = np.zeros((0, *x.shape[1:]), np.float32), np.zeros(0, dtype=int)
        featurize_seconds = time.perf_counter() - started
        labelled = spec.assign(manifest).notna().to_numpy()
        keep = labelled[copy_of]
        copies, copy_of = copies[keep], (np.cumsum(labelled) - 1)[copy_of[keep]]
        manifest = manifest[labelled].reset_index(drop=True)
        manifest["label"] = spec.assign(manifest)
        x = x[labelled]
    names = list(spec.class_names)
    y = manifest["label"].map({name: i for i, name in enumerate(names)}).to_numpy()
    actors = manifest["actor"].to_numpy()
    speakers = extract.speakers_of(manifest)
    folds = actor_folds(sorted(set(actors.tolist())), args.folds)

    model_runs, svm_runs, train_seconds = [], [], 0.0
    for index, test_actors in enumerate(folds):
        val_actors = folds[(index + 1) % len(folds)]
        test, val = np.isin(actors, test_actors), np.isin(actors, val_actors)
        train = ~test & ~val
        # As the train stage takes them (augment.members): the network, copies of the
        # training actors' clips; the statistics member, of the validation actors' too.
        outside = ~np.isin(actors[copy_of], test_actors)
        trained_copies = outside & ~np.isin(actors[copy_of], val_actors)
        trained_copies &= params.augment.network_copies
        member_copies = outside & params.augment.statistics_copies
        x_train = np.concatenate([x[train], copies[trained_copies]])
        y_train = np.concatenate([y[train], y[copy_of[trained_copies]]])
        for seed in range(args.seeds):
            started = time.perf_counter()
            model, history = fit(
                x_train,
                y_train,
                x[val],
                y[val],
                num_classes=len(names),
                model_params=params.model,
                train_params=dataclasses.replace(params.train, seed=params.train.seed + seed),
                x_copies=copies[member_copies],
                y_copies=y[copy_of[member_copies]],
                train_speakers=np.concatenate([speakers[train], speakers[copy_of[trained_copies]]]),
                val_speakers=speakers[val],
                copy_speakers=speakers[copy_of[member_copies]],
            )
            train_seconds += time.perf_counter() - started
            predicted = predict_proba(model, x[test], speakers=speakers[test]).argmax(axis=1)
            model_runs.append(scores(y[test], predicted, names))
            print(
                f"fold {index} test {test_actors} seed {seed}: "
                f"accuracy {model_runs[-1]['accuracy']:.3f} (epoch {history['best_epoch']})",
                flush=True,
            )
        if not args.no_svm:
            svm_runs.append(svm_scores(x[~test], y[~test], x[test], y[test], names))
            print(f"fold {index} svm: accuracy {svm_runs[-1]['accuracy']:.3f}", flush=True)

    label = " ".join(args.set) or "default params"
    results = [summarise(label, model_runs, train_seconds)]
    if svm_runs:
        results.append(summarise("SVM baseline (MFCC statistics, RBF)", svm_runs, 0.0))
    print(
        f"\n{len(manifest)} clips (+{len(copy_of)} augmented copies), {len(folds)} actor folds, "
        f"featurize {featurize_seconds:.0f} s"
    )
    print(
        "| config | accuracy | macro F1 | UAR | training time (all folds) |\n|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['config']} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | "
            f"{r['macro_f1']:.3f} ± {r['macro_f1_std']:.3f} | "
            f"{r['uar']:.3f} ± {r['uar_std']:.3f} | {r['seconds']:.0f} s |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
