"""Speed of `ser predict`: warm per-clip latency on one core, throughput, cold start, --help.

    python benchmarks/predict_speed.py                     # trains a small default model first
    python benchmarks/predict_speed.py --model data/model  # or times a model you have

Without --model, a model with the params of params.yaml (or --params PATH: architecture,
width, features) is trained for a few epochs on synthetic actors 1-6; its speed is that of
any model of the same params, however long it trained. The recordings are synthetic clips
(3-4 s, 16 kHz mono WAV), copied round-robin to --files files.

Measures:
  (a) warm per-clip time on one core (CPU affinity 1 core, TensorFlow and BLAS 1 thread):
      features and model as `ser predict` does them, and the model alone;
  (b) one `ser predict` call on --files files (all cores; median of --repeats calls):
      files/s, start-up included
      (CPU: the machine's busy time during the call; run it on an idle machine);
  (c) the wall time of `ser predict` on one file, from a cold start;
  (d) the wall time of `ser --help`.

Prints a Markdown summary; --json PATH also writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ACTORS = (1, 2, 3, 4, 5)
VAL_ACTORS = (6,)
TRAIN_EPOCHS = 3


def ser_command() -> list[str]:
    script = Path(sys.executable).with_name("ser")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ser.serve.cli"]


def timed(command: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds, result).

    CPU: on Linux, what every process on the machine used during the run (from /proc/stat):
    `ser predict`'s workers fork from a forkserver, which no rusage of ours counts. On an
    otherwise idle machine that is the command's CPU. Elsewhere: the command and its
    waited-for children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_seconds()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    elapsed = time.perf_counter() - start
    busy_after = machine_busy_seconds()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} ... failed ({result.returncode}): {result.stderr}")
    if busy_before is not None and busy_after is not None:
        return elapsed, busy_after - busy_before, result
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, result


def machine_busy_seconds() -> float | None:
    """CPU seconds the machine has spent busy since boot (all cores), or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...
    busy = sum(int(fields[index]) for index in (1, 2, 3, 6, 7, 8))
    return busy / os.sysconf("SC_CLK_TCK")


def make_corpus(work: Path) -> list[Path]:
    from ser.data.corpora import synthetic

    folder = work / "corpus"
    if not folder.exists():
        synthetic.generate(folder, seed=0, actors=[*TRAIN_ACTORS, *VAL_ACTORS], sample_rate=16000)
    return sorted(folder.rglob("*.wav"))


def train_default_model(work: Path, clips: list[Path], params_path: Path) -> Path:
    """A model of the default params, trained briefly on the synthetic clips."""
    import numpy as np
    import pandas as pd

    from ser.data.labels import LabelSpec
    from ser.features import extract
    from ser.params import load_params
    from ser.training.run import train_run

    folder = work / "model"
    if folder.exists():
        return folder
    params = load_params(params_path)
    params = dataclasses.replace(
        params, train=dataclasses.replace(params.train, epochs=TRAIN_EPOCHS)
    )
    spec = LabelSpec.from_params(params.labels)
    x, _ = extract.featurize_many([str(c) for c in clips], params.features, n_jobs=os.cpu_count())
    # Synthetic names follow RAVDESS: 03-01-EMOTION-...-ACTOR.wav; emotions8 keeps all eight.
    y = np.array([int(c.stem.split("-")[2]) - 1 for c in clips])
    actors = np.array([int(c.stem.split("-")[-1]) for c in clips])
    subsets = np.select(
        [np.isin(actors, TRAIN_ACTORS), np.isin(actors, VAL_ACTORS)], ["train", "val"], "other"
    )
    frame = pd.DataFrame(
        {
            "clip_id": [c.stem for c in clips],
            "subset": subsets,
            "label": [spec.class_names[i] for i in y],
            "y": y,
            "row": np.arange(len(clips)),
            "speaker": actors,
        }
    )
    train_run(frame, x, params, spec).save(
        folder,
        labels=spec,
        feature_settings=extract.describe(params.features),
        corpus="synthetic",
        actors={"train": list(TRAIN_ACTORS), "val": list(VAL_ACTORS), "test": []},
    )
    return folder


def make_inputs(work: Path, clips: list[Path], count: int) -> Path:
    folder = work / f"inputs-{count}"
    if not folder.exists():
        temporary = work / f".inputs-{count}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        for index in range(count):
            shutil.copyfile(clips[index % len(clips)], temporary / f"{index:05d}.wav")
        temporary.rename(folder)
    return folder


def one_core(model: Path, inputs: Path, clips: int) -> dict:
    """(a), in a child process so that the thread settings precede TensorFlow's start."""
    _, _, result = timed(
        [sys.executable, __file__, "--one-core-worker", "--model", str(model), str(inputs)],
        env={**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
        timeout=1800,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["clips"] = clips
    return figures


def one_core_worker(model_dir: Path, inputs: Path, clips: int) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    threadpool_limits(limits=1)

    from ser.features import audio, extract
    from ser.features.speaker import Moments
    from ser.serve.predict import Predictor

    predictor = Predictor(model_dir)
    paths = sorted(inputs.glob("*.wav"))[:clips]
    batches = [
        extract.compute(
            extract.select_window(
                audio.load(path, sample_rate=predictor.rate), predictor.feature_params
            ),
            predictor.feature_params,
        )[None]
        for path in paths[:5]
    ]
    if predictor.normalizer is not None:  # as ser predict does for one file alone
        batches = [predictor.normalizer.apply_group(b, Moments.of(b)) for b in batches]
    for path in paths[:5]:  # warm-up: first calls trace and allocate
        predictor.predict_file(path)
    # Wall time, and CPU time of this process (on its one core): the CPU time does not grow
    # when other programs share the core, so it is the figure to trust on a busy machine.
    totals, cpus, models = [], [], []
    for index, path in enumerate(paths):
        start, cpu = time.perf_counter(), time.process_time()
        result = predictor.predict_file(path)
        totals.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        assert result.status == "ok", result.message
        batch = batches[index % len(batches)]
        # A model whose member standardises per speaker takes its speaker's moments too.
        moments = predictor.neutral_moments(1) if predictor.speaker_statistics else None
        start = time.perf_counter()
        predictor.probabilities(batch, moments)
        models.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "features_and_model_ms": 1000 * statistics.median(totals),
                "features_and_model_cpu_ms": 1000 * statistics.median(cpus),
                "model_ms": 1000 * statistics.median(models),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: train a small one)")
    parser.add_argument("--files", type=int, default=1000, help="files in one ser predict call")
    parser.add_argument("--clips", type=int, default=50, help="clips timed one by one in (a)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of (b); the median counts")
    parser.add_argument(
        "--params", type=Path, default=ROOT / "params.yaml", help="params of the trained model"
    )
    parser.add_argument("--work", type=Path, help="folder for corpus, model and inputs (kept)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--one-core-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("inputs", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_core_worker:
        one_core_worker(args.model, args.inputs, args.clips)
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="predict-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    clips = make_corpus(work)
    model = args.model or train_default_model(work, clips, args.params)
    inputs = make_inputs(work, clips, args.files)
    single = sorted(inputs.glob("*.wav"))[0]
    ser = ser_command()

    help_times = [timed([*ser, "--help"])[0] for _ in range(5)]
    cold = [timed([*ser, "predict", str(single), "--model", str(model)]) for _ in range(3)]
    runs = [
        timed(
            [*ser, "predict", str(inputs), "--model", str(model), "--format", "csv"], timeout=3600
        )
        for _ in range(args.repeats)
    ]
    many_time, many_cpu, many = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    statuses = [line.split(",")[1] for line in many.stdout.splitlines()[1:]]
    assert len(statuses) == args.files and set(statuses) == {"ok"}, set(statuses)
    warm = one_core(model, inputs, args.clips)

    figures = {
        "machine": f"{os.cpu_count()} cores ({platform.machine()}), "
        f"Python {platform.python_version()}",
        "model": str(model),
        "features": json.loads((model / "model.json").read_text())["features"],
        "one_core_warm": warm,
        "many_files": {
            "files": args.files,
            "seconds": round(many_time, 2),
            "files_per_second": round(args.files / many_time, 1),
            "cpu_seconds": round(many_cpu, 1),
            "all_seconds": [round(run[0], 2) for run in runs],
        },
        "one_file_cold_seconds": round(statistics.median(wall for wall, _, _ in cold), 2),
        "one_file_cold_cpu_seconds": round(statistics.median(cpu for _, cpu, _ in cold), 2),
        "help_seconds": round(statistics.median(help_times), 3),
    }
    print(f"machine: {figures['machine']}; model: {model}")
    print(
        f"(a) one core, warm, median of {args.clips} clips: "
        f"{warm['features_and_model_ms']:.1f} ms/clip features + model "
        f"({warm['features_and_model_cpu_ms']:.1f} ms of CPU), "
        f"{warm['model_ms']:.1f} ms/clip model only"
    )
    print(
        f"(b) `ser predict` on {args.files} files: {many_time:.1f} s, "
        f"{args.files / many_time:.1f} files/s ({many_cpu:.1f} s of CPU; median of "
        f"{len(runs)}: {', '.join(f'{run[0]:.1f}' for run in runs)} s)"
    )
    print(
        f"(c) `ser predict` on one file, cold: {figures['one_file_cold_seconds']:.2f} s "
        f"({figures['one_file_cold_cpu_seconds']:.2f} s of CPU; median of 3)"
    )
    print(f"(d) `ser --help`: {figures['help_seconds']:.3f} s (median of 5)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
