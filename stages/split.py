"""Stage 3: each usable clip to train, val or test by its actor -> data/split.csv, and each
actor outside the test actors to a cross-validation fold -> data/folds.csv.

With split.test_corpus set, the clips of that corpus test and the folds hold the speakers
of the other corpora (src/ser/data/split.py).
"""

import logging
from pathlib import Path

from ser import stage
from ser.data.manifest import read_manifest, write_csv
from ser.data.split import assign_subsets, sorted_speakers
from ser.params import load_params

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")
FOLDS = Path("data/folds.csv")

log = logging.getLogger("split")


def main() -> None:
    params = load_params().split
    split = assign_subsets(read_manifest(MANIFEST), params)
    if params.test_corpus:
        log.info(
            "cross-corpus: testing on every clip of %s; split.test_actors is not used",
            ", ".join(params.test_corpus),
        )
    write_csv(split[["clip_id", "actor", "subset"]], SPLIT)
    # A file of its own, so that changing split.val_actors does not rerun the folds.
    write_csv(split.loc[split["fold"] > 0, ["clip_id", "actor", "fold"]], FOLDS)
    for subset, clips in split.groupby("subset", sort=False):
        log.info("%s: %d clips, actors %s", subset, len(clips), sorted_speakers(clips["speaker"]))
    for fold, clips in split[split["fold"] > 0].groupby("fold"):
        log.info("fold %d: actors %s", fold, sorted_speakers(clips["speaker"]))


if __name__ == "__main__":
    stage.run(main)
