"""Stage 4: features of augmented copies of the training clips only -> data/augmented/."""

import logging
from pathlib import Path

import pandas as pd

from ser import augment, features, stage
from ser.fsutil import atomic_dir
from ser.manifest import read_manifest, write_csv
from ser.params import load_params

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
AUGMENTED = Path("data/augmented")

log = logging.getLogger("augment")


def main() -> None:
    params = load_params()
    split = pd.read_csv(SPLIT)
    manifest = read_manifest(MANIFEST)
    train = split[split["subset"] == "train"].merge(manifest[["clip_id", "path"]], on="clip_id")
    source_ids, matrix, failures = augment.augment_many(
        list(zip(train["clip_id"], train["path"], strict=True)),
        feature_params=params.features,
        augment_params=params.augment,
        n_jobs=stage.workers(params.features.n_jobs),
    )
    with atomic_dir(AUGMENTED) as folder:
        features.save_store(
            folder, clip_ids=source_ids, matrix=matrix, settings=features.describe(params.features)
        )
        write_csv(pd.DataFrame(failures, columns=["clip_id", "excluded"]), folder / "excluded.csv")
    log.info("augment: %d copies of %d training clips", len(source_ids), len(train))


if __name__ == "__main__":
    stage.run(main)
