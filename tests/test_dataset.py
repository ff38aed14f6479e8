import numpy as np
import pandas as pd
import pytest

from ser.data.dataset import Rows, check_subsets, labelled_clips, rows_of
from ser.data.labels import LabelSpec
from ser.errors import ConfigError

SPEC = LabelSpec(
    "valence2", {"positive": ("calm", "happy"), "negative": ("sad", "angry")}, "both", False
)


def frame(rows):
    return pd.DataFrame(
        rows, columns=["clip_id", "actor", "gender", "emotion", "channel", "subset"]
    )


ROWS = [
    ("a", 1, "male", "happy", "speech", "train"),
    ("b", 1, "male", "sad", "speech", "train"),
    ("c", 2, "female", "neutral", "speech", "train"),
    ("d", 3, "male", "angry", "speech", "val"),
    ("e", 4, "female", "calm", "speech", "test"),
]


def clips(rows=ROWS):
    data = frame(rows)
    return labelled_clips(
        data.drop(columns=["subset", "actor"]), data[["clip_id", "actor", "subset"]], SPEC
    )


def test_labelled_clips_drop_what_the_grouping_leaves_out():
    labelled = clips()
    assert list(labelled["clip_id"]) == ["a", "b", "d", "e"]
    assert list(labelled["y"]) == [0, 1, 1, 0]


def test_complete_subsets_pass():
    check_subsets(clips(), SPEC)


def test_a_class_without_training_clips_is_refused_before_training():
    rows = [row for row in ROWS if row[0] != "b"]
    with pytest.raises(
        ConfigError, match=r"labels\.grouping: class 'negative' of 'valence2' has no training clips"
    ):
        check_subsets(clips(rows), SPEC)


def test_an_empty_test_subset_after_labels_is_refused():
    rows = [row for row in ROWS if row[0] != "e"]
    with pytest.raises(ConfigError, match=r"split\.test_actors: no test clip is left"):
        check_subsets(clips(rows), SPEC)


def test_rows_of_finds_store_positions():
    assert list(rows_of(["x", "y", "z"], pd.Series(["z", "x", "w"]))) == [2, 0, -1]


def test_rows_read_the_chosen_rows_of_several_stores_in_order(rng):
    features = rng.standard_normal((6, 3, 2)).astype(np.float32)
    augmented = rng.standard_normal((4, 3, 2)).astype(np.float32)
    rows = Rows((features, [5, 0, 2]), (augmented, [3, 3]))
    expected = np.concatenate([features[[5, 0, 2]], augmented[[3, 3]]])
    assert rows.shape == (5, 3, 2) and len(rows) == 5 and rows.nbytes == expected.nbytes
    np.testing.assert_array_equal(np.asarray(rows), expected)
    np.testing.assert_array_equal(rows[[4, 0, 3]], expected[[4, 0, 3]])
    np.testing.assert_array_equal(rows[1:4], expected[1:4])
    with pytest.raises(IndexError, match="out of range"):
        rows[[5]]


def test_rows_refuse_stores_of_different_shapes(rng):
    with pytest.raises(ValueError, match="different row shapes"):
        Rows((np.zeros((2, 3, 2)), [0]), (np.zeros((2, 4, 2)), [1]))
