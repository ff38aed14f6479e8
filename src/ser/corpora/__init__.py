"""Corpus sources: the procedural synthetic corpus and the real RAVDESS corpus.

:func:`materialise` puts the corpus named by ``data.corpus`` under a raw folder, laid out
like the RAVDESS archives (``<channel>/Actor_XX/03-CC-EE-II-SS-RR-AA.wav``).
"""

from __future__ import annotations

from pathlib import Path

from ser.params import DataParams


def materialise(
    params: DataParams, *, raw_dir: Path, cache_dir: Path, progress: bool | None = None
) -> None:
    """Generate or fetch-and-extract the corpus into raw_dir (each part written atomically)."""
    if params.corpus == "synthetic":
        from ser.corpora import synthetic
        from ser.fsutil import atomic_dir

        with atomic_dir(raw_dir / "speech") as folder:
            synthetic.generate(
                folder,
                seed=params.synthetic.seed,
                actors=params.synthetic.actors,
                sample_rate=params.synthetic.sample_rate,
                progress=progress,
            )
        return
    from ser.corpora import ravdess

    ravdess.prepare(
        raw_dir,
        channels=params.ravdess.channels,
        urls={"speech": params.ravdess.speech_url, "song": params.ravdess.song_url},
        cache_dir=cache_dir,
        max_extract_bytes=params.ravdess.max_extract_bytes,
        progress=progress,
    )


def describe(params: DataParams) -> str:
    """A plain statement of what the corpus is, for logs and metrics."""
    if params.corpus == "synthetic":
        return "synthetic: procedurally generated voices, NOT real speech"
    return "ravdess: " + "+".join(params.ravdess.channels)
