import dataclasses

import numpy as np
import pytest

from ser.features import augment, extract, store
from ser.params import parse_params


@pytest.fixture
def matrix(rng):
    # Offsets and scales like log-mel energies (dB): far from zero mean, unit variance.
    rows = rng.normal(-40.0, 12.0, size=(11, 7, 5)).astype(np.float32)
    return rows + np.arange(5, dtype=np.float32) * 30.0


def write(folder, matrix, shard_clips=4):
    ids = [f"clip{index}" for index in range(len(matrix))]
    return store.write(
        folder,
        zip(ids, matrix, strict=True),
        row_shape=matrix.shape[1:],
        settings={"n_frames": matrix.shape[1]},
        shard_clips=shard_clips,
    )


def test_rows_are_written_in_shards_and_read_back_in_order(tmp_path, matrix):
    ids = write(tmp_path / "s", matrix)
    assert sorted(p.name for p in (tmp_path / "s").glob("features-*.npy")) == [
        "features-00000.npy",
        "features-00001.npy",
        "features-00002.npy",
    ]
    loaded_ids, rows, settings = store.load(tmp_path / "s")
    assert loaded_ids == ids == [f"clip{index}" for index in range(11)]
    assert rows.shape == matrix.shape and len(rows) == 11 and settings == {"n_frames": 7}
    np.testing.assert_array_equal(np.asarray(rows), matrix)


@pytest.mark.parametrize(
    "index",
    [3, -1, slice(2, 9), slice(None, None, -3), [10, 0, 4, 4, 5], np.arange(11) % 2 == 0],
    ids=["int", "negative", "slice", "reversed-slice", "unsorted-repeats", "mask"],
)
def test_sharded_rows_index_like_the_array(tmp_path, matrix, index):
    write(tmp_path / "s", matrix)
    _, rows, _ = store.load(tmp_path / "s")
    np.testing.assert_array_equal(rows[index], matrix[index])


def test_a_row_out_of_range_is_an_index_error(tmp_path, matrix):
    write(tmp_path / "s", matrix)
    _, rows, _ = store.load(tmp_path / "s")
    with pytest.raises(IndexError, match="out of range"):
        rows[[0, 11]]


def test_shards_reach_disk_while_rows_are_still_coming(tmp_path, matrix):
    folder = tmp_path / "s"

    def rows():
        for index, row in enumerate(matrix):
            if index == 9:  # two shards of four are complete by now
                assert (folder / "features-00001.npy").exists()
            yield f"clip{index}", row

    store.write(folder, rows(), row_shape=matrix.shape[1:], settings={}, shard_clips=4)


def test_an_empty_store_keeps_its_row_shape(tmp_path):
    store.write(tmp_path / "s", iter([]), row_shape=(7, 5), settings={})
    ids, rows, _ = store.load(tmp_path / "s")
    assert ids == [] and rows.shape == (0, 7, 5) and np.asarray(rows).shape == (0, 7, 5)


def test_a_store_of_one_array_from_before_sharding_still_reads(tmp_path, matrix):
    folder = tmp_path / "old"
    folder.mkdir()
    np.save(folder / "features.npy", matrix)
    (folder / "clips.txt").write_text("".join(f"c{index}\n" for index in range(11)))
    (folder / "settings.json").write_text("{}")
    _, rows, _ = store.load(folder)
    np.testing.assert_array_equal(rows[[5, 1]], matrix[[5, 1]])


def test_featurize_to_store_equals_featurize_many(params_dict, tiny_corpus, tmp_path):
    params = parse_params(params_dict).features
    paths = sorted(str(p) for p in (tiny_corpus / "speech" / "Actor_02").glob("*.wav"))[:5]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt nonsense")
    paths.insert(2, str(broken))
    clip_ids = [f"id{index}" for index in range(len(paths))]
    written, failures = extract.featurize_to_store(
        tmp_path / "s", list(zip(clip_ids, paths, strict=True)), params, shard_clips=2
    )
    assert written == ["id0", "id1", "id3", "id4", "id5"]
    assert [clip for clip, _ in failures] == ["id2"] and failures[0][1].startswith("unreadable")
    expected, _ = extract.featurize_many(paths, params)
    ids, rows, settings = extract.load_store(tmp_path / "s")
    assert ids == written and settings == extract.describe(params)
    assert len(list((tmp_path / "s").glob("features-*.npy"))) == 3
    np.testing.assert_array_equal(np.asarray(rows), expected[[0, 1, 3, 4, 5]])


def test_augment_to_store_equals_augment_many(params_dict, tiny_corpus, tmp_path):
    params = parse_params(params_dict)
    settings = dataclasses.replace(params.augment, noise=True, copies=2)
    clips = [
        (path.stem, str(path))
        for path in sorted((tiny_corpus / "speech" / "Actor_03").glob("*.wav"))[:2]
    ]
    expected_ids, expected, _ = augment.augment_many(
        clips, feature_params=params.features, augment_params=settings
    )
    ids, failures = augment.augment_to_store(
        tmp_path / "a",
        clips,
        feature_params=params.features,
        augment_params=settings,
        shard_clips=3,
    )
    assert ids == expected_ids and failures == [] and len(ids) == 4
    np.testing.assert_array_equal(np.asarray(store.load(tmp_path / "a")[1]), expected)
