"""The manifest: one row per clip found under data/raw/, with its labels and audio facts.

Clips that cannot be used (unreadable, empty, silent, non-finite samples, duplicated names)
stay in the manifest with the reason in ``excluded``, so that they are counted and named
downstream instead of disappearing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ser.data.corpora.ravdess import parse_path
from ser.data.corpora.source import Clip
from ser.progress import progress_bar

COLUMNS = (
    "clip_id",
    "path",
    "corpus",
    "actor",
    "gender",
    "emotion",
    "intensity",
    "statement",
    "repetition",
    "channel",
    "sample_rate",
    "duration",
    "content_hash",
    "excluded",
)

# Reading a clip to check it is cheap for speech; cap what one file may cost (1 hour of audio).
MAX_CHECK_SECONDS = 3600.0


def inspect_audio(path: Path, *, silence_threshold: float) -> tuple[int, float, str, str]:
    """Return (sample_rate, duration_s, content_hash, excluded_reason) for one audio file.

    content_hash is the SHA-256 of the decoded samples (float32, all channels), so the same
    recording is recognised whatever container or file name it comes in.
    """
    try:
        info = sf.info(str(path))
    except Exception as error:  # libsndfile raises several types for broken files
        return 0, 0.0, "", f"unreadable: {_one_line(error)}"
    sample_rate, frames = int(info.samplerate), int(info.frames)
    duration = frames / sample_rate if sample_rate > 0 else 0.0
    if frames <= 0 or sample_rate <= 0:
        return sample_rate, 0.0, "", "empty: no samples"
    digest = hashlib.sha256()
    peak = 0.0
    finite = True
    block = sample_rate * 60
    max_frames = int(MAX_CHECK_SECONDS * sample_rate)
    try:
        for chunk in sf.blocks(
            str(path),
            blocksize=block,
            dtype="float32",
            always_2d=True,
            frames=min(frames, max_frames),
        ):
            digest.update(np.ascontiguousarray(chunk).tobytes())
            if not np.all(np.isfinite(chunk)):
                finite = False
                chunk = np.nan_to_num(chunk, nan=0.0, posinf=0.0, neginf=0.0)
            if chunk.size:
                peak = max(peak, float(np.max(np.abs(chunk))))
    except Exception as error:
        return sample_rate, duration, "", f"unreadable: {_one_line(error)}"
    if not finite:
        return sample_rate, duration, digest.hexdigest(), "corrupt: NaN or infinite samples"
    if peak < silence_threshold:
        return sample_rate, duration, digest.hexdigest(), f"silent: peak {peak:.2g}"
    return sample_rate, duration, digest.hexdigest(), ""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def build_manifest(
    raw_dir: Path,
    *,
    corpus: str,
    silence_threshold: float,
    root: Path | None = None,
    progress: bool | None = None,
    parse: Callable[[Path], Clip | None] = parse_path,
    id_prefix: str = "",
) -> pd.DataFrame:
    """Scan raw_dir recursively for the corpus's .wav files and describe each one.

    Hidden files and folders (names starting with a dot) are skipped.

    Paths in the manifest are relative to ``root`` (default: the current directory), so
    the manifest stays valid when the project folder moves. ``parse`` reads a clip's labels
    from its path (default: RAVDESS names); files it does not recognise are left out
    (:func:`skipped_files` names them).
    ``id_prefix`` is put before every clip id (``emodb:`` when several corpora share a run).
    """
    root = Path.cwd() if root is None else root
    paths = audio_files(raw_dir)
    rows = []
    seen: set[str] = set()
    for path in progress_bar(paths, desc="manifest", unit="clip", enabled=progress):
        name = parse(path)
        if name is None:
            continue
        sample_rate, duration, content_hash, excluded = inspect_audio(
            path, silence_threshold=silence_threshold
        )
        clip_id = id_prefix + name.clip_id
        if clip_id in seen:
            # Same clip name twice (e.g. a copy in another folder): keep the first.
            clip_id = f"{clip_id}#{len(rows)}"
            excluded = excluded or "duplicate: another file has the same clip name"
        seen.add(clip_id)
        rows.append(
            {
                "clip_id": clip_id,
                "path": os.path.relpath(path, root),
                "corpus": corpus,
                "actor": name.actor,
                "gender": name.gender,
                "emotion": name.emotion,
                "intensity": name.intensity,
                "statement": name.statement,
                "repetition": name.repetition,
                "channel": name.channel,
                "sample_rate": sample_rate,
                "duration": round(duration, 4),
                "content_hash": content_hash,
                "excluded": excluded,
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values("clip_id", kind="stable").reset_index(drop=True)


def audio_files(raw_dir: Path) -> list[Path]:
    """The .wav files under raw_dir that build_manifest looks at (hidden ones left out),
    sorted by name."""
    return sorted(
        (
            p
            for p in raw_dir.rglob("*")
            if p.suffix.lower() == ".wav" and p.is_file() and not _hidden(p.relative_to(raw_dir))
        ),
        key=lambda p: (p.name, str(p)),
    )


def skipped_files(raw_dir: Path, *, parse: Callable[[Path], Clip | None]) -> list[str]:
    """The .wav files under raw_dir that ``parse`` does not take as clips of the corpus (an
    unknown emotion or speaker code, a repetition RAVDESS does not have, a stray file), as
    paths relative to raw_dir: build_manifest leaves them out."""
    return [str(path.relative_to(raw_dir)) for path in audio_files(raw_dir) if parse(path) is None]


# How many skipped files the summary names.
SKIPPED_EXAMPLES = 5


def summary(manifest: pd.DataFrame, skipped: list[str]) -> dict:
    """What one corpus's manifest holds and what was left out of it: clip and excluded
    counts, and the count and first few names of the files not taken as clips."""
    excluded = manifest[manifest["excluded"] != ""]
    return {
        "clips": int(len(manifest)),
        "excluded": int(len(excluded)),
        "skipped": len(skipped),
        "skipped_examples": skipped[:SKIPPED_EXAMPLES],
    }


def _hidden(relative: Path) -> bool:
    # Hidden folders hold what a killed write left (.speech.tmp-*), macOS junk is ._*.
    return any(part.startswith(".") for part in relative.parts)


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest written by :func:`write_csv`, keeping empty strings as ''."""
    return pd.read_csv(path, keep_default_na=False, dtype={"excluded": str, "content_hash": str})


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV atomically: a temporary name first, renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_csv(temporary, index=False)
    os.replace(temporary, path)
