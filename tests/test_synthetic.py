"""Tests of the procedural RAVDESS-like corpus (ser.data.corpora.synthetic)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.data.corpora.synthetic import generate, synthesize_clip
from ser.errors import ConfigError

SR = 16000
NAME = re.compile(r"^03-01-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.wav$")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Actors 1 (male) and 2 (female), seed 0."""
    out = tmp_path_factory.mktemp("synthetic")
    return out, generate(out, seed=0, actors=[1, 2], sample_rate=SR, progress=False)


def _clip(actor: int, emotion: int, intensity: int = 1, statement: int = 1, repetition: int = 1):
    return synthesize_clip(
        actor=actor,
        emotion=emotion,
        intensity=intensity,
        statement=statement,
        repetition=repetition,
        seed=0,
        sample_rate=SR,
    )


def _median_f0(audio: np.ndarray) -> float:
    """Median F0 (Hz) over the loud frames, by librosa's YIN."""
    import librosa

    f0 = librosa.yin(audio, fmin=60.0, fmax=600.0, sr=SR, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0]
    n = min(len(f0), len(rms))
    voiced = rms[:n] > 0.2 * rms.max()
    return float(np.median(f0[:n][voiced]))


def test_layout_names_and_counts(corpus: tuple[Path, list[Path]]) -> None:
    out, paths = corpus
    assert paths == sorted(paths)
    assert sorted(out.rglob("*")) == sorted([*paths, out / "Actor_01", out / "Actor_02"])
    expected = {
        (e, i, s, r)
        for e, i, s, r in itertools.product(range(1, 9), (1, 2), (1, 2), (1, 2))
        if not (e == 1 and i == 2)
    }
    assert len(expected) == 60
    for actor in (1, 2):
        folder = out / f"Actor_{actor:02d}"
        codes = set()
        for path in sorted(folder.iterdir()):
            match = NAME.match(path.name)
            assert match, path.name
            emotion, intensity, statement, repetition, file_actor = map(int, match.groups())
            assert file_actor == actor
            codes.add((emotion, intensity, statement, repetition))
        assert codes == expected  # 60 clips, neutral only at normal intensity
    assert len(paths) == 120


def test_files_are_mono_pcm16_with_speech_between_silences(
    corpus: tuple[Path, list[Path]],
) -> None:
    _, paths = corpus
    for path in paths[::7]:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            SR,
            1,
            "PCM_16",
            "WAV",
        )
        assert 2.5 - 1e-3 <= info.duration <= 3.8 + 1e-3
        audio, _ = sf.read(path, dtype="float32")
        peak = np.abs(audio).max()
        assert 0.05 < peak < 1.0
        lead = audio[: int(0.25 * SR)]
        tail = audio[-int(0.2 * SR) :]
        assert np.sqrt(np.mean(lead**2)) < 0.01 * peak  # leading silence: background noise only
        assert np.sqrt(np.mean(tail**2)) < 0.01 * peak  # trailing silence
        middle = audio[int(0.6 * SR) : int(2.2 * SR)]
        assert np.sqrt(np.mean(middle**2)) > 0.05 * peak  # speech in between


def test_clip_is_float32_in_range_at_other_sample_rates() -> None:
    for rate in (8000, 22050):
        audio = synthesize_clip(
            actor=4, emotion=5, intensity=2, statement=2, repetition=1, seed=3, sample_rate=rate
        )
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert np.isfinite(audio).all() and np.abs(audio).max() < 1.0
        assert 2.5 * rate - 2 <= len(audio) <= 3.8 * rate + 2


def test_same_seed_gives_identical_bytes_and_subset_matches(
    corpus: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    out, _ = corpus
    subset = generate(tmp_path, seed=0, actors=[2], sample_rate=SR, progress=False)
    assert len(subset) == 60
    for path in subset:
        assert path.read_bytes() == (out / "Actor_02" / path.name).read_bytes()
    again = _clip(3, 6, 2, 2, 2)
    assert np.array_equal(again, _clip(3, 6, 2, 2, 2))


def test_different_seed_gives_different_audio(
    corpus: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    out, _ = corpus
    other = generate(tmp_path, seed=1, actors=[1], sample_rate=SR, progress=False)
    assert len(other) == 60
    for path in other:
        assert path.read_bytes() != (out / "Actor_01" / path.name).read_bytes()


def test_existing_out_dir_is_overwritten_without_leftovers(tmp_path: Path) -> None:
    first = generate(tmp_path, seed=0, actors=[5], sample_rate=8000, progress=False)
    original = first[10].read_bytes()
    first[10].write_bytes(b"junk")
    second = generate(tmp_path, seed=0, actors=[5], sample_rate=8000, progress=False)
    assert second == first
    assert first[10].read_bytes() == original
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == first  # no temp files


def test_clips_within_an_actor_differ() -> None:
    a = _clip(1, 1, repetition=1)
    b = _clip(1, 1, repetition=2)
    c = _clip(1, 1, statement=2)
    assert not np.array_equal(a[: min(len(a), len(b))], b[: min(len(a), len(b))])
    assert not np.array_equal(a[: min(len(a), len(c))], c[: min(len(a), len(c))])


def test_female_voices_are_higher_than_male_voices() -> None:
    male = [_median_f0(_clip(actor, 1, statement=s)) for actor in (1, 3, 5) for s in (1, 2)]
    female = [_median_f0(_clip(actor, 1, statement=s)) for actor in (2, 4, 6) for s in (1, 2)]
    assert max(male) < min(female)
    assert np.mean(female) > 1.4 * np.mean(male)
    # actors of the same gender differ too
    assert abs(np.mean(male[:2]) - np.mean(male[2:4])) > 1.0


@pytest.mark.parametrize("actor", [1, 2])
def test_angry_is_louder_and_higher_than_sad(actor: int) -> None:
    def stats(emotion: int) -> tuple[float, float]:
        clips = [_clip(actor, emotion, 2, s, r) for s in (1, 2) for r in (1, 2)]
        rms = np.mean([np.sqrt(np.mean(c**2)) for c in clips])
        return float(rms), float(np.mean([_median_f0(c) for c in clips]))

    angry_rms, angry_f0 = stats(5)
    sad_rms, sad_f0 = stats(4)
    assert angry_rms > 1.5 * sad_rms
    assert angry_f0 > 1.15 * sad_f0


def test_strong_intensity_exaggerates_emotion() -> None:
    def f0(actor: int, emotion: int, intensity: int) -> float:
        clips = [_clip(actor, emotion, intensity, s, r) for s in (1, 2) for r in (1, 2)]
        return float(np.mean([_median_f0(c) for c in clips]))

    for actor in (1, 2):  # surprised: higher pitch than neutral, more so when strong
        neutral, normal, strong = f0(actor, 1, 1), f0(actor, 8, 1), f0(actor, 8, 2)
        assert neutral * 1.06 < normal
        assert normal * 1.06 < strong


def test_actor_traits_depend_on_actor_and_seed() -> None:
    from ser.data.corpora.synthetic import _actor_traits

    base = _actor_traits(0, 1)
    assert _actor_traits(0, 1).f0_hz == base.f0_hz
    for other in (_actor_traits(0, 3), _actor_traits(1, 1)):
        assert other.f0_hz != base.f0_hz
        assert other.vtl_scale != base.vtl_scale
        assert other.tempo != base.tempo


def test_progress_bar_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    generate(tmp_path, actors=[7], sample_rate=8000, progress=None)  # stderr is not a TTY here
    assert capsys.readouterr().err == ""
    generate(tmp_path, actors=[7], sample_rate=8000, progress=False)
    assert capsys.readouterr().err == ""
    generate(tmp_path, actors=[7], sample_rate=8000, progress=True)
    assert "60/60" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"actors": [0]}, r"actors.*1\.\.24"),
        ({"actors": [25]}, r"actors.*1\.\.24"),
        ({"actors": [1, 2.5]}, r"actors.*1\.\.24"),
        ({"actors": []}, r"actors.*1\.\.24"),
        ({"sample_rate": 4000}, r"sample_rate.*8000"),
        ({"seed": -1}, r"seed.*non-negative"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        generate(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"emotion": 9}, r"emotion.*1\.\.8"),
        ({"emotion": 1, "intensity": 2}, r"intensity.*neutral"),
        ({"intensity": 3}, r"intensity.*1\.\.2"),
        ({"statement": 0}, r"statement.*1\.\.2"),
        ({"repetition": 3}, r"repetition.*1\.\.2"),
        ({"actor": 30}, r"actor.*1\.\.24"),
        ({"sample_rate": 7999}, r"sample_rate.*8000"),
    ],
)
def test_synthesize_clip_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = {
        "actor": 1,
        "emotion": 5,
        "intensity": 1,
        "statement": 1,
        "repetition": 1,
        "seed": 0,
        "sample_rate": SR,
    }
    with pytest.raises(ConfigError, match=match):
        synthesize_clip(**{**args, **kwargs})
