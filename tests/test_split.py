import pandas as pd
import pytest

from ser.data.split import assign_subsets, fold_subsets, speakers_by_subset
from ser.errors import ConfigError, DataError
from ser.params import SplitParams as _SplitParams


def SplitParams(test_actors, val_actors, folds=(1, 2), test_corpus=()):  # noqa: N802 - stands in for the class
    return _SplitParams(
        test_actors=tuple(test_actors),
        val_actors=tuple(val_actors),
        folds=folds,
        test_corpus=tuple(test_corpus),
    )


def manifest(actors, hashes=None, excluded=None, corpora=None):
    """Clips clip0, clip1, ... of the given actors; ``corpora`` (one per clip) adds a corpus
    column."""
    rows = []
    for index, actor in enumerate(actors):
        rows.append(
            {
                "clip_id": f"clip{index}",
                "actor": actor,
                "gender": "male" if actor % 2 else "female",
                "content_hash": (hashes or {}).get(index, f"h{index}"),
                "excluded": (excluded or {}).get(index, ""),
                **({} if corpora is None else {"corpus": corpora[index]}),
            }
        )
    return pd.DataFrame(rows)


def ravdess_and_emodb() -> pd.DataFrame:
    """Two clips of each of RAVDESS actors 1-6 and of EmoDB actors 3 and 8."""
    speakers = [("ravdess", a) for a in range(1, 7)] + [("emodb", 3), ("emodb", 8)]
    clips = [speaker for speaker in speakers for _ in range(2)]
    return manifest([a for _, a in clips], corpora=[c for c, _ in clips])


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


def test_folds_hold_whole_actors_balanced_by_gender_and_never_the_test_actors():
    actors = [a for a in range(1, 13) for _ in range(3)]
    split = assign_subsets(manifest(actors), SplitParams((11, 12), (9, 10), folds=(1, 2, 3, 4, 5)))
    assert split.groupby("actor")["fold"].nunique().max() == 1
    assert set(split.loc[split["actor"].isin([11, 12]), "fold"]) == {0}
    fold_of = split.drop_duplicates("actor").set_index("actor")["fold"]
    for fold in range(1, 6):
        members = fold_of[fold_of == fold].index
        assert sorted(a % 2 for a in members) == [0, 1]  # one male, one female


def test_fold_subsets_test_on_the_fold_validate_on_the_next():
    actors = [a for a in range(1, 9) for _ in range(2)]
    split = assign_subsets(manifest(actors), SplitParams((7, 8), (5, 6), folds=(1, 2, 3)))
    fold_of = split.drop_duplicates("actor").set_index("actor")["fold"].to_dict()
    for fold in (1, 2, 3):
        run = fold_subsets(split, fold, 3)
        assert not run["actor"].isin([7, 8]).any()
        for actor, subset in zip(run["actor"], run["subset"], strict=True):
            expected = {fold: "test", fold % 3 + 1: "val"}.get(fold_of[actor], "train")
            assert subset == expected
    with pytest.raises(ConfigError, match="split.folds: fold 4 does not exist"):
        fold_subsets(split, 4, 3)


def test_more_folds_than_actors_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"split\.folds: 5 folds need at least 5 actors"):
        assign_subsets(manifest([1, 2, 3, 4]), SplitParams((4,), (3,), folds=(1, 2, 3, 4, 5)))


def test_identical_audio_in_two_folds_is_refused():
    frame = manifest([1, 2, 3, 4], hashes={0: "same", 1: "same"})
    with pytest.raises(DataError, match="more than one subset"):
        assign_subsets(frame, SplitParams((4,), (3,), folds=(1, 2, 3)))


def test_a_test_corpus_tests_on_every_clip_of_it_and_folds_hold_the_other_speakers():
    frame = ravdess_and_emodb()
    params = SplitParams((5,), (3,), folds=(1, 2, 3), test_corpus=("emodb",))
    split = assign_subsets(frame, params)
    subset_of = split.groupby("speaker")["subset"].agg(set).to_dict()
    # emodb:3 tests although val_actors names actor 3; ravdess:5 trains: test_actors is unused.
    assert subset_of == {
        "emodb:3": {"test"},
        "emodb:8": {"test"},
        "ravdess:3": {"val"},
        **{f"ravdess:{a}": {"train"} for a in (1, 2, 4, 5, 6)},
    }
    fold_of = split.groupby("speaker")["fold"].agg(set).to_dict()
    assert fold_of["emodb:3"] == fold_of["emodb:8"] == {0}
    ravdess_folds = [fold_of[f"ravdess:{a}"] for a in range(1, 7)]
    assert sorted(f for folds in ravdess_folds for f in folds) == [1, 1, 2, 2, 3, 3]
    for fold in (1, 2, 3):
        assert not fold_subsets(split, fold, 3)["speaker"].str.startswith("emodb").any()


def test_several_test_corpora_all_test():
    frame = ravdess_and_emodb()
    frame.loc[frame["actor"] == 8, "corpus"] = "savee"
    params = SplitParams((5,), (3,), folds=(1, 2, 3), test_corpus=("emodb", "savee"))
    split = assign_subsets(frame, params)
    assert set(split.loc[split["subset"] == "test", "speaker"]) == {"emodb:3", "savee:8"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            SplitParams((5,), (8,), folds=(1, 2, 3), test_corpus=("emodb",)),
            r"^split\.val_actors: none of actors \[8\] is in the corpora outside "
            r"split\.test_corpus; actors present there: \['ravdess:1', ",
        ),
        (
            SplitParams((5,), (3,), folds=(1, 2, 3), test_corpus=("tess",)),
            r"^split\.test_corpus: no usable clip of tess is in the manifest",
        ),
        (
            SplitParams((5,), (3,), folds=tuple(range(1, 8)), test_corpus=("emodb",)),
            r"^split\.folds: 7 folds need at least 7 actors outside split\.test_corpus; "
            r"the corpus has 6: \['ravdess:1'",
        ),
    ],
)
def test_a_test_corpus_that_leaves_no_val_speaker_or_has_no_clip_is_an_error(params, message):
    with pytest.raises(ConfigError, match=message):
        assign_subsets(ravdess_and_emodb(), params)


def test_speakers_by_subset_are_actor_numbers_with_one_corpus_and_keys_with_several():
    one = manifest([1, 2, 3])
    split = assign_subsets(one, SplitParams((3,), (2,), folds=(1, 2)))
    assert speakers_by_subset(split, one) == {"train": [1], "val": [2], "test": [3]}
    two = ravdess_and_emodb()
    split = assign_subsets(two, SplitParams((5,), (3,), folds=(1, 2, 3), test_corpus=("emodb",)))
    assert speakers_by_subset(split, two) == {
        "train": ["ravdess:1", "ravdess:2", "ravdess:4", "ravdess:5", "ravdess:6"],
        "val": ["ravdess:3"],
        "test": ["emodb:3", "emodb:8"],
    }
