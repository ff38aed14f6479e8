"""Corpus sources: the synthetic corpus, RAVDESS, EmoDB, TESS, CREMA-D and SAVEE.

:func:`materialise` puts each corpus named by ``data.corpus`` under the raw folder: with one
corpus, the raw folder holds it (RAVDESS and the synthetic corpus as
``<channel>/Actor_XX/03-CC-EE-II-SS-RR-AA.wav``, the others as their archive lays them out);
with several, ``<raw>/<corpus>/`` holds each. :func:`parser` gives, per corpus, the function
that turns a file under that folder into a :class:`~ser.data.corpora.source.Clip` (or None), with
the emotion already in the shared vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ser.data.corpora.source import Clip

if TYPE_CHECKING:
    from ser.params import DataParams

# Corpora whose emotions come from a per-corpus table in params.yaml (data.<corpus>.emotions).
MAPPED = ("emodb", "tess", "cremad", "savee")
_TITLES = {"emodb": "EmoDB", "tess": "TESS", "cremad": "CREMA-D", "savee": "SAVEE"}


def folder(params: DataParams, name: str, *, raw_dir: Path) -> Path:
    """Where corpus ``name`` lives under raw_dir: raw_dir itself when it is the only corpus."""
    return raw_dir if len(params.corpora) == 1 else raw_dir / name


def materialise(
    params: DataParams, *, raw_dir: Path, cache_dir: Path, progress: bool | None = None
) -> None:
    """Generate or fetch-and-extract every selected corpus (each part written atomically)."""
    for name in params.corpora:
        _materialise_one(
            params,
            name,
            out_dir=folder(params, name, raw_dir=raw_dir),
            cache_dir=cache_dir,
            progress=progress,
        )


def _materialise_one(
    params: DataParams, name: str, *, out_dir: Path, cache_dir: Path, progress: bool | None
) -> None:
    if name == "synthetic":
        from ser.data.corpora import synthetic
        from ser.fsutil import atomic_dir

        with atomic_dir(out_dir / "speech") as speech:
            synthetic.generate(
                speech,
                seed=params.synthetic.seed,
                actors=params.synthetic.actors,
                sample_rate=params.synthetic.sample_rate,
                progress=progress,
            )
        return
    if name == "ravdess":
        from ser.data.corpora import ravdess

        ravdess.prepare(
            out_dir,
            channels=params.ravdess.channels,
            urls={"speech": params.ravdess.speech_url, "song": params.ravdess.song_url},
            cache_dir=cache_dir,
            max_extract_bytes=params.ravdess.max_extract_bytes,
            progress=progress,
        )
        return
    settings = getattr(params, name)
    module = _module(name)
    module.prepare(
        out_dir,
        url=settings.url,
        emotions=settings.emotions,
        cache_dir=cache_dir,
        max_extract_bytes=settings.max_extract_bytes,
        progress=progress,
    )


def parser(params: DataParams, name: str, corpus_dir: Path) -> Callable[[Path], Clip | None]:
    """The function that reads a clip's labels from its path, for corpus ``name`` in corpus_dir."""
    if name in ("synthetic", "ravdess"):
        from ser.data.corpora import ravdess

        return ravdess.parse_path
    emotions = getattr(params, name).emotions
    if name == "savee":
        from ser.data.corpora import savee

        return lambda path: savee.parse_path(path, emotions)
    if name == "cremad":
        from ser.data.corpora import cremad

        genders = cremad.read_genders(cremad.find_demographics(corpus_dir))
        return lambda path: cremad.parse_name(path.stem, emotions, genders)
    module = _module(name)
    return lambda path: module.parse_name(path.stem, emotions)


def speakers(name: str) -> tuple[int, ...]:
    """The actor numbers corpus ``name`` can have (what split.test_actors may name)."""
    if name in ("synthetic", "ravdess"):
        return tuple(range(1, 25))
    return _module(name).SPEAKERS


def codes(name: str) -> tuple[str, ...]:
    """The emotion codes of corpus ``name``'s file names (keys of data.<name>.emotions)."""
    return _module(name).CODES


def describe(params: DataParams) -> str:
    """A plain statement of what the corpora are, for logs and metrics."""
    parts = []
    for name in params.corpora:
        if name == "synthetic":
            parts.append("synthetic: procedurally generated voices, NOT real speech")
        elif name == "ravdess":
            parts.append("ravdess: " + "+".join(params.ravdess.channels))
        else:
            parts.append(f"{name}: {_TITLES[name]} from {getattr(params, name).url}")
    return "; ".join(parts)


def _module(name: str):
    from importlib import import_module

    if name not in MAPPED:
        raise ValueError(f"corpus {name!r} has no emotion table; expected one of {MAPPED}")
    return import_module(f"ser.data.corpora.{name}")
