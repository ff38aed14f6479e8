"""Time and peak memory of each pipeline stage, run with the real dvc command.

Copies the project to a temporary git repo, runs the stages one by one with `dvc repro -s`,
recording wall time and the peak resident memory of each (the largest process the stage
started, dvc included), then times a no-op `dvc repro`.

    python benchmarks/pipeline_speed.py                      # built-in synthetic corpus
    python benchmarks/pipeline_speed.py \
        --speech-url ../shared/data/ravdess-speech-actors01-20-24k.zip \
        --test-actors 17 18 19 20 --val-actors 13 14 15 16   # RAVDESS speech
    python benchmarks/pipeline_speed.py --speech-url ... --fixed-only \
        -S features.kind=seed                                # the 2019 config's cost

-S key=value overrides params.yaml (as `dvc exp run -S` would); --fixed-only runs the six
fixed-split stages and skips the cross-validation ones. Prints a Markdown table; --json PATH
also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ser.errors import ConfigError
from ser.params import override

ROOT = Path(__file__).resolve().parents[1]

STAGES = ("download", "featurize", "split", "augment", "train", "evaluate")


def all_stages(project: Path) -> list[str]:
    """The fixed-split stages, then the cross-validation ones for the folds in params.yaml."""
    folds = yaml.safe_load((project / "params.yaml").read_text())["split"]["folds"]
    return [
        *STAGES,
        *(f"cv_train@{k}" for k in folds),
        *(f"cv_evaluate@{k}" for k in folds),
        "cv_summary",
    ]


# Runs a command and prints the peak RSS (KiB) of its largest descendant.
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def environment() -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def copy_project(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=target, check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "commit",
            "-qm",
            "benchmark copy",
        ],
        cwd=target,
        check=True,
    )


def set_params(project: Path, args: argparse.Namespace) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for assignment in args.set:
        try:
            override(params, assignment)
        except ConfigError as error:
            raise SystemExit(f"error: {error}") from None
    if args.speech_url:
        params["data"]["corpus"] = "ravdess"
        params["data"]["ravdess"]["speech_url"] = str(Path(args.speech_url).resolve())
    if args.test_actors:
        params["split"]["test_actors"] = args.test_actors
    if args.val_actors:
        params["split"]["val_actors"] = args.val_actors
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def describe_corpus(params: dict) -> str:
    """What the run trained on, from its params.yaml: the corpus, and RAVDESS's channels."""
    data = params["data"]
    if data["corpus"] != "ravdess":
        corpora = data["corpus"] if isinstance(data["corpus"], list) else [data["corpus"]]
        return " + ".join(corpora)
    ravdess = data["ravdess"]
    channels = ravdess["channels"]
    return "RAVDESS " + ", ".join(f"{name} from {ravdess[f'{name}_url']}" for name in channels)


def run_stage(project: Path, stage: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of `dvc repro -s stage`."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, "dvc", "repro", "-s", stage],
        cwd=project,
        env=environment(),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"stage {stage} failed:\n{result.stdout}\n{result.stderr}")
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024


def featurize_throughput(project: Path) -> float:
    """Clips/s of the feature extraction itself (all cores, imports and pool start excluded)."""
    from ser import stage
    from ser.data.manifest import read_manifest
    from ser.features import extract
    from ser.params import load_params

    params = load_params(project / "params.yaml").features
    manifest = read_manifest(project / "data" / "manifest.csv")
    paths = [str(project / path) for path in manifest.loc[manifest["excluded"] == "", "path"]]
    extract.featurize_many(paths[:50], params, n_jobs=stage.workers(params.n_jobs))  # warm up
    started = time.perf_counter()
    extract.featurize_many(paths, params, n_jobs=stage.workers(params.n_jobs))
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech-url", help="RAVDESS speech archive (URL or local path)")
    parser.add_argument("--test-actors", type=int, nargs="+")
    parser.add_argument("--val-actors", type=int, nargs="+")
    parser.add_argument(
        "-S", "--set", action="append", default=[], help="params override key=value"
    )
    parser.add_argument("--fixed-only", action="store_true", help="only the six fixed-split stages")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ser-bench-") as folder:
        project = Path(folder)
        copy_project(project)
        set_params(project, args)
        stages = STAGES if args.fixed_only else all_stages(project)
        figures = {stage: run_stage(project, stage) for stage in stages}
        clips = sum(1 for _ in open(project / "data" / "features" / "clips.txt"))
        noop = []
        for _ in range(3):
            started = time.perf_counter()
            # With --fixed-only, `dvc repro evaluate`: a plain `dvc repro` would run the CV stages.
            target = ["evaluate"] if args.fixed_only else []
            subprocess.run(
                ["dvc", "repro", *target],
                cwd=project,
                env=environment(),
                capture_output=True,
                check=True,
            )
            noop.append(time.perf_counter() - started)
        metrics = json.loads((project / "metrics" / "evaluate.json").read_text())
        training = json.loads((project / "metrics" / "train.json").read_text())
        cv = None if args.fixed_only else json.loads((project / "metrics" / "cv.json").read_text())
        throughput = featurize_throughput(project)
        corpus = describe_corpus(yaml.safe_load((project / "params.yaml").read_text()))
    total = sum(wall for wall, _ in figures.values())
    fixed = sum(figures[stage][0] for stage in STAGES)
    print(
        f"corpus: {corpus}; {clips} clips; machine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    if args.set:
        print("overrides: " + " ".join(f"-S {assignment}" for assignment in args.set))
    print("\n| stage | wall time (s) | peak memory (MiB) |\n|---|---:|---:|")
    for stage, (wall, peak) in figures.items():
        print(f"| {stage} | {wall:.1f} | {peak:.0f} |")
    peak = max(p for _, p in figures.values())
    print(f"| **the six fixed-split stages** | **{fixed:.1f}** | |")
    print(f"| **all {len(figures)} stages, one by one** | **{total:.1f}** | {peak:.0f} |")
    featurize = figures["featurize"][0]
    print(
        f"\nfeaturize: {clips / featurize:.0f} clips/s over the stage's wall time (start-up "
        f"included); {throughput:.0f} clips/s for the extraction itself"
    )
    print(f"no-op `dvc repro`: {statistics.median(noop):.2f} s (median of 3)")
    whole = training.get("whole_speaker")
    print(
        f"train: {training['epochs_run']} epochs run, epoch {training['best_epoch']} kept"
        + (
            f" (whole-speaker model: {whole['epochs_run']} run, epoch {whole['best_epoch']} kept)"
            if whole
            else ""
        )
        + f"; test accuracy of this run: {metrics['accuracy']:.4f} with all of a speaker's"
        + (f", {metrics['single']['accuracy']:.4f} alone" if "single" in metrics else "")
    )
    if cv is not None:
        print(
            f"cross-validation ({cv['runs']} folds): accuracy {cv['accuracy']['mean']:.4f} "
            f"± {cv['accuracy']['std']:.4f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "corpus": corpus,
                    "overrides": args.set,
                    "clips": clips,
                    "stages": {
                        s: {"wall_s": round(w, 2), "peak_mib": round(p)}
                        for s, (w, p) in figures.items()
                    },
                    "total_s": round(total, 1),
                    "fixed_split_s": round(fixed, 1),
                    "featurize_clips_per_s": round(clips / featurize),
                    "extraction_clips_per_s": round(throughput),
                    "noop_repro_s": round(statistics.median(noop), 2),
                    "epochs_run": training["epochs_run"],
                    "whole_speaker_epochs_run": whole["epochs_run"] if whole else None,
                    "test_accuracy": metrics["accuracy"],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
