"""Featurize and train at corpus scale: clips/s against workers, and peak memory.

A corpus of --clips clips is made from the built-in synthetic corpus (1,440 files, 24
actors): clip i reads file i mod 1440 (files taken actor after actor), and each pass over
the files is a new set of 24 speakers, so that speaker normalisation has 60 clips per
speaker as in RAVDESS. Each measurement runs in a child process; the parent samples the
resident memory (RSS) of the child and all its descendants (pool workers, a Dask cluster)
every 0.2 s and keeps the peak of their sum.

* featurize: what the featurize stage does (ser.features.extract.featurize_to_store), once
  per --workers setting: a number of local worker
  processes, or ``dask`` for a distributed.LocalCluster of two one-thread worker processes
  on 127.0.0.1 (its start-up is timed apart).
* train: ser.training.train.fit for --train-epochs epochs on the last store (actors 1-16 of each
  pass train, 17-20 validate), read from disk batch by batch when it is larger than
  ser.training.train.IN_MEMORY_BYTES, then predictions for actors 21-24.

    python benchmarks/scale.py --clips 2000                          # a quick look
    python benchmarks/scale.py --clips 100000 --workers 2 --train-epochs 1

Prints a Markdown table; --json PATH also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = 1440  # the synthetic corpus: 24 actors x 60 clips
SAMPLE_SECONDS = 0.2


def corpus(work: Path, clips: int) -> list[tuple[str, str, str, int, int]]:
    """(clip id, path, speaker, actor, emotion index) of each clip of the scaled corpus."""
    from ser.data.corpora import synthetic

    source = work / "source"
    if len(list(source.rglob("*.wav"))) != FILES:
        synthetic.generate(source, seed=0, sample_rate=16000)
    by_actor = sorted(source.rglob("*.wav"))  # 60 files of actor 1, then of actor 2, ...
    # Actor after actor, clip by clip: any first n clips spread over all 24 actors.
    files = [by_actor[(k % 24) * 60 + k // 24] for k in range(FILES)]
    rows = []
    for index in range(clips):
        path = files[index % FILES]
        codes = path.stem.split("-")  # RAVDESS names: ...-emotion-...-actor
        actor = int(codes[6])
        rows.append(
            (f"c{index:06d}", str(path), f"{index // FILES}:{actor}", actor, int(codes[2]) - 1)
        )
    return rows


def featurize(work: Path, clips: int, setting: str, store_dir: Path) -> dict:
    """Child: featurize the scaled corpus into store_dir."""
    from ser.features import extract
    from ser.fsutil import atomic_dir
    from ser.params import load_params

    params = load_params(ROOT / "params.yaml").features
    rows = corpus(work, clips)
    figures: dict = {}
    cluster = None
    if setting == "dask":
        import dataclasses

        from distributed import LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        params = dataclasses.replace(params, scheduler=cluster.scheduler_address)
        figures["cluster_start_seconds"] = round(time.perf_counter() - started, 1)
        n_jobs = 1
    else:
        n_jobs = int(setting)
    with atomic_dir(store_dir) as folder:
        started = time.perf_counter()
        written, failures = extract.featurize_to_store(
            folder, [(clip_id, path) for clip_id, path, *_ in rows], params, n_jobs=n_jobs
        )
        figures["featurize_seconds"] = round(time.perf_counter() - started, 1)
    if cluster is not None:
        cluster.close()
    figures["clips_per_second"] = round(len(written) / figures["featurize_seconds"], 1)
    figures["failures"] = len(failures)
    return figures


def train(work: Path, clips: int, epochs: int, store_dir: Path) -> dict:
    """Child: a short training on the store, then predictions for the test actors."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from ser.features import store
    from ser.features.speaker import ClipSums, Standardized
    from ser.model.inference import predict_proba
    from ser.params import load_params
    from ser.training.data import build_training_data
    from ser.training.train import IN_MEMORY_BYTES, fit

    params = load_params(ROOT / "params.yaml")
    by_id = {clip_id: (actor, emotion) for clip_id, _, _, actor, emotion in corpus(work, clips)}
    clip_ids, rows, _ = store.load(store_dir)
    actors = np.array([by_id[clip][0] for clip in clip_ids])
    labels = np.array([by_id[clip][1] for clip in clip_ids])
    subsets = {
        "train": np.flatnonzero(actors <= 16),
        "val": np.flatnonzero((actors >= 17) & (actors <= 20)),
        "test": np.flatnonzero(actors >= 21),
    }
    clips = pd.DataFrame(
        {
            "clip_id": clip_ids,
            "subset": np.select([actors <= 16, actors <= 20], ["train", "val"], default="test"),
            "label": labels.astype(str),
            "y": labels,
            "row": np.arange(len(clip_ids)),
            "speaker": actors,
        }
    )
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, epochs=epochs))
    data = build_training_data(clips, rows, params)
    started = time.perf_counter()
    model, history = fit(data, num_classes=8, model_params=params.model, train_params=params.train)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    # Each test speaker standardised by all of its clips (the normaliser's k = all).
    test = subsets["test"]
    sums = ClipSums.of(rows)
    scales = data.normalizer.scales(
        ClipSums(sums.frames[test], sums.total[test], sums.squares[test]), actors[test]
    )
    from ser.data.dataset import Rows

    predicted = predict_proba(
        model, Standardized(Rows((rows, test)), scales, data.normalizer)
    ).argmax(axis=1)
    return {
        "train_clips": len(subsets["train"]),
        "val_clips": len(subsets["val"]),
        "from_disk": 4 * (np.prod(data.x_train.shape) + np.prod(data.x_val.shape))
        > IN_MEMORY_BYTES,
        "epochs": len(history["loss"]),
        "train_seconds": round(seconds, 1),
        "predict_seconds": round(time.perf_counter() - started, 1),
        "test_accuracy": round(float((predicted == labels[subsets["test"]]).mean()), 4),
    }


def measure(arguments: list[str]) -> dict:
    """Run this script as a child with arguments; its figures, wall time and peak memory."""
    import psutil

    child = subprocess.Popen(
        [sys.executable, __file__, *arguments], stdout=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        process = psutil.Process(child.pid)
        while not done.is_set():
            total = 0
            try:
                tree = [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for member in tree:
                try:
                    total += member.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, total)
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode:
        raise SystemExit(f"child {' '.join(arguments)} failed with status {child.returncode}")
    return {
        **json.loads(output.strip().splitlines()[-1]),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "peak_tree_rss_mb": round(peak / 2**20),
    }


def machine() -> str:
    import psutil

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument(
        "--workers", nargs="+", default=["1", "2", "dask"], help="process counts and/or dask"
    )
    parser.add_argument("--train-epochs", type=int, default=1, help="0 skips training")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", choices=["featurize", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "featurize":
        print(json.dumps(featurize(args.work, args.clips, args.setting, args.store)))
        return
    if args.child == "train":
        print(json.dumps(train(args.work, args.clips, args.train_epochs, args.store)))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="ser-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus(work, 0)  # the source files, before anything is timed
    common = ["--work", str(work), "--clips", str(args.clips)]
    results: dict = {"clips": args.clips, "machine": machine(), "featurize": {}}
    store_dir = work / "store"
    for setting in args.workers:
        shutil.rmtree(store_dir, ignore_errors=True)  # one store on disk at a time
        figures = measure(
            ["--child", "featurize", "--setting", setting, "--store", str(store_dir), *common]
        )
        results["featurize"][setting] = figures
        print(f"featurize {setting}: {figures}", file=sys.stderr)
    if args.train_epochs:
        results["train"] = measure(
            [
                "--child",
                "train",
                "--train-epochs",
                str(args.train_epochs),
                "--store",
                str(store_dir),
            ]
            + common
        )
        print(f"train: {results['train']}", file=sys.stderr)
    results["store_gb"] = round(sum(path.stat().st_size for path in store_dir.glob("*")) / 1e9, 2)

    print(f"{args.clips} clips ({results['store_gb']} GB store); {results['machine']}\n")
    print("| step | workers | clips/s | wall (s) | peak RSS, process tree (MB) |")
    print("|---|---|---|---|---|")
    for setting, figures in results["featurize"].items():
        name = "Dask LocalCluster, 2 x 1 thread" if setting == "dask" else f"{setting} process(es)"
        print(
            f"| featurize + normalise | {name} | {figures['clips_per_second']} | "
            f"{figures['wall_seconds']} | {figures['peak_tree_rss_mb']} |"
        )
    if "train" in results:
        figures = results["train"]
        print(
            f"| train {figures['epochs']} epoch(s) + predict | {figures['train_clips']} train, "
            f"{figures['val_clips']} val clips, from disk: {figures['from_disk']} | - | "
            f"{figures['wall_seconds']} | {figures['peak_tree_rss_mb']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
