"""CREMA-D: file-name parsing, actor genders from VideoDemographics.csv, taking the corpus.

7,442 clips of 91 actors (48 male, 43 female, numbered 1001 to 1091) speaking 12 sentences
in six emotions at four levels (Cao et al. 2014, IEEE Trans. Affective Computing 5(4);
https://github.com/CheyneyComputerScience/CREMA-D, audio in ``AudioWAV/``). A clip name is
``<actor>_<sentence>_<emotion>_<level>``, e.g. ``1001_DFA_ANG_XX.wav``: sentence codes IEO,
TIE, IOM, IWW, TAI, MTI, IWL, ITH, DFA, ITS, TSI, WSI; emotions ANG, DIS, FEA, HAP, NEU, SAD;
levels LO, MD, HI and XX (unspecified).

File names carry no gender. The corpus's ``VideoDemographics.csv`` (columns ActorID, Age,
Sex, Race, Ethnicity) does; it is used when the archive or folder holds it (anywhere), and
otherwise every actor's gender is ``unknown`` (such clips are kept with labels.gender=both
and labels.by_gender=false, and dropped otherwise).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ser.data.corpora.source import UNKNOWN_GENDER, Clip, Parse, tabled

if TYPE_CHECKING:
    from ser.params import DataParams

log = logging.getLogger(__name__)

# Emotion codes as in the file names; params.yaml data.cremad.emotions says what each is.
CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SPEAKERS = tuple(range(1001, 1092))
DEMOGRAPHICS = "VideoDemographics.csv"
EXAMPLE = "1001_DFA_ANG_XX.wav"

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(
    stem: str, emotions: Mapping[str, str], genders: Mapping[int, str] | None = None
) -> Clip | None:
    """Parse a CREMA-D file stem (``1001_DFA_ANG_XX``); None if it is not one.

    ``genders`` maps actor -> male | female (from :func:`read_genders`); an actor it lacks
    is ``unknown``.
    """
    match = _NAME.match(stem)
    if match is None:
        return None
    actor, sentence, code, level = int(match.group(1)), *match.groups()[1:]
    if actor not in SPEAKERS or sentence not in SENTENCES or level not in LEVELS:
        return None
    if code not in emotions:
        return None
    return Clip(
        clip_id=stem,
        actor=actor,
        gender=(genders or {}).get(actor, UNKNOWN_GENDER),
        emotion=emotions[code],
        intensity=LEVELS[level],
        statement=sentence,
        repetition=1,
    )


def find_demographics(folder: Path) -> Path | None:
    """The VideoDemographics.csv under folder (any depth, any letter case), or None."""
    found = sorted(
        path for path in folder.rglob("*.csv") if path.name.lower() == DEMOGRAPHICS.lower()
    )
    return found[0] if found else None


def read_genders(path: Path | None) -> dict[int, str]:
    """Actor -> male | female from VideoDemographics.csv; {} without one.

    Rows whose ActorID or Sex is not understood are skipped (those actors stay ``unknown``).
    """
    if path is None:
        return {}
    genders: dict[int, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            row = {str(key).strip().lower(): str(value).strip() for key, value in row.items()}
            sex = row.get("sex", "").lower()
            if row.get("actorid", "").isdigit() and sex in ("male", "female"):
                genders[int(row["actorid"])] = sex
    return genders


# Taken like the other corpora with a table, keeping the CSV that says the actors' genders.
_TABLED = tabled(
    "cremad",
    "CREMA-D",
    speakers=SPEAKERS,
    codes=CODES,
    example=EXAMPLE,
    read=lambda path, emotions: parse_name(path.stem, emotions),
    suffixes=(".wav", ".csv"),
)


def _materialise(
    params: DataParams, out_dir: Path, *, cache_dir: Path, progress: bool | None
) -> None:
    """Take the corpus, and say so when no actor's gender will be known."""
    _TABLED.materialise(params, out_dir, cache_dir=cache_dir, progress=progress)
    if find_demographics(out_dir) is None:
        log.warning(
            "CREMA-D: no %s in %s; every actor's gender is 'unknown'",
            DEMOGRAPHICS,
            params.cremad.url,
        )


def _parser(params: DataParams, corpus_dir: Path) -> Parse:
    """Read clips with the genders of the VideoDemographics.csv under corpus_dir, if any."""
    emotions = params.cremad.emotions
    genders = read_genders(find_demographics(corpus_dir))
    return lambda path: parse_name(path.stem, emotions, genders)


CORPUS = dataclasses.replace(_TABLED, materialise=_materialise, parser=_parser)
