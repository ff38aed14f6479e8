import pandas as pd
import pytest

from ser.errors import ConfigError, DataError
from ser.params import SplitParams
from ser.split import assign_subsets


def manifest(actors, hashes=None, excluded=None):
    rows = []
    for index, actor in enumerate(actors):
        rows.append(
            {
                "clip_id": f"clip{index}",
                "actor": actor,
                "content_hash": (hashes or {}).get(index, f"h{index}"),
                "excluded": (excluded or {}).get(index, ""),
            }
        )
    return pd.DataFrame(rows)


def test_each_actor_lands_in_exactly_one_subset():
    frame = manifest([1, 1, 2, 3, 4, 5, 6, 6])
    split = assign_subsets(frame, SplitParams(test_actors=(5, 6), val_actors=(4,)))
    assert split.groupby("actor")["subset"].nunique().max() == 1
    assert set(split.loc[split["subset"] == "test", "actor"]) == {5, 6}
    assert set(split.loc[split["subset"] == "val", "actor"]) == {4}
    assert set(split.loc[split["subset"] == "train", "actor"]) == {1, 2, 3}


def test_excluded_clips_are_not_split():
    split = assign_subsets(manifest([1, 1, 2, 3], excluded={0: "silent"}), SplitParams((3,), (2,)))
    assert "clip0" not in set(split["clip_id"])


def test_absent_test_actors_are_an_error_naming_the_key():
    with pytest.raises(
        ConfigError, match=r"split\.test_actors: none of actors \[21\] is in the corpus"
    ):
        assign_subsets(manifest([1, 2, 3]), SplitParams((21,), (2,)))


def test_no_training_actor_left_is_an_error():
    with pytest.raises(ConfigError, match="no actor is left to train on"):
        assign_subsets(manifest([1, 2]), SplitParams((1,), (2,)))


def test_identical_audio_in_two_subsets_is_refused():
    frame = manifest([1, 2, 3], hashes={0: "same", 2: "same"})
    with pytest.raises(DataError, match=r"identical audio in clip0 \(train\), clip2 \(test\)"):
        assign_subsets(frame, SplitParams((3,), (2,)))
