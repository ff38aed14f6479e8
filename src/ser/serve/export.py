"""Exporting a trained model folder for use without this project: ONNX, TFLite or SavedModel.

    from ser.serve.export import export
    export("data/model", "emotion.onnx", format="onnx")   # writes emotion.onnx(.json)

The exported graph takes the feature matrix as the Keras model does, a float32 tensor
``features`` of shape (batch, n_frames, n_features), and returns ``probabilities`` of shape
(batch, n_classes), in inference mode (SpecAugment and dropout off). A model whose statistics
member standardises per speaker (``model.stats_normalize: speaker``;
ser.model.inference.needs_speakers) takes a second input, ``speaker_statistics`` (batch, 2,
width): each clip's speaker's mean and scale (standard deviation, floored) of the member's
statistics over the speaker's clips. Its export also returns those statistics, ``statistics``
(batch, width), so that the moments can be computed with the exported model alone, in two
passes (see ``describe``). A JSON description is written beside it (``<out>.json``; inside the
folder, ``export.json``, for a SavedModel): the class order, the inputs and outputs, the
feature settings needed to compute the input, and where the model came from. A model with a
whole-speaker model blended in (``model.speaker_blend``) exports that one too, beside it
(``emotion.whole_speaker.onnx``), and the description's ``blend`` says how to weigh the two.
An existing output is replaced only if an earlier export wrote it; everything is written under
a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ser import __version__
from ser.errors import ConfigError, SerError
from ser.fsutil import atomic_dir, read_json, write_json
from ser.model import modelio
from ser.model.inference import SCALE_FLOOR

FORMATS = ("onnx", "tflite", "saved_model")
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
# A speaker-statistics model's second input (as in ser.model.inference.SPEAKER_INPUT) and the extra
# output that gives what it needs: each clip's statistics, as the member pools them.
SPEAKER_INPUT_NAME = "speaker_statistics"
STATISTICS_OUTPUT_NAME = "statistics"
SPEAKER_HOW = (
    "Run the model twice: first with any speaker_statistics (ones, say) to get each clip's "
    "`statistics`; then, for each speaker, take the mean and the standard deviation "
    "(numpy's default, ddof=0) of every column of those statistics over the speaker's clips, "
    "and run again with speaker_statistics[i] = [mean, max(std, scale_floor)] of clip i's "
    "speaker (a speaker with a single clip: [its statistics, 1]) for the probabilities."
)
NORMALIZER_HOW = (
    "Standardise the features of all windows of a speaker's k recordings (k = 1 for one "
    "recording, however many windows it is cut into) by "
    "m = (k * mean + shrinkage * population_mean) / (k + shrinkage) and "
    "s = sqrt((k * var + shrinkage * population_var) / (k + shrinkage)), floored at 1e-5, "
    "where mean and var are over all frames of those windows; then append one feature, "
    "k / (k + shrinkage), to every frame."
)
BLEND_HOW = (
    "Run both models on the windows of a speaker's k recordings, each as its own "
    "description says; blend each window's calibrated probabilities as (1 - w) * this "
    "model's + w * the whole-speaker model's, with w = (k - 1) / (k - 1 + recordings) "
    "(0 for one recording, however many windows it is cut into)."
)
SPEED_HOW = (
    "Besides the recordings as given, judge copies of them played at each of speeds (pitch and "
    "tempo together: a resampling to round(sample_rate / speed) samples a second read as "
    "sample_rate, so the speed played is r = sample_rate / round(sample_rate / speed)). A "
    "copy's features come from one analysis of the recording's trimmed speech (n samples): "
    "its STFT power and its log F0 and log energy contours, frames hop_length apart. The copy "
    "is n' = ceil(n / r) samples long and cut into windows as the recording's speech is; a "
    "window of it from sample a to b has 1 + (b - a) // hop_length frames, frame j taken from "
    "the analysis frame round((a + j * hop_length) * r / hop_length) (at most the last): its "
    "power weighed by the mel filters of a sample rate of sample_rate * r (fmax sample_rate / "
    "2), its log F0 plus log r (clipped to 60-500 Hz), its log energy as it is; MFCCs, deltas "
    "and padding as the recording's. The copies at one speed are a speaker's recordings of "
    "their own. A recording's probabilities are the mean of its own and its copies' (each the "
    "mean over its windows, blended as blend.how says), rescaled by temperature as the model's "
    "own temperature rescales (log divided by it, renormalised)."
)
# The description's marker: an output carrying it may be replaced by a new export.
EXPORTED_BY = "ser export"
SAVED_MODEL_DESCRIPTION = "export.json"
# ONNX opset 17 runs on every onnxruntime since 1.13 (2022).
ONNX_OPSET = 17
# The Python packages each format needs beyond TensorFlow (import name, pip name).
REQUIREMENTS = {"onnx": [("tf2onnx", "tf2onnx"), ("onnx", "onnx")]}


def description_path(out: str | Path, format: str) -> Path:
    """Where the JSON description of an export to ``out`` goes."""
    out = Path(out)
    if format == "saved_model":
        return out / SAVED_MODEL_DESCRIPTION
    return out.with_name(out.name + ".json")


def blend_path(out: str | Path, format: str) -> Path:
    """Where the whole-speaker model of an export to ``out`` goes (model.speaker_blend)."""
    out = Path(out)
    if format == "saved_model":
        return out.with_name(out.name + "." + modelio.WHOLE_SPEAKER_DIR)
    return out.with_name(f"{out.stem}.{modelio.WHOLE_SPEAKER_DIR}{out.suffix}")


def export(model_dir: str | Path, out: str | Path, *, format: str) -> list[Path]:
    """Export the model folder ``model_dir`` to ``out`` in ``format``; return the paths written.

    Raises ConfigError for an unknown format or an ``out`` that an export did not write,
    DataError for a folder that is not a model, SerError when a needed package is missing.
    """
    if format not in FORMATS:
        raise ConfigError(
            f"--format: {format!r} is not allowed; choose one of: {', '.join(FORMATS)}"
        )
    out = Path(out)
    blend = modelio.read_meta(Path(model_dir))["blend"]  # fails fast, before TensorFlow starts
    _check_replaceable(out, format)
    if blend is not None:
        _check_replaceable(blend_path(out, format), format)
    _check_requirements(format)
    model, meta = modelio.load(Path(model_dir))
    description = describe(meta, model, format=format, file_name=out.name)
    written = []
    if blend is not None:
        companion = blend_path(out, format)
        written = export(Path(model_dir) / blend["folder"], companion, format=format)
        description["blend"] = {
            "file": companion.name,
            "recordings": blend["recordings"],
            "how": BLEND_HOW,
        }
    if format == "saved_model":
        with atomic_dir(out) as temporary:
            _write_saved_model(model, temporary)
            _readable_like_new_files(temporary)
            write_json(temporary / SAVED_MODEL_DESCRIPTION, description)
        return [out, *written]
    json_path = description_path(out, format)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        writer = _write_onnx if format == "onnx" else _write_tflite
        writer(model, temporary / out.name, work_dir=temporary)
        write_json(temporary / json_path.name, description)
        # The model first: a description never points at a model that is not there.
        os.replace(temporary / out.name, out)
        os.replace(temporary / json_path.name, json_path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return [out, json_path, *written]


def _readable_like_new_files(folder: Path) -> None:
    """mkdtemp makes folders private (0700); give the export the permissions of a new folder."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def describe(meta: dict, model, *, format: str, file_name: str) -> dict:
    """The JSON written beside an export: enough to compute its input and read its output.

    For a speaker-statistics model, ``speaker_input`` describes the second input (with
    ``how``: the two passes that compute it) and ``statistics_output`` the second output.
    For a speaker-normalised model, ``normalizer`` gives what standardises its input (with
    ``how``), and ``temperature`` what the log-probabilities are divided by.
    """
    shapes = _input_shapes(model)
    classes = list(meta["classes"])
    description = {
        "exported_by": EXPORTED_BY,
        "ser_version": __version__,
        "format": format,
        "file": file_name,
        "input": {
            "name": INPUT_NAME,
            "shape": [None, *shapes[INPUT_NAME]],
            "dtype": "float32",
        },
        "output": {"name": OUTPUT_NAME, "shape": [None, len(classes)], "dtype": "float32"},
    }
    if SPEAKER_INPUT_NAME in shapes:
        width = shapes[SPEAKER_INPUT_NAME][-1]
        description["speaker_input"] = {
            "name": SPEAKER_INPUT_NAME,
            "shape": [None, *shapes[SPEAKER_INPUT_NAME]],
            "dtype": "float32",
            "rows": ["mean", "max(std, scale_floor)"],
            "scale_floor": SCALE_FLOOR,
            "how": SPEAKER_HOW,
        }
        description["statistics_output"] = {
            "name": STATISTICS_OUTPUT_NAME,
            "shape": [None, width],
            "dtype": "float32",
        }
    if meta.get("normalizer") is not None:
        description["normalizer"] = {
            **meta["normalizer"],
            "how": NORMALIZER_HOW,
        }
    description["temperature"] = meta["calibration"]["temperature"]
    speeds = (meta.get("model") or {}).get("test_speeds") or []
    if speeds:
        description["speed_copies"] = {
            "speeds": list(speeds),
            "temperature": meta["model"].get("test_temperature", 1.0),
            "how": SPEED_HOW,
        }
    return {
        **description,
        "classes": classes,
        "features": meta["features"],
        "labels": meta.get("labels"),
        "model": meta.get("model"),
        "corpus": meta.get("corpus"),
    }


def _check_replaceable(out: Path, format: str) -> None:
    """Refuse to overwrite anything that an earlier export did not write."""
    description = description_path(out, format)
    if not out.exists() and not description.exists():
        return
    ours = out.is_dir() if format == "saved_model" else out.is_file()
    if ours and description.is_file():
        try:
            ours = read_json(description).get("exported_by") == EXPORTED_BY
        except (ValueError, AttributeError, OSError):
            ours = False
    else:
        ours = False
    if not ours:
        existing = out if out.exists() else description
        raise ConfigError(
            f"--out: {existing} exists and was not written by `ser export`; "
            "remove it or choose another path"
        )


def _check_requirements(format: str) -> None:
    import importlib.util

    missing = [
        pip for module, pip in REQUIREMENTS.get(format, []) if not importlib.util.find_spec(module)
    ]
    if missing:
        raise SerError(
            f"--format {format} needs the package(s) {', '.join(missing)}: "
            "pip install 'ser[export]'"
        )


def _input_shapes(model) -> dict[str, tuple[int, ...]]:
    """{exported input name: shape without the batch dimension}, in the model's input order:
    ``features``, then ``speaker_statistics`` for a model that takes speaker moments."""
    from ser.model.inference import SPEAKER_INPUT, needs_speakers

    if not needs_speakers(model):
        return {INPUT_NAME: tuple(int(size) for size in model.input_shape[1:])}
    shapes = {}
    for tensor in model.inputs:
        name = SPEAKER_INPUT_NAME if tensor.name == SPEAKER_INPUT else INPUT_NAME
        shapes[name] = tuple(int(size) for size in tensor.shape[1:])
    if sorted(shapes) != sorted((INPUT_NAME, SPEAKER_INPUT_NAME)):
        raise SerError(
            f"the model's inputs {[tensor.name for tensor in model.inputs]} are not "
            f"features and {SPEAKER_INPUT}: cannot export it"
        )
    return shapes


def _input_signature(model):
    import tensorflow as tf

    return [
        tf.TensorSpec((None, *shape), tf.float32, name=name)
        for name, shape in _input_shapes(model).items()
    ]


def _inference(model):
    """The exported computation, inference mode: features -> {"probabilities": ...}; for a
    speaker-statistics model, (features, speaker_statistics) -> {"probabilities": ...,
    "statistics": each clip's statistics as the member pools them}."""
    from ser.model.inference import POOLING_LAYER, needs_speakers

    if not needs_speakers(model):

        def serve(features):
            return {OUTPUT_NAME: model(features, training=False)}

        return serve
    order = list(_input_shapes(model))
    pooling = model.get_layer(POOLING_LAYER)

    def serve_with_speakers(features, speaker_statistics):
        given = {INPUT_NAME: features, SPEAKER_INPUT_NAME: speaker_statistics}
        return {
            OUTPUT_NAME: model([given[name] for name in order], training=False),
            STATISTICS_OUTPUT_NAME: pooling(features),
        }

    return serve_with_speakers


def _write_saved_model(model, folder: Path) -> None:
    """A SavedModel whose ``serving_default`` signature maps features (and speaker_statistics)
    to probabilities (and statistics)."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve", fn=_inference(model), input_signature=_input_signature(model)
    )
    with _quiet_tensorflow():
        archive.write_out(str(folder), verbose=False)


def _write_tflite(model, path: Path, *, work_dir: Path) -> None:
    """Float32 TFLite, converted from a SavedModel (keeps the signature's names)."""
    import tensorflow as tf

    saved_model = work_dir / "saved_model"
    _write_saved_model(model, saved_model)
    with _quiet_tensorflow():
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved_model), signature_keys=["serving_default"]
        )
        path.write_bytes(converter.convert())


def _write_onnx(model, path: Path, *, work_dir: Path) -> None:
    """ONNX via tf2onnx from the frozen inference graph.

    Freezing first matters: tf2onnx's from_function/from_keras turn the Normalization
    layer's statistics (constants captured by the graph) into extra model inputs.
    """
    import onnx
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(_inference(model), input_signature=_input_signature(model))
    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    # The graph's inputs follow the signature, its outputs the flattened (key-sorted) dict.
    input_names = [tensor.name for tensor in frozen.inputs]
    output_names = [tensor.name for tensor in frozen.outputs]
    renames = {
        **dict(zip(input_names, _input_shapes(model), strict=True)),
        **dict(zip(output_names, sorted(concrete.structured_outputs), strict=True)),
    }
    with _quiet_tensorflow():
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            name=model.name,
            input_names=input_names,
            output_names=output_names,
            opset=ONNX_OPSET,
            tensors_to_rename=renames,
        )
    # tf2onnx names the free batch dimension "unk__N"; call it what it is.
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


@contextlib.contextmanager
def _quiet_tensorflow() -> Iterator[None]:
    """Silence the converters' Python-side deprecation and progress logging."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
