"""Broken and unusual audio, fuzzed: every reader processes a file or says why it cannot.

The loader (ser.features.audio), the manifest (ser.data.manifest.inspect_audio), the features
(ser.features.extract.featurize_file / featurize_many) and prediction (ser.serve.predict, and
`ser predict` in a subprocess) get random bytes, truncated and mangled headers, zero, one and
many samples, NaN and infinite samples, 1 to 8 channels, 8 kHz to 192 kHz, 8-bit, 16-bit,
24-bit, 32-bit and float files, and an hour-long file. None may raise an unexpected exception
or hang, and a file that cannot be used must come back with its reason.

Hypothesis runs a small fixed set of examples under `make test` (profile "ci", in
tests/conftest.py) and many fresh ones under `make fuzz`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from ser.data.manifest import inspect_audio
from ser.errors import DataError
from ser.features import audio, extract
from ser.params import parse_params
from ser.serve.predict import Predictor

SILENCE = 1e-4
RATES = (8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000)
# (container, subtype) pairs libsndfile writes; 8-bit WAV is unsigned, 8-bit FLAC signed.
FORMATS = (
    ("WAV", "PCM_U8"),
    ("WAV", "PCM_16"),
    ("WAV", "PCM_24"),
    ("WAV", "PCM_32"),
    ("WAV", "FLOAT"),
    ("WAV", "DOUBLE"),
    ("FLAC", "PCM_S8"),
    ("FLAC", "PCM_24"),
    ("OGG", "VORBIS"),
)
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
REASONS = ("unreadable: ", "empty: ", "silent: ", "corrupt: ")
STATUSES = {"ok", "silent", "too_short", "no_speech", "error"}
_names = itertools.count()


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="broken-audio-") as name:
        yield Path(name)


@pytest.fixture(scope="module")
def feature_params(default_params_dict):
    return parse_params(default_params_dict).features


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return Predictor(tiny_model)


# --- strategies -----------------------------------------------------------------------------


@st.composite
def signals(draw) -> dict:
    """A decodable file's description: samples (frames, channels), rate, container, subtype."""
    container, subtype = draw(st.sampled_from(FORMATS))
    rate = draw(st.sampled_from(RATES))
    if container == "OGG" and rate > 48000:  # Vorbis encoders stop at 48 kHz... usually
        rate = 48000
    channels = draw(st.integers(1, 8))
    frames = draw(st.sampled_from((0, 1, 2, 3, 100, 511, 512, 4000, rate // 2, 2 * rate)))
    shape = draw(st.sampled_from(("noise", "sine", "zeros", "dc", "clipped")))
    amplitude = draw(st.sampled_from((1e-6, 1e-3, 0.3, 1.0)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    time = np.arange(frames)[:, None] / rate
    samples = {
        "noise": amplitude * rng.standard_normal((frames, channels)),
        "sine": amplitude * np.sin(2 * np.pi * 220.0 * time) * np.ones(channels),
        "zeros": np.zeros((frames, channels)),
        "dc": np.full((frames, channels), amplitude),
        "clipped": np.clip(8 * rng.standard_normal((frames, channels)), -1, 1),
    }[shape]
    if subtype in FLOAT_SUBTYPES and frames:
        # Float files can hold what no real recording does: NaN, infinities, huge values.
        for value in draw(
            st.lists(st.sampled_from((np.nan, np.inf, -np.inf, 1e30, -3.0)), max_size=3)
        ):
            samples[rng.integers(frames), rng.integers(channels)] = value
    return {
        "samples": samples,
        "rate": rate,
        "container": container,
        "subtype": subtype,
    }


def write_signal(folder: Path, signal: dict) -> Path:
    suffix = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg"}[signal["container"]]
    path = folder / f"clip{next(_names)}{suffix}"
    sf.write(
        path,
        signal["samples"],
        signal["rate"],
        format=signal["container"],
        subtype=signal["subtype"],
    )
    return path


def voice(seed: int, rate: int = 16000, channels: int = 1, seconds: float = 1.0) -> np.ndarray:
    """A second of something with a voice's pitch (150 Hz and its harmonics) in noise: what
    ser predict takes for speech; noise alone it calls no_speech."""
    time = np.arange(int(rate * seconds))[:, None] / rate
    tone = sum(np.sin(2 * np.pi * 150 * h * time) / h for h in (1, 2, 3, 4))
    noise = np.random.default_rng(seed).standard_normal((time.size, channels))
    return 0.2 * tone + 0.05 * noise


def valid_wav_bytes(seed: int, rate: int = 16000, channels: int = 1) -> bytes:
    path = Path(tempfile.mkdtemp()) / "valid.wav"
    sf.write(path, voice(seed, rate, channels), rate)
    data = path.read_bytes()
    path.unlink()
    path.parent.rmdir()
    return data


VALID = valid_wav_bytes(0)


@st.composite
def broken_bytes(draw) -> bytes:
    """What a download or a disk can hand over instead of a WAV file."""
    kind = draw(st.sampled_from(("random", "riff", "truncated", "mangled", "rate")))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    if kind == "riff":  # a plausible RIFF/WAVE start, then anything
        size = draw(st.integers(0, 2**32 - 1))
        return b"RIFF" + struct.pack("<I", size) + b"WAVE" + draw(st.binary(max_size=512))
    if kind == "truncated":
        return VALID[: draw(st.integers(0, len(VALID)))]
    if kind == "rate":  # the sample rate field (bytes 24-27 of a canonical header) rewritten
        rate = draw(st.one_of(st.integers(0, 2000), st.integers(0, 2**32 - 1)))
        return VALID[:24] + struct.pack("<I", rate) + VALID[28:]
    data = bytearray(VALID)
    for offset, value in draw(
        st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=8)
    ):
        data[offset] = value
    return bytes(data)


def write_bytes(folder: Path, data: bytes) -> Path:
    path = folder / f"junk{next(_names)}.wav"
    path.write_bytes(data)
    return path


# --- what every reader must do --------------------------------------------------------------


def check_loader(path: Path) -> np.ndarray | None:
    """ser.features.audio.load: a finite mono float32 array, or DataError; nothing else."""
    try:
        samples = audio.load(path, sample_rate=16000)
    except DataError as error:
        assert str(path) in str(error)
        return None
    assert samples.ndim == 1 and samples.dtype == np.float32
    assert np.isfinite(samples).all()
    return samples


def check_manifest(path: Path) -> str:
    """ser.data.manifest.inspect_audio: never raises; a reason from the known list, or ''."""
    rate, duration, content_hash, reason = inspect_audio(path, silence_threshold=SILENCE)
    assert reason == "" or reason.startswith(REASONS), reason
    assert "\n" not in reason
    assert duration >= 0 and rate >= 0
    if reason == "":
        assert len(content_hash) == 64 and duration > 0
    return reason


def check_features(path: Path, params) -> str:
    """featurize_many: a finite matrix of the fixed shape, or an all-zero row and a reason."""
    matrix, reasons = extract.featurize_many([str(path)], params, n_jobs=1)
    assert matrix.shape == (1, *extract.shape(params))
    assert matrix.dtype == np.float32 and np.isfinite(matrix).all()
    if reasons[0]:
        assert reasons[0].startswith("unreadable: ") and not matrix.any()
    return reasons[0]


def check_prediction(predictor: Predictor, path: Path) -> str:
    result = predictor.predict_file(path)
    assert result.status in STATUSES
    if result.status == "ok":
        assert result.label in predictor.classes
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert np.isfinite(list(result.probabilities.values())).all()
    else:
        assert result.label is None and result.message
    return result.status


# --- fuzzing --------------------------------------------------------------------------------


@given(signal=signals())
def test_any_decodable_file_is_read_inspected_and_featurized(folder, feature_params, signal):
    path = write_signal(folder, signal)
    try:
        try:
            stored, rate = sf.read(path, dtype="float64", always_2d=True)
        except sf.LibsndfileError:  # libsndfile writes some files it cannot read (empty FLAC)
            assert check_loader(path) is None
            assert check_manifest(path).startswith("unreadable: ")
            assert check_features(path, feature_params).startswith("unreadable: ")
            return
        samples = check_loader(path)
        assert samples is not None, "a file libsndfile decodes must load"
        assert abs(len(samples) - round(len(stored) * 16000 / rate)) <= 1

        reason = check_manifest(path)
        # The manifest's verdict follows from what the file holds.
        if stored.size == 0:
            assert reason.startswith("empty: ")
        elif not np.isfinite(stored).all():
            assert reason == "corrupt: NaN or infinite samples"
        elif np.abs(stored).max() < SILENCE:
            assert reason.startswith("silent: ")
        else:
            assert reason == ""

        assert check_features(path, feature_params) == ""
    finally:
        path.unlink()


@given(
    signal=signals(),
    kind=st.sampled_from(("mfcc", "seed")),
    pad=st.sampled_from(("repeat", "zeros")),
    deltas=st.booleans(),
)
def test_every_feature_setting_gives_a_finite_matrix_of_the_fixed_shape(
    folder, feature_params, signal, kind, pad, deltas
):
    params = dataclasses.replace(feature_params, kind=kind, pad=pad, deltas=deltas)
    path = write_signal(folder, signal)
    try:
        try:
            matrix = extract.featurize_file(path, params)
        except DataError:  # only for what libsndfile cannot open (it writes empty FLACs)
            with pytest.raises(sf.LibsndfileError):
                sf.info(path)
            return
        assert matrix.shape == extract.shape(params)
        assert matrix.dtype == np.float32 and np.isfinite(matrix).all()
    finally:
        path.unlink()


@given(data=broken_bytes())
def test_broken_bytes_are_excluded_with_a_reason_never_an_exception(folder, feature_params, data):
    path = write_bytes(folder, data)
    try:
        samples = check_loader(path)
        reason = check_manifest(path)
        feature_reason = check_features(path, feature_params)
        if samples is None:  # the loader refused it: so do the features, with the reason
            assert feature_reason.startswith("unreadable: ")
        if reason.startswith("unreadable: "):
            assert samples is None and feature_reason
    finally:
        path.unlink()


@pytest.mark.slow
@given(payload=st.one_of(signals(), broken_bytes()))
def test_prediction_gives_a_status_for_any_input(folder, predictor, payload):
    path = (
        write_bytes(folder, payload)
        if isinstance(payload, bytes)
        else write_signal(folder, payload)
    )
    try:
        status = check_prediction(predictor, path)
        if status == "error":
            assert check_loader(path) is None
    finally:
        path.unlink()


# --- named cases, through every reader and through `ser predict` ----------------------------


def named_cases(folder: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (file, manifest verdict, `ser predict` status) for each hostile case."""
    rng = np.random.default_rng(7)
    speech = voice(7)[:, 0]
    cases: dict[str, tuple[Path, str, str]] = {}

    def wav(name, samples, rate=16000, subtype="PCM_16", verdict="", status="ok"):
        path = folder / f"{name}.wav"
        sf.write(path, samples, rate, subtype=subtype)
        cases[name] = (path, verdict, status)

    def raw(name, data, verdict, status):
        path = folder / f"{name}.wav"
        path.write_bytes(data)
        cases[name] = (path, verdict, status)

    raw("random_bytes", rng.bytes(5000), "unreadable: ", "error")
    raw("truncated_header", VALID[:30], "unreadable: ", "error")
    raw("header_only", VALID[:44], "empty: ", "too_short")
    raw("truncated_data", VALID[: len(VALID) // 2 + 1], "", "ok")
    raw("sample_rate_1hz", VALID[:24] + struct.pack("<I", 1) + VALID[28:], "", "error")
    wav("zero_samples", np.zeros(0), verdict="empty: ", status="too_short")
    wav("one_sample", np.array([0.5]), status="too_short")
    wav("silent", np.zeros(16000), verdict="silent: ", status="silent")
    click = np.zeros(32000)
    click[16000:16020] = 0.5
    # A corpus keeps it (its peak is that of sound); `ser predict` finds no speech in it.
    wav("click_in_silence", click, status="no_speech")
    nan = speech.copy()
    nan[::100] = np.nan
    wav("nan_samples", nan, subtype="FLOAT", verdict="corrupt: ")
    wav("all_nan", np.full(16000, np.nan), subtype="FLOAT", verdict="corrupt: ", status="silent")
    inf = speech.copy()
    inf[5] = np.inf
    wav("inf_samples", inf, subtype="DOUBLE", verdict="corrupt: ")
    wav("eight_channels", voice(8, channels=8))
    wav("rate_8khz", speech[:8000], rate=8000)
    wav("rate_192khz", voice(9, rate=192000), rate=192000)
    wav("noise_alone", 0.3 * rng.standard_normal(16000), status="no_speech")
    wav("pcm_8bit", speech, subtype="PCM_U8")
    wav("pcm_24bit", speech, subtype="PCM_24")
    wav("pcm_32bit", speech, subtype="PCM_32")
    wav("float", speech, subtype="FLOAT")
    wav("double", speech, subtype="DOUBLE")
    wav("float_beyond_full_scale", 40 * speech, subtype="FLOAT")
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return named_cases(tmp_path_factory.mktemp("named"))


def test_named_cases_get_the_expected_manifest_verdict_and_features(cases, feature_params):
    for name, (path, verdict, _) in cases.items():
        reason = check_manifest(path)
        if verdict:
            assert reason.startswith(verdict), (name, reason)
        else:
            assert reason == "", (name, reason)
        feature_reason = check_features(path, feature_params)
        assert (check_loader(path) is None) == bool(feature_reason), name


@pytest.mark.parametrize("kind", ["mfcc", "seed"])
def test_a_huge_float_sample_gives_finite_features(folder, feature_params, kind):
    """Found by `make fuzz`: one sample of 1e30 overflowed the seed feature into NaN."""
    samples = 0.1 * np.random.default_rng(5).standard_normal(16000)
    samples[5000] = 1e30
    path = folder / f"huge_{kind}.wav"
    sf.write(path, samples, 8000, subtype="FLOAT")
    params = dataclasses.replace(feature_params, kind=kind)
    matrix = extract.featurize_file(path, params)
    assert matrix.shape == extract.shape(params) and np.isfinite(matrix).all()


def test_a_damaged_sample_rate_is_refused_not_resampled_into_gigabytes(cases, feature_params):
    path = cases["sample_rate_1hz"][0]
    with pytest.raises(DataError, match=r"sample rate 1 Hz is not plausible"):
        audio.load(path, sample_rate=16000)
    _, reasons = extract.featurize_many([str(path)], feature_params)
    assert reasons[0].startswith("unreadable: ") and "sample rate 1 Hz" in reasons[0]


def test_ser_predict_gives_every_file_a_status_and_never_a_traceback(cases, tiny_model):
    folder = next(iter(cases.values()))[0].parent
    damaged = cases["sample_rate_1hz"][0].read_bytes()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ser.serve.cli",
            "predict",
            str(folder),
            "-",
            "--model",
            str(tiny_model),
        ]
        + ["--format", "json"],
        input=damaged,  # the same damaged file as a WAV stream on stdin
        capture_output=True,
        timeout=300,
        check=False,
    )
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert result.returncode == 1, stderr  # some files are errors, the rest predicted
    rows = {Path(row["file"]).stem: row for row in json.loads(result.stdout)}
    assert set(rows) == {*cases, "-"}
    for name, (_, _, status) in cases.items():
        assert rows[name]["status"] == status, (name, rows[name])
    assert rows["-"]["status"] == "error"
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 + sum(status == "error" for _, _, status in cases.values())
    assert sum("sample rate 1 Hz is not plausible" in line for line in errors) == 2


# --- an hour-long file: the features read a window, the manifest reads in blocks ------------

PEAK_SCRIPT = """
import resource, sys
import numpy as np, yaml
from ser.features import extract
from ser.data.manifest import inspect_audio
from ser.params import parse_params

params = parse_params(yaml.safe_load(open(sys.argv[2]))).features
extract.featurize_file(sys.argv[3], params)  # warm up: imports, caches, filterbanks
inspect_audio(sys.argv[3], silence_threshold=1e-4)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] == "features":
    matrix = extract.featurize_file(sys.argv[4], params)
    assert matrix.shape == extract.shape(params) and np.isfinite(matrix).all()
else:
    assert inspect_audio(sys.argv[4], silence_threshold=1e-4)[3] == ""
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.fixture(scope="module")
def hour_long(tmp_path_factory) -> Path:
    """One hour of 16 kHz mono 16-bit noise (115 MB), written a minute at a time."""
    path = tmp_path_factory.mktemp("hour") / "hour.wav"
    rng = np.random.default_rng(3)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["features", "manifest"])
def test_an_hour_long_file_costs_what_a_short_one_costs(hour_long, cases, reader):
    from tests.conftest import ROOT

    short = cases["float"][0]
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, reader, str(ROOT / "params.yaml"), str(short)]
        + [str(hour_long)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    growth_mib = int(result.stdout.split()[-1])
    # The whole hour as float32 would be 220 MiB; a window (or a one-minute block) is < 10.
    assert growth_mib < 40, f"peak RSS grew by {growth_mib} MiB reading an hour-long file"
