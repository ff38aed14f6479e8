"""Stage 2: features of every usable clip of the manifest -> data/features/.

The features go to disk in shards as they are computed (ser.features.store), on features.n_jobs
local processes or the Dask cluster at features.scheduler; memory does not grow with the
corpus. They are stored as computed: a speaker is standardised later, by the model's
normaliser (ser.features.speaker), with the recordings it is given.
"""

import logging
from pathlib import Path

import pandas as pd

from ser import stage
from ser.data.manifest import read_manifest, write_csv
from ser.features import extract
from ser.fsutil import atomic_dir
from ser.params import load_params

MANIFEST = Path("data/manifest.csv")
FEATURES = Path("data/features")

log = logging.getLogger("featurize")


def main() -> None:
    params = load_params().features
    manifest = read_manifest(MANIFEST)
    usable = manifest[manifest["excluded"] == ""]
    with atomic_dir(FEATURES) as folder:
        written, failures = extract.featurize_to_store(
            folder,
            list(zip(usable["clip_id"], usable["path"], strict=True)),
            params,
            n_jobs=stage.workers(params.n_jobs),
        )
        write_csv(pd.DataFrame(failures, columns=["clip_id", "excluded"]), folder / "excluded.csv")
    log.info(
        "featurize: %d clips -> %s, %d excluded",
        len(written),
        extract.shape(params),
        len(failures),
    )


if __name__ == "__main__":
    stage.run(main)
