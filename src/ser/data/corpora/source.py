"""What every corpus adapter shares: the row a clip name gives, and taking a corpus source.

A source is an http(s) URL, a ``file://`` URL or a local path, to a zip archive or to a
folder. Archives go through :func:`ser.data.download.fetch` (resumable, cached, verified) and
:func:`ser.data.download.extract_zip` (safe, atomic); a folder's matching files are copied, so the
pipeline's ``data/raw`` never points at files DVC does not track.
"""

from __future__ import annotations

import logging
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ser.data.download import extract_zip, fetch
from ser.errors import DataError
from ser.fsutil import atomic_dir

log = logging.getLogger(__name__)

UNKNOWN_GENDER = "unknown"


@dataclass(frozen=True)
class Clip:
    """One manifest row's worth of what a file name (and its corpus) says about a clip.

    ``actor`` is an integer unique within the corpus; ``emotion`` is already translated into
    the shared vocabulary by the corpus's ``data.<corpus>.emotions`` table.
    """

    clip_id: str
    actor: int
    gender: str  # male | female | unknown
    emotion: str
    intensity: str
    statement: int | str  # RAVDESS statement number, EmoDB text code, CREMA-D sentence, ...
    repetition: int
    channel: str = "speech"


def local_folder(url: str) -> Path | None:
    """The folder a plain path or ``file://`` URL names, or None if it is not a folder."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        path = Path(urllib.request.url2pathname(parts.path))
    elif parts.scheme == "" or len(parts.scheme) == 1:  # a one-letter scheme is a drive letter
        path = Path(url)
    else:
        return None
    path = path.expanduser()
    return path if path.is_dir() else None


def take(
    url: str,
    out_dir: Path,
    *,
    corpus: str,
    example: str,
    recognise: Callable[[Path], bool],
    cache_dir: Path,
    max_extract_bytes: int,
    suffixes: tuple[str, ...] = (".wav",),
    progress: bool | None = None,
) -> int:
    """Put the files of a corpus source under out_dir (replaced atomically); return the clip count.

    ``recognise`` says whether a file is a clip of the corpus (by its path). A source holding
    no clip at all is refused, naming ``example`` (a clip name of the corpus), since it is
    almost certainly the wrong archive or folder.
    """
    folder = local_folder(url)
    if folder is not None:
        files = _copy_folder(folder, out_dir, suffixes=suffixes)
        clips = sum(recognise(path) for path in files)
        if not clips:
            raise DataError(
                f"{url}: the folder holds no {corpus} clips (files named like {example}); "
                "is it the right folder?"
            )
        return clips
    limit_key = f"data.{corpus.lower().replace('-', '')}.max_extract_bytes"
    archive = fetch(
        url,
        cache_dir=cache_dir,
        progress=progress,
        max_bytes=max_extract_bytes,
        limit_key=limit_key,
    )
    log.info("extracting %s", archive)
    try:
        files = extract_zip(
            archive,
            out_dir,
            max_bytes=max_extract_bytes,
            suffixes=suffixes,
            limit_key=limit_key,
        )
        clips = sum(recognise(path) for path in files)
        if not clips:
            raise DataError(
                f"{url}: the archive holds no {corpus} clips (files named like {example}); "
                "is it the right archive?"
            )
    except DataError:
        # No checksum vouches for these archives: a download that is not the corpus (an error
        # page served as 200, a body cut short) would otherwise be reused by every later run.
        if urllib.parse.urlsplit(url).scheme.lower() in ("http", "https"):
            archive.unlink(missing_ok=True)
        raise
    return clips


def _copy_folder(folder: Path, out_dir: Path, *, suffixes: tuple[str, ...]) -> list[Path]:
    """Copy the files under folder whose names end with suffixes, keeping relative paths."""
    wanted = tuple(suffix.lower() for suffix in suffixes)
    sources = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.name.lower().endswith(wanted)
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    copied = []
    with atomic_dir(out_dir) as temporary:
        for source in sources:
            relative = source.relative_to(folder)
            target = temporary / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(out_dir / relative)
    return copied
