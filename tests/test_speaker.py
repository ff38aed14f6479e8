"""The speaker standardiser (ser.features.speaker): one recording to all of a speaker's."""

import numpy as np
import pytest

from ser.features.speaker import (
    ClipSums,
    Moments,
    SpeakerNormalizer,
    Standardized,
    draw_scales,
)
from tests.conftest import set_key


@pytest.fixture
def clips(rng):
    """Two speakers of six clips each, the second much "louder", (12, 10, 4)."""
    matrix = rng.normal(3.0, 2.0, size=(12, 10, 4)).astype(np.float32)
    matrix[6:] += 10.0
    return matrix, np.array(["a"] * 6 + ["b"] * 6)


def _clip_frame(speakers):
    """The clips fixture as the training-data builder takes them: of each speaker's six,
    four train and two validate, labels alternating 0 and 1."""
    import pandas as pd

    return pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(12)],
            "subset": ["train"] * 4 + ["val"] * 2 + ["train"] * 4 + ["val"] * 2,
            "y": np.arange(12) % 2,
            "row": np.arange(12),
            "speaker": speakers,
        }
    )


def test_moments_merge_exactly(clips):
    matrix, _ = clips
    merged = Moments.of(matrix[:4]) + Moments.of(matrix[4:9])
    whole = Moments.of(matrix[:9])
    assert merged.recordings == 9 and merged.frames == 90
    np.testing.assert_allclose(merged.mean, whole.mean)
    np.testing.assert_allclose(merged.var, matrix[:9].reshape(-1, 4).var(axis=0), rtol=1e-6)


def test_without_shrinkage_a_speaker_is_standardised_over_all_its_frames(clips):
    matrix, speakers = clips
    sums = ClipSums.of(matrix)
    normalizer = SpeakerNormalizer.fit(sums, speakers, shrinkage=0.0)
    for key in ("a", "b"):
        rows = np.flatnonzero(speakers == key)
        standard = normalizer.apply_group(matrix[rows], sums.group(rows))
        frames = standard[..., :4].reshape(-1, 4)
        np.testing.assert_allclose(frames.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(frames.std(axis=0), 1, atol=1e-4)
        np.testing.assert_array_equal(standard[..., 4], 1.0)  # trust: all of it


def test_shrinkage_pulls_one_recording_toward_the_population(clips):
    matrix, speakers = clips
    sums = ClipSums.of(matrix)
    normalizer = SpeakerNormalizer.fit(sums, speakers, shrinkage=2.0)
    np.testing.assert_allclose(
        normalizer.population_mean,
        (matrix[:6].mean(axis=(0, 1)) + matrix[6:].mean(axis=(0, 1))) / 2,
        rtol=1e-5,
    )
    one = sums.group(np.array([7]))
    mean, _, trust = normalizer.scale(one)
    np.testing.assert_allclose(mean, (one.mean + 2.0 * normalizer.population_mean) / 3.0)
    assert trust == pytest.approx(1 / 3)
    # One recording alone is not erased: its own standardised mean is not zero.
    standard = normalizer.apply_group(matrix[[7]], one)
    assert np.abs(standard[..., :4].mean(axis=(0, 1))).max() > 0.5
    assert standard.shape == (1, 10, normalizer.width) and normalizer.width == 5


def test_training_draws_cover_one_recording_to_all(clips):
    matrix, speakers = clips
    sums = ClipSums.of(matrix)
    normalizer = SpeakerNormalizer.fit(sums, speakers, shrinkage=2.0)
    whole = draw_scales(normalizer, sums, speakers, whole=True, seed=0)
    np.testing.assert_allclose(whole.trust, 6 / 8)
    drawn = [draw_scales(normalizer, sums, speakers, whole=False, seed=seed) for seed in range(20)]
    sizes = {round(2 * t / (1 - t)) for scales in drawn for t in scales.trust}
    assert sizes == {1, 2, 3, 4, 5, 6}  # k = 2 t / (1 - t) for shrinkage 2
    again = draw_scales(normalizer, sums, speakers, whole=False, seed=3)
    np.testing.assert_array_equal(again.mean, drawn[3].mean)  # seeded


def test_a_cap_on_the_draws_keeps_k_at_or_below_it(clips, params_dict):
    import dataclasses

    from ser.params import parse_params
    from ser.training.data import build_training_data

    matrix, speakers = clips
    sums = ClipSums.of(matrix)
    normalizer = SpeakerNormalizer.fit(sums, speakers, shrinkage=2.0)
    capped = [
        draw_scales(normalizer, sums, speakers, whole=False, seed=seed, most=3)
        for seed in range(20)
    ]
    sizes = {round(2 * t / (1 - t)) for scales in capped for t in scales.trust}
    assert sizes == {1, 2, 3}
    # The pipeline's param reaches the draws.
    params = parse_params({**params_dict, "model": {**params_dict["model"], "speaker_draw_max": 2}})
    assert params.model.speaker_draw_max == 2
    frame = _clip_frame(speakers)
    params = dataclasses.replace(params, model=dataclasses.replace(params.model, speaker_draws=3))
    trust = build_training_data(frame, matrix, params).x_train.scales.trust
    shrinkage = params.model.speaker_shrinkage
    assert set(np.rint(shrinkage * trust / (1 - trust)).tolist()) == {1.0, 2.0}


def test_standardized_rows_read_like_an_array(clips):
    matrix, speakers = clips
    sums = ClipSums.of(matrix)
    normalizer = SpeakerNormalizer.fit(sums, speakers, shrinkage=1.0)
    scales = draw_scales(normalizer, sums, speakers, whole=False, seed=0)
    rows = Standardized(matrix, scales, normalizer)
    assert rows.shape == (12, 10, 5) and len(rows) == 12
    np.testing.assert_array_equal(rows[np.array([3, 8])], np.asarray(rows)[[3, 8]])
    expected = normalizer.apply(matrix[[8]], scales.mean[8], scales.std[8], scales.trust[8])
    np.testing.assert_allclose(rows[np.array([8])], expected)


def test_the_normalizer_round_trips_through_json(clips):
    matrix, speakers = clips
    normalizer = SpeakerNormalizer.fit(ClipSums.of(matrix), speakers, shrinkage=2.0)
    again = SpeakerNormalizer.from_dict(normalizer.to_dict())
    np.testing.assert_array_equal(again.population_var, normalizer.population_var)
    assert again.shrinkage == 2.0


@pytest.mark.parametrize("whole_draw", [True, False])
def test_the_training_data_draws_the_whole_speaker_first_only_when_asked(
    clips, params_dict, whole_draw
):
    import dataclasses

    from ser.params import parse_params
    from ser.training.data import build_training_data

    matrix, speakers = clips
    params = parse_params(params_dict)
    params = dataclasses.replace(
        params,
        model=dataclasses.replace(params.model, speaker_draws=3, speaker_whole_draw=whole_draw),
    )
    frame = _clip_frame(speakers)
    data = build_training_data(frame, matrix, params)
    trust = data.x_train.scales.trust.reshape(3, 8)  # draws x training rows
    # k = s t / (1 - t) for shrinkage s
    sizes = np.rint(params.model.speaker_shrinkage * trust / (1 - trust))
    # With the whole draw, the first copy of every clip is standardised by its speaker's
    # four training clips; without, every copy by a random subset of one to four.
    assert (sizes[0] == 4).all() == whole_draw
    assert sizes.min() >= 1 and sizes.max() <= 4 and len(np.unique(sizes[1:])) > 1


@pytest.mark.parametrize("with_channels", [True, False])
def test_a_speakers_copies_are_standardised_among_those_of_the_same_channel(
    clips, params_dict, with_channels
):
    import dataclasses

    import pandas as pd

    from ser.params import parse_params
    from ser.training.data import build_training_data

    matrix, speakers = clips
    params = parse_params(params_dict)
    params = dataclasses.replace(
        params,
        model=dataclasses.replace(params.model, speaker_draws=1, speaker_whole_draw=True),
        augment=dataclasses.replace(params.augment, members=("network",)),
    )
    frame = _clip_frame(speakers).assign(label=np.where(np.arange(12) % 2, "b", "a"))
    training = frame[frame["subset"] == "train"]["clip_id"].tolist()
    # Two copies of every training clip (rows of the same matrix): copy 0 quiet, 1 reverb.
    copies = pd.DataFrame(
        {
            "clip_id": [clip for clip in training for _ in (0, 1)],
            "row": np.repeat(frame.index[frame["subset"] == "train"], 2),
            "channel": ["quiet", "reverb"] * len(training),
        }
    )
    if not with_channels:
        copies = copies.drop(columns="channel")
    data = build_training_data(frame, matrix, params, copies=copies, augmented=matrix)
    copy_keys = data.train_speakers[8:]
    trust = data.x_train.second.scales.trust
    sizes = np.rint(params.model.speaker_shrinkage * trust / (1 - trust))
    if with_channels:
        assert set(copy_keys) == {f"{s}|{c}" for s in set(speakers) for c in ("quiet", "reverb")}
        assert (sizes == 4).all()  # four copies of each speaker through each channel
    else:
        assert set(copy_keys) == set(speakers) and (sizes == 8).all()


def test_the_training_data_flags_which_statistics_copies_are_of_training_clips(clips, params_dict):
    import dataclasses

    import pandas as pd

    from ser.params import parse_params
    from ser.training.data import build_training_data

    matrix, speakers = clips
    params = parse_params(params_dict)
    params = dataclasses.replace(
        params,
        model=dataclasses.replace(
            params.model, speaker_draws=2, stats_weight=0.5, stats_normalize="speaker"
        ),
        augment=dataclasses.replace(params.augment, members=("statistics",)),
    )
    subset = np.array(["train"] * 4 + ["val"] * 2 + ["train"] * 4 + ["val"] * 2)
    frame = pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(12)],
            "subset": subset,
            "y": np.arange(12) % 2,
            "label": np.where(np.arange(12) % 2, "b", "a"),
            "row": np.arange(12),
            "speaker": speakers,
        }
    )
    # One copy of every clip, each through a channel: its speaker key is speaker|channel,
    # never a training speaker's key, yet the copies of training clips are flagged.
    copies = pd.DataFrame(
        {"clip_id": frame["clip_id"], "row": np.arange(12), "channel": ["quiet", "reverb"] * 6}
    )
    data = build_training_data(frame, matrix, params, copies=copies, augmented=matrix)
    assert not set(data.copy_speakers) & set(data.train_speakers)
    assert len(data.copy_in_train) == len(data.x_copies) == 2 * 12  # two draws
    np.testing.assert_array_equal(data.copy_in_train, np.tile(subset == "train", 2))
    np.testing.assert_array_equal(data.y_copies[data.copy_in_train], data.y_train)


@pytest.mark.parametrize("single", [True, False])
def test_the_statistics_member_draws_each_clip_alone_first_only_when_asked(
    clips, params_dict, single
):
    import dataclasses

    import pandas as pd

    from ser.params import parse_params
    from ser.training.data import build_training_data

    matrix, speakers = clips
    params = parse_params(set_key(params_dict, "model.stats_single_draw", single))
    params = dataclasses.replace(params, model=dataclasses.replace(params.model, speaker_draws=2))
    frame = _clip_frame(speakers).assign(label=np.where(np.arange(12) % 2, "b", "a"))
    # One copy of every clip through a channel (rows of the same matrix).
    copies = pd.DataFrame({"clip_id": frame["clip_id"], "row": frame["row"], "channel": "reverb"})
    data = build_training_data(frame, matrix, params, copies=copies, augmented=matrix)
    member = data.member_rows()
    network = (data.x_train, data.x_val, data.x_copies)
    if not single:
        assert data.member_x is None and all(m is n for m, n in zip(member, network, strict=True))
        return
    shrinkage = params.model.speaker_shrinkage
    # x_train: the training clips' draws, then those of their copies (the network's copies).
    pieces = [
        (member[0].first, network[0].first, 8),
        (member[0].second, network[0].second, 8),
        (member[1], network[1], 4),
        (member[2], network[2], 12),
    ]
    for mine, theirs, rows in pieces:
        assert len(mine) == len(theirs) == 2 * rows
        sizes = np.rint(shrinkage * mine.scales.trust / (1 - mine.scales.trust))
        assert (sizes[:rows] == 1).all()  # the first draw: each row by itself alone
        for field in ("mean", "std", "trust"):  # the other draw: the network's own
            np.testing.assert_array_equal(
                getattr(mine.scales, field)[rows:], getattr(theirs.scales, field)[rows:]
            )
    # The first training clip's first draw: what one recording alone gets from the normalizer.
    alone = data.normalizer.scale(ClipSums.of(matrix).group(np.array([0])))
    np.testing.assert_allclose(member[0].first.scales.mean[0], alone[0], rtol=1e-6)
    np.testing.assert_allclose(member[0].first.scales.std[0], alone[1], rtol=1e-6)
