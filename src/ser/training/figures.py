"""Image plots (PNG) of a run, drawn with matplotlib: they render anywhere, with no network
and no JavaScript (`dvc plots show` shows them beside its Vega plots).

Each function takes plain arrays and writes one PNG; the bytes depend only on the data
(no timestamps in the file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# Inches and dots per inch: 900 x 420 pixels for a pair of panels.
PANEL = (4.5, 4.2)
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    _pyplot().close(figure)


def confusion(
    actual: Sequence[str],
    predicted: Sequence[str],
    classes: Sequence[str],
    path: Path,
    *,
    title: str,
) -> None:
    """Counts and row-normalised shares (each actual class's recall on the diagonal)."""
    plt = _pyplot()
    index = {name: position for position, name in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    for truth, guess in zip(actual, predicted, strict=True):
        counts[index[truth], index[guess]] += 1
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    figure, axes = plt.subplots(1, 2, figsize=(2 * PANEL[0], PANEL[1]), layout="constrained")
    for axis, values, label in ((axes[0], counts, "clips"), (axes[1], shares, "share of row")):
        image = axis.imshow(values, cmap="Blues", vmin=0)
        for (row, column), value in np.ndenumerate(values):
            text = f"{value:d}" if values.dtype.kind == "i" else f"{value:.2f}"
            light = value > values.max() / 2
            axis.text(column, row, text, ha="center", va="center", fontsize=7,
                      color="white" if light else "black")  # fmt: skip
        axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        axis.set_yticks(range(len(classes)), classes, fontsize=8)
        axis.set_xlabel("predicted")
        axis.set_ylabel("actual")
        figure.colorbar(image, ax=axis, shrink=0.8, label=label)
    figure.suptitle(title, fontsize=10)
    _save(figure, path)


def recall_by_class(recalls: Mapping[str, Mapping[str, float | None]], path: Path) -> None:
    """Per-class recall, one bar group per class and one bar per judgement (e.g. one
    recording alone, all of a speaker's)."""
    plt = _pyplot()
    judgements = list(recalls)
    classes = list(next(iter(recalls.values())))
    width = 0.8 / len(judgements)
    figure, axis = plt.subplots(figsize=(2 * PANEL[0], PANEL[1]), layout="constrained")
    for offset, name in enumerate(judgements):
        values = [recalls[name][c] if recalls[name][c] is not None else 0.0 for c in classes]
        axis.bar(np.arange(len(classes)) + offset * width, values, width, label=name)
    axis.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30, ha="right")
    axis.set_ylim(0, 1)
    axis.set_ylabel("recall")
    axis.legend(fontsize=8)
    axis.set_title("Recall per class (test actors)", fontsize=10)
    _save(figure, path)


def by_recordings(
    recordings: Sequence[str], series: Mapping[str, Sequence[float]], path: Path, *, chance: float
) -> None:
    """Scores against the number of the test speaker's recordings at hand."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=PANEL, layout="constrained")
    for name, values in series.items():
        axis.plot(range(len(recordings)), values, marker="o", label=name)
    axis.axhline(chance, color="grey", linestyle=":", label="chance")
    axis.set_xticks(range(len(recordings)), recordings)
    axis.set_xlabel("recordings of the test speaker at hand")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    axis.set_title("One recording alone to all of a speaker's", fontsize=10)
    _save(figure, path)


def curves(history: Mapping[str, Sequence[float]], best_epoch: int, path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, the kept epoch marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(2 * PANEL[0], PANEL[1]), layout="constrained")
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                axis.plot(range(1, len(history[key]) + 1), history[key], label=label)
        axis.axvline(best_epoch, color="grey", linestyle=":", label="kept epoch")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.legend(fontsize=8)
    figure.suptitle("Training curves", fontsize=10)
    _save(figure, path)
