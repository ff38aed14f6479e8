import pandas as pd
import pytest

from ser.data.labels import LabelSpec
from ser.params import parse_params
from tests.conftest import set_key

CLIPS = pd.DataFrame(
    {
        "emotion": ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
        * 2,
        "gender": ["male"] * 8 + ["female"] * 8,
    }
)


def spec(params_dict, **overrides) -> LabelSpec:
    for key, value in overrides.items():
        set_key(params_dict, f"labels.{key}", value)
    return LabelSpec.from_params(parse_params(params_dict).labels)


def test_emotions8_keeps_every_clip(params_dict):
    labels = spec(params_dict).assign(CLIPS)
    assert list(labels[:8]) == list(CLIPS["emotion"][:8])


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        ("emotions5", [None, "calm", "happy", "sad", "angry", "fearful", None, None]),
        (
            "valence3",
            ["neutral", "neutral", "positive", "negative", "negative", "negative", None, None],
        ),
        (
            "valence2",
            [None, "positive", "positive", "negative", "negative", "negative", None, None],
        ),
    ],
)
def test_groupings_map_and_drop(params_dict, grouping, expected):
    labels = spec(params_dict, grouping=grouping).assign(CLIPS)
    assert [None if pd.isna(v) else v for v in labels[:8]] == expected


def test_ten_class_2019_task_prefixes_gender(params_dict):
    labels = spec(params_dict, grouping="emotions5", by_gender=True)
    assert len(labels.class_names) == 10
    assert labels.class_names[:2] == ("male_calm", "male_happy")
    assert labels.label(emotion="sad", gender="female") == "female_sad"


def test_gender_filter_drops_the_other_gender(params_dict):
    labels = spec(params_dict, grouping="valence2", gender="male")
    assigned = labels.assign(CLIPS)
    assert assigned[8:].isna().all() and assigned[:8].notna().sum() == 5


def test_spec_survives_a_round_trip(params_dict):
    labels = spec(params_dict, grouping="valence3", gender="female", by_gender=True)
    assert LabelSpec.from_dict(labels.to_dict()) == labels
