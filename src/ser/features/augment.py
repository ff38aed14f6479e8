"""Augmented copies of training audio: audiomentations' transforms, as in the 2019
experiment, then one of the channel perturbations of ser.features.channel.

Each transform is switched on by its boolean in params.yaml; ``augment.channels`` names the
channels a copy may go through (one each, drawn per copy). Randomness comes only from
``augment.seed`` combined with the clip id and copy number, so the same params give the
same copies whatever order or subset of clips is processed, here or on a Dask cluster.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ser.features.librosa_import import import_librosa
from ser.params import AugmentParams

if TYPE_CHECKING:
    import pandas as pd


# Beside an augmented store: which copy of which clip each row is, through which channel.
COPIES = "copies.csv"


def build(params: AugmentParams, *, sample_rate: int):
    """An audiomentations.Compose of the enabled transforms (each always applied), or None
    when none is (channels alone are applied by augment_clip)."""
    if not params.transforms_enabled:
        return None
    import_librosa()  # its transforms use librosa's compiled functions
    import audiomentations as am

    transforms = []
    if params.speed:
        # Speed change = resampling played back at the original rate (pitch and tempo change
        # together, as the 2019 interpolation did): rate r <=> resample to sample_rate / r.
        transforms.append(
            am.Resample(
                min_sample_rate=int(round(sample_rate / params.speed_max)),
                max_sample_rate=int(round(sample_rate / params.speed_min)),
                p=1.0,
            )
        )
    if params.pitch:
        transforms.append(
            am.PitchShift(min_semitones=params.pitch_min, max_semitones=params.pitch_max, p=1.0)
        )
    if params.shift:
        transforms.append(
            am.Shift(
                min_shift=-params.shift_seconds,
                max_shift=params.shift_seconds,
                shift_unit="seconds",
                rollover=True,
                p=1.0,
            )
        )
    if params.noise:
        # On a peak-normalised signal, so the amplitude is relative to the clip's peak
        # (2019: 0.005 * U(0, 1) * peak; audiomentations needs a lower bound above 0).
        transforms.append(
            am.AddGaussianNoise(
                min_amplitude=params.noise_amplitude / 1000,
                max_amplitude=params.noise_amplitude,
                p=1.0,
            )
        )
    if params.gain:
        transforms.append(
            am.Gain(
                min_gain_db=20 * math.log10(max(params.gain_min, 1e-6)),
                max_gain_db=20 * math.log10(max(params.gain_max, 1e-6)),
                p=1.0,
            )
        )
    return am.Compose(transforms, p=1.0)


def copy_seed(seed: int, clip_id: str, copy: int) -> int:
    """A stable 32-bit seed for one augmented copy of one clip."""
    return zlib.crc32(f"{seed}:{clip_id}:{copy}".encode())


def copy_channel(params: AugmentParams, clip_id: str, copy: int) -> str | None:
    """The channel (a name of ser.features.channel) copy number ``copy`` of a clip goes
    through, or None when augment.channels is empty."""
    if not params.channels:
        return None
    draw = zlib.crc32(f"channel:{params.seed}:{clip_id}:{copy}".encode())
    return params.channels[draw % len(params.channels)]


def augment_clip(
    samples: np.ndarray,
    *,
    augmenter,
    sample_rate: int,
    seed: int,
    channel_name: str | None = None,
) -> np.ndarray:
    """One augmented copy of a mono clip (n,) -> (m,) float32: the transforms (augmenter,
    or None), then the channel; m differs from n under speed change."""
    if samples.size == 0:
        return samples
    result = samples
    if augmenter is not None:
        peak = float(np.max(np.abs(samples)))
        scale = peak if peak > 0 else 1.0
        with _seeded_generators(seed):
            result = augmenter(samples=samples / scale, sample_rate=sample_rate)
        result = np.nan_to_num(np.asarray(result, dtype=np.float32) * scale)
    if channel_name is not None:
        from ser.features import channel

        result = channel.perturb(result, name=channel_name, sample_rate=sample_rate, seed=seed)
    return np.asarray(result, dtype=np.float32)


# audiomentations draws from the global `random` and numpy generators, which every thread of
# a process shares: a Dask worker's own threads draw from `random` while a task runs, and two
# tasks of a many-threaded worker would interleave their draws.
_GENERATORS = threading.Lock()


@contextlib.contextmanager
def _seeded_generators(seed: int) -> Iterator[None]:
    """While augmenting, audiomentations' modules draw from a `random.Random(seed)` of their
    own, and numpy's global generator is seeded with seed, one augmentation at a time.

    The draws are those of ``random.seed(seed); np.random.seed(seed)`` in a single thread.
    """
    own = random.Random(seed)
    with _GENERATORS:
        modules = [
            module
            for name, module in list(sys.modules.items())
            if name.startswith("audiomentations") and getattr(module, "random", None) is random
        ]
        for module in modules:
            module.random = own
        np.random.seed(seed)
        try:
            yield
        finally:
            for module in modules:
                module.random = random


def _augment_one(job) -> tuple[np.ndarray | None, str]:
    from ser.features import extract

    path, clip_id, copy, feature_params, augment_params = job
    try:
        augmenter = _cached_augmenter(augment_params, extract.analysis_rate(feature_params))
        samples = extract.load_window(path, feature_params)
        augmented = augment_clip(
            samples,
            augmenter=augmenter,
            sample_rate=extract.analysis_rate(feature_params),
            seed=copy_seed(augment_params.seed, clip_id, copy),
            channel_name=copy_channel(augment_params, clip_id, copy),
        )
        return extract.compute(augmented, feature_params), ""
    except Exception as error:  # a clip that fails is left out, with its reason
        return None, " ".join(str(error).split()) or type(error).__name__


_AUGMENTERS: dict = {}


def _cached_augmenter(params: AugmentParams, sample_rate: int):
    key = (params, sample_rate)
    if key not in _AUGMENTERS:
        _AUGMENTERS[key] = build(params, sample_rate=sample_rate)
    return _AUGMENTERS[key]


def _augmented(
    clips: list[tuple[str, str]],
    *,
    feature_params,
    augment_params: AugmentParams,
    n_jobs: int,
    progress: bool | None,
) -> Iterator[tuple[str, int, np.ndarray | None, str]]:
    """(source clip id, copy number, features or None, reason) of each copy of each clip, in
    order: what augment_many gathers in memory and augment_to_store writes to disk."""
    from ser.parallel import map_clips

    if not augment_params.any_enabled or not clips:
        return
    jobs = [
        (path, clip_id, copy, feature_params, augment_params)
        for clip_id, path in clips
        for copy in range(augment_params.copies)
    ]
    results = map_clips(
        _augment_one,
        jobs,
        n_jobs=n_jobs,
        scheduler=feature_params.scheduler,
        desc="augment",
        unit="copy",
        progress=progress,
        chunksize=8,
    )
    try:
        for job, (matrix, reason) in zip(jobs, results, strict=True):
            yield job[1], job[2], matrix, reason
    finally:
        results.close()  # a consumer that stops early stops the workers too


def augment_many(
    clips: list[tuple[str, str]],
    *,
    feature_params,
    augment_params: AugmentParams,
    n_jobs: int = 1,
    progress: bool | None = None,
) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """Features of ``augment.copies`` augmented copies of each (clip_id, path).

    Returns (source clip id per row, features (rows, n_frames, n_features), failures as
    (clip_id, reason)). No enabled transform -> no rows. Holds every copy in memory: a
    corpus goes to disk through augment_to_store instead.
    """
    from ser.features import extract

    n_frames, n_features = extract.shape(feature_params)
    ids, rows, failures = [], [], []
    copies = _augmented(
        clips,
        feature_params=feature_params,
        augment_params=augment_params,
        n_jobs=n_jobs,
        progress=progress,
    )
    for clip_id, _, matrix, reason in copies:
        if matrix is None:
            failures.append((clip_id, reason))
        else:
            ids.append(clip_id)
            rows.append(matrix)
    stacked = np.stack(rows) if rows else np.zeros((0, n_frames, n_features), dtype=np.float32)
    return ids, stacked, failures


def augment_to_store(
    folder,
    clips: list[tuple[str, str]],
    *,
    feature_params,
    augment_params: AugmentParams,
    n_jobs: int = 1,
    progress: bool | None = None,
    shard_clips: int | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """augment_many written to a sharded feature store (ser.features.store) as the copies come,
    with COPIES beside it: the clip id, copy number and channel of each row (load_copies).

    Returns (source clip id per row written, failures as (clip_id, reason)).
    """
    import pandas as pd

    from ser.features import extract, store

    written_copies: list[tuple[str, int]] = []

    def results() -> Iterator[tuple[str, np.ndarray | None, str]]:
        copies = _augmented(
            clips,
            feature_params=feature_params,
            augment_params=augment_params,
            n_jobs=n_jobs,
            progress=progress,
        )
        for clip_id, copy, matrix, reason in copies:
            if matrix is not None:
                written_copies.append((clip_id, copy))
            yield clip_id, matrix, reason

    written, failures = store.write_results(
        folder,
        results(),
        row_shape=extract.shape(feature_params),
        settings=extract.describe(feature_params),
        shard_clips=shard_clips,
    )
    table = pd.DataFrame(written_copies, columns=["clip_id", "copy"])
    table["channel"] = [
        copy_channel(augment_params, clip_id, copy) or "" for clip_id, copy in written_copies
    ]
    table.to_csv(Path(folder) / COPIES, index=False)
    return written, failures


def load_copies(folder) -> tuple[pd.DataFrame, object]:
    """An augmented store written by augment_to_store: (its rows as a frame with clip_id, row,
    copy and channel ("" for none), the rows read on demand)."""
    import pandas as pd

    from ser.features import extract

    ids, rows, _ = extract.load_store(folder)
    table = pd.read_csv(Path(folder) / COPIES, dtype={"clip_id": str, "channel": str})
    table["channel"] = table["channel"].fillna("")
    if list(table["clip_id"]) != list(ids):
        raise ValueError(f"{Path(folder) / COPIES}: does not list the store's rows")
    return table.assign(row=np.arange(len(ids)))[["clip_id", "row", "copy", "channel"]], rows
