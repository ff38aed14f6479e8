"""Shared fixtures: a seeded rng, the project's params as a dict, small synthetic corpora."""

from __future__ import annotations

import copy
import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]

# Fuzz tests: a small, derandomised run in `make test` (the same examples every time, so CI
# is reproducible and fast); `make fuzz` loads "fuzz" for many more, freshly random examples.
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")

# Tests that train a Keras model or need a trained one (and the TensorFlow start-up that
# comes with it), or a local dask cluster (test_parallel's scheduler), are slow whether or
# not they carry the mark: `make test-fast` leaves them out and stays a unit-test loop.
# Closures count: a fixture built on tiny_model is one.
SLOW_FIXTURES = frozenset(
    {
        "tiny_model",
        "tiny_speaker_statistics_model",
        "tiny_blended_model",
        "tiny_strided_model",
        "fitted",
        "scheduler",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _librosa_compiled_once() -> None:
    """Tests call librosa directly too: import its compiled modules under the lock first, so
    that test workers starting together on a fresh install cannot corrupt numba's cache."""
    from ser.features.librosa_import import import_librosa

    import_librosa()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def default_params_dict() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def params_dict(default_params_dict) -> dict:
    """A fresh, mutable copy of params.yaml as a dict."""
    return copy.deepcopy(default_params_dict)


def set_key(params: dict, dotted: str, value) -> dict:
    """params['a']['b'] = value for dotted = 'a.b'; returns params."""
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value
    return params


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Synthetic RAVDESS-like clips of actors 1-4 (240 clips) under <dir>/speech."""
    from ser.data.corpora import synthetic

    root = tmp_path_factory.mktemp("corpus")
    synthetic.generate(root / "speech", seed=0, actors=[1, 2, 3, 4], sample_rate=16000)
    return root


def voice_between_pauses(rate: int, *, snr_db: float | None = None) -> np.ndarray:
    """One second of a voice that swells and fades (a 180 Hz tone), between half a second of
    pause each side; with snr_db, pink noise that far below it throughout (the channel
    module's), as a recording with background noise."""
    from ser.features import channel

    time = np.arange(rate) / rate
    voice = 0.5 * np.sin(np.pi * time) * np.sin(2 * np.pi * 180 * time)
    pause = np.zeros(rate // 2)
    clean = np.concatenate([pause, voice, pause]).astype(np.float32)
    if snr_db is None:
        return clean
    return channel.add_noise(clean, sample_rate=rate, seed=3, snr_db=snr_db)


def train_tiny_model(corpus: Path, folder: Path, **model_changes) -> Path:
    """A model folder trained for two epochs (its statistics member four) on the tiny
    synthetic corpus (emotions8) by the pipeline's training-data builder: actors 1-3 train,
    4 validates."""
    import dataclasses

    import pandas as pd

    from ser.data.labels import LabelSpec
    from ser.features import extract
    from ser.model import modelio
    from ser.params import parse_params
    from ser.training.data import build_training_data
    from ser.training.train import fit

    params = parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    params = dataclasses.replace(
        params,
        model=dataclasses.replace(
            params.model, **{"filters": 8, "stats_epochs": 4, **model_changes}
        ),
        train=dataclasses.replace(params.train, epochs=2),
    )
    spec = LabelSpec.from_params(params.labels)
    files = sorted((corpus / "speech").rglob("*.wav"))
    x, _ = extract.featurize_many([str(f) for f in files], params.features)
    y = np.array([int(f.stem.split("-")[2]) - 1 for f in files])
    actors = np.array([int(f.stem[-2:]) for f in files])
    clips = pd.DataFrame(
        {
            "clip_id": [f.stem for f in files],
            "subset": np.where(actors <= 3, "train", "val"),
            "label": [spec.class_names[i] for i in y],
            "y": y,
            "row": np.arange(len(files)),
            "speaker": actors,
        }
    )
    data = build_training_data(clips, x, params)
    model, history = fit(data, num_classes=8, model_params=params.model, train_params=params.train)
    meta = modelio.metadata(
        labels=spec,
        feature_settings=extract.describe(params.features),
        model_params=params.model,
        training={"epochs": 2},
        corpus="synthetic",
        actors={"train": [1, 2, 3], "val": [4], "test": []},
        validation={"best_epoch": history["best_epoch"]},
        normalizer=data.normalizer,
    )
    modelio.save(folder, model, meta)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_corpus, tmp_path_factory) -> Path:
    """A model folder of the default params, trained for two epochs on the tiny corpus."""
    return train_tiny_model(tiny_corpus, tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="session")
def tiny_strided_model(tiny_corpus, tmp_path_factory) -> Path:
    """As tiny_model, with model.stride: 2 (a strided first convolution)."""
    return train_tiny_model(tiny_corpus, tmp_path_factory.mktemp("strided") / "model", stride=2)


@pytest.fixture(scope="session")
def tiny_speaker_statistics_model(tiny_corpus, tmp_path_factory) -> Path:
    """As tiny_model, with model.stats_normalize: speaker (a two-input Keras model)."""
    folder = tmp_path_factory.mktemp("speaker-model") / "model"
    return train_tiny_model(tiny_corpus, folder, stats_normalize="speaker")


@pytest.fixture(scope="session")
def tiny_blended_model(tiny_model, tiny_speaker_statistics_model, tmp_path_factory) -> Path:
    """tiny_model with tiny_speaker_statistics_model as its whole-speaker model, blended in
    by model.speaker_blend 8, laid out as ser.training.run.Trained.save writes one (the
    whole-speaker model's normalizer without shrinkage, as Params.whole_speaker has it)."""
    import shutil

    from ser.fsutil import read_json, write_json
    from ser.model import modelio

    folder = tmp_path_factory.mktemp("blended") / "model"
    shutil.copytree(tiny_model, folder)
    shutil.copytree(tiny_speaker_statistics_model, folder / modelio.WHOLE_SPEAKER_DIR)
    companion = read_json(folder / modelio.WHOLE_SPEAKER_DIR / modelio.META_FILE)
    companion["normalizer"]["shrinkage"] = 0.0
    write_json(folder / modelio.WHOLE_SPEAKER_DIR / modelio.META_FILE, companion)
    meta = read_json(folder / modelio.META_FILE)
    meta["blend"] = {"folder": modelio.WHOLE_SPEAKER_DIR, "recordings": 8.0}
    write_json(folder / modelio.META_FILE, meta)
    return folder


@pytest.fixture
def http_folder(tmp_path):
    """Serve tmp_path/'www' on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
