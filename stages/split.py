"""Stage 3: assign each usable clip to train, val or test by its actor -> data/split.csv."""

import logging
from pathlib import Path

from ser import stage
from ser.manifest import read_manifest, write_csv
from ser.params import load_params
from ser.split import assign_subsets

MANIFEST = Path("data/manifest.csv")
SPLIT = Path("data/split.csv")

log = logging.getLogger("split")


def main() -> None:
    params = load_params().split
    split = assign_subsets(read_manifest(MANIFEST), params)
    write_csv(split, SPLIT)
    for subset, clips in split.groupby("subset", sort=False):
        log.info(
            "%s: %d clips, actors %s",
            subset,
            len(clips),
            sorted(int(a) for a in clips["actor"].unique()),
        )


if __name__ == "__main__":
    stage.run(main)
