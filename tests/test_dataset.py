import pandas as pd
import pytest

from ser.dataset import check_subsets, labelled_clips, rows_of
from ser.errors import ConfigError
from ser.labels import LabelSpec

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
