import numpy as np
import pandas as pd
import soundfile as sf

from ser.data.corpora.ravdess import parse_path
from ser.data.manifest import (
    COLUMNS,
    SKIPPED_EXAMPLES,
    build_manifest,
    read_manifest,
    skipped_files,
    summary,
    write_csv,
)


def write(path, samples, sample_rate=16000, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sample_rate, subtype=subtype)


def test_manifest_describes_every_clip(tiny_corpus, tmp_path):
    manifest = build_manifest(
        tiny_corpus, corpus="synthetic", silence_threshold=1e-4, root=tiny_corpus
    )
    assert list(manifest.columns) == list(COLUMNS)
    assert len(manifest) == 240
    assert (manifest["excluded"] == "").all()
    row = manifest[manifest["clip_id"] == "03-01-05-02-01-02-03"].iloc[0]
    assert (row.actor, row.gender, row.emotion, row.intensity) == (3, "male", "angry", "strong")
    assert (row.statement, row.repetition, row.channel) == (1, 2, "speech")
    assert row.path == "speech/Actor_03/03-01-05-02-01-02-03.wav"
    assert row.sample_rate == 16000 and row.duration > 1.0
    assert len(row.content_hash) == 64
    write_csv(manifest, tmp_path / "manifest.csv")
    assert read_manifest(tmp_path / "manifest.csv").equals(manifest)


def test_bad_audio_is_excluded_with_its_reason(tmp_path, rng):
    actor = tmp_path / "Actor_01"
    write(actor / "03-01-01-01-01-01-01.wav", 0.3 * rng.standard_normal(8000))
    write(actor / "03-01-02-01-01-01-01.wav", np.zeros(8000))
    write(actor / "03-01-03-01-01-01-01.wav", np.zeros(0))
    (actor / "03-01-04-01-01-01-01.wav").write_bytes(
        b"RIFF\x00\x00garbage" + bytes(rng.integers(0, 255, 200, dtype=np.uint8))
    )
    nan = 0.1 * rng.standard_normal(8000)
    nan[100] = np.nan
    write(actor / "03-01-05-01-01-01-01.wav", nan, subtype="FLOAT")
    (actor / "notes.wav").write_bytes(b"not a clip name")
    write(actor / "03-01-09-01-01-01-01.wav", 0.3 * rng.standard_normal(100))  # emotion 09: no such

    manifest = build_manifest(tmp_path, corpus="ravdess", silence_threshold=1e-4, root=tmp_path)
    reasons = dict(zip(manifest["clip_id"], manifest["excluded"], strict=True))
    assert reasons["03-01-01-01-01-01-01"] == ""
    assert reasons["03-01-02-01-01-01-01"].startswith("silent")
    assert reasons["03-01-03-01-01-01-01"].startswith("empty")
    assert reasons["03-01-04-01-01-01-01"].startswith("unreadable")
    assert reasons["03-01-05-01-01-01-01"].startswith("corrupt")
    assert len(reasons) == 5  # files that are not RAVDESS clip names are not clips


def test_identical_audio_has_identical_hash_and_a_repeated_name_is_excluded(tmp_path, rng):
    samples = 0.2 * rng.standard_normal(4000)
    write(tmp_path / "Actor_01" / "03-01-03-01-01-01-01.wav", samples)
    write(tmp_path / "Actor_02" / "03-01-03-01-01-01-02.wav", samples)
    write(tmp_path / "copy" / "Actor_01" / "03-01-03-01-01-01-01.wav", samples)
    manifest = build_manifest(tmp_path, corpus="ravdess", silence_threshold=1e-4, root=tmp_path)
    assert manifest["content_hash"].nunique() == 1
    duplicates = manifest[manifest["excluded"].str.startswith("duplicate")]
    assert len(duplicates) == 1 and len(manifest) == 3


def test_what_a_killed_write_left_in_hidden_folders_is_not_a_clip(tmp_path, rng):
    """An extraction or generation killed midway leaves .speech.tmp-*/ beside speech/; a run
    of the download stage without DVC (which would clear data/raw first) must not count it."""
    samples = 0.2 * rng.standard_normal(4000)
    write(tmp_path / "speech" / "Actor_01" / "03-01-03-01-01-01-01.wav", samples)
    leftover = tmp_path / ".speech.tmp-x1y2" / "Actor_01"
    write(leftover / "03-01-03-01-01-01-01.wav", samples[:100])
    write(leftover / "03-01-04-01-01-01-01.wav", samples[:100])
    (tmp_path / "speech" / "Actor_01" / "._03-01-05-01-01-01-01.wav").write_bytes(b"\0\5\26\7")
    manifest = build_manifest(tmp_path, corpus="ravdess", silence_threshold=1e-4, root=tmp_path)
    assert list(manifest["path"]) == ["speech/Actor_01/03-01-03-01-01-01-01.wav"]
    assert list(manifest["excluded"]) == [""]


def test_files_not_named_as_clips_are_listed_as_skipped(tmp_path, rng):
    actor = tmp_path / "Actor_01"
    for name in [
        "03-01-01-01-01-01-01",  # a clip
        "03-01-05-02-01-03-01",  # repetition 03: RAVDESS has 01 and 02
        "03-01-09-01-01-01-01",  # emotion 09
        "notes",
    ]:
        write(actor / f"{name}.wav", 0.3 * rng.standard_normal(800))
    write(tmp_path / ".Actor_01.tmp-x" / "03-01-09-01-01-01-02.wav", np.ones(800))  # hidden
    skipped = skipped_files(tmp_path, parse=parse_path)
    assert skipped == [
        "Actor_01/03-01-05-02-01-03-01.wav",
        "Actor_01/03-01-09-01-01-01-01.wav",
        "Actor_01/notes.wav",
    ]
    manifest = build_manifest(tmp_path, corpus="ravdess", silence_threshold=1e-4, root=tmp_path)
    assert summary(manifest, skipped) == {
        "clips": 1,
        "excluded": 0,
        "skipped": 3,
        "skipped_examples": skipped,
    }


def test_summary_names_only_the_first_few_skipped_files():
    names = [f"Actor_01/03-01-09-01-01-01-{actor:02d}.wav" for actor in range(1, 9)]
    report = summary(pd.DataFrame({"excluded": ["", "silent: peak 0"]}), names)
    assert report["skipped"] == 8 and report["skipped_examples"] == names[:SKIPPED_EXAMPLES]
    assert report["clips"] == 2 and report["excluded"] == 1
