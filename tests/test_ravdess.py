"""The RAVDESS path: file names, and the download stage fetching a real archive over HTTP."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from ser.data.corpora import ravdess
from ser.data.manifest import read_manifest
from ser.errors import DataError
from tests.test_download import NAME, Server, serve

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("03-01-05-02-01-01-12", ("speech", "angry", "strong", 1, 1, 12, "female")),
        ("03-02-08-01-02-02-01", ("song", "surprised", "normal", 2, 2, 1, "male")),
    ],
)
def test_parse_name(stem, expected):
    name = ravdess.parse_name(stem)
    assert (
        name.channel,
        name.emotion,
        name.intensity,
        name.statement,
        name.repetition,
        name.actor,
        name.gender,
    ) == expected


@pytest.mark.parametrize(
    "stem",
    ["01-01-05-02-01-01-12", "03-01-09-01-01-01-01", "03-01-05-02-01-01-25", "03-01-05", "readme"],
)
def test_parse_name_rejects_what_is_not_a_ravdess_clip(stem):
    assert ravdess.parse_name(stem) is None


def make_archive(path: Path, tiny_corpus: Path, *, missing: int = 0, broken: bool = False) -> Path:
    """A zip laid out like the official one (Actor_XX/...), from synthetic clips of actors 1-4.

    Actor 2's clips are rewritten as 48 kHz stereo, ``missing`` clips are left out, and
    with ``broken`` an unreadable clip of actor 5 is added.
    """
    clips = sorted((tiny_corpus / "speech").rglob("*.wav"))[missing:]
    with zipfile.ZipFile(path, "w") as archive:
        for clip in clips:
            name = f"{clip.parent.name}/{clip.name}"
            if clip.parent.name == "Actor_02":
                samples, rate = sf.read(clip)
                stereo = path.parent / "stereo.wav"
                resampled = np.interp(
                    np.arange(0, len(samples), rate / 48000), np.arange(len(samples)), samples
                )
                sf.write(stereo, np.stack([resampled, resampled], axis=1), 48000)
                archive.write(stereo, name)
            else:
                archive.write(clip, name)
        if broken:
            archive.writestr("Actor_05/03-01-03-01-01-01-05.wav", b"RIFF\x10\x00\x00\x00WAVEjunk")
    return path


def run_download_stage(
    project: Path, url: str, *, max_extract_bytes: int | None = None
) -> subprocess.CompletedProcess:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["corpus"] = "ravdess"
    params["data"]["ravdess"]["speech_url"] = url
    if max_extract_bytes is not None:
        params["data"]["ravdess"]["max_extract_bytes"] = max_extract_bytes
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "download.py")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_download_stage_fetches_over_http_and_takes_any_rate_stereo_and_missing_files(
    tiny_corpus, http_folder, tmp_path
):
    folder, base = http_folder
    make_archive(folder / "Audio_Speech_Actors_01-24.zip", tiny_corpus, missing=3, broken=True)
    project = tmp_path / "project"
    project.mkdir()
    result = run_download_stage(project, f"{base}/Audio_Speech_Actors_01-24.zip?download=1")
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project / "data" / "manifest.csv")
    assert len(manifest) == 240 - 3 + 1
    excluded = manifest[manifest["excluded"] != ""]
    assert list(excluded["clip_id"]) == ["03-01-03-01-01-01-05"]
    assert excluded["excluded"].iloc[0].startswith("unreadable")
    assert "excluded 03-01-03-01-01-01-05: unreadable" in result.stderr
    assert set(manifest.loc[manifest["excluded"] == "", "sample_rate"]) == {16000, 48000}
    assert set(manifest["corpus"]) == {"ravdess"}
    assert (project / "data" / "raw" / "speech" / "Actor_01").is_dir()
    assert (project / "data" / "downloads" / "Audio_Speech_Actors_01-24.zip").is_file()


def test_download_stage_takes_a_local_archive_without_copying(tiny_corpus, tmp_path):
    archive = make_archive(tmp_path / "mirror.zip", tiny_corpus)
    project = tmp_path / "project"
    project.mkdir()
    result = run_download_stage(project, str(archive))
    assert result.returncode == 0, result.stderr
    assert len(read_manifest(project / "data" / "manifest.csv")) == 240
    assert not (project / "data" / "downloads").exists()


def test_missing_archive_is_a_one_line_error(tmp_path):
    result = run_download_stage(tmp_path, str(tmp_path / "nowhere.zip"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: archive not found")


def test_archive_without_clips_is_refused(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("music/track01.wav", b"RIFF")
    with pytest.raises(DataError, match="holds no RAVDESS clips"):
        ravdess.prepare(
            tmp_path / "raw",
            channels=("speech",),
            urls={"speech": str(archive)},
            cache_dir=tmp_path / "cache",
            max_extract_bytes=10**6,
        )


def test_official_archives_are_checked_by_size_and_md5():
    speech = ravdess.OFFICIAL_ARCHIVES[ravdess.SPEECH_URL]
    assert speech == {
        "expected_size": 208_468_073,
        "expected_md5": "bc696df654c87fed845eb13823edef8a",
    }
    assert ravdess.OFFICIAL_ARCHIVES[ravdess.SONG_URL]["expected_size"] == 225_505_317


def test_default_urls_are_the_official_archives(default_params_dict):
    urls = default_params_dict["data"]["ravdess"]
    assert urls["speech_url"] == ravdess.SPEECH_URL and urls["song_url"] == ravdess.SONG_URL


# --- hostile archives and failing servers, through the download stage ----------------------


def small_archive(path: Path, tiny_corpus: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Actor 1's first 12 clips, laid out like the official archive, plus ``extra`` entries."""
    with zipfile.ZipFile(path, "w") as archive:
        for clip in sorted((tiny_corpus / "speech" / "Actor_01").glob("*.wav"))[:12]:
            archive.write(clip, f"Actor_01/{clip.name}")
        for name, data in (extra or {}).items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}


def symlink_archive(path: Path, tiny_corpus: Path) -> Path:
    small_archive(path, tiny_corpus)
    with zipfile.ZipFile(path, "a") as archive:
        link = zipfile.ZipInfo("Actor_01/03-01-08-02-02-02-01.wav")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return path


def bomb_archive(path: Path, tiny_corpus: Path) -> Path:
    """Clips plus one member of 50 MB of zeros that compresses to about 50 kB."""
    small_archive(path, tiny_corpus)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("Actor_01/03-01-08-02-02-02-01.wav", "w") as member:
            for _ in range(50):
                member.write(bytes(1 << 20))
    return path


def truncated_archive(path: Path, tiny_corpus: Path) -> Path:
    data = small_archive(path, tiny_corpus).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dotdot", "unsafe zip entry '../../escaped.wav': '..' path component"),
        ("absolute", "absolute path"),
        ("symlink", "refusing symlink entry 'Actor_01/03-01-08-02-02-02-01.wav'"),
        ("bomb", "data.ravdess.max_extract_bytes=10000000"),
        ("html", "not a zip archive"),
        ("truncated", "not a zip archive"),
        ("no_clips", "the archive holds no RAVDESS clips"),
    ],
)
def test_download_stage_refuses_a_hostile_archive_and_writes_nothing_outside_data_raw(
    tiny_corpus, tmp_path, kind, message
):
    escaped = tmp_path / "escaped.wav"
    archive = tmp_path / "archive.zip"
    if kind == "dotdot":
        small_archive(archive, tiny_corpus, {"../../escaped.wav": b"RIFF"})
    elif kind == "absolute":
        small_archive(archive, tiny_corpus, {str(escaped): b"RIFF"})
    elif kind == "symlink":
        symlink_archive(archive, tiny_corpus)
    elif kind == "bomb":
        bomb_archive(archive, tiny_corpus)
    elif kind == "html":
        archive.write_bytes(b"<html><body>Too many requests</body></html>")
    elif kind == "truncated":
        truncated_archive(archive, tiny_corpus)
    else:
        with zipfile.ZipFile(archive, "w") as handle:
            handle.writestr("music/track01.wav", b"RIFF")
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").touch()
    before = files_under(tmp_path)
    result = run_download_stage(project, str(archive), max_extract_bytes=10_000_000)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, result.stderr
    assert not escaped.exists()
    after = files_under(tmp_path)
    assert before <= after
    assert not [name for name in after - before if not name.startswith("project/data/raw/")]
    assert not (project / "data" / "manifest.csv").exists()
    if kind != "no_clips":  # refused before anything was extracted
        assert not (project / "data" / "raw").exists() or not files_under(project / "data" / "raw")


@pytest.fixture
def scripted(tiny_corpus, tmp_path):
    """A scripted HTTP server (tests/test_download.py) serving a small valid archive."""
    content = small_archive(tmp_path / "served.zip", tiny_corpus).read_bytes()
    with serve(Server(content=content)) as state:
        yield state


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("404", "HTTP 404"),
        ("html", "not a zip archive"),  # an error page served as 200
        ("close_short", "not a zip archive"),  # no Content-Length, connection closed early
    ],
)
def test_download_stage_fails_clearly_then_succeeds_once_the_server_recovers(
    scripted, tmp_path, failure, message
):
    scripted.script = [failure]
    project = tmp_path / "project"
    project.mkdir()
    first = run_download_stage(project, scripted.url())
    assert first.returncode == 1 and "Traceback" not in first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, first.stderr
    assert not (project / "data" / "manifest.csv").exists()
    # Nothing the failed run received is kept as if it were the archive.
    assert not (project / "data" / "downloads" / NAME).exists()

    second = run_download_stage(project, scripted.url())
    assert second.returncode == 0, second.stderr
    manifest = read_manifest(project / "data" / "manifest.csv")
    assert len(manifest) == 12 and (manifest["excluded"] == "").all()


def test_download_stage_resumes_a_dropped_connection_within_the_run(scripted, tmp_path):
    scripted.script = ["drop"]
    project = tmp_path / "project"
    project.mkdir()
    result = run_download_stage(project, scripted.url())
    assert result.returncode == 0, result.stderr
    assert [r["range"] is not None for r in scripted.requests] == [False, True]
    assert len(read_manifest(project / "data" / "manifest.csv")) == 12


def test_download_stage_reports_files_outside_ravdess_naming(tiny_corpus, tmp_path):
    archive = make_archive(tmp_path / "speech.zip", tiny_corpus)
    clip = sorted((tiny_corpus / "speech").rglob("*.wav"))[0]
    strays = ["Actor_01/03-01-05-02-01-03-01.wav", "Actor_01/03-01-09-01-01-01-01.wav"]
    with zipfile.ZipFile(archive, "a") as handle:
        for name in strays:
            handle.write(clip, name)
    project = tmp_path / "project"
    project.mkdir()
    result = run_download_stage(project, str(archive))
    assert result.returncode == 0, result.stderr
    assert len(read_manifest(project / "data" / "manifest.csv")) == 240
    report = json.loads((project / "data" / "manifest-summary.json").read_text())
    assert report["corpora"]["ravdess"] == {
        "clips": 240,
        "excluded": 0,
        "skipped": 2,
        "skipped_examples": [f"speech/{name}" for name in strays],
    }
    assert "ravdess: 2 file(s) skipped, not named as clips of the corpus, e.g. speech/" in (
        result.stderr
    )
