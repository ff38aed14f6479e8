"""TESS, the Toronto Emotional Speech Set: file-name parsing and taking the corpus under data/raw/.

2800 clips: 200 target words in the carrier phrase "Say the word ___", spoken by two
actresses, an older (OAF, aged 64) and a younger (YAF, aged 26), in seven emotions (Dupuis &
Pichora-Fuller, University of Toronto, 2010; described at
https://www.utm.utoronto.ca/vp-research/news/vocal-accords). The released files are named
``<speaker>_<word>_<emotion>.wav``, e.g. ``OAF_back_angry.wav`` or ``YAF_youth_ps.wav``, in
folders per speaker and emotion (``OAF_angry/``, ``YAF_pleasant_surprised/``); the emotion
words are angry, disgust, fear, happy, neutral, ps (pleasant surprise) and sad. Copies of
the corpus differ in letter case (``OAF_Fear``), so names are matched case-insensitively.

Both speakers are female. They become actors 1 (OAF) and 2 (YAF) in the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ser.data.corpora.source import Clip, tabled

# Emotion words as in the file names; params.yaml data.tess.emotions says what each is.
CODES = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
ACTORS = {"OAF": 1, "YAF": 2}
SPEAKERS = tuple(ACTORS.values())
EXAMPLE = "OAF_back_angry.wav"

_NAME = re.compile(r"^(OAF|YAF)_(\w+?)_([a-z]+)$", re.IGNORECASE)


def parse_name(stem: str, emotions: Mapping[str, str]) -> Clip | None:
    """Parse a TESS file stem (``OAF_back_angry``); None if it is not one."""
    match = _NAME.match(stem)
    if match is None:
        return None
    speaker, word, code = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
    if code not in emotions:
        return None
    return Clip(
        clip_id=f"{speaker}_{word}_{code}",
        actor=ACTORS[speaker],
        gender="female",
        emotion=emotions[code],
        intensity="normal",
        statement=word,
        repetition=1,
    )


CORPUS = tabled(
    "tess",
    "TESS",
    speakers=SPEAKERS,
    codes=CODES,
    example=EXAMPLE,
    read=lambda path, emotions: parse_name(path.stem, emotions),
)
