import dataclasses

import numpy as np
import pytest

from ser.features import augment, channel, extract
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
        params.augment,
        noise=False,
        shift=False,
        pitch=False,
        speed=False,
        gain=False,
        channels=(),
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


def test_a_channel_alone_makes_copies_through_that_channel(params, clips):
    only = dataclasses.replace(
        params.augment, pitch=False, speed=False, channels=("telephone",), copies=2
    )
    assert augment.build(only, sample_rate=16000) is None
    ids, matrix, failures = augment.augment_many(
        clips, feature_params=params.features, augment_params=only
    )
    assert failures == [] and ids == [clips[0][0]] * 2 + [clips[1][0]] * 2
    samples = extract.load_window(clips[0][1], params.features)
    through = channel.perturb(
        samples,
        name="telephone",
        sample_rate=16000,
        seed=augment.copy_seed(only.seed, clips[0][0], 0),
    )
    np.testing.assert_allclose(matrix[0], extract.compute(through, params.features), atol=1e-5)
    clean = extract.compute(samples, params.features)
    assert not np.allclose(matrix[0], clean, atol=1e-3)


def test_each_copy_draws_one_of_the_channels_the_same_way_every_run(params):
    settings = dataclasses.replace(params.augment, channels=("reverb", "noise_10db", "mp3"))
    drawn = [augment.copy_channel(settings, f"clip{n}", copy) for n in range(60) for copy in (0, 1)]
    assert set(drawn) == {"reverb", "noise_10db", "mp3"}
    assert drawn == [
        augment.copy_channel(settings, f"clip{n}", copy) for n in range(60) for copy in (0, 1)
    ]
    none = dataclasses.replace(params.augment, channels=())
    assert augment.copy_channel(none, "clip0", 0) is None


def test_transforms_then_channel_differ_from_the_transforms_alone(params, clips):
    both = dataclasses.replace(params.augment, channels=("noise_10db",))
    alone = dataclasses.replace(params.augment, channels=())
    samples = extract.load_window(clips[0][1], params.features)
    augmenter = augment.build(both, sample_rate=16000)
    with_channel = augment.augment_clip(
        samples, augmenter=augmenter, sample_rate=16000, seed=3, channel_name="noise_10db"
    )
    without = augment.augment_clip(
        samples, augmenter=augment.build(alone, sample_rate=16000), sample_rate=16000, seed=3
    )
    assert len(with_channel) == len(without) and not np.allclose(with_channel, without)


def test_the_store_says_which_copy_and_channel_each_row_is(params, clips, tmp_path):
    settings = dataclasses.replace(
        params.augment, pitch=False, channels=("quiet", "cheap_mic"), copies=3
    )
    written, failures = augment.augment_to_store(
        tmp_path / "a", clips, feature_params=params.features, augment_params=settings
    )
    copies, rows = augment.load_copies(tmp_path / "a")
    assert failures == [] and list(copies["clip_id"]) == written and len(rows) == 6
    assert list(copies["row"]) == list(range(6)) and list(copies["copy"]) == [0, 1, 2] * 2
    assert list(copies["channel"]) == [
        augment.copy_channel(settings, clip_id, copy)
        for clip_id, copy in zip(copies["clip_id"], copies["copy"], strict=True)
    ]
