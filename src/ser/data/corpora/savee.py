"""SAVEE, Surrey Audio-Visual Expressed Emotion: file-name parsing and taking a local copy.

480 clips of four male British speakers, DC, JE, JK and KL, 15 sentences per emotion (120
per speaker: 30 neutral, 15 of each other emotion). The corpus needs registration, so it is
taken from a local zip or folder only. Its ``AudioData/Info.txt`` says: "The initial
letter(s) of the file name represents the emotion class, and the following digits represent
the sentence number. The letters 'a', 'd', 'f', 'h', 'n', 'sa' and 'su' represent 'anger',
'disgust', 'fear', 'happiness', 'neutral', 'sadness' and 'surprise' ... E.g., 'd03.wav' is
the 3rd disgust sentence."

Two layouts are accepted: the release's ``AudioData/DC/a01.wav`` (speaker from the folder)
and the flattened ``DC_a01.wav`` common in redistributed copies. Either way the clip is
``DC_a01``. The speakers become actors 1 (DC), 2 (JE), 3 (JK) and 4 (KL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ser.data.corpora.source import Clip, tabled

# Emotion prefixes as in the file names; params.yaml data.savee.emotions says what each is.
CODES = ("a", "d", "f", "h", "n", "sa", "su")
ACTORS = {"DC": 1, "JE": 2, "JK": 3, "KL": 4}
SPEAKERS = tuple(ACTORS.values())
EXAMPLE = "DC_a01.wav (or DC/a01.wav)"

_FLAT = re.compile(r"^(DC|JE|JK|KL)_([a-z]{1,2})(\d\d)$")
_IN_FOLDER = re.compile(r"^([a-z]{1,2})(\d\d)$")


def parse_path(path: Path, emotions: Mapping[str, str]) -> Clip | None:
    """Parse a SAVEE file (``DC_a01.wav``, or ``a01.wav`` in a folder ``DC``); None if not one."""
    flat = _FLAT.match(path.stem)
    if flat is not None:
        speaker, code, number = flat.groups()
    else:
        in_folder = _IN_FOLDER.match(path.stem)
        if in_folder is None or path.parent.name not in ACTORS:
            return None
        speaker = path.parent.name
        code, number = in_folder.groups()
    if code not in emotions:
        return None
    return Clip(
        clip_id=f"{speaker}_{code}{number}",
        actor=ACTORS[speaker],
        gender="male",
        emotion=emotions[code],
        intensity="normal",
        statement=number,
        repetition=1,
    )


CORPUS = tabled(
    "savee",
    "SAVEE",
    speakers=SPEAKERS,
    codes=CODES,
    example=EXAMPLE,
    read=parse_path,
)
