"""What every corpus adapter shares: the row a clip name gives, the registry entry each corpus
module declares (:class:`Corpus`), and taking a corpus source.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ser.data.download import extract_zip, fetch
from ser.errors import DataError
from ser.fsutil import atomic_dir

if TYPE_CHECKING:
    from ser.params import DataParams

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


Parse = Callable[[Path], Clip | None]
"""A file of a corpus -> its clip, or None when the file is not one."""
Read = Callable[[Path, Mapping[str, str]], Clip | None]
"""A file and the corpus's emotion table (``data.<corpus>.emotions``) -> its clip, or None."""


class Materialise(Protocol):
    """Puts a corpus under out_dir; keyword arguments, since both paths are folders."""

    def __call__(
        self, params: DataParams, out_dir: Path, *, cache_dir: Path, progress: bool | None
    ) -> None: ...


@dataclass(frozen=True)
class Corpus:
    """One corpus, as :mod:`ser.data.corpora` looks it up by name.

    Each corpus module declares one, so that what differs between corpora is written in the
    corpus's own module rather than in branches on its name.
    """

    name: str  # what data.corpus names it, and its section data.<name> of params.yaml
    title: str  # how the corpus spells itself, for messages ("CREMA-D")
    speakers: tuple[int, ...]  # the actor numbers split.test_actors may name
    # The file-name emotion codes, the keys of data.<name>.emotions; () when the names carry
    # RAVDESS's emotions themselves (RAVDESS and the synthetic corpus).
    codes: tuple[str, ...]
    materialise: Materialise  # put the corpus under out_dir (generated, fetched or copied)
    parser: Callable[[DataParams, Path], Parse]  # (params, the corpus's folder) -> its Parse
    describe: Callable[[DataParams], str]  # what the corpus is, for logs and metrics


def tabled(
    name: str,
    title: str,
    *,
    speakers: tuple[int, ...],
    codes: tuple[str, ...],
    example: str,
    read: Read,
    suffixes: tuple[str, ...] = (".wav",),
) -> Corpus:
    """A corpus with an emotion table (EmoDB, TESS, CREMA-D, SAVEE): taken from
    ``data.<name>.url`` by :func:`take`, each file read by ``read`` with ``data.<name>.emotions``.

    These corpora differ only in the arguments, so one implementation serves them all.
    ``example`` is a clip name, shown when a source holds none; ``suffixes`` are the files kept.
    """

    def materialise(
        params: DataParams, out_dir: Path, *, cache_dir: Path, progress: bool | None
    ) -> None:
        settings = getattr(params, name)
        emotions = settings.emotions
        take(
            settings.url,
            out_dir,
            corpus=title,
            example=example,
            recognise=lambda path: read(path, emotions) is not None,
            cache_dir=cache_dir,
            max_extract_bytes=settings.max_extract_bytes,
            suffixes=suffixes,
            progress=progress,
        )

    def parser(params: DataParams, corpus_dir: Path) -> Parse:
        emotions = getattr(params, name).emotions
        return lambda path: read(path, emotions)

    def describe(params: DataParams) -> str:
        return f"{name}: {title} from {getattr(params, name).url}"

    return Corpus(
        name=name,
        title=title,
        speakers=speakers,
        codes=codes,
        materialise=materialise,
        parser=parser,
        describe=describe,
    )


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
