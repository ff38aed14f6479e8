"""What a constant offset (DC, as a cheap microphone or sound card adds) does to `ser predict`.

Each model judges the clips of the actors it was tested on (its meta's test actors) in a
RAVDESS-like speech zip, each clip alone (``Predictor.predict_array``, as ``ser predict
FILE``), as recorded and with each offset added to its samples. The report gives, per
offset, the share of clips whose class changed, the mean total variation distance between
the two probability vectors, and the accuracy with and without it:

    python benchmarks/offset_check.py ../shared/data/ravdess-speech-actors01-20-24k.zip \\
        --models M/model-1-1 M/model-1-2 --offsets 0.002 0.01 0.05 --json offset.json

docs/robustness.md (A constant offset) gives the figures measured.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.data.corpora.ravdess import parse_name
from ser.data.labels import LabelSpec
from ser.model.modelio import read_meta
from ser.serve.predict import Predictor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=Path, help="a RAVDESS-like zip of speech clips")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="model folders")
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.002, 0.01, 0.05])
    parser.add_argument("--every", type=int, default=1, help="take every Nth clip")
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    totals = {
        offset: {"clips": 0, "changed": 0, "distance": 0.0, "right": 0} for offset in args.offsets
    }
    right_clean = 0
    with zipfile.ZipFile(args.archive) as bundle:
        names = sorted(name for name in bundle.namelist() if name.endswith(".wav"))
        for folder in args.models:
            predictor = Predictor(folder)
            spec = LabelSpec.from_dict(predictor.meta["labels"])
            actors = set(read_meta(folder)["actors"]["test"])
            for name in names[:: args.every]:
                clip = parse_name(Path(name).stem)
                if clip is None or clip.actor not in actors:
                    continue
                truth = spec.label(emotion=clip.emotion, gender=clip.gender)
                if truth is None:
                    continue
                samples, rate = sf.read(io.BytesIO(bundle.read(name)), dtype="float32")
                clean = predictor.predict_array(samples, rate)
                right_clean += clean.label == truth
                for offset in args.offsets:
                    shifted = predictor.predict_array(samples + np.float32(offset), rate)
                    total = totals[offset]
                    total["clips"] += 1
                    total["right"] += shifted.label == truth
                    if shifted.status != "ok":
                        total["changed"] += 1
                        total["distance"] += 1.0
                        continue
                    total["changed"] += shifted.label != clean.label
                    total["distance"] += 0.5 * sum(
                        abs(shifted.probabilities[key] - p)
                        for key, p in clean.probabilities.items()
                    )
    report = {}
    for offset, total in totals.items():
        clips = max(total["clips"], 1)
        report[str(offset)] = {
            "clips": total["clips"],
            "class_changed": round(total["changed"] / clips, 4),
            "mean_distance": round(total["distance"] / clips, 4),
            "accuracy": round(total["right"] / clips, 4),
            "accuracy_without": round(right_clean / clips, 4),
        }
        print(f"offset {offset}: " + "  ".join(f"{k} {v}" for k, v in report[str(offset)].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
