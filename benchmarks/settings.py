"""The six settings of the 2019 experiment, side by side: the 2019 config, the SVM baseline
and this project's default, on the same actors and the same clips.

    # actor k-fold cross-validation over every actor in the archives (5 folds, 1 seed)
    python benchmarks/settings.py --speech ../shared/data/ravdess-speech-actors01-20-24k.zip \\
        --song ../shared/data/ravdess-song-actors01-20-24k.zip --folds 5
    # one fixed split instead (e.g. the 2019 test actors on the full official archives)
    python benchmarks/settings.py --speech SPEECH.zip --song SONG.zip \\
        --test-actors 21 22 23 24 --val-actors 17 18 19 20

Settings (speech + song as in 2019, except 6):
  1. emotions5 x gender (10 classes)   2. male, emotions5   3. female, emotions5
  4. male, valence2   5. male, valence3   6. emotions8, both genders, speech only

Configs:
  * 2019 config: ``features.kind=seed`` (with ``model.arch: auto``: the 2019 features and network,
    SGD 1e-4, batch 16), trained like the default (ReduceLROnPlateau, best val_loss kept);
    ``--seed-epochs`` caps its epochs (it costs ~50x the default on a CPU).
  * SVM baseline: mean and std over frames of 40 MFCCs and their deltas, StandardScaler,
    RBF SVM (C=10), trained on train + validation actors.
  * default: params.yaml as it is (plus any -S overrides). When augment.* enables a transform,
    each run also trains on the augmented copies of its own training actors' clips,
    standardised per speaker as the augment stage does (e.g. -S augment.pitch=true).

Each fold (or the fixed split) tests on whole actors that no model trained or validated on.
Writes a markdown table (stdout, and --markdown FILE) and the raw numbers (--json FILE).

``--features-cache FILE`` keeps the clips' table and their (unnormalised) features in one .npz:
the first run writes it, later runs read it and need neither the archives nor librosa, so
the training can run on another machine (``KERAS_BACKEND=jax`` on a GPU, say). A cache made
with other feature (or augment) params than the run asks for is refused. It is derived from
the corpus: keep it out of git, like data/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ser.data.labels import LabelSpec
from ser.data.split import assign_folds
from ser.features import extract
from ser.params import parse_params
from ser.training.evaluate import scores, summarise_folds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actor_cv import copies_of, load_corpus, override, svm_scores  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    1: ("10 classes: emotions5 x gender", {"grouping": "emotions5", "by_gender": True}, 36.6),
    2: ("male, emotions5", {"grouping": "emotions5", "gender": "male"}, 46.3),
    3: ("female, emotions5", {"grouping": "emotions5", "gender": "female"}, 43.1),
    4: ("male, valence2", {"grouping": "valence2", "gender": "male"}, 65.6),
    5: ("male, valence3", {"grouping": "valence3", "gender": "male"}, 58.5),
    6: ("emotions8, speech only", {"grouping": "emotions8"}, None),
}
SPEECH_ONLY = {6}
SEED_CONFIG = ("features.kind=seed",)  # model.arch: auto picks the 2019 network
SVM_FEATURES = {"kind": "mfcc", "n_mfcc": 40, "deltas": True, "mels": 0, "prosody": False}


def load_params(overrides: list[str]):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for assignment in overrides:
        override(raw, assignment)
    return parse_params(raw)


def unnormalised(params):
    """The feature params of raw_features: no speaker normalisation (that depends on the corpus)."""
    return dataclasses.replace(params, normalize="none", n_jobs=2)


def raw_features(manifest: pd.DataFrame, params) -> np.ndarray:
    """Features of every clip, not yet normalised per speaker (that depends on the corpus)."""
    matrix, reasons = extract.featurize_many(list(manifest["path"]), unnormalised(params), n_jobs=2)
    failed = [r for r in reasons if r]
    if failed:
        raise SystemExit(f"{len(failed)} clips failed to featurize, e.g. {failed[0]}")
    return matrix


def featurized(
    args, wanted: dict, augmented: dict | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The clips and each config's raw features: from --features-cache, or computed (and cached).

    wanted: config name -> the FeatureParams its features are computed with.
    augmented: config name -> its Params, for the configs that train on augmented copies:
    their copies come back as "NAME_copies", with "NAME_copy_of" (each copy's clip row).
    """
    augmented = augmented or {}
    described = {
        name: json.dumps(dataclasses.asdict(unnormalised(params)), sort_keys=True)
        for name, params in wanted.items()
    }
    for name, params in augmented.items():
        described[f"{name}_copies"] = json.dumps(
            [dataclasses.asdict(unnormalised(params.features)), dataclasses.asdict(params.augment)],
            sort_keys=True,
        )
    cache = args.features_cache
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            for name, description in described.items():
                if f"params_{name}" not in stored or str(stored[f"params_{name}"]) != description:
                    what = (
                        f"augmented copies of the {name.removesuffix('_copies')} config"
                        if name.endswith("_copies")
                        else f"features of the {name} config"
                    )
                    raise SystemExit(
                        f"error: {cache} holds no {what} with these params; delete it or "
                        "name another --features-cache"
                    )
            manifest = pd.DataFrame(json.loads(str(stored["manifest"])))
            matrices = {name: stored[f"x_{name}"] for name in described}
            matrices.update({f"{name}_copy_of": stored[f"x_{name}_copy_of"] for name in augmented})
        print(f"{len(manifest)} clips' features read from {cache}")
        return manifest, matrices
    if not (args.speech and args.song):
        raise SystemExit("error: --speech and --song are needed unless --features-cache exists")
    with tempfile.TemporaryDirectory(prefix="ser-settings-") as work:
        manifest = load_corpus([args.speech, args.song], Path(work))
        started = time.perf_counter()
        matrices = {name: raw_features(manifest, params) for name, params in wanted.items()}
        for name, params in augmented.items():
            copies, copy_of = copies_of(manifest, unnormalised(params.features), params.augment)
            matrices[f"{name}_copies"], matrices[f"{name}_copy_of"] = copies, copy_of
        print(f"{len(manifest)} clips featurized in {time.perf_counter() - started:.0f} s")
    if cache is not None:
        partial = cache.with_name(cache.name + ".partial.npz")
        np.savez(
            partial,
            manifest=json.dumps(manifest.to_dict(orient="list")),
            **{f"params_{name}": text for name, text in described.items()},
            **{f"x_{name}": matrix for name, matrix in matrices.items()},
        )
        os.replace(partial, cache)
    return manifest, matrices


def setting_copies(matrices, config, params, rows, speakers, keep, labels):
    """The augmented copies a setting trains on, and each copy's row among its labelled clips.

    rows: the manifest rows of the setting's corpus, speakers: their speaker ids, keep: which
    of them are labelled (labels: their classes). As the augment stage does, each speaker's
    copies (of every clip of the corpus) are standardised together; copies of unlabelled
    clips, and of classes outside augment.only_classes when it is given, are then left out.
    """
    empty = np.zeros((0, *matrices[config].shape[1:]), np.float32), np.zeros(0, dtype=int)
    if f"{config}_copies" not in matrices:
        return empty
    in_corpus = np.full(len(matrices[config]), -1)
    in_corpus[rows] = np.arange(len(rows))
    source = in_corpus[matrices[f"{config}_copy_of"]]
    copies, source = matrices[f"{config}_copies"][source >= 0], source[source >= 0]
    if not len(copies):
        return empty
    if extract.by_speaker(params.features):
        copies = extract.normalize_by_speaker(copies, np.asarray(speakers)[source])
    labelled = np.full(len(rows), -1)
    labelled[keep] = np.arange(int(keep.sum()))
    copy_row = labelled[source]
    chosen = set(params.augment.only_classes) or set(labels)
    use = copy_row >= 0
    use[use] = np.isin(np.asarray(labels)[copy_row[use]], sorted(chosen))
    return copies[use], copy_row[use]


def runs_of(actors: np.ndarray, gender: np.ndarray, args, split_params) -> list[tuple[list, list]]:
    """(test actors, val actors) per run: the fixed split, or each fold and the next."""
    if args.test_actors:
        return [(args.test_actors, args.val_actors)]
    frame = pd.DataFrame({"actor": actors, "gender": gender, "corpus": "ravdess"})
    split_params = dataclasses.replace(
        split_params, test_actors=(), folds=tuple(range(1, args.folds + 1))
    )
    fold_of = assign_folds(frame, split_params)
    folds = [sorted(a for a, f in fold_of.items() if f == k) for k in range(1, args.folds + 1)]
    return [(folds[k], folds[(k + 1) % len(folds)]) for k in range(len(folds))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", help="RAVDESS speech archive or folder")
    parser.add_argument("--song", help="RAVDESS song archive or folder")
    parser.add_argument(
        "--features-cache",
        type=Path,
        help=".npz of the clips' features: read if it exists, else written",
    )
    parser.add_argument("--folds", type=int, default=5, help="actor folds (without --test-actors)")
    parser.add_argument("--test-actors", type=int, nargs="*", default=[])
    parser.add_argument("--val-actors", type=int, nargs="*", default=[])
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per run")
    parser.add_argument("--settings", type=int, nargs="*", default=sorted(SETTINGS))
    parser.add_argument(
        "--configs",
        nargs="*",
        default=["seed", "svm", "default"],
        choices=["seed", "svm", "default"],
        help="which configs to run",
    )
    parser.add_argument("--seed-epochs", type=int, help="cap on the 2019 config's epochs")
    parser.add_argument("-S", "--set", action="append", default=[], help="override for default")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if bool(args.test_actors) != bool(args.val_actors):
        parser.error("--test-actors and --val-actors go together")

    configs = {
        "default": load_params(args.set),
        "seed": load_params(list(SEED_CONFIG)),
    }
    if args.seed_epochs:
        seed = configs["seed"]
        configs["seed"] = dataclasses.replace(
            seed, train=dataclasses.replace(seed.train, epochs=args.seed_epochs)
        )
    svm_params = dataclasses.replace(configs["default"].features, **SVM_FEATURES)

    from ser.model.inference import predict_proba
    from ser.training.train import fit

    feature_params = {"default": configs["default"].features, "seed": configs["seed"].features}
    feature_params["svm"] = svm_params
    augmented = {
        name: configs[name] for name in args.configs if name != "svm" and configs[name].copies_used
    }
    manifest, matrices = featurized(
        args, {name: feature_params[name] for name in args.configs}, augmented
    )

    results = []
    for number in args.settings:
        title, labels, published = SETTINGS[number]
        corpus = manifest[manifest["channel"] == "speech"] if number in SPEECH_ONLY else manifest
        label_params = dataclasses.replace(configs["default"].labels, **labels)
        spec = LabelSpec.from_params(label_params)
        # Speaker statistics come from every clip of the corpus the setting uses.
        speakers = extract.speakers_of(corpus)
        rows = corpus.index.to_numpy()
        labelled = corpus.assign(label=spec.assign(corpus))
        keep = labelled["label"].notna().to_numpy()
        names = list(spec.class_names)
        y = labelled["label"][keep].map({n: i for i, n in enumerate(names)}).to_numpy()
        actors = labelled["actor"][keep].to_numpy()
        runs = runs_of(actors, labelled["gender"][keep].to_numpy(), args, configs["default"].split)
        row = {"setting": number, "title": title, "classes": len(names), "clips": int(keep.sum())}
        row["published_2019"] = published
        for config in args.configs:
            matrix = matrices["svm" if config == "svm" else config][rows]
            params = configs["default"] if config == "svm" else configs[config]
            if extract.by_speaker(params.features) and config != "svm":
                matrix = extract.normalize_by_speaker(matrix, speakers)
            x = matrix[keep]
            clip_speakers = np.asarray(speakers)[keep]
            copies, copy_row = setting_copies(
                matrices, config, params, rows, speakers, keep, labelled["label"][keep]
            )
            outcomes, seconds = [], 0.0
            for test_actors, val_actors in runs:
                test = np.isin(actors, test_actors)
                val = np.isin(actors, val_actors)
                train = ~test & ~val
                # As the train stage takes them (augment.members): the network, copies of the
                # training actors' clips; the statistics member, of the validation actors' too.
                network_copies = train[copy_row] & params.augment.network_copies
                x_train = np.concatenate([x[train], copies[network_copies]])
                train_speakers = np.concatenate(
                    [clip_speakers[train], clip_speakers[copy_row[network_copies]]]
                )
                y_train = np.concatenate([y[train], y[copy_row[network_copies]]])
                member_copies = (train | val)[copy_row] & params.augment.statistics_copies
                if config == "svm":
                    begun = time.perf_counter()
                    outcomes.append(svm_scores(x[~test], y[~test], x[test], y[test], names))
                    seconds += time.perf_counter() - begun
                    continue
                for offset in range(args.seeds):
                    begun = time.perf_counter()
                    model, _ = fit(
                        x_train,
                        y_train,
                        x[val],
                        y[val],
                        num_classes=len(names),
                        model_params=params.model,
                        train_params=dataclasses.replace(
                            params.train, seed=params.train.seed + offset
                        ),
                        x_copies=copies[member_copies],
                        y_copies=y[copy_row[member_copies]],
                        train_speakers=train_speakers,
                        val_speakers=clip_speakers[val],
                        copy_speakers=clip_speakers[copy_row[member_copies]],
                    )
                    spent = time.perf_counter() - begun
                    seconds += spent
                    predicted = predict_proba(model, x[test], speakers=clip_speakers[test]).argmax(
                        axis=1
                    )
                    outcomes.append(scores(y[test], predicted, names))
                    print(
                        f"  setting {number} {config} test actors {test_actors} seed "
                        f"{params.train.seed + offset}: accuracy "
                        f"{outcomes[-1]['accuracy']:.3f} ({spent:.0f} s, {len(x_train)} "
                        f"training clips, {int(network_copies.sum())} of them copies; "
                        f"{int(member_copies.sum())} copies for the statistics member)",
                        flush=True,
                    )
            summary = summarise_folds(outcomes)
            # Seconds per training (per fit of the SVM), whatever the folds and seeds.
            row[config] = {**summary, "train_seconds": round(seconds / len(outcomes), 1)}
            print(
                f"setting {number} {config}: accuracy {summary['accuracy']['mean']:.3f} "
                f"± {summary['accuracy']['std']:.3f} ({len(outcomes)} runs, "
                f"{seconds / len(outcomes):.0f} s per training)",
                flush=True,
            )
        results.append(row)

    protocol = (
        f"fixed split: test actors {args.test_actors}, val actors {args.val_actors}"
        if args.test_actors
        else f"{args.folds}-fold actor cross-validation (fold k tests, fold k+1 validates)"
    )
    table = markdown(results, args.configs, protocol, args)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps({"protocol": protocol, "results": results}, indent=2))


def markdown(results: list[dict], configs: list[str], protocol: str, args) -> str:
    heads = {"seed": "2019 config", "svm": "SVM baseline", "default": "default"}
    lines = [
        f"Protocol: {protocol}; {args.seeds} seed(s) per run; accuracy % mean ± std over "
        "runs; train s: seconds per training.",
        "",
        "| setting | classes | 2019 published | "
        + " | ".join(heads[c] for c in configs)
        + (" | default − 2019 config" if {"seed", "default"} <= set(configs) else "")
        + " | train s per training ("
        + " / ".join(heads[c] for c in ("seed", "default") if c in configs)
        + ") |",
        "|---" * (3 + len(configs) + ({"seed", "default"} <= set(configs)) + 1) + "|",
    ]
    for row in results:
        cells = [f"{row['setting']}. {row['title']}", str(row["classes"])]
        cells.append("" if row["published_2019"] is None else f"{row['published_2019']:.1f}")
        for config in configs:
            accuracy = row[config]["accuracy"]
            cells.append(f"{100 * accuracy['mean']:.1f} ± {100 * accuracy['std']:.1f}")
        if {"seed", "default"} <= set(configs):
            gap = row["default"]["accuracy"]["mean"] - row["seed"]["accuracy"]["mean"]
            cells.append(f"{100 * gap:+.1f}")
        cells.append(
            " / ".join(
                f"{row[c]['train_seconds']:.0f}" for c in ("seed", "default") if c in configs
            )
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
