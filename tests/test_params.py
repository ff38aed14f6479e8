import dataclasses
import re

import pytest
import yaml

from ser.errors import ConfigError
from ser.params import load_params, override, parse_params
from tests.conftest import ROOT, set_key


def test_default_params_validate(params_dict):
    params = parse_params(params_dict)
    assert params.data.corpus == "synthetic"
    assert params.labels.grouping == "emotions8"
    assert params.split.test_actors == (21, 22, 23, 24)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "labels.grouping",
            "emotions9",
            r"labels\.grouping: 'emotions9' is not allowed; choose one of: emotions8",
        ),
        (
            "data.corpus",
            "crema",
            r"data\.corpus: 'crema' is not allowed; choose one of: synthetic, ravdess",
        ),
        ("augment.noise", 1, r"augment\.noise: expected true or false, got 1"),
        ("augment.pitch", "yes", r"augment\.pitch: expected true or false, got 'yes'"),
        ("train.epochs", -1, r"train\.epochs: -1 is too small; must be >= 1"),
        ("train.epochs", 2.5, r"train\.epochs: expected an integer, got 2\.5"),
        (
            "train.label_smoothing",
            0.7,
            r"train\.label_smoothing: 0\.7 is too large; must be <= 0\.5",
        ),
        ("train.mixup", -0.2, r"train\.mixup: -0\.2 is too small; must be >= 0"),
        ("train.mixup", "yes", r"train\.mixup: expected a number, got 'yes'"),
        ("train.ema", 1.0, r"train\.ema: 1\.0 is too large; must be <= 0\.9999"),
        ("split.test_actors", [99], r"split\.test_actors: actor 99 does not exist"),
        ("split.val_actors", [], r"split\.val_actors: must name at least one actor"),
        (
            "split.val_actors",
            [20, 21],
            r"split\.val_actors: actor 21 is also in split\.test_actors",
        ),
        (
            "model.arch",
            "transformer",
            r"model\.arch: 'transformer' is not allowed; choose one of: auto, cnn, seed",
        ),
        (
            "labels.gender",
            "other",
            r"labels\.gender: 'other' is not allowed; choose one of: both, male, female",
        ),
        ("features.kind", "mel", r"features\.kind: 'mel' is not allowed"),
        (
            "features.normalize",
            "global",
            r"features\.normalize: 'global' is not allowed; choose one of: speaker, utterance",
        ),
        ("features.mels", -1, r"features\.mels: -1 is too small; must be >= 0"),
        ("features.prosody", "on", r"features\.prosody: expected true or false, got 'on'"),
        ("split.folds", 5, r"split\.folds: expected a list \[1, 2, \.\.\., k\] of at least 3"),
        ("split.folds", [1, 2], r"split\.folds: expected a list .* got \[1, 2\]"),
        ("split.folds", [1, 3, 4], r"split\.folds: expected a list .* got \[1, 3, 4\]"),
        (
            "data.ravdess.channels",
            ["speech", "video"],
            r"data\.ravdess\.channels: 'video' is not allowed",
        ),
        (
            "augment.only_classes",
            ["joy"],
            r"augment\.only_classes: 'joy' is not a class of grouping 'emotions8'",
        ),
        ("augment.pitch_min", 5.0, r"augment\.pitch_min: must not exceed augment\.pitch_max"),
        ("model.dilations", [2, 0], r"model\.dilations: expected a list of up to 8 dilation rates"),
        ("model.dilations", 2, r"model\.dilations: expected a list .* got 2$"),
        ("model.stats_weight", 1.5, r"model\.stats_weight: .*1"),
        ("model.stride", 0, r"model\.stride: 0 is too small; must be >= 1$"),
        ("model.stats_batch_size", 0.5, r"model\.stats_batch_size: expected an integer, got 0\.5"),
        (
            "model.stats_pooling",
            ["mean", "median"],
            r"model\.stats_pooling: expected a list of statistics from mean, std, diff, min, max",
        ),
        ("model.stats_pooling", [], r"model\.stats_pooling: expected a list of statistics"),
        (
            "augment.members",
            ["network", "teacher"],
            r"augment\.members: 'teacher' is not allowed; choose from: network, statistics$",
        ),
        (
            "augment.channels",
            ["telephone", "radio"],
            r"augment\.channels: 'radio' is not allowed; choose from: telephone, mp3, opus, ",
        ),
        ("model.stats_pooling", ["max", "max"], r"model\.stats_pooling: .*each once"),
        (
            "train.optimizer",
            "rmsprop",
            r"train\.optimizer: 'rmsprop' is not allowed; choose one of: adam, sgd",
        ),
        (
            "split.test_corpus",
            5,
            r"split\.test_corpus: expected null, a corpus name or a non-empty list of corpus "
            r"names, got 5",
        ),
        ("split.test_corpus", [], r"split\.test_corpus: expected null, a corpus name or a"),
        (
            "split.test_corpus",
            "emodb",
            r"split\.test_corpus: 'emodb' is not in data\.corpus; choose from: synthetic$",
        ),
        (
            "split.test_corpus",
            "synthetic",
            r"split\.test_corpus: names every corpus of data\.corpus \(synthetic\); leave at "
            r"least one to train on, or set it to null",
        ),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(params_dict, key, value, message):
    set_key(params_dict, key, value)
    with pytest.raises(ConfigError, match="^" + message) as error:
        parse_params(params_dict)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("test_corpus", "val_actors", "message"),
    [
        (["emodb", "synthetic"], [17], r"split\.test_corpus: names every corpus of data\.corpus"),
        (["emodb", "emodb"], [17], r"split\.test_corpus: a corpus is listed twice"),
        (["emodb", "tess"], [17], r"split\.test_corpus: 'tess' is not in data\.corpus; choose "),
        (
            "emodb",
            ["emodb:3", "emodb:8"],
            r"split\.val_actors: none of \['emodb:3', 'emodb:8'\] is a speaker of the corpora "
            r"outside split\.test_corpus \(synthetic\)",
        ),
        (
            "synthetic",
            [17, 18],
            r"split\.val_actors: none of \[17, 18\] is a speaker of the corpora outside "
            r"split\.test_corpus \(emodb\)",
        ),
    ],
)
def test_a_bad_test_corpus_of_several_names_the_key(params_dict, test_corpus, val_actors, message):
    set_key(params_dict, "data.corpus", ["synthetic", "emodb"])
    set_key(params_dict, "split.test_corpus", test_corpus)
    set_key(params_dict, "split.val_actors", val_actors)
    with pytest.raises(ConfigError, match="^" + message) as error:
        parse_params(params_dict)
    assert "\n" not in str(error.value)


def test_a_test_corpus_replaces_the_test_actors(params_dict):
    assert parse_params(params_dict).split.test_corpus == ()
    set_key(params_dict, "data.corpus", ["synthetic", "emodb", "savee"])
    set_key(params_dict, "data.savee.url", "/data/savee")
    set_key(params_dict, "split.test_corpus", "emodb")
    # val_actors may repeat test_actors, which a test corpus leaves unused
    set_key(params_dict, "split.val_actors", [21, 22])
    assert parse_params(params_dict).split.test_corpus == ("emodb",)
    set_key(params_dict, "split.test_corpus", ["savee", "emodb"])
    set_key(params_dict, "split.val_actors", [17, "synthetic:18"])
    assert parse_params(params_dict).split.test_corpus == ("savee", "emodb")


def test_grouping_with_unknown_emotion_is_refused(params_dict):
    params_dict["labels"]["groupings"]["mine"] = {"good": ["happy", "joyful"], "bad": ["sad"]}
    with pytest.raises(
        ConfigError, match=r"labels\.groupings\.mine\.good: emotion 'joyful' does not exist"
    ):
        parse_params(params_dict)


def test_emotion_in_two_classes_is_refused(params_dict):
    params_dict["labels"]["groupings"]["mine"] = {"a": ["happy"], "b": ["happy", "sad"]}
    with pytest.raises(
        ConfigError, match=r"labels\.groupings\.mine\.b: emotion 'happy' is already in class 'a'"
    ):
        parse_params(params_dict)


def test_user_grouping_is_data_not_code(params_dict):
    params_dict["labels"]["groupings"]["arousal"] = {
        "high": ["angry", "happy", "fearful", "surprised"],
        "low": ["calm", "sad", "neutral"],
    }
    params_dict["labels"]["grouping"] = "arousal"
    assert list(parse_params(params_dict).labels.classes) == ["high", "low"]


def test_unknown_and_missing_keys_are_named(params_dict):
    params_dict["train"]["epoch"] = 3
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key; allowed keys: seed, epochs"):
        parse_params(params_dict)
    del params_dict["train"]["epoch"]
    del params_dict["train"]["epochs"]
    with pytest.raises(ConfigError, match=r"train\.epochs: missing"):
        parse_params(params_dict)


def test_load_params_reports_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_null_training_settings_take_the_architecture_defaults(params_dict, tmp_path):
    from ser.training.train import TrainingSettings

    params = parse_params(params_dict)
    assert TrainingSettings.resolve(params.model, params.train).optimizer == "adam"
    set_key(params_dict, "model.arch", "seed")
    seed = parse_params(params_dict)
    settings = TrainingSettings.resolve(seed.model, seed.train)
    assert (settings.optimizer, settings.learning_rate, settings.batch_size) == ("sgd", 1e-4, 16)
    set_key(params_dict, "train.batch_size", 8)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params_dict))
    override = load_params(path)
    assert TrainingSettings.resolve(override.model, override.train).batch_size == 8


def _leaves(node: dict, prefix: str = ""):
    """Every setting of a params mapping as (dotted key, value); a grouping's class is one."""
    for name, value in node.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, dict):
            yield from _leaves(value, key)
        else:
            yield key, value


SETTINGS = dict(_leaves(yaml.safe_load((ROOT / "params.yaml").read_text())))
NUMBERS = [k for k, v in SETTINGS.items() if isinstance(v, int | float) and not isinstance(v, bool)]


@pytest.mark.parametrize("key", list(SETTINGS))
def test_every_key_refuses_a_wrong_value_naming_the_key_and_what_is_allowed(params_dict, key):
    set_key(params_dict, key, {"not": "a setting"})
    with pytest.raises(ConfigError) as error:
        parse_params(params_dict)
    message = str(error.value)
    assert message.startswith(f"{key}: ") and "\n" not in message
    assert any(word in message for word in ("expected", "choose", "allowed", "must")), message


@pytest.mark.parametrize("key", NUMBERS)
def test_every_number_refuses_a_value_out_of_range(params_dict, key):
    set_key(params_dict, key, -(10**9))
    pattern = "^" + re.escape(key) + r": -1000000000 is too small; must be >= "
    with pytest.raises(ConfigError, match=pattern):
        parse_params(params_dict)


@pytest.mark.parametrize(
    ("kind", "arch", "expected"),
    [
        ("mfcc", "auto", "cnn"),
        ("seed", "auto", "seed"),
        ("seed", "cnn", "cnn"),
        ("mfcc", "seed", "seed"),
    ],
)
def test_auto_arch_follows_the_feature_kind(params_dict, kind, arch, expected):
    """`-S features.kind=seed` alone is the 2019 setting; a named arch is kept as named."""
    set_key(params_dict, "features.kind", kind)
    set_key(params_dict, "model.arch", arch)
    assert parse_params(params_dict).model.arch == expected


def test_override_sets_a_dotted_key_as_dvc_exp_run_would():
    raw = {"model": {"epochs": 3, "name": "x"}}
    override(raw, "model.epochs=5")
    override(raw, "model.name=[a, b]")
    assert raw == {"model": {"epochs": 5, "name": ["a", "b"]}}


def test_a_warm_started_whole_speaker_model_takes_an_ensemble(params_dict):
    # Each network of the whole-speaker ensemble starts from its counterpart in the first.
    params_dict["model"].update(speaker_blend_warm_start=True, ensemble=3)
    model = parse_params(params_dict).model
    assert model.speaker_blend_warm_start and model.ensemble == 3


@pytest.mark.parametrize("assignment", ["model.epoch=5", "model.epochs", "nothing.epochs=1"])
def test_override_names_a_key_params_yaml_lacks(assignment):
    with pytest.raises(ConfigError, match="expected key=value with a key of params.yaml"):
        override({"model": {"epochs": 3}}, assignment)


@pytest.mark.parametrize("whole_draw", [True, False])
def test_the_whole_speaker_model_is_the_model_without_shrinkage_or_draws(params_dict, whole_draw):
    params_dict["model"]["speaker_whole_draw"] = whole_draw
    params = parse_params(params_dict)
    assert params.model.speaker_blend > 0
    whole = params.whole_speaker
    assert (whole.model.speaker_shrinkage, whole.model.speaker_draws) == (0.0, 1)
    assert whole.model.speaker_whole_draw  # its one draw is the whole speaker
    assert (whole.model.stats_normalize, whole.model.speaker_blend) == ("speaker", 0.0)
    # Everything else is the model's own.
    assert (
        dataclasses.replace(
            whole.model,
            speaker_shrinkage=params.model.speaker_shrinkage,
            speaker_draws=params.model.speaker_draws,
            speaker_whole_draw=params.model.speaker_whole_draw,
            stats_normalize=params.model.stats_normalize,
            speaker_blend=params.model.speaker_blend,
        )
        == params.model
    )
    assert (whole.features, whole.train, whole.labels) == (
        params.features,
        params.train,
        params.labels,
    )
    # No blend without one, or without speaker-standardised features.
    params_dict["model"]["speaker_blend"] = 0
    assert parse_params(params_dict).whole_speaker is None
    params_dict["model"]["speaker_blend"] = 8
    params_dict["features"]["normalize"] = "utterance"
    assert parse_params(params_dict).whole_speaker is None
