"""Robustness of trained models: held-out speech through channel perturbations, speech ->
song of the same held-out actors, and a corpus the models never saw.

Takes the models of a pipeline run: a folder where `dvc repro` (or `dvc exp run`) ran, with
data/manifest.csv, data/split.csv, data/folds.csv and the model folders. Each model is
tested only on the actors it never saw: ``fixed`` (data/model) on split.test_actors, fold
K (data/cv/K/model) on fold K. Or the models benchmarks/recordings_cv.py kept
(--keep-models DIR: one per fold and seed, over every actor of the archive), with
--cv-models DIR [DIR ...] --speech ARCHIVE: each tested on the actors its meta names as its test
actors. Every clip is predicted through ser.serve.predict.Predictor,

* alone (k = 1: ``predict_array``, the clip is its own speaker, as ``ser predict FILE``), and
* with all of its speaker's clips (k = all: ``predict_files(..., speakers=...)``),

clean and through each perturbation of ser.features.channel (applied at the file's own
rate, before the model resamples). Writes accuracy, UAR, macro F1 and collapse (the share
of the most-predicted class) per condition as JSON (``dvc metrics show/diff``) and CSV
(``dvc plots show``), by default into the run's metrics/ and plots/:

    python benchmarks/robustness.py --workspace RUN --models fixed 1 \\
        --song ../shared/data/ravdess-song-actors01-20-24k.zip
    python benchmarks/robustness.py --workspace RUN --models 1 --clips-per-actor 10 \\
        --perturbations telephone noise_10db
    python benchmarks/robustness.py --workspace RUN --models fixed --no-perturbations \\
        --corpus emodb=path/to/emodb.zip
    python benchmarks/robustness.py --cv-models MODELS --speech SPEECH.zip --song SONG.zip
    python benchmarks/robustness.py --cv-models SEED0 SEED1 SEED2 --speech SPEECH.zip

--sentences N [N ...] also judges recordings of several sentences, as a user's voice message
holds them: each tested actor's clean clips of one emotion, N at a time in a seeded order,
joined end to end with the pauses they begin with, each recording alone (k = 1), scored
under "sentences". --max-pause-seconds judges with another features.max_pause_seconds than
each model's own ("none": pauses as recorded).

With --cv-models the report also has "by_seed" (each training seed's scores, the seed
read from each model's meta) and "over_seeds": per condition, the mean and standard deviation
over seeds of the UAR and of its distance below the same seed's clean UAR.

docs/robustness.md describes the protocol and the figures measured.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ser.data import corpora
from ser.data.download import extract_zip, fetch
from ser.data.labels import LabelSpec
from ser.data.manifest import build_manifest, read_manifest
from ser.features import audio, channel
from ser.features.augment import copy_seed
from ser.model.calibration import among
from ser.model.modelio import read_meta
from ser.params import load_params
from ser.serve.predict import Predictor
from ser.training.evaluate import collapse, scores

ROOT = Path(__file__).resolve().parents[1]
CLEAN = "clean"
RECORDINGS = ("1", "all")
# Other ways of grouping clean test clips into "speakers" (k = all), as `ser predict` groups
# files by folder: each speaker's clips of one emotion together (what a corpus laid out in
# speaker_emotion folders, like TESS, gets), or every test speaker's clips as one speaker
# (a corpus in one folder, like EmoDB's wav/ or CREMA-D's AudioWAV/).
GROUPINGS = {
    "speaker_emotion": lambda model, row: f"{model}:{row.actor}:{row.emotion}",
    "all_speakers": lambda model, row: model,
}


@dataclasses.dataclass
class Outcome:
    """Predictions of one model on one set of clips under one condition."""

    model: str
    condition: str
    true: list[int] = dataclasses.field(default_factory=list)
    emotions: list[str] = dataclasses.field(default_factory=list)
    single: list[int] = dataclasses.field(default_factory=list)  # k = 1; -1: no prediction
    together: list[int] = dataclasses.field(default_factory=list)  # k = all
    # Each clip's class probabilities (NaN: no prediction), k = 1 and k = all.
    single_probabilities: list[np.ndarray] = dataclasses.field(default_factory=list)
    together_probabilities: list[np.ndarray] = dataclasses.field(default_factory=list)
    grouped: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # GROUPINGS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workspace", type=Path, help="a pipeline run's folder")
    source.add_argument(
        "--cv-models",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="folders of recordings_cv.py --keep-models DIR, holding model-SEED-FOLD folders "
        "(needs --speech); with several seeds the report adds each seed's scores and their mean",
    )
    parser.add_argument(
        "--speech",
        help="with --cv-models: the RAVDESS speech archive or folder they were trained on",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        help="with --workspace (default: fixed): fixed (data/model, tested on "
        "split.test_actors) and/or fold numbers K (data/cv/K/model, tested on fold K)",
    )
    parser.add_argument(
        "--perturbations",
        nargs="*",
        default=list(channel.names()),
        help=f"of {', '.join(channel.names())} (default: all)",
    )
    parser.add_argument("--no-perturbations", action="store_true", help="clean speech only")
    parser.add_argument("--actors", type=int, nargs="*", help="only these of the test actors")
    parser.add_argument(
        "--clips-per-actor", type=int, default=0, help="clips per test actor (0 = all)"
    )
    parser.add_argument("--song", help="RAVDESS song archive or folder: speech -> song")
    parser.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help=f"a corpus the models never saw ({', '.join(corpora.MAPPED)}), as a zip or folder",
    )
    parser.add_argument(
        "--groupings",
        nargs="*",
        default=[],
        choices=sorted(GROUPINGS),
        help="also score clean speech with the clips grouped into speakers these ways",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the perturbations and clip choice")
    parser.add_argument(
        "--test-speeds",
        type=float,
        nargs="*",
        metavar="SPEED",
        help="judge with these speed copies (and --test-temperature) instead of each model's "
        "own model.test_speeds: none given, each recording alone",
    )
    parser.add_argument(
        "--test-temperature",
        type=float,
        default=0.85,
        help="with --test-speeds: the temperature of the mean over copies (default 0.85)",
    )
    parser.add_argument(
        "--sentences",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="also judge each actor's clean clips of one emotion joined N at a time into one "
        "recording, alone",
    )
    parser.add_argument(
        "--max-pause-seconds",
        metavar="SECONDS",
        help="judge with this features.max_pause_seconds instead of each model's own "
        "('none': pauses as recorded)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON (default: WORKSPACE/metrics/robustness.json or DIR/robustness.json)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="CSV (default: WORKSPACE/plots/robustness.csv or DIR/robustness.csv)",
    )
    args = parser.parse_args(argv)
    check_args(args, parser)
    return args


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse what cannot run, before any model loads."""
    unknown = sorted(set(args.perturbations) - set(channel.names()))
    if unknown:
        parser.error(f"--perturbations: unknown {unknown}; expected any of {list(channel.names())}")
    if args.no_perturbations:
        args.perturbations = []
    if args.cv_models is not None and args.models is not None:
        parser.error("--models goes with --workspace; --cv-models takes every model in DIR")
    args.models = args.models or ["fixed"]
    for key in args.models:
        if key != "fixed" and not key.isdigit():
            parser.error(f"--models: expected 'fixed' or a fold number, got {key!r}")
    if args.clips_per_actor < 0:
        parser.error(f"--clips-per-actor must be >= 0, got {args.clips_per_actor}")
    if any(count < 1 for count in args.sentences):
        parser.error(f"--sentences: counts of clips must be >= 1, got {args.sentences}")
    if args.max_pause_seconds is not None and args.max_pause_seconds != "none":
        try:
            args.max_pause_seconds = float(args.max_pause_seconds)
        except ValueError:
            args.max_pause_seconds = -1.0
        if args.max_pause_seconds <= 0:
            parser.error("--max-pause-seconds: expected a number of seconds above 0 or 'none'")
    sources = {}
    for item in args.corpus:
        name, sep, source = item.partition("=")
        if not sep or name not in corpora.MAPPED:
            parser.error(f"--corpus: expected NAME=SOURCE with NAME in {list(corpora.MAPPED)}")
        if not Path(source).exists():
            parser.error(f"--corpus {name}: no such zip or folder: {source}")
        sources[name] = source
    args.corpus = sources
    for option in ("song", "speech"):
        source = getattr(args, option)
        if source is not None and not Path(source).exists():
            parser.error(f"--{option}: no such zip or folder: {source}")
    if args.cv_models is not None:
        if args.speech is None:
            parser.error("--cv-models: give --speech, the archive or folder the models trained on")
        args.model_folders = {}
        for directory in args.cv_models:
            found = sorted(path for path in directory.glob("model-*") if path.is_dir())
            if not found:
                parser.error(
                    f"--cv-models: no model-SEED-FOLD folder in {directory} "
                    "(write them with recordings_cv.py --keep-models)"
                )
            for path in found:
                if path.name in args.model_folders:
                    first = args.model_folders[path.name].parent
                    parser.error(
                        f"--cv-models: {path.name} is in both {first} and {directory}; "
                        "each seed and fold once"
                    )
                args.model_folders[path.name] = path
        args.models = sorted(args.model_folders)
        return
    if args.speech is not None:
        parser.error("--speech goes with --cv-models; a workspace has its own manifest")
    for name in ("data/manifest.csv", *(model_folder(Path(), key) for key in args.models)):
        if not (args.workspace / name).exists():
            parser.error(f"--workspace: {args.workspace / name} is missing (did the run train it?)")


def model_folder(workspace: Path, key: str) -> Path:
    return workspace / ("data/model" if key == "fixed" else f"data/cv/{key}/model")


def cv_model_actors(folder: Path) -> list[int | str]:
    """The test actors a recordings_cv.py model's meta names: the fold it never saw."""
    return list(read_meta(folder)["actors"]["test"])


def cv_model_seed(folder: Path) -> int:
    """The training seed a recordings_cv.py model's meta records (what its name's SEED says)."""
    return int(read_meta(folder)["train"]["seed"])


def unseen_actors(workspace: Path, key: str) -> list[int]:
    """The actors model ``key`` never saw: the fixed split's test actors, or fold K's."""
    if key == "fixed":
        split = pd.read_csv(workspace / "data/split.csv")
        return sorted(split.loc[split["subset"] == "test", "actor"].unique().tolist())
    folds = pd.read_csv(workspace / "data/folds.csv")
    return sorted(folds.loc[folds["fold"] == int(key), "actor"].unique().tolist())


def choose(clips: pd.DataFrame, *, actors, per_actor: int, seed: int) -> pd.DataFrame:
    """The clips of ``actors`` (None: all), ``per_actor`` of each (0: all) in a seeded draw."""
    if actors:
        clips = clips[clips["actor"].isin(actors)]
    if per_actor:
        clips = clips.sample(frac=1.0, random_state=seed).groupby("actor").head(per_actor)
    return clips.sort_values("clip_id").reset_index(drop=True)


def labelled(clips: pd.DataFrame, predictor: Predictor) -> pd.DataFrame:
    """The clips the model's grouping labels, with their class index in ``target``."""
    spec = LabelSpec.from_dict(predictor.meta["labels"])
    classes = spec.assign(clips)
    kept = clips[classes.notna()].copy()
    kept["target"] = [predictor.classes.index(name) for name in classes[classes.notna()]]
    return kept


def predict(
    predictor: Predictor,
    clips: pd.DataFrame,
    *,
    model: str,
    condition: str,
    seed: int,
    scratch: Path,
    groupings: tuple[str, ...] = (),
) -> Outcome:
    """Each clip (columns path, sample_rate, actor, clip_id, target, emotion) under
    ``condition`` (clean or a perturbation's name), alone and with its speaker's clips."""
    outcome = Outcome(model, condition)
    folder = Path(tempfile.mkdtemp(dir=scratch))
    written, speakers = [], []
    for row in clips.itertuples():
        samples = audio.load(row.path, sample_rate=int(row.sample_rate))
        if condition != CLEAN:
            samples = channel.perturb(
                samples,
                name=condition,
                sample_rate=int(row.sample_rate),
                seed=copy_seed(seed, f"{row.clip_id}:{condition}", 0),
            )
        result = predictor.predict_array(samples, int(row.sample_rate), source=row.clip_id)
        outcome.single.append(_index(predictor, result))
        outcome.single_probabilities.append(_vector(predictor, result))
        outcome.true.append(int(row.target))
        outcome.emotions.append(row.emotion)
        path = folder / f"{len(written)}.wav"
        sf.write(path, samples, int(row.sample_rate), subtype="FLOAT")
        written.append(path)
        speakers.append(f"{model}:{row.actor}")
    for result in predictor.predict_files(written, speakers=speakers):
        outcome.together.append(_index(predictor, result))
        outcome.together_probabilities.append(_vector(predictor, result))
    for grouping in groupings:
        keys = [GROUPINGS[grouping](model, row) for row in clips.itertuples()]
        outcome.grouped[grouping] = [
            _index(predictor, result) for result in predictor.predict_files(written, speakers=keys)
        ]
    return outcome


def sentences(
    predictor: Predictor, clips: pd.DataFrame, *, model: str, count: int, seed: int
) -> Outcome:
    """Recordings of ``count`` sentences: each actor's clips of one emotion (columns as
    predict's), ``count`` at a time in a seeded order, joined end to end with the pauses
    they begin with, each recording judged alone (as ``ser predict FILE``) against the
    emotion its clips share. Clips left over from the last whole group are not used."""
    outcome = Outcome(model, f"{count} joined")
    rng = np.random.default_rng(seed)
    for (_, target), group in clips.groupby(["actor", "target"], sort=True):
        rows = [group.iloc[index] for index in rng.permutation(len(group))]
        for start in range(0, len(rows) - count + 1, count):
            chosen = rows[start : start + count]
            samples = np.concatenate(
                [audio.load(row.path, sample_rate=predictor.rate) for row in chosen]
            )
            result = predictor.predict_array(
                samples, predictor.rate, source="+".join(row.clip_id for row in chosen)
            )
            outcome.single.append(_index(predictor, result))
            outcome.single_probabilities.append(_vector(predictor, result))
            outcome.true.append(int(target))
            outcome.emotions.append(chosen[0].emotion)
    return outcome


def _index(predictor: Predictor, result) -> int:
    return predictor.classes.index(result.label) if result.status == "ok" else -1


def _vector(predictor: Predictor, result) -> np.ndarray:
    if result.status != "ok":
        return np.full(len(predictor.classes), np.nan)
    return np.array([result.probabilities[name] for name in predictor.classes])


def decide_among(probabilities: np.ndarray, allowed: list[int]) -> np.ndarray:
    """The most probable of the ``allowed`` classes for each row of (n, classes)
    probabilities, as ``ser predict --classes`` answers; -1 for a row without prediction
    (NaN)."""
    unknown = np.isnan(probabilities).any(axis=1)
    chosen = among(np.nan_to_num(probabilities), allowed).argmax(axis=1)
    chosen[unknown] = -1
    return chosen


def summarise(
    outcomes: list[Outcome], class_names: list[str], *, emotions=None, among=None
) -> dict:
    """Scores of the pooled outcomes, for k = 1 and k = all (only ``emotions``' clips, if
    given). ``among``: class names; the answer is then the most probable of those classes
    (the model's probabilities with the others' set to zero), not of all."""
    true = np.concatenate([np.asarray(o.true, dtype=int) for o in outcomes])
    keep = np.ones(len(true), dtype=bool)
    if emotions is not None:
        keep = np.isin(np.concatenate([np.asarray(o.emotions) for o in outcomes]), emotions)
    result = {"clips": int(keep.sum())}
    for recordings, attribute in zip(RECORDINGS, ("single", "together"), strict=True):
        if any(len(getattr(o, attribute)) != len(o.true) for o in outcomes):
            continue  # judged alone only (sentences)
        predicted = np.concatenate([np.asarray(getattr(o, attribute), dtype=int) for o in outcomes])
        if among is not None:
            probabilities = np.concatenate(
                [np.stack(getattr(o, f"{attribute}_probabilities")) for o in outcomes]
            )
            predicted = decide_among(probabilities, [class_names.index(c) for c in among])
        y_true, y_pred = true[keep], predicted[keep]
        found = scores(y_true, y_pred, class_names)
        result[f"k_{recordings}"] = {
            "accuracy": found["accuracy"],
            "uar": found["uar"],
            "macro_f1": found["macro_f1"],
            "collapse": collapse(y_pred[y_pred >= 0], len(class_names)),
            "most_predicted": class_names[int(np.bincount(y_pred[y_pred >= 0]).argmax())]
            if (y_pred >= 0).any()
            else None,
            "unpredicted": int((y_pred < 0).sum()),
        }
    return result


def read_ravdess(source: str, scratch: Path, *, channel: str) -> pd.DataFrame:
    """The ``channel`` (speech or song) clips of a RAVDESS archive or folder, usable ones
    only, paths absolute."""
    folder = Path(source)
    if not folder.is_dir():
        folder = scratch / channel
        extract_zip(
            fetch(source, cache_dir=scratch), folder, max_bytes=4 * 10**9, suffixes=(".wav",)
        )
    frame = build_manifest(folder, corpus="ravdess", silence_threshold=1e-4, root=folder)
    frame["path"] = [str(folder / path) for path in frame["path"]]
    return frame[(frame["excluded"] == "") & (frame["channel"] == channel)]


def read_corpus(name: str, source: str, params_file: Path, scratch: Path) -> pd.DataFrame:
    """Corpus ``name`` from ``source`` through the download stage's own code, with the
    emotion table for it in ``params_file`` (the run's params.yaml); every clip, paths
    absolute."""
    params = load_params(params_file).data
    settings = dataclasses.replace(getattr(params, name), url=source)
    data = dataclasses.replace(params, corpus=name, **{name: settings})
    raw = scratch / f"raw-{name}"
    corpora.materialise(data, raw_dir=raw, cache_dir=scratch / "downloads")
    frame = build_manifest(
        raw,
        corpus=name,
        silence_threshold=data.silence_threshold,
        parse=corpora.parser(data, name, raw),
        root=raw,
    )
    frame["path"] = [str(raw / path) for path in frame["path"]]
    return frame[frame["excluded"] == ""]


def describe_run(workspace: Path | None, args: argparse.Namespace, tested: dict) -> dict:
    def git(*command: str, cwd: Path) -> str:
        try:
            return subprocess.run(
                ["git", *command], cwd=cwd, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "date": time.strftime("%Y-%m-%d"),
        "benchmark_commit": git("rev-parse", "--short", "HEAD", cwd=Path(__file__).parent),
        "workspace_commit": git("rev-parse", "--short", "HEAD", cwd=workspace) if workspace else "",
        "models": " ".join(map(str, args.cv_models)) if args.cv_models else str(args.workspace),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "tested_actors": tested,
        "clips_per_actor": args.clips_per_actor or "all",
        "seed": args.seed,
        "test_speeds": "each model's own" if args.test_speeds is None else args.test_speeds,
        "max_pause_seconds": "each model's own"
        if args.max_pause_seconds is None
        else args.max_pause_seconds,
        "sentences": args.sentences,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workspace = args.workspace.resolve() if args.workspace else None
    if workspace:
        out = args.out or workspace / "metrics/robustness.json"
        plot = args.plot or workspace / "plots/robustness.csv"
    else:
        out = args.out or args.cv_models[0] / "robustness.json"
        plot = args.plot or args.cv_models[0] / "robustness.csv"
    song = None
    conditions = [CLEAN, *args.perturbations]
    speech: dict[str, list[Outcome]] = {condition: [] for condition in conditions}
    sung: list[Outcome] = []
    joined: dict[int, list[Outcome]] = {count: [] for count in args.sentences}
    other: dict[str, list[Outcome]] = {name: [] for name in args.corpus}
    tested: dict[str, list[int]] = {}
    seeds: dict[str, int] = {}  # --cv-models: each model's training seed
    class_names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ser-robustness-") as scratch_name:
        scratch = Path(scratch_name)
        if workspace:
            manifest = read_manifest(workspace / "data/manifest.csv")
            manifest = manifest[manifest["excluded"] == ""].copy()
            manifest["path"] = [str(workspace / path) for path in manifest["path"]]
        else:
            manifest = read_ravdess(args.speech, scratch, channel="speech")
        if args.song:
            song = read_ravdess(args.song, scratch, channel="song")
        params_file = (workspace or ROOT) / "params.yaml"
        extra = {
            name: read_corpus(name, source, params_file, scratch)
            for name, source in args.corpus.items()
        }
        for key in args.models:
            if workspace:
                folder, actors = model_folder(workspace, key), unseen_actors(workspace, key)
            else:
                folder = args.model_folders[key]
                actors = cv_model_actors(folder)
                seeds[key] = cv_model_seed(folder)
            predictor = Predictor(folder)
            if args.test_speeds is not None:
                predictor.speeds = tuple(args.test_speeds)
                predictor.speed_temperature = args.test_temperature
            if args.max_pause_seconds is not None:
                pause = None if args.max_pause_seconds == "none" else args.max_pause_seconds
                predictor.feature_params = dataclasses.replace(
                    predictor.feature_params, max_pause_seconds=pause
                )
            if class_names and predictor.classes != class_names:
                raise SystemExit(
                    f"model {key}: classes {predictor.classes} differ from {class_names}"
                )
            class_names = predictor.classes
            if args.actors:
                actors = [actor for actor in actors if actor in args.actors]
            tested[key] = actors
            clips = labelled(
                choose(manifest, actors=actors, per_actor=args.clips_per_actor, seed=args.seed),
                predictor,
            )
            for condition in conditions:
                started = time.perf_counter()
                speech[condition].append(
                    predict(
                        predictor,
                        clips,
                        model=key,
                        condition=condition,
                        seed=args.seed,
                        scratch=scratch,
                        groupings=tuple(args.groupings) if condition == CLEAN else (),
                    )
                )
                print(
                    f"model {key}, {condition}: {len(clips)} clips, "
                    f"{time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            for count in args.sentences:
                joined[count].append(
                    sentences(predictor, clips, model=key, count=count, seed=args.seed)
                )
            if song is not None:
                chosen = labelled(
                    choose(song, actors=actors, per_actor=args.clips_per_actor, seed=args.seed),
                    predictor,
                )
                sung.append(
                    predict(
                        predictor,
                        chosen,
                        model=key,
                        condition=CLEAN,
                        seed=args.seed,
                        scratch=scratch,
                    )
                )
            for name, frame in extra.items():
                chosen = labelled(
                    choose(frame, actors=None, per_actor=args.clips_per_actor, seed=args.seed),
                    predictor,
                )
                other[name].append(
                    predict(
                        predictor,
                        chosen,
                        model=key,
                        condition=CLEAN,
                        seed=args.seed,
                        scratch=scratch,
                    )
                )

    report: dict = {"protocol": describe_run(workspace, args, tested), "speech": {}}
    for condition, outcomes in speech.items():
        report["speech"][condition] = summarise(outcomes, class_names)
    if sung:
        song_emotions = sorted(set(song["emotion"]))
        among = classes_of(sung, class_names)
        report["song"] = {
            "emotions": song_emotions,
            "classes": among,
            "speech_same_emotions": summarise(speech[CLEAN], class_names, emotions=song_emotions),
            "song": summarise(sung, class_names),
            "speech_same_emotions_among_them": summarise(
                speech[CLEAN], class_names, emotions=song_emotions, among=among
            ),
            "song_among_its_classes": summarise(sung, class_names, among=among),
        }
    for count, outcomes in joined.items():
        report.setdefault("sentences", {})[str(count)] = summarise(outcomes, class_names)
    for grouping in args.groupings:
        regrouped = [dataclasses.replace(o, together=o.grouped[grouping]) for o in speech[CLEAN]]
        report.setdefault("groupings", {})[grouping] = summarise(regrouped, class_names)
    for name, outcomes in other.items():
        report.setdefault("corpora", {})[name] = summarise(outcomes, class_names)
        report["corpora"][f"{name}, among its classes"] = summarise(
            outcomes, class_names, among=classes_of(outcomes, class_names)
        )
    report["by_model"] = {
        key: {
            condition: summarise([o for o in outcomes if o.model == key], class_names)
            for condition, outcomes in speech.items()
        }
        for key in args.models
    }
    if seeds:
        report["by_seed"] = {
            str(seed): {
                condition: summarise([o for o in outcomes if seeds[o.model] == seed], class_names)
                for condition, outcomes in speech.items()
            }
            for seed in sorted(set(seeds.values()))
        }
        report["over_seeds"] = over_seeds(report["by_seed"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    write_plot(report, plot)
    print_table(report)
    if len(report.get("by_seed", {})) > 1:
        print_seeds(report["over_seeds"])
    print(f"wrote {out} and {plot}")


def over_seeds(by_seed: dict) -> dict:
    """Mean and standard deviation over seeds of each condition's UAR and accuracy, and of
    its UAR below the same seed's clean UAR: the figure issue #22's goal is stated in, which
    pooling the seeds' clips would blur when the seeds' clean figures differ."""
    result = {}
    for condition in next(iter(by_seed.values())):
        result[condition] = {}
        for recordings in RECORDINGS:
            key = f"k_{recordings}"
            found = {
                "uar": [seed[condition][key]["uar"] for seed in by_seed.values()],
                "accuracy": [seed[condition][key]["accuracy"] for seed in by_seed.values()],
                "uar_below_clean": [
                    seed[CLEAN][key]["uar"] - seed[condition][key]["uar"]
                    for seed in by_seed.values()
                ],
            }
            result[condition][key] = {
                name: {"mean": float(np.mean(values)), "std": float(np.std(values))}
                for name, values in found.items()
            } | {"seeds": len(by_seed)}
    return result


def print_seeds(summary: dict) -> None:
    seeds = next(iter(summary.values()))["k_1"]["seeds"]
    print(f"\nover {seeds} seeds (mean ± std of each seed's)")
    print(f"{'condition':36} {'k':>3} {'UAR':>13} {'below clean':>13}")
    for condition, result in summary.items():
        for recordings in RECORDINGS:
            found = result[f"k_{recordings}"]
            uar, below = found["uar"], found["uar_below_clean"]
            print(
                f"{'speech ' + condition:36} {recordings:>3} "
                f"{uar['mean']:>6.3f} ± {uar['std']:.3f} {below['mean']:>6.3f} ± {below['std']:.3f}"
            )


def classes_of(outcomes: list[Outcome], class_names: list[str]) -> list[str]:
    """The classes the outcomes' clips truly belong to, in the model's order."""
    present = {index for outcome in outcomes for index in outcome.true}
    return [name for index, name in enumerate(class_names) if index in present]


def rows(report: dict) -> list[dict]:
    """One row per condition and recordings-per-speaker, for the CSV and the table."""
    found = [(f"speech {name}", result) for name, result in report["speech"].items()]
    if "song" in report:
        song = report["song"]
        found.append(("speech, song's emotions", song["speech_same_emotions"]))
        found.append(("song", song["song"]))
        found.append(
            ("speech, song's emotions, among them", song["speech_same_emotions_among_them"])
        )
        found.append(("song, among its classes", song["song_among_its_classes"]))
    found += [(f"corpus {name}", result) for name, result in report.get("corpora", {}).items()]
    found += [
        (f"speech clean, grouped {name}", result)
        for name, result in report.get("groupings", {}).items()
    ]
    found += [
        (f"speech clean, {count} joined", result)
        for count, result in report.get("sentences", {}).items()
    ]
    table = []
    for condition, result in found:
        for recordings in RECORDINGS:
            if f"k_{recordings}" not in result:
                continue
            scored = result[f"k_{recordings}"]
            table.append(
                {
                    "condition": condition,
                    "recordings": recordings,
                    "clips": result["clips"],
                    **{key: scored[key] for key in ("accuracy", "uar", "macro_f1", "collapse")},
                    "most_predicted": scored["most_predicted"],
                }
            )
    return table


def write_plot(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = rows(report)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def print_table(report: dict) -> None:
    print(
        f"{'condition':36} {'k':>3} {'clips':>5} {'acc':>6} {'UAR':>6} {'collapse':>8}"
        "  most predicted"
    )
    for row in rows(report):
        print(
            f"{row['condition']:36} {row['recordings']:>3} {row['clips']:>5} "
            f"{row['accuracy']:>6.3f} {row['uar']:>6.3f} {row['collapse']:>8.3f}  "
            f"{row['most_predicted']}"
        )


if __name__ == "__main__":
    main()
