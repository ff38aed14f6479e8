"""Seconds per epoch of the network, its training rows fitted from memory and streamed from disk.

    python benchmarks/fit_speed.py ../shared/data/ravdess-speech-actors01-20-24k.zip \
        --val-actors 17 18 19 20 --epochs 4 --cache /tmp/ser-cache

The training data is the train stage's (ser.training.data.build_training_data: speaker
draws and augmented copies included), built from the archive as recordings_cv.py builds it:
every actor outside --val-actors trains. With actors 01-20 of RAVDESS speech and validation
on 17-20 that is the shape of the default split of the whole corpus (16 training actors).
The network alone (no statistics member) is fitted for --epochs epochs with
ser.training.train.fit, once with in_memory=True and once with in_memory=False, the same
seed; early stopping cannot end it sooner. Reports the mean seconds of an epoch after the
first (their range too: from memory they alternate between two speeds on TensorFlow), the
seconds until the first epoch ends less that mean (reading and standardising every row for
the in-memory fit, building the model, tracing its graph), and the data's
size against ser.training.train.IN_MEMORY_BYTES, which picks the path the pipeline takes.
--json PATH also writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from recordings_cv import prepare, project_params, split_clips

from ser.data.labels import LabelSpec
from ser.training import train
from ser.training.data import build_training_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a RAVDESS-like archive (path or URL) or folder")
    parser.add_argument("--val-actors", type=int, nargs="+", required=True)
    parser.add_argument("--epochs", type=int, default=4, help="epochs each way (at least 2)")
    parser.add_argument("-S", "--set", action="append", default=[], help="params key=value")
    parser.add_argument("--cache", type=Path, help="as recordings_cv.py --cache")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.epochs < 2:
        raise SystemExit("error: --epochs must be at least 2 (the first epoch traces the graph)")

    params = project_params(args.set)
    params = dataclasses.replace(
        params,
        model=dataclasses.replace(params.model, stats_weight=0.0),
        train=dataclasses.replace(
            params.train, epochs=args.epochs, early_stopping_patience=args.epochs
        ),
    )
    spec = LabelSpec.from_params(params.labels)
    with tempfile.TemporaryDirectory(prefix="fit-speed-") as work:
        if args.cache:
            args.cache.mkdir(parents=True, exist_ok=True)
        manifest, store_ids, store, copies, augmented = prepare(
            args.source, args.cache or Path(work), params
        )
        validating = manifest["actor"].astype(int).isin(args.val_actors)
        split = manifest[["clip_id", "actor"]].assign(
            subset=validating.map({True: "val", False: "train"})
        )
        clips = split_clips(manifest, split, store_ids, spec)
        data = build_training_data(clips, store, params, copies=copies, augmented=augmented)
        nbytes = train._nbytes(data.x_train) + train._nbytes(data.x_val)
        streamed = not train.fits_in_memory(data.x_train, data.x_val)
        report: dict = {
            "source": str(args.source),
            "settings": args.set,
            "training_rows": len(data.x_train),
            "validation_rows": len(data.x_val),
            "bytes": nbytes,
            "in_memory_limit": train.IN_MEMORY_BYTES,
            "pipeline_path": "streamed" if streamed else "memory",
            "epochs": args.epochs,
        }
        for path, in_memory in (("memory", True), ("streamed", False)):
            ends: list[float] = []
            began = time.perf_counter()
            train.fit(
                data,
                num_classes=len(spec.class_names),
                model_params=params.model,
                train_params=params.train,
                in_memory=in_memory,
                on_epoch_end=lambda epoch, logs, ends=ends: ends.append(time.perf_counter()),
            )
            epochs = [b - a for a, b in zip(ends, ends[1:], strict=False)]
            # The first epoch's start is not seen: "before" is everything up to its end
            # less the mean epoch (reading, standardising, building, tracing).
            mean = statistics.mean(epochs)
            report[path] = {
                "before_first_epoch_s": round(ends[0] - began - mean, 1),
                "epoch_s": round(mean, 2),
                "epochs_s": [round(e, 2) for e in epochs],
            }
    print(
        f"{report['training_rows']} training and {report['validation_rows']} validation rows, "
        f"{nbytes / 1e9:.3f} GB (limit {train.IN_MEMORY_BYTES / 1e9:.3f} GB: the pipeline "
        f"fits them {'in memory' if report['pipeline_path'] == 'memory' else 'streamed'})"
    )
    print("\n| path | seconds before the first epoch | seconds an epoch: mean (range) |")
    print("|---|---:|---:|")
    for path in ("memory", "streamed"):
        times = report[path]["epochs_s"]
        print(
            f"| {path} | {report[path]['before_first_epoch_s']} | {report[path]['epoch_s']} "
            f"({min(times)}–{max(times)}) |"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
