"""Duplicate and near-duplicate clips in RAVDESS-like archives: would any leak across a split?

    python benchmarks/duplicates.py ../shared/data/ravdess-speech-actors01-20-24k.zip
    python benchmarks/duplicates.py SPEECH.zip SONG.zip --near 0.98 --top 10

Each archive is extracted safely to a temporary folder and described by the manifest code
the pipeline uses, so "identical" means what the split's leakage guard checks: the same
SHA-256 of the decoded samples (ser.data.manifest content_hash), whatever the file name. Clips are
compared across all the archives given, so a speech clip copied into the song archive counts.

Near-duplicates (the same recording after a gain change, re-encoding, resampling or an
offset of up to 0.3 s) are looked for cheaply: each clip's log-mel spectrogram (in dB below
its peak, so gain does not count) is summarised by the mean and spread of each band; the five
clips nearest by that summary are then compared frame by frame, at every offset, and a pair
whose best correlation reaches --near is reported. The best-scoring pairs are printed
whatever their score, so the margin between different takes and one take can be read off.

Prints a report; writes nothing (the archives' licence forbids committing derived data).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ser.data.download import extract_zip
from ser.data.manifest import build_manifest
from ser.features import audio

RATE = 16000
HOP = 160  # 10 ms frames
BANDS = 40
MAX_LAG = 30  # frames of offset allowed between two copies (0.3 s)
NEIGHBOURS = 5  # candidate pairs per clip, by a shift-free summary, checked frame by frame


def describe(archives: list[Path], work: Path) -> pd.DataFrame:
    """One manifest row per clip of every archive, with the archive's name."""
    frames = []
    for index, archive in enumerate(archives):
        folder = work / f"archive{index}"
        extract_zip(archive, folder, max_bytes=10**10, suffixes=(".wav",))
        manifest = build_manifest(folder, corpus=archive.name, silence_threshold=1e-4, root=work)
        frames.append(manifest.assign(archive=archive.name))
    return pd.concat(frames, ignore_index=True)


def picture(path: Path) -> np.ndarray:
    """(bands, frames) log-mel spectrogram in dB below the clip's peak: gain does not matter."""
    from ser.features.librosa_import import import_librosa

    librosa = import_librosa()

    samples = audio.load(path, sample_rate=RATE)
    if samples.size < 512:
        samples = np.pad(samples, (0, 512 - samples.size))
    mel = librosa.feature.melspectrogram(
        y=samples, sr=RATE, n_fft=512, hop_length=HOP, n_mels=BANDS
    )
    return librosa.power_to_db(mel, ref=np.max).astype(np.float32)


def summary(spectrogram: np.ndarray) -> np.ndarray:
    """Mean and spread of each band, standardised: similar for copies whatever their offset."""
    vector = np.concatenate([spectrogram.mean(axis=1), spectrogram.std(axis=1)])
    vector = (vector - vector.mean()) / max(float(vector.std()), 1e-6)
    return vector / np.sqrt(vector.size)


def aligned_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """The best correlation of two spectrograms over offsets of up to MAX_LAG frames."""
    best = -1.0
    shortest = min(first.shape[1], second.shape[1])
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        a, b = (first[:, lag:], second) if lag >= 0 else (first, second[:, -lag:])
        frames = min(a.shape[1], b.shape[1])
        if frames < shortest // 2:
            continue
        x = a[:, :frames].ravel() - a[:, :frames].mean()
        y = b[:, :frames].ravel() - b[:, :frames].mean()
        norm = float(np.sqrt((x @ x) * (y @ y)))
        if norm > 0:
            best = max(best, float(x @ y) / norm)
    return best


def exact_duplicates(clips: pd.DataFrame) -> list[pd.DataFrame]:
    hashed = clips[clips["content_hash"] != ""]
    groups = hashed.groupby("content_hash").filter(lambda group: len(group) > 1)
    return [group for _, group in groups.groupby("content_hash")]


def near_duplicates(
    clips: pd.DataFrame, work: Path, *, threshold: float
) -> tuple[list[tuple[float, int, int]], list[tuple[float, int, int]], int]:
    """(pairs scoring at least threshold, every pair checked best first, how many).

    Each clip's NEIGHBOURS nearest clips by summary are checked frame by frame, offsets
    included; comparing every pair that way would cost a thousand times more.
    """
    usable = clips[clips["excluded"] == ""]
    rows = usable.index.to_numpy()
    spectrograms = [picture(work / path) for path in usable["path"]]
    summaries = np.stack([summary(s) for s in spectrograms])
    closeness = summaries @ summaries.T
    np.fill_diagonal(closeness, -np.inf)
    candidates = {
        (min(i, j), max(i, j))
        for i in range(len(rows))
        for j in np.argsort(closeness[i])[::-1][:NEIGHBOURS]
    }
    pairs = sorted(
        (
            (aligned_similarity(spectrograms[i], spectrograms[j]), int(rows[i]), int(rows[j]))
            for i, j in candidates
        ),
        reverse=True,
    )
    return [pair for pair in pairs if pair[0] >= threshold], pairs, len(pairs)


def name(clips: pd.DataFrame, row: int) -> str:
    clip = clips.loc[row]
    return f"{clip['archive']}:{clip['clip_id']}"


def same_recording_slot(clips: pd.DataFrame, first: int, second: int) -> bool:
    """Both clips claim the same actor, emotion, intensity and statement (other repetition)."""
    keys = ["actor", "emotion", "intensity", "statement", "channel"]
    return bool((clips.loc[first, keys] == clips.loc[second, keys]).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archives", nargs="+", type=Path)
    parser.add_argument("--near", type=float, default=0.98, help="correlation threshold")
    parser.add_argument("--top", type=int, default=10, help="most similar pairs to print")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="duplicates-") as name_of_work:
        work = Path(name_of_work)
        clips = describe(args.archives, work)
        print(f"{len(clips)} clips in {', '.join(a.name for a in args.archives)}")
        excluded = clips[clips["excluded"] != ""]
        print(f"  excluded by the manifest: {len(excluded)}")
        for _, clip in excluded.iterrows():
            print(f"    {clip['archive']}:{clip['clip_id']}: {clip['excluded']}")

        groups = exact_duplicates(clips)
        print(f"identical decoded audio (content_hash): {len(groups)} group(s)")
        for group in groups:
            actors = sorted(set(group["actor"]))
            where = "across actors (a leak if split apart)" if len(actors) > 1 else "same actor"
            print(f"  {', '.join(name(clips, row) for row in group.index)}: {where}")

        above, checked, compared = near_duplicates(clips, work, threshold=args.near)
        print(f"near-duplicates (spectrogram correlation >= {args.near}): {len(above)} pair(s)")
        for score, first, second in above:
            actors = {clips.loc[first, "actor"], clips.loc[second, "actor"]}
            note = "across actors" if len(actors) > 1 else "same actor"
            if same_recording_slot(clips, first, second):
                note += ", same emotion, intensity and statement"
            print(f"  {score:.4f}  {name(clips, first)}  {name(clips, second)}  ({note})")
        print(f"best of the {compared} candidate pairs checked:")
        for score, first, second in checked[: args.top]:
            print(f"  {score:.4f}  {name(clips, first)}  {name(clips, second)}")
        across = [p for p in checked if clips.loc[p[1], "actor"] != clips.loc[p[2], "actor"]]
        if across:  # what an actor-wise split could leak
            score, first, second = across[0]
            print(
                f"best pair of two actors: {score:.4f}  {name(clips, first)}  {name(clips, second)}"
            )
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
