"""Stage 4: features of augmented copies of every clip outside the test actors -> data/augmented/.

Training takes the copies of its own training clips only: the fixed split's train actors,
or a cross-validation fold's. Copies of validation or test clips are never trained on.
Copies go to disk in shards as they are computed (ser.features.store), like the featurize stage's.
"""

import logging
from pathlib import Path

import pandas as pd

from ser import stage
from ser.data.manifest import read_manifest, write_csv
from ser.features import augment
from ser.fsutil import atomic_dir
from ser.params import load_params

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
AUGMENTED = Path("data/augmented")

log = logging.getLogger("augment")


def main() -> None:
    params = load_params()
    split = pd.read_csv(SPLIT)
    manifest = read_manifest(MANIFEST)
    # Train and val actors of the fixed split = every cross-validation actor (fold > 0).
    train = split[split["subset"] != "test"].merge(
        manifest[["clip_id", "path", "corpus"]], on="clip_id"
    )
    with atomic_dir(AUGMENTED) as folder:
        source_ids, failures = augment.augment_to_store(
            folder,
            list(zip(train["clip_id"], train["path"], strict=True)),
            feature_params=params.features,
            augment_params=params.augment,
            n_jobs=stage.workers(params.features.n_jobs),
        )
        write_csv(pd.DataFrame(failures, columns=["clip_id", "excluded"]), folder / "excluded.csv")
    log.info("augment: %d copies of %d clips outside the test actors", len(source_ids), len(train))


if __name__ == "__main__":
    stage.run(main)
