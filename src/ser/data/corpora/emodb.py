"""Berlin EmoDB: file-name parsing and taking the archive under data/raw/.

535 clips of 10 German actors, 5 male and 5 female (Burkhardt et al. 2005, "A Database of
German Emotional Speech", Interspeech). The official archive
(http://emodb.bilderbar.info/download/download.zip) holds ``wav/03a01Fa.wav`` and friends.

A clip name is ``SSTTTEV``: speaker (2 digits), text code (``a01`` ... ``b10``), emotion letter
(a German word: W Wut anger, L Langeweile boredom, E Ekel disgust, A Angst fear, F Freude
happiness, T Trauer sadness, N neutral) and version (``a``, ``b``, ... when a sentence was
recorded more than once). Speakers 03, 10, 11, 12, 15 are male; 08, 09, 13, 14, 16 female.
Source: the corpus documentation, http://emodb.bilderbar.info/docu/ ("Every utterance is
named according to the same scheme ... Example: 03a01Fa.wav").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ser.data.corpora.source import Clip, tabled

URL = "http://emodb.bilderbar.info/download/download.zip"
# Emotion letters as in the file names; params.yaml data.emodb.emotions says what each is.
CODES = ("W", "L", "E", "A", "F", "T", "N")
GENDERS = {
    3: "male",
    8: "female",
    9: "female",
    10: "male",
    11: "male",
    12: "male",
    13: "female",
    14: "female",
    15: "male",
    16: "female",
}
SPEAKERS = tuple(sorted(GENDERS))
EXAMPLE = "03a01Fa.wav"

_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")


def parse_name(stem: str, emotions: Mapping[str, str]) -> Clip | None:
    """Parse an EmoDB file stem (``03a01Fa``); None if it is not one."""
    match = _NAME.match(stem)
    if match is None:
        return None
    speaker, text, letter, version = match.groups()
    actor = int(speaker)
    if actor not in GENDERS or letter not in emotions:
        return None
    return Clip(
        clip_id=stem,
        actor=actor,
        gender=GENDERS[actor],
        emotion=emotions[letter],
        intensity="normal",
        statement=text,
        repetition=ord(version) - ord("a") + 1,
    )


CORPUS = tabled(
    "emodb",
    "EmoDB",
    speakers=SPEAKERS,
    codes=CODES,
    example=EXAMPLE,
    read=lambda path, emotions: parse_name(path.stem, emotions),
)
