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


@pytest.fixture(scope="session")
def tiny_model(tiny_corpus, tmp_path_factory) -> Path:
    """A model folder trained for two epochs on the tiny synthetic corpus (emotions8)."""
    import dataclasses

    from ser.data.labels import LabelSpec
    from ser.features import extract
    from ser.model import modelio
    from ser.params import parse_params
    from ser.training.train import fit

    params = parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    spec = LabelSpec.from_params(params.labels)
    clips = sorted((tiny_corpus / "speech").rglob("*.wav"))
    x, _ = extract.featurize_many([str(c) for c in clips], params.features)
    emotions = [c.stem.split("-")[2] for c in clips]
    y = np.array([int(code) - 1 for code in emotions])
    actors = np.array([int(c.stem[-2:]) for c in clips])
    if extract.by_speaker(params.features):  # as the featurize stage does
        x = extract.normalize_by_speaker(x, actors)
    model_params = dataclasses.replace(params.model, filters=8)
    train_params = dataclasses.replace(params.train, epochs=2)
    model, history = fit(
        x[actors <= 3],
        y[actors <= 3],
        x[actors == 4],
        y[actors == 4],
        num_classes=8,
        model_params=model_params,
        train_params=train_params,
        train_speakers=actors[actors <= 3],
        val_speakers=actors[actors == 4],
    )
    folder = tmp_path_factory.mktemp("model") / "model"
    meta = modelio.metadata(
        labels=spec,
        feature_settings=extract.describe(params.features),
        model_params=model_params,
        training={"epochs": 2},
        corpus="synthetic",
        actors={"train": [1, 2, 3], "val": [4], "test": []},
        validation={"best_epoch": history["best_epoch"]},
    )
    modelio.save(folder, model, meta)
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
