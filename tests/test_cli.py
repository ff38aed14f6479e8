"""`ser predict` and `ser info` through a subprocess, on synthetic clips and a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.features import extract
from ser.features.speaker import Moments
from ser.model.calibration import calibrate
from ser.model.inference import predict_proba
from ser.serve.predict import Predictor

SER = [sys.executable, "-m", "ser.serve.cli"]
CLASSES = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}


def ser(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SER, *args], input=stdin, capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def clips(tiny_corpus) -> list[Path]:
    return sorted((tiny_corpus / "speech" / "Actor_04").glob("*.wav"))[:6]


def test_help_answers(tmp_path):
    result = ser("--help")
    assert result.returncode == 0 and b"predict" in result.stdout


def test_predict_help_explains_each_speaker_choice():
    # Each value the option accepts is named in its help, with what it groups.
    text = " ".join(ser("predict", "--help").stdout.decode().split())
    for choice, meaning in (
        ("file", "each file alone"),
        ("folder", "the files of one folder"),
        ("all", "every"),
    ):
        assert f"{choice} ({meaning}" in text


@pytest.mark.parametrize("command", [[], ["predict"], ["info"], ["export"]])
def test_help_imports_no_heavy_library(command):
    """`ser --help` answers at once: TensorFlow, Keras and librosa load only when used."""
    code = (
        "import sys\n"
        "from ser.serve import cli\n"
        "try:\n"
        f"    cli.main({[*command, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('tensorflow', 'keras', 'librosa', 'tf2onnx', 'onnx', 'dask', 'distributed')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_predict_a_file_prints_a_table(tiny_model, clips):
    result = ser("predict", str(clips[0]), "--model", str(tiny_model))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["file", "class", "confidence"]
    assert lines[1].split()[0] == str(clips[0]) and lines[1].split()[1] in CLASSES


def test_predict_a_folder_as_json_matches_the_library(tiny_model, clips):
    folder = clips[0].parent
    result = ser(
        "predict",
        str(folder),
        "--model",
        str(tiny_model),
        "--format",
        "json",
        "--speaker",
        "folder",
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 60 and all(row["status"] == "ok" for row in rows)
    first = next(row for row in rows if row["file"] == str(clips[0]))
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    # What the library's pieces give: each file's features, standardised by the moments of
    # the folder's recordings (one speaker), the model, the calibration temperature; the
    # same for the files' copies at each speed (model.test_speeds) as a speaker of their
    # own, and the mean over the speeds at the model's test_temperature.
    from ser.serve.recording import file_copies

    predictor = Predictor(tiny_model)
    in_folder = sorted(folder.rglob("*.wav"))
    matrix, _ = extract.featurize_many([str(c) for c in in_folder], predictor.feature_params)
    parts = [matrix] + [
        np.concatenate(
            [file_copies((str(c), predictor.feature_params, (speed,)))[0] for c in in_folder]
        )
        for speed in predictor.speeds
    ]
    judged = [
        calibrate(
            predict_proba(
                predictor.model, predictor.normalizer.apply_group(part, Moments.of(part))
            ),
            predictor.temperature,
        )
        for part in parts
    ]
    expected = calibrate(np.mean(judged, axis=0), predictor.speed_temperature)
    assert len(parts) == 3
    np.testing.assert_allclose(
        [first["probabilities"][name] for name in predictor.classes],
        expected[in_folder.index(clips[0])],
        atol=1e-5,
    )
    assert result.stderr.decode() == ""


@pytest.mark.slow
def test_speaker_grouping_changes_what_is_standardised_together(tiny_model, clips):
    def probabilities(*args):
        result = ser("predict", *args, "--model", str(tiny_model), "--format", "json")
        assert result.returncode == 0, result.stderr
        assert result.stderr.decode() == ""  # no warning: one file alone is a first-class case
        rows = json.loads(result.stdout)
        return np.array(
            [[row["probabilities"][k] for k in sorted(row["probabilities"])] for row in rows]
        )

    folder = str(clips[0].parent)
    by_default = probabilities(folder)
    alone = probabilities(folder, "--speaker", "file")
    by_folder = probabilities(folder, "--speaker", "folder")
    together = probabilities(folder, "--speaker", "all")
    np.testing.assert_allclose(by_default, alone, atol=1e-6)  # default: each file alone
    np.testing.assert_allclose(together, by_folder, atol=1e-6)  # one folder = one speaker
    assert np.abs(alone - by_folder).max() > 1e-3


def test_classes_restrict_the_answers_to_those_named(tiny_model, clips):
    chosen = ["happy", "sad", "angry"]
    result = ser(
        "predict",
        *map(str, clips),
        "--model",
        str(tiny_model),
        "--format",
        "json",
        "--classes",
        "angry, happy,sad",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode() == ""
    predictor = Predictor(tiny_model)
    everything = {r.source: r for r in predictor.predict_files(clips, progress=False)}
    for row in json.loads(result.stdout):
        assert list(row["probabilities"]) == chosen  # the model's order, only those named
        assert row["label"] in chosen
        # The model's probabilities of those classes, renormalised (Bayes' rule).
        full = everything[row["file"]].probabilities
        total = sum(full[name] for name in chosen)
        for name in chosen:
            assert row["probabilities"][name] == pytest.approx(full[name] / total, abs=1e-5)
        assert row["label"] == max(chosen, key=full.get)


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ("happy,joy", "joy is not a class of this model; its classes: neutral, calm"),
        ("happy", "name at least two of the model's classes"),
    ],
)
def test_classes_the_model_lacks_are_one_line(tiny_model, clips, classes, expected):
    result = ser("predict", str(clips[0]), "--model", str(tiny_model), "--classes", classes)
    assert result.returncode == 2 and result.stdout.decode() == ""
    errors = result.stderr.decode().strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and expected in errors[0]


def test_csv_output(tiny_model, clips):
    result = ser("predict", *map(str, clips[:2]), "--model", str(tiny_model), "--format", "csv")
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "file,status,label,confidence,top3,message" and len(lines) == 3


@pytest.mark.slow
def test_stdin_wav_stream(tiny_model, clips):
    result = ser(
        "predict", "-", "--model", str(tiny_model), "--format", "json", stdin=clips[0].read_bytes()
    )
    assert result.returncode == 0, result.stderr
    streamed = json.loads(result.stdout)[0]
    assert streamed["status"] == "ok" and streamed["file"] == "-"
    # The stream goes through a temporary file: the same prediction as the file itself.
    result = ser("predict", str(clips[0]), "--model", str(tiny_model), "--format", "json")
    from_file = json.loads(result.stdout)[0]
    assert streamed["label"] == from_file["label"]
    assert streamed["confidence"] == pytest.approx(from_file["confidence"], abs=1e-5)


def test_silent_short_and_long_recordings(tiny_model, clips, tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(32000), 16000)
    sf.write(tmp_path / "short.flac", 0.1 * np.ones(800), 16000)
    click = np.zeros(32000)
    click[16000:16020] = 0.5
    sf.write(tmp_path / "click.wav", click, 16000)
    speech, rate = sf.read(clips[0])
    sf.write(tmp_path / "long.ogg", np.tile(speech, 6), rate)
    result = ser(
        "predict", str(tmp_path), "--model", str(tiny_model), "--format", "json", "--per-window"
    )
    assert result.returncode == 0, result.stderr
    rows = {Path(row["file"]).name: row for row in json.loads(result.stdout)}
    assert rows["silent.wav"]["status"] == "silent" and rows["silent.wav"]["label"] is None
    assert rows["short.flac"]["status"] == "too_short"
    assert rows["click.wav"]["status"] == "no_speech" and rows["click.wav"]["label"] is None
    assert rows["long.ogg"]["status"] == "ok" and len(rows["long.ogg"]["windows"]) >= 4


def test_bad_inputs_are_reported_and_the_rest_still_predicted(tiny_model, clips, tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF1234WAVEjunk")
    (tmp_path / "empty").mkdir()
    result = ser(
        "predict",
        str(clips[0]),
        str(tmp_path / "broken.wav"),
        str(tmp_path / "missing.wav"),
        str(tmp_path / "empty"),
        "--model",
        str(tiny_model),
        "--format",
        "json",
    )
    assert result.returncode == 1
    errors = result.stderr.decode().strip().splitlines()
    assert any("missing.wav: no such file or folder" in line for line in errors)
    assert any("empty: folder holds no audio files" in line for line in errors)
    assert any("broken.wav" in line and "cannot read audio" in line for line in errors)
    statuses = {Path(row["file"]).name: row["status"] for row in json.loads(result.stdout)}
    assert statuses == {clips[0].name: "ok", "broken.wav": "error"}


def test_a_folder_that_is_not_a_model_is_one_line(clips, tmp_path):
    result = ser("predict", str(clips[0]), "--model", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.decode().strip().startswith("error: ")
    assert "not a model folder" in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_info_describes_the_model(tiny_model):
    result = ser("info", "--model", str(tiny_model))
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert set(info["classes"]) == CLASSES
    assert info["features"]["kind"] == "mfcc" and info["features"]["n_frames"] == 301


@pytest.mark.slow
def test_tensorflows_python_warnings_stay_off_stderr_and_its_errors_do_not():
    """Its Python WARNINGs are hints for its own developers ("triggered tf.function
    retracing" when a benchmark trains and predicts with model after model)."""
    code = (
        "import ser\n"
        "import tensorflow as tf\n"
        "tf.get_logger().warning('a hint for TensorFlow developers')\n"
        "tf.get_logger().error('a real error')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "a hint" not in result.stderr
    assert "a real error" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("level", [None, "2"])
def test_importing_tensorflow_after_ser_prints_nothing(level):
    """Every entry point (the `ser` command, the stages, the benchmarks) imports ser first;
    TensorFlow's start-up lines must not reach the terminal from any of them, also when the
    user quiets TensorFlow the usual way (TF_CPP_MIN_LOG_LEVEL=2)."""
    code = "import ser, keras, tensorflow as tf; print(float(tf.reduce_sum(tf.ones(3))))"
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert result.returncode == 0 and result.stdout.strip() == "3.0"
    assert result.stderr == "", result.stderr
