"""Corpus sources: the synthetic corpus, RAVDESS, EmoDB, TESS, CREMA-D and SAVEE.

Each corpus module declares one :class:`~ser.data.corpora.source.Corpus` (its ``CORPUS``), and
:data:`REGISTRY` holds them by name: what differs between corpora is said in the corpus's own
module, and the functions here only look the corpus up.

:func:`materialise` puts each corpus named by ``data.corpus`` under the raw folder: with one
corpus, the raw folder holds it (RAVDESS and the synthetic corpus as
``<channel>/Actor_XX/03-CC-EE-II-SS-RR-AA.wav``, the others as their archive lays them out);
with several, ``<raw>/<corpus>/`` holds each. :func:`parser` gives, per corpus, the function
that turns a file under that folder into a :class:`~ser.data.corpora.source.Clip` (or None), with
the emotion already in the shared vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ser.data.corpora import cremad, emodb, ravdess, savee, synthetic, tess
from ser.data.corpora.source import Corpus, Parse

if TYPE_CHECKING:
    from ser.params import DataParams

# Every corpus data.corpus may name, in the order messages list them.
REGISTRY: Mapping[str, Corpus] = {
    corpus.name: corpus
    for corpus in (
        synthetic.CORPUS,
        ravdess.CORPUS,
        emodb.CORPUS,
        tess.CORPUS,
        cremad.CORPUS,
        savee.CORPUS,
    )
}
NAMES = tuple(REGISTRY)
# Corpora whose emotions come from a per-corpus table in params.yaml (data.<corpus>.emotions).
MAPPED = tuple(name for name, corpus in REGISTRY.items() if corpus.codes)


def lookup(name: str) -> Corpus:
    """The registry's corpus ``name``; any other name is an error that lists the corpora."""
    if name not in REGISTRY:
        raise ValueError(f"unknown corpus {name!r}; expected one of: {', '.join(NAMES)}")
    return REGISTRY[name]


def folder(params: DataParams, name: str, *, raw_dir: Path) -> Path:
    """Where corpus ``name`` lives under raw_dir: raw_dir itself when it is the only corpus."""
    return raw_dir if len(params.corpora) == 1 else raw_dir / name


def materialise(
    params: DataParams, *, raw_dir: Path, cache_dir: Path, progress: bool | None = None
) -> None:
    """Generate or fetch-and-extract every selected corpus (each part written atomically)."""
    for name in params.corpora:
        lookup(name).materialise(
            params,
            folder(params, name, raw_dir=raw_dir),
            cache_dir=cache_dir,
            progress=progress,
        )


def parser(params: DataParams, name: str, corpus_dir: Path) -> Parse:
    """The function that reads a clip's labels from its path, for corpus ``name`` in corpus_dir."""
    return lookup(name).parser(params, corpus_dir)


def speakers(name: str) -> tuple[int, ...]:
    """The actor numbers corpus ``name`` can have (what split.test_actors may name)."""
    return lookup(name).speakers


def codes(name: str) -> tuple[str, ...]:
    """The emotion codes of corpus ``name``'s file names (keys of data.<name>.emotions); () for
    RAVDESS and the synthetic corpus, whose names carry RAVDESS's emotions."""
    return lookup(name).codes


def describe(params: DataParams) -> str:
    """A plain statement of what the corpora are, for logs and metrics."""
    return "; ".join(lookup(name).describe(params) for name in params.corpora)
