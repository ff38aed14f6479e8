"""RAVDESS: file-name parsing, materialising the archives under data/raw/, and its registry entry.

RAVDESS names every clip ``MM-CC-EE-II-SS-RR-AA.wav``: modality (03 audio-only), vocal
channel (01 speech, 02 song), emotion, intensity (01 normal, 02 strong), statement,
repetition and actor (odd male, even female). Livingstone & Russo (2018), PLoS ONE 13(5).
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ser.data.corpora.source import Clip, Corpus, Parse
from ser.data.download import extract_zip, fetch
from ser.errors import DataError

if TYPE_CHECKING:
    from ser.params import DataParams

log = logging.getLogger(__name__)

EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}
CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
ACTORS = tuple(range(1, 25))

SPEECH_URL = "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1"
SONG_URL = "https://zenodo.org/records/1188976/files/Audio_Song_Actors_01-24.zip?download=1"
# Published sizes and checksums of the official archives (Zenodo record 1188976).
OFFICIAL_ARCHIVES = {
    SPEECH_URL: {"expected_size": 208_468_073, "expected_md5": "bc696df654c87fed845eb13823edef8a"},
    SONG_URL: {"expected_size": 225_505_317, "expected_md5": None},
}

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@dataclass(frozen=True)
class ClipName:
    """What a RAVDESS file name says about its clip."""

    channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        return "male" if self.actor % 2 == 1 else "female"


def parse_name(stem: str) -> ClipName | None:
    """Parse a RAVDESS file stem (``03-01-05-02-01-01-12``); None if it is not one."""
    match = _NAME.match(stem)
    if match is None:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, match.groups())
    if (
        modality != 3
        or channel not in CHANNELS
        or emotion not in EMOTIONS
        or intensity not in INTENSITIES
        or statement not in (1, 2)
        or repetition not in (1, 2)
        or actor not in ACTORS
    ):
        return None
    return ClipName(
        channel=CHANNELS[channel],
        emotion=EMOTIONS[emotion],
        intensity=INTENSITIES[intensity],
        statement=statement,
        repetition=repetition,
        actor=actor,
    )


def parse_path(path: Path) -> Clip | None:
    """The manifest row of a RAVDESS-named file (the synthetic corpus is named the same)."""
    name = parse_name(path.stem)
    if name is None:
        return None
    return Clip(
        clip_id=path.stem,
        actor=name.actor,
        gender=name.gender,
        emotion=name.emotion,
        intensity=name.intensity,
        statement=name.statement,
        repetition=name.repetition,
        channel=name.channel,
    )


def prepare(
    raw_dir: Path,
    *,
    channels: tuple[str, ...],
    urls: dict[str, str],
    cache_dir: Path,
    max_extract_bytes: int,
    progress: bool | None = None,
) -> None:
    """Fetch (or take locally) each channel's archive and extract it under raw_dir/<channel>.

    The archive is verified (size, and MD5 where one is published) before extraction;
    extraction is atomic, so raw_dir/<channel> is either complete or absent.
    """
    for channel in channels:
        url = urls[channel]
        checks = OFFICIAL_ARCHIVES.get(url, {})
        archive = fetch(
            url,
            cache_dir=cache_dir,
            progress=progress,
            max_bytes=max_extract_bytes,
            limit_key="data.ravdess.max_extract_bytes",
            **checks,
        )
        log.info("extracting %s", archive)
        try:
            files = extract_zip(
                archive,
                raw_dir / channel,
                max_bytes=max_extract_bytes,
                suffixes=(".wav",),
                limit_key="data.ravdess.max_extract_bytes",
            )
            named = [path for path in files if parse_name(path.stem) is not None]
            if not named:
                raise DataError(
                    f"{url}: the archive holds no RAVDESS clips (files named like "
                    "03-01-05-02-01-01-12.wav); is it the right archive?"
                )
        except DataError:
            # A download no checksum vouches for (an error page served as 200, a body cut
            # short without Content-Length) would otherwise be reused by every later run.
            if _is_remote(url) and not checks.get("expected_md5"):
                archive.unlink(missing_ok=True)
            raise
        log.info("%s: %d clips", channel, len(named))


def _is_remote(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme.lower() in ("http", "https")


def _materialise(
    params: DataParams, out_dir: Path, *, cache_dir: Path, progress: bool | None
) -> None:
    settings = params.ravdess
    prepare(
        out_dir,
        channels=settings.channels,
        urls={"speech": settings.speech_url, "song": settings.song_url},
        cache_dir=cache_dir,
        max_extract_bytes=settings.max_extract_bytes,
        progress=progress,
    )


def _parser(params: DataParams, corpus_dir: Path) -> Parse:
    return parse_path


CORPUS = Corpus(
    name="ravdess",
    title="RAVDESS",
    speakers=ACTORS,
    codes=(),
    materialise=_materialise,
    parser=_parser,
    describe=lambda params: "ravdess: " + "+".join(params.ravdess.channels),
)
