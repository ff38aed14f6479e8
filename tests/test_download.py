"""Tests for ser.data.download: resumable verified downloads and safe zip extraction.

Every network test talks only to a ThreadingHTTPServer the fixture starts on 127.0.0.1, whose
behaviour per request is scripted by the test; retries are few and backoff tiny, so each test's
request loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ser.data import download
from ser.data.download import extract_zip, fetch, md5_of
from ser.errors import ConfigError, DataError

# --------------------------------------------------------------------------------------------
# A scripted local HTTP server
# --------------------------------------------------------------------------------------------

PAYLOAD = os.urandom(300_000)
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
NAME = "Audio_Speech_Actors_01-24.zip"


@dataclass
class Server:
    """State shared with the handler: content, a per-request script, and a request log."""

    base: str = ""
    content: bytes = PAYLOAD
    # One behaviour per request, consumed in order; "ok" once the script is exhausted.
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, str | None]] = field(default_factory=list)
    pause: float = 0.05  # seconds between pieces of a "slow" body
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str = NAME, query: str = "?download=1") -> str:
        return f"{self.base}/records/1188976/files/{name}{query}"

    def next_mode(self, path: str, range_header: str | None) -> str:
        with self.lock:
            self.requests.append({"path": path, "range": range_header})
            return self.script.pop(0) if self.script else "ok"


def _make_handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            range_header = self.headers.get("Range")
            mode = state.next_mode(self.path, range_header)
            content = state.content
            if mode == "404":
                self._send(404, b"not found")
                return
            if mode == "500":
                self._send(500, b"boom")
                return
            if mode == "429":
                self._send(429, b"slow down", {"Retry-After": "0"})
                return
            if mode == "html":  # a portal or error page served as 200 instead of the file
                self._send(200, b"<html>please log in</html>", {"Content-Type": "text/html"})
                return
            if mode in ("close_short", "endless"):
                # No Content-Length: the body ends when the server closes the connection.
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                if mode == "close_short":
                    self.wfile.write(content[: len(content) // 2])
                    return
                for _ in range(1000):  # 64 MiB, or until the client hangs up
                    if state.stop.is_set():
                        break
                    self.wfile.write(b"\0" * 65536)
                return
            if mode == "stall":  # say nothing until the client has long given up
                state.stop.wait(5)
                self.close_connection = True
                return

            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and mode != "norange":
                start = int(match.group(1))
                if start >= len(content):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"})
                    return
            body = content[start:]
            self.send_response(206 if start else 200)
            if start:
                # "badrange": claims to resume from another offset than the one asked for
                first = start + 1 if mode == "badrange" else start
                self.send_header(
                    "Content-Range", f"bytes {first}-{len(content) - 1}/{len(content)}"
                )
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if mode == "drop":  # promise the whole body, send half, hang up
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if mode == "slow":  # a slow link: the body in 64 KiB pieces, state.pause apart
                for begin in range(0, len(body), 65536):
                    self.wfile.write(body[begin : begin + 65536])
                    self.wfile.flush()
                    if state.stop.wait(state.pause):
                        break
                return
            if mode == "drip":  # never silent for long, never done: 100 bytes every 50 ms
                for begin in range(0, len(body), 100):
                    self.wfile.write(body[begin : begin + 100])
                    self.wfile.flush()
                    if state.stop.wait(0.05):
                        break
                return
            if mode == "stall_body":  # send a little, then go silent
                self.wfile.write(body[:1000])
                self.wfile.flush()
                state.stop.wait(5)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    with serve(Server()) as state:
        yield state


@contextlib.contextmanager
def serve(state: Server) -> Iterator[Server]:
    """Run a scripted server for ``state`` on 127.0.0.1 (also used by tests/test_ravdess.py)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    host, port = httpd.server_address[:2]
    state.base = f"http://{host}:{port}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


FAST = {"retries": 3, "backoff": 0.01, "timeout": 5.0, "progress": False}


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --------------------------------------------------------------------------------------------
# fetch over HTTP
# --------------------------------------------------------------------------------------------


def test_download_success_with_md5(server: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    got = fetch(
        server.url(), cache_dir=cache, expected_size=len(PAYLOAD), expected_md5=PAYLOAD_MD5, **FAST
    )
    assert got == cache / NAME  # query string dropped from the file name
    assert got.read_bytes() == PAYLOAD
    assert _leftovers(cache) == [NAME]
    assert len(server.requests) == 1
    assert server.requests[0]["range"] is None


def test_uppercase_md5_accepted(server: Server, tmp_path: Path) -> None:
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5.upper(), **FAST)
    assert md5_of(got) == PAYLOAD_MD5


def test_404_is_not_retried(server: Server, tmp_path: Path) -> None:
    server.script = ["404"] * 5
    with pytest.raises(DataError, match=r"404") as info:
        fetch(server.url(), cache_dir=tmp_path, **FAST)
    assert server.url() in str(info.value)
    assert len(server.requests) == 1
    assert _leftovers(tmp_path) == []


def test_500_twice_then_ok(server: Server, tmp_path: Path) -> None:
    server.script = ["500", "500"]
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert got.read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_persistent_500_gives_up_after_retries(server: Server, tmp_path: Path) -> None:
    server.script = ["500"] * 10
    with pytest.raises(DataError, match=r"after 3 attempt.*HTTP 500"):
        fetch(server.url(), cache_dir=tmp_path, **{**FAST, "retries": 2})
    assert len(server.requests) == 3
    assert not (tmp_path / NAME).exists()


def test_dropped_connection_resumes_with_range(server: Server, tmp_path: Path) -> None:
    server.script = ["drop"]
    got = fetch(
        server.url(),
        cache_dir=tmp_path,
        expected_size=len(PAYLOAD),
        expected_md5=PAYLOAD_MD5,
        **FAST,
    )
    assert len(server.requests) == 2
    half = len(PAYLOAD) // 2
    assert server.requests[1]["range"] == f"bytes={half}-"
    assert md5_of(got) == PAYLOAD_MD5
    assert _leftovers(tmp_path) == [NAME]


def test_dropped_connection_without_expectations_is_detected(
    server: Server, tmp_path: Path
) -> None:
    """Short bodies are caught from Content-Length alone, not only via expected_size."""
    server.script = ["drop", "drop"]
    got = fetch(server.url(), cache_dir=tmp_path, **FAST)
    assert got.read_bytes() == PAYLOAD
    assert [r["range"] is not None for r in server.requests] == [False, True, True]


def test_existing_part_is_resumed(server: Server, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.part").write_bytes(PAYLOAD[:1000])
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert server.requests[0]["range"] == "bytes=1000-"
    assert got.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.part").write_bytes(PAYLOAD[:1000])
    server.script = ["norange"]
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert server.requests[0]["range"] == "bytes=1000-"
    assert got.read_bytes() == PAYLOAD  # not the 1000-byte prefix twice


def test_416_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.part").write_bytes(b"x" * (len(PAYLOAD) + 10))
    got = fetch(server.url(), cache_dir=tmp_path, **{**FAST, "retries": 0})
    assert [r["range"] for r in server.requests] == [f"bytes={len(PAYLOAD) + 10}-", None]
    assert got.read_bytes() == PAYLOAD


@pytest.mark.parametrize("mode", ["stall", "stall_body"])
def test_stall_times_out_after_retries(server: Server, tmp_path: Path, mode: str) -> None:
    server.script = [mode] * 10
    started = time.monotonic()
    with pytest.raises(DataError, match=r"after 2 attempt.*timed out"):
        fetch(
            server.url(),
            cache_dir=tmp_path,
            timeout=0.3,
            retries=1,
            backoff=0.01,
            progress=False,
        )
    assert time.monotonic() - started < 4
    assert len(server.requests) == 2
    assert not (tmp_path / NAME).exists()


def test_429_is_retried(server: Server, tmp_path: Path) -> None:
    server.script = ["429"]
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert got.read_bytes() == PAYLOAD
    assert len(server.requests) == 2


def test_bad_content_range_on_resume_starts_over(server: Server, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.part").write_bytes(PAYLOAD[:1000])
    server.script = ["badrange"]
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert [r["range"] for r in server.requests] == ["bytes=1000-", None]
    assert got.read_bytes() == PAYLOAD


def test_body_without_length_cut_short_is_resumed_when_the_size_is_known(
    server: Server, tmp_path: Path
) -> None:
    server.script = ["close_short"]
    got = fetch(server.url(), cache_dir=tmp_path, expected_size=len(PAYLOAD), **FAST)
    assert [r["range"] for r in server.requests] == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert got.read_bytes() == PAYLOAD


def test_endless_body_is_stopped_at_the_expected_size(server: Server, tmp_path: Path) -> None:
    server.script = ["endless"]
    started = time.monotonic()
    with pytest.raises(DataError, match=rf"more than the expected {len(PAYLOAD)} bytes"):
        fetch(server.url(), cache_dir=tmp_path, expected_size=len(PAYLOAD), **FAST)
    assert time.monotonic() - started < 5
    assert _leftovers(tmp_path) == []
    assert len(server.requests) == 1  # wrong content is not retried


def test_error_page_served_as_200_fails_verification(server: Server, tmp_path: Path) -> None:
    server.script = ["html"]
    with pytest.raises(DataError, match=r"size mismatch.*server reports 26"):
        fetch(server.url(), cache_dir=tmp_path, expected_size=len(PAYLOAD), **FAST)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("mode", ["500", "429", "drop", "stall", "stall_body"])
def test_request_loop_is_bounded_in_count_and_time(
    server: Server, tmp_path: Path, mode: str
) -> None:
    """A server that never recovers costs retries + 1 requests and a bounded time."""
    server.script = [mode] * 10
    retries, timeout, backoff = 2, 0.3, 0.05
    started = time.monotonic()
    with pytest.raises(DataError, match=rf"after {retries + 1} attempt"):
        fetch(
            server.url(),
            cache_dir=tmp_path,
            expected_size=len(PAYLOAD),
            retries=retries,
            timeout=timeout,
            backoff=backoff,
            progress=False,
        )
    elapsed = time.monotonic() - started
    assert len(server.requests) == retries + 1
    # Each attempt waits at most `timeout` per read; the backoffs add 0.05 + 0.1 s.
    assert elapsed < (retries + 1) * (timeout + 1.0) + 3 * backoff
    assert not (tmp_path / NAME).exists()


def test_md5_mismatch_removes_everything(server: Server, tmp_path: Path) -> None:
    wrong = "0" * 32
    with pytest.raises(DataError, match=rf"md5 mismatch.*expected {wrong}, got {PAYLOAD_MD5}"):
        fetch(server.url(), cache_dir=tmp_path, expected_md5=wrong, **FAST)
    assert _leftovers(tmp_path) == []
    assert len(server.requests) == 1  # wrong content is not retried


def test_wrong_content_after_resume_is_rejected(server: Server, tmp_path: Path) -> None:
    """A .part that is not a prefix of the real file yields a bad md5, not a silent success."""
    (tmp_path / f"{NAME}.part").write_bytes(b"\0" * 1000)
    with pytest.raises(DataError, match=r"md5 mismatch"):
        fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("delta", [-1, 1])
def test_size_mismatch_removes_everything(server: Server, tmp_path: Path, delta: int) -> None:
    expected = len(PAYLOAD) + delta
    with pytest.raises(DataError, match=rf"size mismatch.*expected {expected} bytes"):
        fetch(server.url(), cache_dir=tmp_path, expected_size=expected, **FAST)
    assert _leftovers(tmp_path) == []


def test_cached_final_file_makes_no_request(server: Server, tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(PAYLOAD)
    got = fetch(
        server.url(),
        cache_dir=tmp_path,
        expected_size=len(PAYLOAD),
        expected_md5=PAYLOAD_MD5,
        **FAST,
    )
    assert got == tmp_path / NAME
    assert server.requests == []


def test_corrupt_cached_file_is_downloaded_again(server: Server, tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(b"garbage")
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert len(server.requests) == 1
    assert got.read_bytes() == PAYLOAD


def test_progress_bar_only_when_asked(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fetch(server.url(), cache_dir=tmp_path / "a", **FAST)
    assert capsys.readouterr().err == ""
    fetch(server.url(), cache_dir=tmp_path / "b", **{**FAST, "progress": True})
    assert NAME in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# fetch of local files and argument checking
# --------------------------------------------------------------------------------------------


def test_local_path_and_file_url_are_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "data" / "corpus.zip"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    kwargs = {"cache_dir": cache, "expected_size": len(PAYLOAD), "expected_md5": PAYLOAD_MD5}
    assert fetch(str(src), **kwargs) == src.resolve()
    assert fetch(src.resolve().as_uri(), **kwargs) == src.resolve()
    monkeypatch.chdir(tmp_path)
    assert fetch("data/corpus.zip", **kwargs) == src.resolve()
    assert not cache.exists()


def test_local_file_is_verified(tmp_path: Path) -> None:
    src = tmp_path / "corpus.zip"
    src.write_bytes(PAYLOAD)
    with pytest.raises(DataError, match="md5 mismatch"):
        fetch(str(src), cache_dir=tmp_path, expected_md5="1" * 32)
    with pytest.raises(DataError, match="size mismatch"):
        fetch(str(src), cache_dir=tmp_path, expected_size=1)
    assert src.read_bytes() == PAYLOAD


@pytest.mark.parametrize("kind", ["path", "uri", "directory"])
def test_missing_local_file(tmp_path: Path, kind: str) -> None:
    missing = tmp_path / "nope.zip"
    url = {"path": str(missing), "uri": missing.as_uri(), "directory": str(tmp_path)}[kind]
    with pytest.raises(DataError, match="archive not found"):
        fetch(url, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    ("url", "kwargs", "pattern"),
    [
        ("ftp://example.invalid/x.zip", {}, "unsupported URL scheme"),
        ("http://127.0.0.1:9/", {}, "file name"),
        ("x.zip", {"expected_md5": "abc"}, "expected_md5"),
        ("x.zip", {"expected_size": -1}, "expected_size"),
        ("x.zip", {"retries": -1}, "retries"),
        ("x.zip", {"timeout": 0}, "timeout"),
        ("x.zip", {"backoff": -1.0}, "backoff"),
    ],
)
def test_bad_arguments(tmp_path: Path, url: str, kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        fetch(url, cache_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_md5_of(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    assert md5_of(path) == PAYLOAD_MD5


# --------------------------------------------------------------------------------------------
# extract_zip
# --------------------------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_extract_normal_zip(tmp_path: Path) -> None:
    entries = {
        "Actor_01/03-01-01-01-01-01-01.wav": b"RIFF1",
        "Actor_02/03-01-05-01-02-01-02.wav": b"RIFF2",
        "readme.txt": b"hello",
    }
    archive = _zip(tmp_path / "a.zip", entries)
    out = tmp_path / "out" / "raw"
    got = extract_zip(archive, out, max_bytes=1_000)
    assert got == sorted(out / name for name in entries)
    for name, data in entries.items():
        assert (out / name).read_bytes() == data
    assert _siblings(out) == ["raw"]  # no temporary directory left behind


def test_extract_suffix_filter(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "a.zip",
        {
            "Actor_01/": b"",
            "Actor_01/a.wav": b"a",
            "Actor_01/B.WAV": b"b",
            "Actor_01/notes.txt": b"n",
            "__MACOSX/Actor_01/._a.wav": b"junk",
            "Actor_01/._c.wav": b"junk",
            ".DS_Store": b"junk",
        },
    )
    out = tmp_path / "out"
    got = extract_zip(archive, out, max_bytes=1_000, suffixes=(".wav",))
    assert got == [out / "Actor_01" / "B.WAV", out / "Actor_01" / "a.wav"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "Actor_01",
        "Actor_01/B.WAV",
        "Actor_01/a.wav",
    ]


def test_extract_no_matching_member(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"a.txt": b"x"})
    with pytest.raises(DataError, match="no member"):
        extract_zip(archive, tmp_path / "out", max_bytes=1_000, suffixes=(".wav",))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "evil",
    ["../evil.wav", "a/../../evil.wav", "/abs.wav", "C:/evil.wav", "..\\evil.wav", "a/C:evil.wav"],
)
def test_extract_refuses_escaping_paths(tmp_path: Path, evil: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _zip(tmp_path / "a.zip", {"ok.wav": b"fine", evil: b"evil"})
    out = work / "out"
    with pytest.raises(DataError, match=re.escape(repr(evil))):
        extract_zip(archive, out, max_bytes=1_000)
    assert not out.exists()
    assert _siblings(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "work"]


def test_extract_refuses_symlink_entry(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.wav", b"fine")
        link = zipfile.ZipInfo("link.wav")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="symlink"):
        extract_zip(archive, out, max_bytes=1_000, suffixes=(".wav",))
    assert not out.exists()
    assert _siblings(out) == ["a.zip"]


def test_extract_refuses_declared_zip_bomb(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("bomb.wav")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as member:
            block = b"\0" * (1 << 20)
            for _ in range(50):
                member.write(block)
    assert archive.stat().st_size < 1 << 20
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"declares 52428800 uncompressed bytes"):
        extract_zip(archive, out, max_bytes=1 << 20)
    assert not out.exists()
    assert _siblings(out) == ["bomb.zip"]


def test_extract_counts_actual_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the declared-size check fooled, the streaming counter still stops the bomb."""
    archive = _zip(tmp_path / "bomb.zip", {f"m{i}.wav": b"\0" * 300_000 for i in range(10)})
    monkeypatch.setattr(download, "_declared_size", lambda members: 0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.wav").write_bytes(b"old")
    with pytest.raises(DataError, match="expands past max_bytes"):
        extract_zip(archive, out, max_bytes=1_000_000)
    assert [p.name for p in out.iterdir()] == ["old.wav"]
    assert (out / "old.wav").read_bytes() == b"old"
    assert _siblings(out) == ["bomb.zip", "out"]  # temporary directory removed


def test_extract_refuses_non_zip_and_missing(tmp_path: Path) -> None:
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"<html>rate limited</html>" * 10)
    with pytest.raises(DataError, match="not a zip"):
        extract_zip(not_zip, tmp_path / "out", max_bytes=1_000)
    with pytest.raises(DataError, match="archive not found"):
        extract_zip(tmp_path / "missing.zip", tmp_path / "out", max_bytes=1_000)
    assert not (tmp_path / "out").exists()


def test_extract_corrupt_member_keeps_previous_out_dir(tmp_path: Path) -> None:
    good = _zip(
        tmp_path / "a.zip", {"a.wav": b"A" * 5000, "b.wav": b"B" * 5000}, zipfile.ZIP_STORED
    )
    raw = bytearray(good.read_bytes())
    raw[raw.index(b"B" * 100) + 50] = ord("X")  # breaks b.wav's CRC, not the zip structure
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(raw))
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.wav").write_bytes(b"old")
    with pytest.raises(DataError, match="corrupt"):
        extract_zip(corrupt, out, max_bytes=100_000)
    assert [p.name for p in out.iterdir()] == ["old.wav"]
    assert _siblings(out) == ["a.zip", "corrupt.zip", "out"]


def test_extract_refusal_keeps_previous_out_dir(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"new.wav": b"new", "../evil.wav": b"evil"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.wav").write_bytes(b"old")
    with pytest.raises(DataError):
        extract_zip(archive, out, max_bytes=1_000)
    assert [p.name for p in out.iterdir()] == ["old.wav"]
    assert _siblings(out) == ["a.zip", "out"]


def test_extract_replaces_previous_out_dir(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"new.wav": b"new"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.wav").write_bytes(b"old")
    assert extract_zip(archive, out, max_bytes=1_000) == [out / "new.wav"]
    assert [p.name for p in out.iterdir()] == ["new.wav"]
    assert _siblings(out) == ["a.zip", "out"]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"max_bytes": 0}, "max_bytes"), ({"max_bytes": 10, "suffixes": ".wav"}, "suffixes")],
)
def test_extract_bad_arguments(tmp_path: Path, kwargs: dict[str, object], pattern: str) -> None:
    archive = _zip(tmp_path / "a.zip", {"a.wav": b"a"})
    with pytest.raises(ConfigError, match=pattern):
        extract_zip(archive, tmp_path / "out", **kwargs)  # type: ignore[arg-type]


def test_extract_zip_io_roundtrip_of_bytes_buffer() -> None:
    """Sanity check of the helper: a ZipInfo name with '..' survives writestr unchanged."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("../evil.wav"), b"x")
    with zipfile.ZipFile(buf) as zf:
        assert zf.namelist() == ["../evil.wav"]


KILLED_EXTRACTION = """
import sys, time
from pathlib import Path
import ser.data.download as download

copy = download._copy_member

def copy_then_wait(*args, **kwargs):  # hold the extraction after its first member
    written = copy(*args, **kwargs)
    print("extracting", flush=True)
    time.sleep(120)
    return written

download._copy_member = copy_then_wait
download.extract_zip(Path(sys.argv[1]), Path(sys.argv[2]), max_bytes=10**9)
"""


@pytest.mark.parametrize("existing", [True, False])
def test_extraction_killed_midway_leaves_the_previous_out_dir(
    tmp_path: Path, existing: bool
) -> None:
    archive = _zip(tmp_path / "a.zip", {f"Actor_01/{i}.wav": b"new" * 1000 for i in range(5)})
    out = tmp_path / "raw" / "speech"
    if existing:
        out.mkdir(parents=True)
        (out / "old.wav").write_bytes(b"old")
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXTRACTION, str(archive), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "extracting"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
        process.stdout.close()
    if existing:
        assert [p.name for p in out.iterdir()] == ["old.wav"]
    else:
        assert not out.exists()
    # The half-extracted copy is in a hidden folder beside out, which the manifest skips.
    assert [p.name.startswith(".speech.tmp-") for p in out.parent.iterdir() if p != out] == [True]
    assert len(extract_zip(archive, out, max_bytes=10**6)) == 5


# --- downloads of unknown size and servers that drip: bounded in bytes and in time ---------


def test_endless_body_of_unknown_size_stops_at_max_bytes(server: Server, tmp_path: Path) -> None:
    server.script = ["endless"]
    started = time.monotonic()
    with pytest.raises(DataError, match=r"sends more bytes than data\.x\.max_extract_bytes=300000"):
        fetch(
            server.url(),
            cache_dir=tmp_path,
            max_bytes=300_000,
            limit_key="data.x.max_extract_bytes",
            **FAST,
        )
    assert time.monotonic() - started < 5
    assert _leftovers(tmp_path) == []
    assert len(server.requests) == 1


def test_announced_size_over_max_bytes_is_refused_before_reading(
    server: Server, tmp_path: Path
) -> None:
    with pytest.raises(
        DataError, match=rf"announces {len(PAYLOAD)} bytes, more than max_bytes=1000"
    ):
        fetch(server.url(), cache_dir=tmp_path, max_bytes=1000, **FAST)
    assert _leftovers(tmp_path) == []
    assert (
        fetch(server.url(), cache_dir=tmp_path, max_bytes=len(PAYLOAD), **FAST).read_bytes()
        == PAYLOAD
    )


def test_a_dripping_server_is_given_up_after_max_seconds_and_resumed_later(
    server: Server, tmp_path: Path
) -> None:
    """100 bytes every 50 ms never trips the read timeout; max_seconds ends it, keeps what
    came, and the next call resumes from there."""
    server.script = ["drip"]
    started = time.monotonic()
    with pytest.raises(DataError, match=r"gave up after 1 s .*next run resumes it"):
        fetch(server.url(), cache_dir=tmp_path, max_seconds=1.0, **FAST)
    assert time.monotonic() - started < 3
    kept = (tmp_path / f"{NAME}.part").stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert not (tmp_path / NAME).exists()
    got = fetch(server.url(), cache_dir=tmp_path, expected_md5=PAYLOAD_MD5, **FAST)
    assert got.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={kept}-"


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"max_bytes": 0}, "max_bytes must be a positive"),
        ({"max_seconds": -1}, "max_seconds must be > 0"),
    ],
)
def test_bad_limits(tmp_path: Path, kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        fetch("http://127.0.0.1:9/x.zip", cache_dir=tmp_path, **kwargs)
