"""Shared fixtures: a seeded rng, the project's params as a dict, small synthetic corpora."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


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
    from ser.corpora import synthetic

    root = tmp_path_factory.mktemp("corpus")
    synthetic.generate(root / "speech", seed=0, actors=[1, 2, 3, 4], sample_rate=16000)
    return root
