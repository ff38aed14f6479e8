"""Stage 1: put the corpora under data/raw/ and describe every clip in data/manifest.csv.

data/manifest-summary.json counts per corpus the clips, the excluded clips and the files
that are not clips of the corpus (skipped), naming a few of those.
"""

import json
import logging
from pathlib import Path

import pandas as pd

from ser import stage
from ser.data import corpora
from ser.data.manifest import build_manifest, skipped_files, summary, write_csv
from ser.params import load_params

RAW = Path("data/raw")
MANIFEST = Path("data/manifest.csv")
SUMMARY = Path("data/manifest-summary.json")
# Downloaded archives are kept here (not a DVC output), so a rerun or an interrupted
# download resumes instead of starting over.
CACHE = Path("data/downloads")

log = logging.getLogger("download")


def main() -> None:
    params = load_params()
    log.info("corpus: %s", corpora.describe(params.data))
    corpora.materialise(params.data, raw_dir=RAW, cache_dir=CACHE)
    several = len(params.data.corpora) > 1
    manifests, summaries = [], {}
    for name in params.data.corpora:
        folder = corpora.folder(params.data, name, raw_dir=RAW)
        parse = corpora.parser(params.data, name, folder)
        manifests.append(
            build_manifest(
                folder,
                corpus=name,
                silence_threshold=params.data.silence_threshold,
                parse=parse,
                # Clip names of two corpora may coincide (synthetic and RAVDESS always do).
                id_prefix=f"{name}:" if several else "",
            )
        )
        skipped = skipped_files(folder, parse=parse)
        summaries[name] = summary(manifests[-1], skipped)
        if skipped:
            log.warning(
                "%s: %d file(s) skipped, not named as clips of the corpus, e.g. %s",
                name,
                len(skipped),
                ", ".join(summaries[name]["skipped_examples"]),
            )
    manifest = pd.concat(manifests, ignore_index=True)
    write_csv(manifest, MANIFEST)
    SUMMARY.write_text(json.dumps({"corpora": summaries}, indent=2) + "\n")
    excluded = manifest[manifest["excluded"] != ""]
    log.info("manifest: %d clips, %d excluded", len(manifest), len(excluded))
    if several:
        for name, clips in manifest.groupby("corpus", sort=False):
            log.info("  %s: %d clips, %d actors", name, len(clips), clips["actor"].nunique())
    for clip_id, reason in zip(excluded["clip_id"], excluded["excluded"], strict=True):
        log.info("  excluded %s: %s", clip_id, reason)


if __name__ == "__main__":
    stage.run(main)
