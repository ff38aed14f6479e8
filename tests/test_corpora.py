"""EmoDB, TESS, CREMA-D and SAVEE: file names, emotion tables, speakers, the corpus registry, and
the download stage taking each from a zip, a folder or an HTTP server, alone or several at once."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from ser.data import corpora
from ser.data.corpora import cremad, emodb, savee, tess
from ser.data.labels import LabelSpec
from ser.data.manifest import read_manifest
from ser.data.split import assign_subsets, sorted_speakers
from ser.errors import ConfigError
from ser.params import parse_params
from tests.conftest import set_key

ROOT = Path(__file__).resolve().parents[1]


def tables(params_dict) -> dict[str, dict[str, str]]:
    return {name: params_dict["data"][name]["emotions"] for name in corpora.MAPPED}


# --- file names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("corpus", "name", "expected"),
    [
        ("emodb", "03a01Fa.wav", ("03a01Fa", 3, "male", "happy", "a01", 1)),
        ("emodb", "16b10Lb.wav", ("16b10Lb", 16, "female", "boredom", "b10", 2)),
        ("emodb", "09a05Aa.wav", ("09a05Aa", 9, "female", "fearful", "a05", 1)),
        ("tess", "OAF_back_angry.wav", ("OAF_back_angry", 1, "female", "angry", "back", 1)),
        ("tess", "YAF_youth_ps.wav", ("YAF_youth_ps", 2, "female", "surprised", "youth", 1)),
        ("tess", "OAF_bath_Fear.wav", ("OAF_bath_fear", 1, "female", "fearful", "bath", 1)),
        ("savee", "DC_a01.wav", ("DC_a01", 1, "male", "angry", "01", 1)),
        ("savee", "KL/su15.wav", ("KL_su15", 4, "male", "surprised", "15", 1)),
        ("savee", "JE_sa03.wav", ("JE_sa03", 2, "male", "sad", "03", 1)),
        ("cremad", "1001_DFA_ANG_XX.wav", ("1001_DFA_ANG_XX", 1001, "unknown", "angry", "DFA", 1)),
        (
            "cremad",
            "1091_IEO_FEA_HI.wav",
            ("1091_IEO_FEA_HI", 1091, "unknown", "fearful", "IEO", 1),
        ),
    ],
)
def test_file_names_give_clip_speaker_gender_and_shared_emotion(
    params_dict, corpus, name, expected
):
    params = parse_params(params_dict).data
    clip = corpora.parser(params, corpus, Path("nowhere"))(Path("raw") / name)
    assert (
        clip.clip_id,
        clip.actor,
        clip.gender,
        clip.emotion,
        clip.statement,
        clip.repetition,
    ) == expected


@pytest.mark.parametrize(
    ("corpus", "name"),
    [
        ("emodb", "04a01Fa.wav"),  # no speaker 04
        ("emodb", "03a01Xa.wav"),  # no emotion X
        ("emodb", "03a01F.wav"),
        ("tess", "MAF_back_angry.wav"),
        ("tess", "OAF_back_calm.wav"),
        ("savee", "a01.wav"),  # no speaker folder
        ("savee", "XX_a01.wav"),
        ("savee", "DC_b01.wav"),
        ("cremad", "1000_DFA_ANG_XX.wav"),  # actors are 1001-1091
        ("cremad", "1001_ABC_ANG_XX.wav"),
        ("cremad", "1001_DFA_SUR_XX.wav"),
        ("cremad", "1001_DFA_ANG_ZZ.wav"),
        ("cremad", "03-01-05-02-01-01-12.wav"),
    ],
)
def test_names_of_other_corpora_or_unknown_codes_are_not_clips(params_dict, corpus, name):
    params = parse_params(params_dict).data
    assert corpora.parser(params, corpus, Path("nowhere"))(Path("raw") / name) is None


def test_cremad_genders_come_from_video_demographics(tmp_path):
    csv = tmp_path / "AudioWAV" / "VideoDemographics.csv"
    csv.parent.mkdir()
    csv.write_text(
        "\ufeffActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n1003,x,,Asian,Not Hispanic\n"
    )
    genders = cremad.read_genders(cremad.find_demographics(tmp_path))
    assert genders == {1001: "male", 1002: "female"}
    emotions = dict.fromkeys(cremad.CODES, "angry")
    assert cremad.parse_name("1002_TIE_SAD_LO", emotions, genders).gender == "female"
    assert cremad.parse_name("1003_TIE_SAD_LO", emotions, genders).gender == "unknown"


def test_every_speaker_has_a_gender_and_the_counts_match_the_corpora():
    assert sorted(emodb.GENDERS.values()).count("male") == 5 and len(emodb.SPEAKERS) == 10
    assert len(cremad.SPEAKERS) == 91 and len(savee.SPEAKERS) == 4 and len(tess.SPEAKERS) == 2


# --- the registry ---------------------------------------------------------------------------


def test_every_corpus_of_the_registry_declares_what_the_registry_needs(params_dict):
    data = parse_params(params_dict).data
    assert corpora.NAMES == ("synthetic", "ravdess", "emodb", "tess", "cremad", "savee")
    assert corpora.MAPPED == ("emodb", "tess", "cremad", "savee")
    titles = {"emodb": "EmoDB", "tess": "TESS", "cremad": "CREMA-D", "savee": "SAVEE"}
    for name, corpus in corpora.REGISTRY.items():
        assert importlib.import_module(f"ser.data.corpora.{name}").CORPUS is corpus
        assert corpus.name == name and corpus.title == titles.get(name, corpus.title)
        assert corpus.speakers == tuple(sorted(set(corpus.speakers))) and corpus.speakers[0] >= 1
        assert sorted(corpus.codes) == sorted(params_dict["data"][name].get("emotions", {}))
        assert callable(corpus.materialise)
        assert callable(corpus.parser(data, Path("nowhere")))
        assert corpus.describe(data).startswith(f"{name}: ")
    assert corpora.speakers("ravdess") == corpora.speakers("synthetic") == tuple(range(1, 25))


def test_an_unknown_corpus_is_a_one_line_error_naming_the_corpora(params_dict):
    data = parse_params(params_dict).data
    message = (
        "unknown corpus 'crema'; expected one of: synthetic, ravdess, emodb, tess, cremad, savee"
    )
    for call in (
        lambda: corpora.lookup("crema"),
        lambda: corpora.speakers("crema"),
        lambda: corpora.codes("crema"),
        lambda: corpora.parser(data, "crema", Path("nowhere")),
    ):
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value) == message


def test_the_registry_and_params_stay_cheap_to_import():
    # Every stage and benchmark validates params.yaml, which reads the registry; only
    # rendering the synthetic corpus needs scipy and soundfile.
    code = (
        "import sys; import ser.params; assert 'numpy' not in sys.modules; "
        "import ser.data.corpora; "
        "assert not {'scipy', 'soundfile', 'librosa'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- params -------------------------------------------------------------------------------


def test_default_tables_map_every_code_onto_ravdess_names_where_one_fits(params_dict):
    data = parse_params(params_dict).data
    assert data.emodb.emotions["F"] == "happy" and data.emodb.emotions["A"] == "fearful"
    assert data.emodb.emotions["L"] == "boredom"
    assert data.tess.emotions["ps"] == "surprised" and data.cremad.emotions["FEA"] == "fearful"
    assert data.savee.emotions["su"] == "surprised"
    assert data.emodb.url == emodb.URL
    assert set(data.emotions) - {"boredom"} == {
        "neutral",
        "calm",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
    }


def test_corpus_may_be_a_list(params_dict):
    set_key(params_dict, "data.corpus", ["ravdess", "emodb"])
    data = parse_params(params_dict).data
    assert data.corpus == "ravdess+emodb" and data.corpora == ("ravdess", "emodb")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("data.corpus", [], r"data\.corpus: must name at least one corpus"),
        ("data.corpus", ["emodb", "emodb"], r"data\.corpus: a corpus is listed twice"),
        ("data.corpus", ["emodb", "crema"], r"data\.corpus: 'crema' is not allowed"),
        (
            "data.emodb.emotions",
            {"W": "angry"},
            r"data\.emodb\.emotions: expected a mapping of each of the file-name codes "
            r"W, L, E, A, F, T, N",
        ),
        ("data.tess.emotions.ps", "Pleasant Surprise", r"data\.tess\.emotions\.ps: expected"),
        ("data.savee.emotions.a", None, r"data\.savee\.emotions\.a: expected an emotion name"),
        ("data.emodb.max_extract_bytes", 0, r"data\.emodb\.max_extract_bytes: 0 is too small"),
    ],
)
def test_bad_corpus_settings_name_the_key(params_dict, key, value, message):
    set_key(params_dict, key, value)
    with pytest.raises(ConfigError, match=message):
        parse_params(params_dict)


@pytest.mark.parametrize("corpus", ["tess", "cremad", "savee"])
def test_a_corpus_without_a_default_download_needs_a_url(params_dict, corpus):
    set_key(params_dict, "data.corpus", corpus)
    with pytest.raises(ConfigError, match=rf"data\.{corpus}\.url: {corpus} has no default"):
        parse_params(params_dict)


def test_groupings_may_use_a_corpus_own_emotion(params_dict):
    set_key(params_dict, "labels.groupings.arousal", {"low": ["boredom", "sad"], "high": ["angry"]})
    set_key(params_dict, "labels.grouping", "arousal")
    assert parse_params(params_dict).labels.classes["low"] == ("boredom", "sad")
    set_key(params_dict, "labels.groupings.arousal.low", ["bored"])
    with pytest.raises(ConfigError, match="emotion 'bored' does not exist; choose from: neutral"):
        parse_params(params_dict)


@pytest.mark.parametrize(
    ("corpus", "test_actors", "message"),
    [
        (
            "emodb",
            [4],
            r"split\.test_actors: actor 4 does not exist; expected actor numbers of "
            r"emodb: 3, 8, 9",
        ),
        (["ravdess", "emodb"], ["emodb:4"], r"actor 4 does not exist in emodb; its actors are 3"),
        (["ravdess", "emodb"], ["tess:1"], r"'tess:1' names corpus 'tess', which data\.corpus"),
        ("emodb", ["emodb"], r"split\.test_actors: expected a list of actor numbers, or of"),
    ],
)
def test_split_actors_must_exist_in_the_selected_corpora(params_dict, corpus, test_actors, message):
    set_key(params_dict, "data.corpus", corpus)
    set_key(params_dict, "split.test_actors", test_actors)
    set_key(params_dict, "split.val_actors", ["emodb:3"] if corpus != "emodb" else [3])
    with pytest.raises(ConfigError, match=message):
        parse_params(params_dict)


def test_split_actors_may_name_one_corpus(params_dict):
    set_key(params_dict, "data.corpus", ["ravdess", "emodb"])
    set_key(params_dict, "split.test_actors", [21, "emodb:03", "emodb:16"])
    set_key(params_dict, "split.val_actors", [17, "emodb:8"])
    split = parse_params(params_dict).split
    assert split.test_actors == (21, "emodb:3", "emodb:16")
    assert split.val_actors == (17, "emodb:8")


# --- speakers of several corpora -----------------------------------------------------------


def two_corpora() -> pd.DataFrame:
    """Actors 1-6 of a RAVDESS-like corpus and actors 3, 8, 9, 10 of EmoDB, two clips each."""
    rows = []
    speakers = [("ravdess", actor) for actor in range(1, 7)] + [
        ("emodb", actor) for actor in (3, 8, 9, 10)
    ]
    for corpus, actor in speakers:
        for take in (1, 2):
            rows.append(
                {
                    "clip_id": f"{corpus}:{actor}-{take}",
                    "corpus": corpus,
                    "actor": actor,
                    "gender": emodb.GENDERS[actor] if corpus == "emodb" else "unknown",
                    "content_hash": f"{corpus}{actor}{take}",
                    "excluded": "",
                }
            )
    return pd.DataFrame(rows)


def test_the_same_actor_number_in_two_corpora_is_two_speakers(params_dict):
    set_key(params_dict, "data.corpus", ["ravdess", "emodb"])
    set_key(params_dict, "split.test_actors", ["emodb:3", 6])
    set_key(params_dict, "split.val_actors", [5])
    set_key(params_dict, "split.folds", [1, 2, 3])
    split = assign_subsets(two_corpora(), parse_params(params_dict).split)
    subset = dict(zip(split["clip_id"], split["subset"], strict=True))
    assert subset["emodb:3-1"] == "test" and subset["ravdess:3-1"] == "train"
    assert subset["ravdess:6-2"] == "test" and subset["ravdess:5-1"] == "val"
    fold = dict(zip(split["clip_id"], split["fold"], strict=True))
    assert fold["emodb:3-1"] == 0 and fold["ravdess:3-1"] > 0
    assert fold["emodb:9-1"] == fold["emodb:9-2"] > 0
    speakers_per_fold = split[split["fold"] > 0].assign(
        speaker=lambda f: f["clip_id"].str.split("-").str[0]
    )
    assert speakers_per_fold.groupby("speaker")["fold"].nunique().max() == 1
    assert speakers_per_fold["speaker"].nunique() == 8  # 10 speakers less 2 test speakers
    test_speakers = split.loc[split["subset"] == "test", "speaker"]
    assert sorted_speakers(test_speakers) == ["emodb:3", "ravdess:6"]


def test_unknown_gender_is_kept_for_both_genders_only(params_dict):
    clips = pd.DataFrame({"emotion": ["angry", "boredom"], "gender": ["unknown", "female"]})
    both = LabelSpec.from_params(parse_params(params_dict).labels)
    assert list(both.assign(clips)) == ["angry", None]
    assert both.unmapped(clips) == {"boredom": 1}
    set_key(params_dict, "labels.gender", "female")
    assert list(LabelSpec.from_params(parse_params(params_dict).labels).assign(clips)) == [
        None,
        None,
    ]
    set_key(params_dict, "labels.gender", "both")
    set_key(params_dict, "labels.by_gender", True)
    assert LabelSpec.from_params(parse_params(params_dict).labels).assign(clips)[0] is None


# --- through the download stage -------------------------------------------------------------


def tone(path: Path, seed: int) -> None:
    """A 0.2 s clip: a sine whose pitch depends on seed, with a little noise."""
    rng = np.random.default_rng(seed)
    time = np.arange(3200) / 16000
    signal = 0.3 * np.sin(2 * np.pi * (120 + 10 * seed) * time) + 0.01 * rng.standard_normal(3200)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, 16000)


def write_clips(folder: Path, names: list[str]) -> Path:
    for seed, name in enumerate(names):
        tone(folder / name, seed)
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(folder).as_posix())
    return archive


EMODB = ["wav/03a01Fa.wav", "wav/03a01Wb.wav", "wav/08b02Lc.wav", "wav/16a05Ta.wav"]
TESS = ["OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_back_ps.wav"]
SAVEE = ["AudioData/DC/a01.wav", "AudioData/KL/sa02.wav", "AudioData/JE/n30.wav"]
CREMAD = ["AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1002_IEO_SAD_HI.wav"]
EMODB_SPLIT = {"split.test_actors": [3], "split.val_actors": [8]}


def run_download_stage(project: Path, settings: dict) -> subprocess.CompletedProcess:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in settings.items():
        set_key(params, key, value)
    project.mkdir(exist_ok=True)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "download.py")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_download_stage_takes_emodb_from_a_local_zip(tmp_path):
    archive = zip_folder(
        write_clips(tmp_path / "emodb", [*EMODB, "wav/readme.wav"]), tmp_path / "e.zip"
    )
    project = tmp_path / "project"
    result = run_download_stage(
        project, {"data.corpus": "emodb", "data.emodb.url": str(archive), **EMODB_SPLIT}
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project / "data" / "manifest.csv")
    assert list(manifest["clip_id"]) == ["03a01Fa", "03a01Wb", "08b02Lc", "16a05Ta"]
    assert list(manifest["emotion"]) == ["happy", "angry", "boredom", "sad"]
    assert list(manifest["gender"]) == ["male", "male", "female", "female"]
    assert list(manifest["actor"]) == [3, 3, 8, 16]
    assert set(manifest["corpus"]) == {"emodb"} and (manifest["excluded"] == "").all()
    assert (project / "data" / "raw" / "wav" / "03a01Fa.wav").is_file()
    assert not (project / "data" / "downloads").exists()  # a local archive is not copied


def test_download_stage_fetches_tess_over_http(http_folder, tmp_path):
    folder, base = http_folder
    zip_folder(write_clips(tmp_path / "tess", TESS), folder / "tess.zip")
    project = tmp_path / "project"
    result = run_download_stage(
        project,
        {
            "data.corpus": "tess",
            "data.tess.url": f"{base}/tess.zip?download=1",
            "split.test_actors": [1],
            "split.val_actors": [2],
        },
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project / "data" / "manifest.csv")
    assert list(manifest["clip_id"]) == ["OAF_back_angry", "YAF_back_ps"]
    assert list(manifest["emotion"]) == ["angry", "surprised"]
    assert list(manifest["actor"]) == [1, 2]
    assert (project / "data" / "downloads" / "tess.zip").is_file()


def test_download_stage_copies_savee_from_a_folder(tmp_path):
    source = write_clips(tmp_path / "savee", SAVEE)
    project = tmp_path / "project"
    result = run_download_stage(
        project,
        {
            "data.corpus": "savee",
            "data.savee.url": (source / "AudioData").as_uri(),
            "split.test_actors": [1],
            "split.val_actors": [2],
        },
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project / "data" / "manifest.csv")
    assert list(manifest["clip_id"]) == ["DC_a01", "JE_n30", "KL_sa02"]
    assert list(manifest["emotion"]) == ["angry", "neutral", "sad"]
    assert (project / "data" / "raw" / "KL" / "sa02.wav").is_file()
    assert (source / "AudioData" / "KL" / "sa02.wav").is_file()  # the source stays


def test_download_stage_refuses_a_source_without_clips_of_the_corpus(tmp_path):
    source = write_clips(tmp_path / "other", ["03-01-05-02-01-01-12.wav"])
    result = run_download_stage(
        tmp_path / "project", {"data.corpus": "emodb", "data.emodb.url": str(source), **EMODB_SPLIT}
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "holds no EmoDB clips (files named like 03a01Fa" in last


def test_download_stage_takes_several_corpora_into_one_manifest(tmp_path):
    emodb_zip = zip_folder(write_clips(tmp_path / "emodb", EMODB), tmp_path / "emodb.zip")
    cremad_dir = write_clips(tmp_path / "crema", CREMAD)
    (cremad_dir / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
    )
    project = tmp_path / "project"
    result = run_download_stage(
        project,
        {
            "data.corpus": ["emodb", "cremad"],
            "data.emodb.url": str(emodb_zip),
            "data.cremad.url": str(cremad_dir),
            "split.test_actors": ["emodb:3"],
            "split.val_actors": ["emodb:8"],
        },
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(project / "data" / "manifest.csv").set_index("clip_id")
    assert list(manifest.index) == [  # in the order of data.corpus
        "emodb:03a01Fa",
        "emodb:03a01Wb",
        "emodb:08b02Lc",
        "emodb:16a05Ta",
        "cremad:1001_DFA_ANG_XX",
        "cremad:1002_IEO_SAD_HI",
    ]
    assert manifest.loc["cremad:1001_DFA_ANG_XX", "gender"] == "male"
    assert manifest.loc["cremad:1002_IEO_SAD_HI", "gender"] == "unknown"  # not in the CSV
    assert manifest.loc["cremad:1002_IEO_SAD_HI", "intensity"] == "high"
    assert set(manifest["corpus"]) == {"emodb", "cremad"}
    assert (project / "data" / "raw" / "emodb" / "wav" / "03a01Fa.wav").is_file()
    assert (project / "data" / "raw" / "cremad" / "AudioWAV" / "1001_DFA_ANG_XX.wav").is_file()
    assert "emodb: 4 clips, 3 actors" in result.stderr


def test_download_stage_reports_emodb_names_with_unknown_codes(tmp_path):
    # Emotion X and speaker 04 do not exist in EmoDB; readme.wav is no clip name at all.
    strays = ["wav/03a01Xa.wav", "wav/04a01Fa.wav", "wav/readme.wav"]
    folder = write_clips(tmp_path / "emodb", [*EMODB, *strays])
    project = tmp_path / "project"
    result = run_download_stage(
        project, {"data.corpus": "emodb", "data.emodb.url": str(folder), **EMODB_SPLIT}
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((project / "data" / "manifest-summary.json").read_text())
    assert report["corpora"]["emodb"]["clips"] == 4
    assert report["corpora"]["emodb"]["skipped"] == 3
    assert sorted(report["corpora"]["emodb"]["skipped_examples"]) == sorted(strays)
    assert "emodb: 3 file(s) skipped" in result.stderr
