"""`ser export`: exported models give Keras's probabilities; bad requests write nothing."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.errors import ConfigError, DataError
from ser.features import extract
from ser.features.speaker import Moments
from ser.model import modelio
from ser.model.inference import SCALE_FLOOR, needs_speakers, predict_proba, speaker_moments
from ser.serve import export
from ser.serve.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
SER = Path(sys.executable).with_name("ser")
EXAMPLE = ROOT / "examples" / "onnx_predict.py"
# The exported runtimes against Keras (onnxruntime differed by up to 1.1e-4 on the tiny model).
TOLERANCE = 2e-4
# A model whose statistics member standardises per speaker: the trust channel is constant
# within a speaker, so its statistics' spread over the speaker is 0 and is floored at
# SCALE_FLOOR (0.001), which magnifies each runtime's last-bit differences a thousandfold.
SPEAKER_TOLERANCE = 1e-2
# The example computes features with its own librosa calls (within 1e-3 of ser's).
EXAMPLE_TOLERANCE = 5e-4


def ser(*args: str) -> subprocess.CompletedProcess:
    command = [str(SER)] if SER.exists() else [sys.executable, "-m", "ser.serve.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def clips(tiny_corpus) -> list[Path]:
    return sorted((tiny_corpus / "speech" / "Actor_04").glob("*.wav"))[:8]


@pytest.fixture(scope="module")
def cnn_case(tiny_model, clips):
    """(model folder, features of real-looking clips, their speakers) for the default
    architecture."""
    return tiny_model, model_inputs(tiny_model, clips), np.array([c.parent.name for c in clips])


@pytest.fixture(scope="module")
def strided_case(tiny_strided_model, clips):
    """The same for the default architecture with model.stride: 2."""
    model_dir = tiny_strided_model
    return model_dir, model_inputs(model_dir, clips), np.array([c.parent.name for c in clips])


def model_inputs(model_dir: Path, clips: list[Path]) -> np.ndarray:
    """What the exported graph takes for these clips of one speaker: their features,
    standardised together by the model's speaker normaliser, as ser predict does."""
    predictor = Predictor(model_dir)
    batch = np.stack([extract.featurize_file(clip, predictor.feature_params) for clip in clips])
    return predictor.normalizer.apply_group(batch, Moments.of(batch))


@pytest.fixture(scope="module")
def seed_case(default_params_dict, tmp_path_factory, clips):
    """The same for the 2019 architecture on its own feature (untrained)."""
    import keras

    from ser.model.build import build_model
    from ser.params import parse_params

    params = dataclasses.replace(parse_params(default_params_dict).features, kind="seed")
    batch = np.stack([extract.featurize_file(clip, params) for clip in clips[:4]])
    keras.utils.set_random_seed(0)
    model = build_model("seed", input_shape=extract.shape(params), num_classes=8)
    # Untrained outputs are near uniform; a larger output layer makes them decisive.
    output_layer = model.get_layer("probabilities")
    kernel, bias = output_layer.get_weights()
    output_layer.set_weights([20 * kernel, bias])
    folder = tmp_path_factory.mktemp("seed") / "model"
    meta = {
        "classes": [f"class{index}" for index in range(8)],
        "features": extract.describe(params),
        "model": {"arch": "seed"},
    }
    modelio.save(folder, model, meta)
    return folder, batch, np.array([clip.parent.name for clip in clips[:4]])


@pytest.fixture(scope="module")
def speaker_case(tiny_speaker_statistics_model, tiny_corpus):
    """The same, of two speakers (interleaved), for a model whose statistics member
    standardises per speaker (model.stats_normalize: speaker): a two-input model."""
    model_dir = tiny_speaker_statistics_model
    assert needs_speakers(modelio.load(model_dir)[0]), "expected a speaker-statistics model"
    actors = [
        sorted((tiny_corpus / "speech" / actor).glob("*.wav"))[:6]
        for actor in ("Actor_03", "Actor_04")
    ]
    batch = np.empty((12, *model_inputs(model_dir, actors[0][:1]).shape[1:]), dtype=np.float32)
    batch[0::2], batch[1::2] = (model_inputs(model_dir, clips) for clips in actors)
    clips = [clip for pair in zip(*actors, strict=True) for clip in pair]
    return model_dir, batch, np.array([clip.parent.name for clip in clips])


def run_exported(path: Path, format: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All the outputs of the exported file, by name, run by its own runtime (no Keras, no ser)."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [given.name for given in session.get_inputs()] == list(inputs)
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs), strict=True))
    import tensorflow as tf

    if format == "tflite":
        interpreter = tf.lite.Interpreter(model_path=str(path))
        return interpreter.get_signature_runner("serving_default")(**inputs)
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


def keras_reference(model, batch: np.ndarray, speakers: np.ndarray):
    """(the exported graph's inputs, the Keras model's probabilities) for batch: a model
    that takes speaker moments gets each speaker's, over its rows of batch."""
    if not needs_speakers(model):
        return {"features": batch}, predict_proba(model, batch)
    moments = speaker_moments(model, batch, speakers).rows(speakers)
    return (
        {"features": batch, "speaker_statistics": moments},
        predict_proba(model, batch, speakers=speakers),
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("format", export.FORMATS)
@pytest.mark.parametrize("arch", ["cnn", "seed", "strided"])
def test_exported_model_gives_the_keras_probabilities(arch, format, request, tmp_path):
    model_dir, batch, speakers = request.getfixturevalue(f"{arch}_case")
    out = tmp_path / f"emotion.{format}"
    written = export.export(model_dir, out, format=format)

    model, meta = modelio.load(model_dir)
    inputs, expected = keras_reference(model, batch, speakers)
    assert np.ptp(expected) > 0.1  # far from uniform: a 2e-4 agreement means something
    outputs = run_exported(out, format, inputs)
    actual = outputs["probabilities"]
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= TOLERANCE

    description = json.loads(export.description_path(out, format).read_text())
    assert written[-1] == (out if format == "saved_model" else export.description_path(out, format))
    assert description["classes"] == meta["classes"]
    assert description["features"] == meta["features"]
    assert description["input"]["shape"] == [None, *batch.shape[1:]]
    if not needs_speakers(model):  # one input, one output, as before speaker statistics
        assert sorted(outputs) == ["probabilities"]
        assert "speaker_input" not in description and "statistics_output" not in description
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def two_passes(path: Path, format: str, batch: np.ndarray, speakers: np.ndarray, how: dict):
    """What the description's speaker_input.how tells a user to do, with the export alone:
    (the statistics of the first pass, the moments made of them, the second's probabilities)."""
    width = how["shape"][-1]
    first = run_exported(
        path,
        format,
        {"features": batch, "speaker_statistics": np.ones((len(batch), 2, width), np.float32)},
    )
    statistics = first["statistics"].astype(np.float64)
    moments = np.empty((len(batch), 2, width), dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        spread = np.maximum(statistics[rows].std(axis=0), how["scale_floor"])
        moments[rows] = [statistics[rows].mean(axis=0), spread if rows.sum() > 1 else 1.0]
    second = run_exported(path, format, {"features": batch, "speaker_statistics": moments})
    return first["statistics"], moments, second["probabilities"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("format", export.FORMATS)
def test_a_speaker_statistics_model_exports_with_its_second_input(speaker_case, format, tmp_path):
    model_dir, batch, speakers = speaker_case
    out = tmp_path / f"emotion.{format}"
    export.export(model_dir, out, format=format)
    model, meta = modelio.load(model_dir)
    pooled = np.asarray(model.get_layer("utterance_statistics")(batch))
    width = pooled.shape[1]

    description = json.loads(export.description_path(out, format).read_text())
    assert description["input"] == {
        "name": "features",
        "shape": [None, *batch.shape[1:]],
        "dtype": "float32",
    }
    speaker_input = description["speaker_input"]
    assert speaker_input["name"] == "speaker_statistics"
    assert speaker_input["shape"] == [None, 2, width] and speaker_input["dtype"] == "float32"
    assert speaker_input["scale_floor"] == SCALE_FLOOR and "twice" in speaker_input["how"]
    assert description["output"]["shape"] == [None, len(meta["classes"])]
    assert description["statistics_output"] == {
        "name": "statistics",
        "shape": [None, width],
        "dtype": "float32",
    }

    # Given each speaker's moments, the Keras model's probabilities (and its statistics).
    inputs, expected = keras_reference(model, batch, speakers)
    assert np.ptp(expected) > 0.1
    outputs = run_exported(out, format, inputs)
    assert sorted(outputs) == ["probabilities", "statistics"]
    assert np.abs(outputs["probabilities"] - expected).max() <= SPEAKER_TOLERANCE
    np.testing.assert_allclose(outputs["statistics"], pooled, atol=TOLERANCE, rtol=1e-5)

    # The two passes that the description prescribes give the same, without ser.
    statistics, moments, probabilities = two_passes(out, format, batch, speakers, speaker_input)
    np.testing.assert_allclose(statistics, pooled, atol=TOLERANCE, rtol=1e-5)
    np.testing.assert_allclose(moments, inputs["speaker_statistics"], atol=TOLERANCE, rtol=1e-4)
    assert np.abs(probabilities - expected).max() <= SPEAKER_TOLERANCE
    # The moments matter: the same clips as one speaker are classified otherwise.
    _, _, together = two_passes(out, format, batch, np.zeros(len(batch)), speaker_input)
    assert np.abs(together - expected).max() > 10 * TOLERANCE


def test_a_new_export_replaces_an_earlier_one(cnn_case, tmp_path):
    model_dir = cnn_case[0]
    out = tmp_path / "emotion.tflite"
    export.export(model_dir, out, format="tflite")
    out.write_bytes(b"stale")
    export.export(model_dir, out, format="tflite")
    assert out.read_bytes() != b"stale" and out.stat().st_size > 1000


def test_a_failed_export_leaves_nothing(cnn_case, tmp_path, monkeypatch):
    def fail_halfway(model, path, *, work_dir):
        path.write_bytes(b"half")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export, "_write_onnx", fail_halfway)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export.export(cnn_case[0], tmp_path / "emotion.onnx", format="onnx")
    assert list(tmp_path.iterdir()) == []


def test_library_errors_name_the_problem(cnn_case, tmp_path):
    with pytest.raises(ConfigError, match="--format: 'pt' is not allowed; choose one of: onnx"):
        export.export(cnn_case[0], tmp_path / "x.pt", format="pt")
    with pytest.raises(DataError, match="not a model folder"):
        export.export(tmp_path, tmp_path / "x.onnx", format="onnx")
    (tmp_path / "x.onnx.json").write_text('{"mine": true}')
    with pytest.raises(ConfigError, match="x.onnx.json exists and was not written by `ser export`"):
        export.export(cnn_case[0], tmp_path / "x.onnx", format="onnx")


def _assert_one_line_error(result, *, expected: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_cli_unknown_format(tiny_model, tmp_path):
    result = ser(
        "export", "--format", "pt", "--out", str(tmp_path / "x.pt"), "--model", str(tiny_model)
    )
    _assert_one_line_error(result, expected="'pt' is not allowed; choose one of: onnx, tflite")
    assert list(tmp_path.iterdir()) == []


def test_cli_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "not_a_model").mkdir()
    out = tmp_path / "x.onnx"
    result = ser(
        "export", "--format", "onnx", "--out", str(out), "--model", str(tmp_path / "not_a_model")
    )
    _assert_one_line_error(result, expected="not a model folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_model"]


@pytest.mark.parametrize("format", ["onnx", "saved_model"])
def test_cli_refuses_to_overwrite_what_it_did_not_write(tiny_model, tmp_path, format):
    precious = tmp_path / "precious"
    if format == "saved_model":
        precious.mkdir()
        (precious / "notes.txt").write_text("keep me")
    else:
        precious.write_text("keep me")
    result = ser("export", "--format", format, "--out", str(precious), "--model", str(tiny_model))
    _assert_one_line_error(result, expected="exists and was not written by `ser export`")
    if format == "saved_model":
        assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    else:
        assert precious.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


# The README's example: a script that needs only numpy, librosa and onnxruntime.


@pytest.fixture(scope="module")
def onnx_export(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "emotion.onnx"
    result = ser("export", "--format", "onnx", "--out", str(out), "--model", str(tiny_model))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out), f"{out}.json"]
    return out


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("onnx_predict", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recordings(clips, tmp_path_factory) -> list[Path]:
    """Corpus clips, a long recording (several windows) and a 44.1 kHz stereo one."""
    folder = tmp_path_factory.mktemp("recordings")
    speech, rate = sf.read(clips[0], dtype="float32")
    sf.write(folder / "long.flac", np.tile(speech, 5), rate)
    import soxr

    stereo = soxr.resample(speech, rate, 44100)
    sf.write(folder / "stereo.wav", np.stack([stereo, 0.5 * stereo], axis=1), 44100)
    return [*clips[1:3], folder / "long.flac", folder / "stereo.wav"]


def test_the_docs_lead_to_the_example():
    page = (ROOT / "docs" / "predicting.md").read_text()
    assert "(../examples/onnx_predict.py)" in page


def test_example_features_are_those_of_ser(example, onnx_export, tiny_model, clips):
    settings = json.loads(Path(f"{onnx_export}.json").read_text())["features"]
    params = Predictor(tiny_model).feature_params
    for clip in clips[:3]:
        samples = example.load_audio(str(clip), settings["sample_rate"])
        [window] = example.windows(samples, settings)
        np.testing.assert_allclose(
            example.features(window, settings), extract.featurize_file(clip, params), atol=1e-3
        )


def test_example_predicts_what_ser_predicts(example, onnx_export, tiny_model, recordings):
    settings = json.loads(Path(f"{onnx_export}.json").read_text())
    predictor = Predictor(tiny_model)
    # The default model judges speed copies beside each recording, and says so.
    assert settings["speed_copies"]["speeds"] == list(predictor.speeds) != []
    for path in recordings:
        expected = predictor.predict_file(path)
        assert expected.status == "ok", expected.message
        [actual], _ = example.predict_files(str(onnx_export), [str(path)])
        wanted = [expected.probabilities[name] for name in settings["classes"]]
        assert np.abs(actual - wanted).max() <= EXAMPLE_TOLERANCE, path.name
    # Several recordings of one speaker, standardised together as `ser predict --speaker all`.
    together = list(predictor.predict_files(recordings, speakers=["one"] * len(recordings)))
    actual, _ = example.predict_files(str(onnx_export), [str(path) for path in recordings])
    for result, probabilities in zip(together, actual, strict=True):
        wanted = [result.probabilities[name] for name in settings["classes"]]
        assert np.abs(probabilities - wanted).max() <= EXAMPLE_TOLERANCE, result.source


def test_example_runs_as_a_script(onnx_export, recordings):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(onnx_export), *map(str, recordings[:2])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    classes = json.loads(Path(f"{onnx_export}.json").read_text())["classes"]
    assert [row[0] for row in rows] == [str(path) for path in recordings[:2]]
    assert all(row[1] in classes and 0 < float(row[2]) <= 1 for row in rows)


def test_a_blended_model_exports_both_models_and_the_example_blends_them(
    example, tiny_blended_model, recordings, tmp_path
):
    out = tmp_path / "emotion.onnx"
    result = ser(
        "export", "--format", "onnx", "--out", str(out), "--model", str(tiny_blended_model)
    )
    assert result.returncode == 0, result.stderr
    companion = tmp_path / "emotion.whole_speaker.onnx"
    assert result.stdout.split() == [str(out), f"{out}.json", str(companion), f"{companion}.json"]
    blend = json.loads(Path(f"{out}.json").read_text())["blend"]
    assert (blend["file"], blend["recordings"]) == (companion.name, 8.0)
    assert "speaker_input" in json.loads(Path(f"{companion}.json").read_text())
    predictor = Predictor(tiny_blended_model)
    classes = predictor.classes
    for group in ([recordings[0]], recordings[:3]):
        expected = predictor.predict_files(group, progress=False, speakers=["one"] * len(group))
        actual, _ = example.predict_files(str(out), [str(path) for path in group])
        for result, probabilities in zip(expected, actual, strict=True):
            wanted = [result.probabilities[name] for name in classes]
            assert np.abs(probabilities - wanted).max() <= EXAMPLE_TOLERANCE, result.source


def test_the_example_scales_a_recording_to_the_level_as_ser_does(example, recordings):
    from ser.features import extract

    speech, rate = sf.read(recordings[0], dtype="float32")
    for level in (-25.0, -40.0):
        quiet = 0.05 * speech
        np.testing.assert_allclose(
            example.at_level(quiet, level, rate),
            extract.at_level(quiet, level, sample_rate=rate),
            rtol=1e-5,
            atol=1e-7,
        )
    silence = np.zeros(1600, dtype=np.float32)
    np.testing.assert_array_equal(example.at_level(silence, -25.0, 16000), silence)
