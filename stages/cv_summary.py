"""Stage 9: mean and standard deviation over the cross-validation folds -> metrics/cv.json."""

import logging
from pathlib import Path

from ser import stage
from ser.fsutil import read_json, write_json
from ser.params import load_params
from ser.training.evaluate import summarise_folds

SUMMARY = Path("metrics/cv.json")

log = logging.getLogger("cv_summary")


def main() -> None:
    folds = load_params().split.folds
    runs = {fold: read_json(Path(f"metrics/cv/{fold}/evaluate.json")) for fold in folds}
    summary = {
        **summarise_folds(list(runs.values())),
        "fold_accuracy": {str(fold): run["accuracy"] for fold, run in runs.items()},
        "fold_test_actors": {str(fold): run["test_actors"] for fold, run in runs.items()},
        "corpus": next(iter(runs.values()))["corpus"],
    }
    write_json(SUMMARY, summary)
    log.info(
        "%d folds: accuracy %.4f ± %.4f, macro F1 %.4f ± %.4f, UAR %.4f ± %.4f",
        len(runs),
        *(summary[m][k] for m in ("accuracy", "macro_f1", "uar") for k in ("mean", "std")),
    )


if __name__ == "__main__":
    stage.run(main)
