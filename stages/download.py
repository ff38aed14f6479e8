"""Stage 1: put the corpora under data/raw/ and describe every clip in data/manifest.csv."""

import logging
from pathlib import Path

import pandas as pd

from ser import stage
from ser.data import corpora
from ser.data.manifest import build_manifest, write_csv
from ser.params import load_params

RAW = Path("data/raw")
MANIFEST = Path("data/manifest.csv")
# Downloaded archives are kept here (not a DVC output), so a rerun or an interrupted
# download resumes instead of starting over.
CACHE = Path("data/downloads")

log = logging.getLogger("download")


def main() -> None:
    params = load_params()
    log.info("corpus: %s", corpora.describe(params.data))
    corpora.materialise(params.data, raw_dir=RAW, cache_dir=CACHE)
    several = len(params.data.corpora) > 1
    manifests = []
    for name in params.data.corpora:
        folder = corpora.folder(params.data, name, raw_dir=RAW)
        manifests.append(
            build_manifest(
                folder,
                corpus=name,
                silence_threshold=params.data.silence_threshold,
                parse=corpora.parser(params.data, name, folder),
                # Clip names of two corpora may coincide (synthetic and RAVDESS always do).
                id_prefix=f"{name}:" if several else "",
            )
        )
    manifest = pd.concat(manifests, ignore_index=True)
    write_csv(manifest, MANIFEST)
    excluded = manifest[manifest["excluded"] != ""]
    log.info("manifest: %d clips, %d excluded", len(manifest), len(excluded))
    if several:
        for name, clips in manifest.groupby("corpus", sort=False):
            log.info("  %s: %d clips, %d actors", name, len(clips), clips["actor"].nunique())
    for clip_id, reason in zip(excluded["clip_id"], excluded["excluded"], strict=True):
        log.info("  excluded %s: %s", clip_id, reason)


if __name__ == "__main__":
    stage.run(main)
