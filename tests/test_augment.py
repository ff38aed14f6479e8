import dataclasses

import numpy as np
import pytest

from ser.features import augment, extract
from ser.params import parse_params


@pytest.fixture
def params(params_dict):
    return parse_params(params_dict)


@pytest.fixture
def clips(tiny_corpus):
    names = ["03-01-05-02-01-01-01", "03-01-04-01-02-02-02"]
    return [
        (name, str(tiny_corpus / "speech" / f"Actor_0{name[-1]}" / f"{name}.wav")) for name in names
    ]


def test_nothing_enabled_means_no_copies(params, clips):
    nothing = dataclasses.replace(
        params.augment, noise=False, shift=False, pitch=False, speed=False, gain=False
    )
    ids, matrix, failures = augment.augment_many(
        clips, feature_params=params.features, augment_params=nothing
    )
    assert ids == [] and matrix.shape == (0, *extract.shape(params.features)) and failures == []


@pytest.mark.parametrize("transform", ["noise", "shift", "pitch", "speed", "gain"])
def test_each_transform_changes_the_audio_deterministically(params, clips, transform):
    settings = dataclasses.replace(params.augment, **{transform: True})
    augmenter = augment.build(settings, sample_rate=16000)
    samples = extract.load_window(clips[0][1], params.features)
    first = augment.augment_clip(samples, augmenter=augmenter, sample_rate=16000, seed=7)
    again = augment.augment_clip(samples, augmenter=augmenter, sample_rate=16000, seed=7)
    other = augment.augment_clip(samples, augmenter=augmenter, sample_rate=16000, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    if len(first) == len(samples):
        assert not np.allclose(first, samples)


def test_speed_change_lengthens_audio_within_the_configured_rates(params, clips):
    settings = dataclasses.replace(params.augment, speed=True, speed_min=0.8, speed_max=0.8)
    augmenter = augment.build(settings, sample_rate=16000)
    samples = extract.load_window(clips[0][1], params.features)
    slowed = augment.augment_clip(samples, augmenter=augmenter, sample_rate=16000, seed=1)
    assert len(slowed) == pytest.approx(len(samples) / 0.8, rel=0.01)


def test_gain_scales_loudness_by_the_configured_factor(params, clips):
    settings = dataclasses.replace(
        params.augment, pitch=False, speed=False, gain=True, gain_min=2.0, gain_max=2.0
    )
    augmenter = augment.build(settings, sample_rate=16000)
    samples = extract.load_window(clips[0][1], params.features)
    louder = augment.augment_clip(samples, augmenter=augmenter, sample_rate=16000, seed=1)
    np.testing.assert_allclose(louder, 2.0 * samples, rtol=1e-4, atol=1e-6)


def test_copies_are_identical_whatever_the_workers(params, clips):
    settings = dataclasses.replace(params.augment, noise=True, pitch=True, copies=2)
    serial = augment.augment_many(clips, feature_params=params.features, augment_params=settings)
    parallel = augment.augment_many(
        clips, feature_params=params.features, augment_params=settings, n_jobs=2
    )
    assert serial[0] == parallel[0] == [clips[0][0]] * 2 + [clips[1][0]] * 2
    np.testing.assert_array_equal(serial[1], parallel[1])
    assert not np.array_equal(serial[1][0], serial[1][1])  # two copies differ
