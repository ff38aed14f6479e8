"""Stage 2: features of every usable clip of the manifest -> data/features/."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ser import features, stage
from ser.fsutil import atomic_dir
from ser.manifest import read_manifest, write_csv
from ser.params import load_params

MANIFEST = Path("data/manifest.csv")
FEATURES = Path("data/features")

log = logging.getLogger("featurize")


def main() -> None:
    params = load_params().features
    manifest = read_manifest(MANIFEST)
    usable = manifest[manifest["excluded"] == ""]
    matrix, reasons = features.featurize_many(
        list(usable["path"]), params, n_jobs=stage.workers(params.n_jobs)
    )
    worked = np.array([reason == "" for reason in reasons], dtype=bool)
    if features.by_speaker(params):
        matrix[worked] = features.normalize_by_speaker(
            matrix[worked], features.speakers_of(usable)[worked]
        )
    clip_ids = list(usable["clip_id"])
    with atomic_dir(FEATURES) as folder:
        features.save_store(
            folder,
            clip_ids=[clip for clip, ok in zip(clip_ids, worked, strict=True) if ok],
            matrix=matrix[worked],
            settings=features.describe(params),
        )
        failed = pd.DataFrame(
            {
                "clip_id": [c for c, ok in zip(clip_ids, worked, strict=True) if not ok],
                "excluded": [r for r in reasons if r],
            }
        )
        write_csv(failed, folder / "excluded.csv")
    log.info(
        "featurize: %d clips -> %s, %d excluded", int(worked.sum()), matrix.shape[1:], len(failed)
    )


if __name__ == "__main__":
    stage.run(main)
