import numpy as np
import pytest

from ser.errors import ConfigError
from ser.model.build import build_model


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_seed_network_is_the_2019_architecture():
    model = build_model("seed", input_shape=(259, 1), num_classes=10)
    types = layer_types(model)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv1D"]
    assert [c.filters for c in convs] == [256, 256, 128, 128, 128, 128, 64, 64]
    assert all(c.kernel_size == (8,) for c in convs)
    assert types.count("BatchNormalization") == 2
    assert types.count("Dropout") == 2 and types.count("MaxPooling1D") == 2
    assert all(layer.rate == 0.25 for layer in model.layers if type(layer).__name__ == "Dropout")
    assert all(
        layer.pool_size == (8,) for layer in model.layers if type(layer).__name__ == "MaxPooling1D"
    )
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_default_cnn_takes_any_window_and_class_count():
    model = build_model("cnn", input_shape=(120, 26), num_classes=3, filters=8)
    assert model.output_shape == (None, 3)


def test_dilations_add_residual_dilated_blocks_of_the_given_rates():
    plain = build_model("cnn", input_shape=(120, 26), num_classes=3, filters=8)
    model = build_model("cnn", input_shape=(120, 26), num_classes=3, filters=8, dilations=(2, 4))
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv1D"]
    assert [c.dilation_rate for c in convs] == [(1,), (1,), (2,), (4,)]
    assert [c.filters for c in convs] == [8, 16, 16, 16]
    assert layer_types(model).count("Add") == 2 and "Add" not in layer_types(plain)
    assert model.output_shape == (None, 3)


def test_a_stride_makes_the_first_convolution_read_every_frame_and_keep_one_in_n():
    model = build_model("cnn", input_shape=(121, 26), num_classes=3, filters=8, stride=2)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv1D"]
    assert [c.strides for c in convs] == [(2,), (1,)]
    assert [c.output.shape[1] for c in convs] == [61, 61]
    assert model.output_shape == (None, 3)


def test_unknown_arch_is_refused():
    with pytest.raises(ConfigError, match="model.arch: 'lstm' is not allowed"):
        build_model("lstm", input_shape=(10, 2), num_classes=2)


@pytest.mark.slow
def test_default_model_saves_and_loads_with_its_custom_layers(tmp_path, rng):
    import subprocess
    import sys

    import numpy as np

    from ser.model import modelio

    model = build_model("cnn", input_shape=(40, 6), num_classes=3, filters=4, spec_augment=True)
    modelio.save(tmp_path / "model", model, {"classes": ["a", "b", "c"]})
    x = rng.standard_normal((2, 40, 6)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    # A fresh interpreter, as evaluate and `ser predict` are: nothing imported beforehand.
    code = (
        "import sys, numpy as np; from ser.model import modelio; "
        f"m, _ = modelio.load({str(tmp_path / 'model')!r}); "
        f"x = np.load({str(tmp_path / 'x.npy')!r}); "
        f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(x, verbose=0))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), atol=1e-6)


def test_utterance_statistics_are_numpys_over_frames(rng):
    from ser.model.layers import UtteranceStatistics

    x = rng.standard_normal((3, 301, 5)).astype(np.float32)
    names = ["p50", "mean", "std", "min", "max", "diff", "p10", "p25", "p75", "p90"]
    expected = [np.percentile(x, 50, axis=1), x.mean(axis=1), np.sqrt(x.var(axis=1) + 1e-5)]
    expected += [x.min(axis=1), x.max(axis=1), np.abs(np.diff(x, axis=1)).mean(axis=1)]
    expected += [np.percentile(x, q, axis=1) for q in (10, 25, 75, 90)]
    layer = UtteranceStatistics(names)
    np.testing.assert_allclose(np.asarray(layer(x)), np.concatenate(expected, axis=1), atol=1e-5)
    # Its NumPy twin (what `ser predict` pools a speaker's windows with) gives the same.
    np.testing.assert_allclose(layer.numpy(x), np.asarray(layer(x)), atol=1e-5)
    # Even frame counts too: the 50th percentile then falls between two frames.
    even = x[:, :300]
    np.testing.assert_allclose(
        np.asarray(UtteranceStatistics(["p50"])(even)), np.median(even, axis=1), atol=1e-6
    )


def test_a_schema_3_model_json_reads_as_one_that_kept_the_recorded_level():
    from ser.model import modelio

    old = {"schema": 3, "features": {"kind": "mfcc", "sample_rate": 16000}, "blend": None}
    upgraded = modelio.upgrade(old)
    assert upgraded["schema"] == modelio.SCHEMA and upgraded["features"]["level_db"] is None
    assert "level_db" not in old["features"]  # the caller's dict is left as it was
