"""Fetch a corpus archive (resumable, verified) and unpack a zip safely.

``fetch`` accepts an http(s) URL, a ``file://`` URL or a plain local path. Remote files land in a
cache directory; a download goes to ``<name>.part`` first, resumes with an HTTP ``Range`` request
after a dropped connection, retries transient failures with exponential backoff, and is renamed to
its final name only once its size and MD5 (when given) verify. Local files are verified in place.

``extract_zip`` refuses archives that would write outside the output directory (absolute paths,
``..`` components, drive letters, symlink entries) or that expand past a byte cap, and replaces
the output directory atomically, so a failed extraction never leaves a half-written tree behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import ssl
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ser.errors import ConfigError, DataError

__all__ = ["extract_zip", "fetch", "md5_of"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MAX_BACKOFF_S = 60.0
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_USER_AGENT = "ser-download/1.0 (python urllib)"
# The longest one download may take, retries included: 6 hours is 200 MB at 10 kB/s.
MAX_SECONDS = 6 * 3600.0
# 4xx answers that are worth asking again; every other 4xx is final.
_RETRYABLE_4XX = frozenset({408, 429})


class _Retryable(Exception):
    """A transient failure of one download attempt; the message says what happened."""


class _RangeNotSatisfiable(Exception):
    """The server answered 416 to a resume request."""


def _new_md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


def md5_of(path: Path) -> str:
    """Return the hex MD5 digest of the file at ``path``, read in 1 MiB chunks."""
    digest = _new_md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------


def fetch(
    url: str,
    *,
    cache_dir: Path,
    expected_size: int | None = None,
    expected_md5: str | None = None,
    timeout: float = 60.0,
    retries: int = 4,
    backoff: float = 1.0,
    progress: bool | None = None,
    max_bytes: int | None = None,
    limit_key: str = "max_bytes",
    max_seconds: float | None = MAX_SECONDS,
) -> Path:
    """Return a local, verified copy of ``url``, downloading it into ``cache_dir`` when remote.

    Args:
        url: ``http://`` or ``https://`` URL, ``file://`` URL, or a local path (relative to the
            current directory or absolute). Local files are verified in place, never copied.
        cache_dir: Directory for remote downloads; the file is stored as ``cache_dir/<name>``,
            ``<name>`` being the last segment of the URL path (query string dropped).
        expected_size: Size in bytes the file must have, or None to skip the check.
        expected_md5: Hex MD5 digest the file must have, or None to skip the check.
        timeout: Socket timeout in seconds for connecting and for each read.
        retries: How many times to retry after a transient failure (connection error, timeout,
            dropped connection, HTTP 5xx / 408 / 429); 0 means a single attempt.
        backoff: Delay before the first retry in seconds, doubled after each further failure.
        progress: Show a tqdm byte counter on stderr: True always, False never, None when
            stderr is a terminal.
        max_bytes: Refuse a download larger than this (announced or received), for a file
            whose size is not known in advance; ``limit_key`` names it in the error.
        max_seconds: Give up when the download, retries included, has taken this long (a
            server that sends a byte now and then never trips ``timeout``); the partial
            file is kept, and the next call resumes it. None: no limit.

    Returns:
        The path of the verified file (resolved, for local inputs).

    Raises:
        ConfigError: An argument is invalid (unsupported URL scheme, malformed MD5, ...).
        DataError: The file is missing, the server refused it, every attempt failed, or the
            received bytes do not match ``expected_size`` / ``expected_md5``.
    """
    _check_fetch_args(url, expected_size, expected_md5, timeout, retries, backoff)
    if max_bytes is not None and (isinstance(max_bytes, bool) or not max_bytes > 0):
        raise ConfigError(f"{limit_key} must be a positive number of bytes, got {max_bytes!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be > 0 seconds, got {max_seconds!r}")
    md5 = expected_md5.lower() if expected_md5 is not None else None
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()

    if scheme in ("http", "https"):
        return _fetch_http(
            url,
            parts,
            cache_dir=Path(cache_dir),
            expected_size=expected_size,
            expected_md5=md5,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            progress=progress,
            limit=_Limit(url, max_bytes, limit_key, max_seconds),
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file:// URL with a remote host is not supported: {url}")
        local = Path(urllib.request.url2pathname(parts.path))
    elif scheme == "" or len(scheme) == 1:  # plain path (a one-letter scheme is a drive letter)
        local = Path(url)
    else:
        raise ConfigError(
            f"unsupported URL scheme {parts.scheme!r} in {url!r}; use http(s)://, file:// or a path"
        )
    return _verify_local(local, expected_size=expected_size, expected_md5=md5)


def _check_fetch_args(
    url: str,
    expected_size: int | None,
    expected_md5: str | None,
    timeout: float,
    retries: int,
    backoff: float,
) -> None:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"url must be a non-empty string, got {url!r}")
    if expected_size is not None and (
        isinstance(expected_size, bool) or not isinstance(expected_size, int) or expected_size < 0
    ):
        raise ConfigError(f"expected_size must be a non-negative integer, got {expected_size!r}")
    if expected_md5 is not None and (
        not isinstance(expected_md5, str) or not _MD5_RE.fullmatch(expected_md5)
    ):
        raise ConfigError(f"expected_md5 must be 32 hex digits, got {expected_md5!r}")
    if not timeout > 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be a non-negative integer, got {retries!r}")
    if not backoff >= 0:
        raise ConfigError(f"backoff must be >= 0 seconds, got {backoff!r}")


def _mismatch(
    path: Path, *, size: int, expected_size: int | None, expected_md5: str | None
) -> str | None:
    """Return a description of how ``path`` fails verification, or None if it verifies."""
    if expected_size is not None and size != expected_size:
        return f"size mismatch for {path.name}: expected {expected_size} bytes, got {size}"
    if expected_md5 is not None:
        got = md5_of(path)
        if got != expected_md5:
            return f"md5 mismatch for {path.name}: expected {expected_md5}, got {got}"
    return None


def _verify_local(path: Path, *, expected_size: int | None, expected_md5: str | None) -> Path:
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise DataError(f"archive not found: {path} (resolved to {resolved})")
    problem = _mismatch(
        resolved,
        size=resolved.stat().st_size,
        expected_size=expected_size,
        expected_md5=expected_md5,
    )
    if problem is not None:
        raise DataError(f"{problem} ({resolved})")
    log.debug("using local file %s", resolved)
    return resolved


def _filename_from_url(url: str, parts: urllib.parse.SplitResult) -> str:
    name = urllib.parse.unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"cannot derive a file name from the URL path: {url}")
    return name


def _fetch_http(
    url: str,
    parts: urllib.parse.SplitResult,
    *,
    cache_dir: Path,
    expected_size: int | None,
    expected_md5: str | None,
    timeout: float,
    retries: int,
    backoff: float,
    progress: bool | None,
    limit: _Limit,
) -> Path:
    name = _filename_from_url(url, parts)
    final = cache_dir / name
    part = cache_dir / f"{name}.part"

    if final.is_file():
        problem = _mismatch(
            final,
            size=final.stat().st_size,
            expected_size=expected_size,
            expected_md5=expected_md5,
        )
        if problem is None:
            log.info("using cached %s", final)
            return final
        log.warning("cached %s does not verify (%s); downloading again", final, problem)
        final.unlink()

    cache_dir.mkdir(parents=True, exist_ok=True)
    show = _want_progress(progress)
    log.info("downloading %s -> %s", url, final)
    attempts = retries + 1
    last_error = ""
    attempt = 0
    while attempt < attempts:
        if attempt > 0:
            delay = min(backoff * 2 ** (attempt - 1), _MAX_BACKOFF_S)
            log.warning(
                "download of %s failed (%s); retry %d/%d in %.2g s",
                url,
                last_error,
                attempt,
                retries,
                delay,
            )
            limit.check_time(extra=delay)
            time.sleep(delay)
        attempt += 1
        try:
            _download_once(
                url,
                part,
                expected_size=expected_size,
                expected_md5=expected_md5,
                timeout=timeout,
                show=show,
                limit=limit,
            )
        except _Retryable as exc:
            last_error = str(exc)
            continue
        except _RangeNotSatisfiable:
            # The .part is not a prefix of what the server has: start over, without
            # spending an attempt (the fresh request carries no Range, so this cannot loop).
            log.warning("server rejected resuming %s; restarting from zero", part.name)
            part.unlink(missing_ok=True)
            attempt -= 1
            continue
        os.replace(part, final)
        log.info("downloaded %s", final)
        return final

    raise DataError(f"download of {url} failed after {attempts} attempt(s): {last_error}")


def _want_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (scheme checked)
    except urllib.error.HTTPError as exc:
        code = exc.code
        reason = exc.reason
        exc.close()
        if code == 416 and offset > 0:
            raise _RangeNotSatisfiable from None
        if code >= 500 or code in _RETRYABLE_4XX:
            raise _Retryable(f"HTTP {code} {reason}") from None
        raise DataError(f"download of {url} failed: HTTP {code} {reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise DataError(f"download of {url} failed: {exc.reason}") from None
        raise _Retryable(f"cannot connect: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None


def _read(response: http.client.HTTPResponse, size: int) -> bytes:
    """What has arrived, up to ``size`` bytes (one socket read: a slow body still returns
    often enough for the caller to check its limits)."""
    try:
        return response.read1(size)
    except TimeoutError:
        raise _Retryable("timed out while reading") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retryable(f"connection failed while reading: {type(exc).__name__}: {exc}") from None


def _reject(part: Path, message: str) -> DataError:
    part.unlink(missing_ok=True)
    return DataError(message)


def _download_once(
    url: str,
    part: Path,
    *,
    expected_size: int | None,
    expected_md5: str | None,
    timeout: float,
    show: bool,
    limit: _Limit,
) -> None:
    """Make one request and append its body to ``part``; return only if ``part`` verifies.

    Raises ``_Retryable`` for transient failures (keeping ``part`` for a resume), and
    ``DataError`` (after deleting ``part``) when the content is definitely wrong.
    """
    name = part.name.removesuffix(".part")
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0

    if expected_size is not None and offset == expected_size and offset > 0:
        problem = _mismatch(part, size=offset, expected_size=None, expected_md5=expected_md5)
        if problem is not None:
            raise _reject(part, problem)
        return

    with contextlib.closing(_open(url, offset, timeout)) as response:
        status = response.status
        length_header = response.headers.get("Content-Length")
        body_length = int(length_header) if length_header and length_header.isdigit() else None
        total: int | None

        if status == 206:
            match = _CONTENT_RANGE_RE.fullmatch(
                (response.headers.get("Content-Range") or "").strip()
            )
            if match is None or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise _Retryable(f"server answered a resume with a bad Content-Range for {url}")
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        elif status == 200:
            if offset > 0:
                log.info("server ignored the Range request for %s; restarting from zero", url)
            offset = 0
            total = body_length
            mode = "wb"
        else:
            raise _Retryable(f"unexpected HTTP status {status}")

        if total is None and body_length is not None:
            total = offset + body_length
        if expected_size is not None and total is not None and total != expected_size:
            raise _reject(
                part,
                f"size mismatch for {name} from {url}: "
                f"expected {expected_size} bytes, server reports {total}",
            )
        if total is not None:
            limit.check_size(total, part, announced=True)

        digest = _new_md5()
        if mode == "ab" and offset > 0:
            with open(part, "rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    digest.update(chunk)

        received = 0
        bar_total = total if total is not None else expected_size
        with (
            open(part, mode) as out,
            tqdm(
                total=bar_total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=name,
                file=sys.stderr,
                disable=not show,
                leave=True,
            ) as bar,
        ):
            while True:
                chunk = _read(response, _CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                # A body without Content-Length ends when the server closes: stop one that
                # runs past the size we expect instead of filling the disk.
                if expected_size is not None and offset + received > expected_size:
                    raise _reject(
                        part,
                        f"size mismatch for {name} from {url}: more than the expected "
                        f"{expected_size} bytes",
                    )
                limit.check_size(offset + received, part)
                limit.check_time()

    size = offset + received
    if body_length is not None and received < body_length:
        raise _Retryable(f"connection dropped after {size} bytes (expected {offset + body_length})")
    if expected_size is not None and size < expected_size and body_length is None:
        raise _Retryable(f"connection ended after {size} of {expected_size} bytes")
    if expected_size is not None and size != expected_size:
        raise _reject(part, f"size mismatch for {name}: expected {expected_size} bytes, got {size}")
    if expected_md5 is not None:
        got = digest.hexdigest()
        if got != expected_md5:
            raise _reject(part, f"md5 mismatch for {name}: expected {expected_md5}, got {got}")


class _Limit:
    """The caps on one download's size and duration; their errors say which was passed."""

    def __init__(self, url: str, max_bytes: int | None, key: str, max_seconds: float | None):
        self.url, self.max_bytes, self.key, self.max_seconds = url, max_bytes, key, max_seconds
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def check_size(self, size: int, part: Path, *, announced: bool = False) -> None:
        if self.max_bytes is None or size <= self.max_bytes:
            return
        what = f"the server announces {size} bytes, more" if announced else "it sends more bytes"
        raise _reject(
            part, f"download of {self.url} refused: {what} than {self.key}={self.max_bytes}"
        )

    def check_time(self, *, extra: float = 0.0) -> None:
        if self.deadline is not None and time.monotonic() + extra > self.deadline:
            raise DataError(
                f"download of {self.url} gave up after {self.max_seconds:g} s (the limit on one "
                "download); the partial file is kept and the next run resumes it"
            )


# --------------------------------------------------------------------------------------------
# extract_zip
# --------------------------------------------------------------------------------------------

_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db"})


def _entry_parts(name: str) -> list[str]:
    """Split a zip entry name into path components, refusing anything that could escape."""
    if "\0" in name:
        raise DataError(f"unsafe zip entry {name!r}: NUL byte in name")
    if name.startswith(("/", "\\")) or _DRIVE_RE.match(name):
        raise DataError(f"unsafe zip entry {name!r}: absolute path")
    components = [c for c in re.split(r"[/\\]", name) if c not in ("", ".")]
    if ".." in components:
        raise DataError(f"unsafe zip entry {name!r}: '..' path component")
    if any(_DRIVE_RE.match(c) for c in components):
        raise DataError(f"unsafe zip entry {name!r}: drive letter in path")
    return components


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _is_junk(components: list[str]) -> bool:
    return (
        any(c in _JUNK_DIRS for c in components[:-1])
        or components[-1] in _JUNK_FILES
        or components[-1].startswith("._")
    )


def _declared_size(members: list[tuple[zipfile.ZipInfo, list[str]]]) -> int:
    return sum(info.file_size for info, _ in members)


def _plan(
    zf: zipfile.ZipFile, archive: Path, suffixes: tuple[str, ...] | None
) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """Validate every entry of ``zf`` and return the members to extract with their components."""
    members: list[tuple[zipfile.ZipInfo, list[str]]] = []
    seen: set[tuple[str, ...]] = set()
    for info in zf.infolist():
        components = _entry_parts(info.filename)
        if _is_symlink(info):
            raise DataError(f"refusing symlink entry {info.filename!r} in {archive}")
        if info.is_dir() or not components:
            continue
        if suffixes is not None and (
            not info.filename.lower().endswith(suffixes) or _is_junk(components)
        ):
            continue
        if info.flag_bits & 0x1:
            raise DataError(f"encrypted zip entry {info.filename!r} in {archive} is not supported")
        key = tuple(components)
        if key in seen:
            raise DataError(f"duplicate zip entry {info.filename!r} in {archive}")
        seen.add(key)
        members.append((info, components))
    return members


def _copy_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    *,
    written: int,
    max_bytes: int,
    archive: Path,
    limit_key: str = "max_bytes",
) -> int:
    """Stream one member to ``target``; return the running total, aborting past ``max_bytes``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "xb") as dst:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > max_bytes:
                raise DataError(
                    f"{archive} expands past {limit_key}={max_bytes} while extracting "
                    f"{info.filename!r}; refusing (possible zip bomb)"
                )
            dst.write(chunk)
    return written


def extract_zip(
    archive: Path,
    out_dir: Path,
    *,
    max_bytes: int,
    suffixes: tuple[str, ...] | None = None,
    limit_key: str = "max_bytes",
) -> list[Path]:
    """Safely extract ``archive`` into ``out_dir``, replacing it atomically.

    ``limit_key`` names the cap in error messages (the params key it came from).

    Every entry is validated before anything is written: absolute paths, drive letters, ``..``
    components, symlink entries and encrypted members are refused, as is an archive whose
    declared uncompressed size exceeds ``max_bytes``; the actual bytes are also counted while
    streaming and extraction aborts once they pass the cap. Members are written to a temporary
    directory next to ``out_dir`` that replaces ``out_dir`` only when complete; on any failure
    the temporary directory is removed and a previous ``out_dir`` is left untouched.

    Args:
        archive: The zip file.
        out_dir: Destination directory; its previous contents are replaced.
        max_bytes: Cap on the total uncompressed size of the extracted members.
        suffixes: If given, only members whose names end with one of these (case-insensitive)
            are extracted; directory entries and macOS / Windows junk (``__MACOSX/``, ``._*``,
            ``.DS_Store``, ``Thumbs.db``) are skipped. None extracts every file.

    Returns:
        The extracted file paths under ``out_dir``, sorted.

    Raises:
        ConfigError: ``max_bytes`` or ``suffixes`` is invalid, or ``out_dir`` is not a directory.
        DataError: The archive is missing, not a zip, corrupt, unsafe, too large, or (with
            ``suffixes``) has no matching member.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    if suffixes is not None:
        if isinstance(suffixes, str) or not all(isinstance(s, str) and s for s in suffixes):
            raise ConfigError(
                f"suffixes must be a tuple of non-empty strings like ('.wav',), got {suffixes!r}"
            )
        suffixes = tuple(s.lower() for s in suffixes)
    archive = Path(archive)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"out_dir exists and is not a directory: {out_dir}")
    if not archive.is_file():
        raise DataError(f"archive not found: {archive}")
    if not zipfile.is_zipfile(archive):
        raise DataError(f"not a zip archive: {archive}")

    try:
        with zipfile.ZipFile(archive) as zf:
            members = _plan(zf, archive, suffixes)
            if suffixes is not None and not members:
                raise DataError(f"no member of {archive} ends with any of {list(suffixes)}")
            declared = _declared_size(members)
            if declared > max_bytes:
                raise DataError(
                    f"{archive} declares {declared} uncompressed bytes, over "
                    f"{limit_key}={max_bytes}; refusing (possible zip bomb)"
                )
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
            try:
                written = 0
                relative: list[Path] = []
                for info, components in members:
                    rel = Path(*components)
                    written = _copy_member(
                        zf,
                        info,
                        tmp / rel,
                        written=written,
                        max_bytes=max_bytes,
                        archive=archive,
                        limit_key=limit_key,
                    )
                    relative.append(rel)
                _replace_dir(tmp, out_dir)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(f"corrupt or unsupported zip archive {archive}: {exc}") from None
    except RuntimeError as exc:  # zipfile raises RuntimeError for encrypted members
        raise DataError(f"cannot read zip archive {archive}: {exc}") from None

    log.info(
        "extracted %d file(s) (%d bytes) from %s to %s", len(relative), written, archive, out_dir
    )
    return sorted(out_dir / rel for rel in relative)


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is removed only after the swap."""
    if not target.exists() and not target.is_symlink():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    if old.is_symlink() or not old.is_dir():
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)
