"""Stage 1: put the corpus under data/raw/ and describe every clip in data/manifest.csv."""

import logging
from pathlib import Path

from ser import corpora, stage
from ser.manifest import build_manifest, write_csv
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
    manifest = build_manifest(
        RAW, corpus=params.data.corpus, silence_threshold=params.data.silence_threshold
    )
    write_csv(manifest, MANIFEST)
    excluded = manifest[manifest["excluded"] != ""]
    log.info("manifest: %d clips, %d excluded", len(manifest), len(excluded))
    for clip_id, reason in zip(excluded["clip_id"], excluded["excluded"], strict=True):
        log.info("  excluded %s: %s", clip_id, reason)


if __name__ == "__main__":
    stage.run(main)
