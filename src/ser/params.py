"""params.yaml, validated once at the edge into typed, frozen dataclasses.

Every stage calls :func:`load_params`; nothing else in the library reads params.yaml.
A bad value raises :class:`~ser.errors.ConfigError` whose one-line message names the key
(``train.epochs``) and what is allowed, before any work starts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ser.errors import ConfigError

# The corpora (names, speakers, emotion codes, RAVDESS's emotions and channels) are read from
# the corpus registry, ser.data.corpora, inside the functions that check them: the registry
# loads numpy, and importing this module alone should stay cheap.
FEATURE_KINDS = ("mfcc", "seed")
NORMALIZATIONS = ("speaker", "utterance", "none")
PADDINGS = ("repeat", "zeros")
GENDERS = ("both", "male", "female")
# auto: the network made for features.kind (seed features: the 2019 network; else cnn)
ARCHS = ("auto", "cnn", "seed")
STATS_NORMALIZE = ("speaker", "none")
# model.test_speeds: how many copies a prediction may cost, and how far from 1 they may be.
MAX_TEST_SPEEDS = 4
TEST_SPEED_RANGE = (0.5, 2.0)
# Statistics over frames that model.stats_pooling may name (ser.model.layers.UtteranceStatistics):
# name -> the percentile it is (None: not a percentile). diff: the mean absolute change
# from one frame to the next.
UTTERANCE_STATISTICS = {
    "mean": None,
    "std": None,
    "diff": None,
    "min": 0.0,
    "max": 100.0,
    "p10": 10.0,
    "p25": 25.0,
    "p50": 50.0,
    "p75": 75.0,
    "p90": 90.0,
}
OPTIMIZERS = ("adam", "sgd")
# Which members of the model augment.members may name: they train on the augmented copies.
AUGMENTED_MEMBERS = ("network", "statistics")
# The channels augment.channels may name: ser.features.channel.PERTURBATIONS implements each
# (named here because data, below features, reads params; tests/test_channel.py checks that
# the two agree).
CHANNELS = (
    "telephone",
    "mp3",
    "opus",
    "reverb",
    "noise_20db",
    "noise_10db",
    "quiet",
    "cheap_mic",
)


@dataclass(frozen=True)
class SyntheticParams:
    seed: int
    actors: tuple[int, ...]
    sample_rate: int


@dataclass(frozen=True)
class RavdessParams:
    channels: tuple[str, ...]
    speech_url: str
    song_url: str
    max_extract_bytes: int


@dataclass(frozen=True)
class CorpusParams:
    """A corpus with its own emotion codes (EmoDB, TESS, CREMA-D, SAVEE)."""

    url: str | None  # http(s) URL, file:// URL, or local zip or folder; None: no default
    emotions: Mapping[str, str]  # file-name code -> emotion in the shared vocabulary
    max_extract_bytes: int


@dataclass(frozen=True)
class DataParams:
    corpus: str  # one corpus, or several joined by "+" (params.yaml: a name or a list)
    synthetic: SyntheticParams
    ravdess: RavdessParams
    emodb: CorpusParams
    tess: CorpusParams
    cremad: CorpusParams
    savee: CorpusParams
    silence_threshold: float

    @property
    def corpora(self) -> tuple[str, ...]:
        return tuple(self.corpus.split("+"))

    @property
    def emotions(self) -> tuple[str, ...]:
        """Every emotion a corpus can emit: RAVDESS's, then each table's own, in order."""
        from ser.data import corpora
        from ser.data.corpora import ravdess

        mapped = [
            emotion for name in corpora.MAPPED for emotion in getattr(self, name).emotions.values()
        ]
        return tuple(dict.fromkeys([*ravdess.EMOTIONS.values(), *mapped]))


@dataclass(frozen=True)
class FeatureParams:
    kind: str
    sample_rate: int
    n_mfcc: int
    deltas: bool
    mels: int
    prosody: bool
    n_fft: int
    hop_length: int
    window_seconds: float
    offset_seconds: float
    normalize: str
    pad: str
    n_jobs: int
    # The speech level (dBFS, RMS over the active frames) each clip is scaled to before its
    # features; None keeps the level it was recorded at.
    level_db: float | None
    # Leading and trailing frames within this many dB of the recording's noise floor are
    # trimmed as silence too (ser.features.extract.trim_silence); None: only those 40 dB below
    # its peak. The default lets a model's stored settings from before it build these params.
    trim_noise_db: float | None = None
    # Pauses inside a recording longer than this many seconds are shortened to it
    # (ser.features.extract.trim_silence); None keeps them. The default lets a model's stored
    # settings from before it build these params.
    max_pause_seconds: float | None = None
    # A dask.distributed scheduler address; None computes here, on n_jobs processes. The
    # default lets a model's stored feature settings (which leave it out) build these params.
    scheduler: str | None = None


@dataclass(frozen=True)
class SplitParams:
    # An actor number (that actor in every selected corpus) or "corpus:actor" ("emodb:3").
    test_actors: tuple[int | str, ...]
    val_actors: tuple[int | str, ...]
    folds: tuple[int, ...]
    # Cross-corpus evaluation: the corpora whose every clip tests (instead of test_actors);
    # () = off (params.yaml: null, a name or a list).
    test_corpus: tuple[str, ...] = ()

    @property
    def fold_count(self) -> int:
        return len(self.folds)


@dataclass(frozen=True)
class AugmentParams:
    seed: int
    copies: int
    noise: bool
    noise_amplitude: float
    shift: bool
    shift_seconds: float
    pitch: bool
    pitch_min: float
    pitch_max: float
    speed: bool
    speed_min: float
    speed_max: float
    gain: bool
    gain_min: float
    gain_max: float
    only_classes: tuple[str, ...]
    members: tuple[str, ...]
    # Channel perturbations (ser.features.channel) each copy goes through one of, after the
    # transforms above: the recording chains a user's clip may come through.
    channels: tuple[str, ...]

    @property
    def transforms_enabled(self) -> bool:
        """Whether any audiomentations transform is on (the channels are not among them)."""
        return self.noise or self.shift or self.pitch or self.speed or self.gain

    @property
    def any_enabled(self) -> bool:
        return self.transforms_enabled or bool(self.channels)

    @property
    def network_copies(self) -> bool:
        """Whether the network trains on the copies (of the training clips)."""
        return self.any_enabled and "network" in self.members

    @property
    def statistics_copies(self) -> bool:
        """Whether the statistics member trains on the copies (of the training and validation
        clips, like the member itself), where the model has such a member."""
        return self.any_enabled and "statistics" in self.members


@dataclass(frozen=True)
class LabelParams:
    grouping: str
    gender: str
    by_gender: bool
    groupings: Mapping[str, Mapping[str, tuple[str, ...]]]

    @property
    def classes(self) -> dict[str, tuple[str, ...]]:
        """The selected grouping: class name -> RAVDESS emotions, in params.yaml order."""
        return dict(self.groupings[self.grouping])


@dataclass(frozen=True)
class ModelParams:
    arch: str
    filters: int
    dropout: float
    l2: float
    spec_augment: bool
    noise: float
    ensemble: int = 1
    # Residual dilated Conv1D blocks after the cnn's two convolutions, one per rate.
    dilations: tuple[int, ...] = ()
    # The cnn's first convolution advances this many frames per output frame.
    stride: int = 1
    # A dense network on utterance statistics averaged in with this weight (0 = none).
    stats_weight: float = 0.0
    stats_units: int = 256
    stats_epochs: int = 60
    stats_batch_size: int = 32
    # Which statistics over frames of every feature the member sees (ser.model.layers).
    stats_pooling: tuple[str, ...] = ("mean", "std")
    # speaker: the member's statistics standardised over the clips of the same speaker;
    # none: over all training clips.
    stats_normalize: str = "none"
    # features.normalize: speaker: the member's first draw of every clip is standardised by
    # the clip alone (k = 1), its others as the network's.
    stats_single_draw: bool = False
    # features.normalize: speaker: pseudo-recordings of the training population in every
    # speaker estimate, and copies of each training row (the first standardised by all of its
    # speaker's clips when speaker_whole_draw, the others by random subsets of them;
    # ser.features.speaker).
    speaker_shrinkage: float = 2.0
    speaker_draws: int = 2
    speaker_whole_draw: bool = False
    # The most recordings a training draw standardises a clip by (None: all its speaker's).
    speaker_draw_max: int | None = None
    # > 0: a second, whole-speaker model is trained and blended in with weight
    # (k - 1) / (k - 1 + speaker_blend) for k recordings of a speaker (Params.whole_speaker).
    speaker_blend: float = 0.0
    # The whole-speaker model starts from the first model's trained network, not from
    # random weights.
    speaker_blend_warm_start: bool = False
    # How many of each clip's augment.copies the first model trains on (the first ones; None:
    # all); the whole-speaker model always trains on all of them.
    first_copies: int | None = None
    # Prediction: every recording is also judged played at these speeds (pitch and tempo
    # together, as augment.speed), and its probabilities are the mean over the recording and
    # these copies of it (ser.serve.recording.speed_copies).
    test_speeds: tuple[float, ...] = ()
    # The temperature of that mean: its log is divided by this and renormalised (below 1
    # sharpens it; the mean over copies is less confident than it is right).
    test_temperature: float = 1.0

    @property
    def statistics_member(self) -> bool:
        """Whether fit adds the statistics member (the cnn only; the 2019 network stays as is)."""
        return self.stats_weight > 0 and self.arch == "cnn"

    @property
    def speaker_statistics(self) -> bool:
        """Whether the model has a member whose statistics are standardised per speaker: its
        Keras model then takes each clip's speaker statistics as a second input."""
        return self.statistics_member and self.stats_normalize == "speaker"


@dataclass(frozen=True)
class TrainParams:
    seed: int
    epochs: int
    batch_size: int | None
    learning_rate: float | None
    optimizer: str | None
    early_stopping_patience: int
    reduce_lr_patience: int
    reduce_lr_factor: float
    class_weights: bool
    # Soft targets: label smoothing (0 = off) and mixup's Beta(alpha, alpha) (0 = off).
    label_smoothing: float = 0.0
    mixup: float = 0.0
    # The network's weights averaged over steps (the optimizer's exponential moving average,
    # this momentum per step; 0 = off): validation, the schedule and the kept checkpoint
    # all see the average.
    ema: float = 0.0


@dataclass(frozen=True)
class Params:
    data: DataParams
    features: FeatureParams
    split: SplitParams
    augment: AugmentParams
    labels: LabelParams
    model: ModelParams
    train: TrainParams

    @property
    def copies_used(self) -> bool:
        """Whether training uses the augmented copies: the network's (augment.members), or
        the statistics member's where the model has one."""
        return self.augment.network_copies or (
            self.augment.statistics_copies and self.model.statistics_member
        )

    @property
    def whole_speaker(self) -> Params | None:
        """The params of the model blended in for many recordings (model.speaker_blend), or
        None when there is none.

        The model above learns every number of recordings, so it cannot be as good as a model
        that only ever sees a speaker's features standardised by all of their recordings; at
        k = all that model is 3 to 5 points better (docs/experiments.md, E22). So this one is
        also trained: no shrinkage, one draw (the whole speaker), its statistics member
        standardised per speaker too, and prediction weighs it by (k - 1) / (k - 1 +
        speaker_blend): nothing for one recording alone.
        """
        speaker_features = self.features.kind == "mfcc" and self.features.normalize == "speaker"
        if self.model.speaker_blend <= 0 or not speaker_features:
            return None
        model = dataclasses.replace(
            self.model,
            speaker_shrinkage=0.0,
            speaker_draws=1,
            speaker_whole_draw=True,
            stats_normalize="speaker",
            stats_single_draw=False,
            speaker_blend=0.0,
            first_copies=None,
        )
        return dataclasses.replace(self, model=model)


# --- small typed readers: each names the full key and what is allowed ---------------------


class _Section:
    """A mapping under a dotted prefix that hands out typed values and rejects unknown keys."""

    def __init__(self, raw: Any, prefix: str, known: tuple[str, ...]):
        self.raw = raw
        self.prefix = prefix
        if not isinstance(raw, Mapping):
            where = prefix or "params.yaml"
            raise ConfigError(f"{where}: expected a mapping of settings, got {_show(raw)}")
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(
                f"{self.key(unknown[0])}: unknown key; allowed keys: {', '.join(known)}"
            )
        missing = [key for key in known if key not in raw]
        if missing:
            raise ConfigError(f"{self.key(missing[0])}: missing")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def boolean(self, name: str) -> bool:
        value = self.raw[name]
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {_show(value)}")
        return value

    def integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)}: expected an integer, got {_show(value)}")
        _check_range(self.key(name), value, minimum, maximum)
        return value

    def number(
        self, name: str, *, minimum: float | None = None, maximum: float | None = None
    ) -> float:
        value = self.raw[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.key(name)}: expected a number, got {_show(value)}")
        _check_range(self.key(name), value, minimum, maximum)
        return float(value)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.raw[name]
        if value not in allowed:
            raise ConfigError(
                f"{self.key(name)}: {_show(value)} is not allowed; choose one of: "
                + ", ".join(allowed)
            )
        return value

    def string(self, name: str) -> str:
        value = self.raw[name]
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.key(name)}: expected a non-empty string, got {_show(value)}")
        return value

    def actors(
        self, name: str, speakers: tuple[int, ...], *, allow_empty: bool = False
    ) -> tuple[int, ...]:
        """A list of some of ``speakers`` (consecutive numbers), each at most once."""
        value = self.raw[name]
        allowed = f"a list of actor numbers from {speakers[0]} to {speakers[-1]}"
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in value
        ):
            raise ConfigError(f"{self.key(name)}: expected {allowed}, got {_show(value)}")
        bad = [v for v in value if v not in speakers]
        if bad:
            raise ConfigError(
                f"{self.key(name)}: actor {bad[0]} does not exist; expected {allowed}"
            )
        if len(set(value)) != len(value):
            raise ConfigError(f"{self.key(name)}: an actor is listed twice in {value}")
        if not value and not allow_empty:
            raise ConfigError(f"{self.key(name)}: must name at least one actor")
        return tuple(value)

    def strings(self, name: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.raw[name]
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise ConfigError(f"{self.key(name)}: expected a list of names, got {_show(value)}")
        if allowed is not None:
            for item in value:
                if item not in allowed:
                    raise ConfigError(
                        f"{self.key(name)}: {item!r} is not allowed; choose from: "
                        + ", ".join(allowed)
                    )
        return tuple(value)

    def section(self, name: str, known: tuple[str, ...]) -> _Section:
        return _Section(self.raw[name], self.key(name), known)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _check_range(key: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: {value} is too small; must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: {value} is too large; must be <= {maximum}")


def _names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(cls))


def _optional(section: _Section, name: str, read) -> Any:
    return None if section.raw[name] is None else read(name)


# --- sections -----------------------------------------------------------------------------


def _data(section: _Section) -> DataParams:
    from ser.data import corpora
    from ser.data.corpora.ravdess import CHANNELS

    synthetic = section.section("synthetic", _names(SyntheticParams))
    ravdess = section.section("ravdess", _names(RavdessParams))
    allowed_channels = tuple(CHANNELS.values())
    channels = ravdess.strings("channels", allowed_channels)
    if not channels:
        raise ConfigError(
            "data.ravdess.channels: must name at least one of: " + ", ".join(allowed_channels)
        )
    selected = _corpora(section)
    return DataParams(
        corpus="+".join(selected),
        synthetic=SyntheticParams(
            seed=synthetic.integer("seed", minimum=0),
            actors=synthetic.actors("actors", corpora.speakers("synthetic")),
            sample_rate=synthetic.integer("sample_rate", minimum=8000, maximum=192000),
        ),
        ravdess=RavdessParams(
            channels=channels,
            speech_url=ravdess.string("speech_url"),
            song_url=ravdess.string("song_url"),
            max_extract_bytes=ravdess.integer("max_extract_bytes", minimum=1),
        ),
        **{name: _corpus(section, name, selected=name in selected) for name in corpora.MAPPED},
        silence_threshold=section.number("silence_threshold", minimum=0.0, maximum=1.0),
    )


def _corpora(section: _Section) -> tuple[str, ...]:
    from ser.data import corpora

    value = section.raw["corpus"]
    names = value if isinstance(value, list) else [value]
    if not names:
        raise ConfigError("data.corpus: must name at least one corpus")
    for name in names:
        if name not in corpora.NAMES:
            raise ConfigError(
                f"data.corpus: {_show(name)} is not allowed; choose one of: "
                + ", ".join(corpora.NAMES)
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"data.corpus: a corpus is listed twice in {names}")
    return tuple(names)


def _corpus(data: _Section, name: str, *, selected: bool) -> CorpusParams:
    from ser.data import corpora

    section = data.section(name, _names(CorpusParams))
    url = section.raw["url"]
    if url is None and selected:
        raise ConfigError(
            f"{section.key('url')}: {name} has no default download; set it to an http(s) "
            "URL, a file:// URL, or the path of your copy (zip or folder)"
        )
    raw = section.raw["emotions"]
    codes = corpora.codes(name)
    key = section.key("emotions")
    if not isinstance(raw, Mapping) or sorted(map(str, raw)) != sorted(codes):
        raise ConfigError(
            f"{key}: expected a mapping of each of the file-name codes {', '.join(codes)} "
            f"to an emotion, got {_show(raw)}"
        )
    emotions = {}
    for code, emotion in raw.items():
        if not isinstance(emotion, str) or not re.fullmatch(r"[a-z][a-z_]*", emotion):
            raise ConfigError(
                f"{key}.{code}: expected an emotion name in lower case (e.g. angry), "
                f"got {_show(emotion)}"
            )
        emotions[str(code)] = emotion
    return CorpusParams(
        url=None if url is None else section.string("url"),
        emotions=emotions,
        max_extract_bytes=section.integer("max_extract_bytes", minimum=1),
    )


def _features(section: _Section) -> FeatureParams:
    params = FeatureParams(
        kind=section.choice("kind", FEATURE_KINDS),
        sample_rate=section.integer("sample_rate", minimum=8000, maximum=96000),
        n_mfcc=section.integer("n_mfcc", minimum=1, maximum=128),
        deltas=section.boolean("deltas"),
        mels=section.integer("mels", minimum=0, maximum=256),
        prosody=section.boolean("prosody"),
        n_fft=section.integer("n_fft", minimum=64, maximum=8192),
        hop_length=section.integer("hop_length", minimum=16, maximum=8192),
        window_seconds=section.number("window_seconds", minimum=0.1, maximum=60.0),
        offset_seconds=section.number("offset_seconds", minimum=0.0, maximum=60.0),
        normalize=section.choice("normalize", NORMALIZATIONS),
        pad=section.choice("pad", PADDINGS),
        n_jobs=section.integer("n_jobs", minimum=0, maximum=256),
        level_db=_optional(
            section, "level_db", lambda key: section.number(key, minimum=-80.0, maximum=0.0)
        ),
        trim_noise_db=_optional(
            section, "trim_noise_db", lambda key: section.number(key, minimum=0.0, maximum=40.0)
        ),
        max_pause_seconds=_optional(
            section,
            "max_pause_seconds",
            lambda key: section.number(key, minimum=0.05, maximum=60.0),
        ),
        scheduler=_optional(section, "scheduler", lambda key: _scheduler(section, key)),
    )
    if params.hop_length > params.n_fft:
        raise ConfigError(
            f"features.hop_length: {params.hop_length} exceeds features.n_fft ({params.n_fft})"
        )
    return params


# What dask.distributed's Client accepts as a scheduler address: protocol://host[:port].
_SCHEDULER = re.compile(
    r"(tcp|tls|ucx|ws|wss)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?"
)


def _scheduler(section: _Section, name: str) -> str:
    value = section.raw[name]
    if not isinstance(value, str) or not _SCHEDULER.fullmatch(value):
        raise ConfigError(
            f"{section.key(name)}: expected null or a Dask scheduler address such as "
            f"'tcp://127.0.0.1:8786', got {_show(value)}"
        )
    return value


def _split(section: _Section) -> SplitParams:
    params = SplitParams(
        test_actors=_speakers(section, "test_actors"),
        val_actors=_speakers(section, "val_actors"),
        folds=_folds(section),
        test_corpus=_test_corpus(section),
    )
    shared = sorted(set(params.test_actors) & set(params.val_actors))
    if shared and not params.test_corpus:  # with a test corpus, test_actors is not used
        raise ConfigError(
            f"split.val_actors: actor {shared[0]} is also in split.test_actors; "
            "an actor may belong to one subset only"
        )
    return params


def _speakers(section: _Section, name: str) -> tuple[int | str, ...]:
    """Actor numbers, or "corpus:actor" strings naming one corpus's actor ("emodb:03")."""
    from ser.data import corpora

    allowed = "a list of actor numbers, or of 'corpus:actor' such as 'emodb:3'"
    value = section.raw[name]
    if not isinstance(value, list):
        raise ConfigError(f"{section.key(name)}: expected {allowed}, got {_show(value)}")
    speakers: list[int | str] = []
    for item in value:
        match = re.fullmatch(r"([a-z]+):(\d+)", item) if isinstance(item, str) else None
        if match is not None and match.group(1) in corpora.NAMES:
            speakers.append(f"{match.group(1)}:{int(match.group(2))}")
        elif isinstance(item, int) and not isinstance(item, bool) and item >= 1:
            speakers.append(item)
        else:
            raise ConfigError(f"{section.key(name)}: expected {allowed}, got {_show(item)}")
    if len(set(speakers)) != len(speakers):
        raise ConfigError(f"{section.key(name)}: an actor is listed twice in {value}")
    if not speakers:
        raise ConfigError(f"{section.key(name)}: must name at least one actor")
    return tuple(speakers)


def _test_corpus(section: _Section) -> tuple[str, ...]:
    """null (off), a corpus name or a list of names; checked against data.corpus later."""
    value = section.raw["test_corpus"]
    if value is None:
        return ()
    names = value if isinstance(value, list) else [value]
    if not names or any(not isinstance(name, str) for name in names):
        raise ConfigError(
            f"{section.key('test_corpus')}: expected null, a corpus name or a non-empty list "
            f"of corpus names, got {_show(value)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"{section.key('test_corpus')}: a corpus is listed twice in {names}")
    return tuple(names)


def _check_test_corpus(data: DataParams, split: SplitParams) -> None:
    """split.test_corpus names selected corpora, not all of them, and leaves val speakers."""
    from ser.data import corpora

    if not split.test_corpus:
        return
    for name in split.test_corpus:
        if name not in data.corpora:
            raise ConfigError(
                f"split.test_corpus: {_show(name)} is not in data.corpus; choose from: "
                + ", ".join(data.corpora)
            )
    remaining = [name for name in data.corpora if name not in split.test_corpus]
    if not remaining:
        raise ConfigError(
            f"split.test_corpus: names every corpus of data.corpus ({', '.join(data.corpora)}); "
            "leave at least one to train on, or set it to null"
        )
    if not any(
        speaker.split(":")[0] in remaining
        if isinstance(speaker, str)
        else any(speaker in corpora.speakers(name) for name in remaining)
        for speaker in split.val_actors
    ):
        raise ConfigError(
            f"split.val_actors: none of {list(split.val_actors)} is a speaker of the corpora "
            f"outside split.test_corpus ({', '.join(remaining)}); name validation speakers "
            "of those"
        )


def _check_speakers(data: DataParams, split: SplitParams) -> None:
    """Every actor split names exists in a selected corpus (or in the corpus it names)."""
    from ser.data import corpora

    for key in ("test_actors", "val_actors"):
        for speaker in getattr(split, key):
            if isinstance(speaker, int):
                if not any(speaker in corpora.speakers(name) for name in data.corpora):
                    ranges = "; ".join(
                        f"{name}: {_span(corpora.speakers(name))}" for name in data.corpora
                    )
                    raise ConfigError(
                        f"split.{key}: actor {speaker} does not exist; expected actor numbers "
                        f"of {ranges}"
                    )
                continue
            corpus, actor = speaker.split(":")
            if corpus not in data.corpora:
                raise ConfigError(
                    f"split.{key}: {speaker!r} names corpus {corpus!r}, which data.corpus "
                    f"does not select ({', '.join(data.corpora)})"
                )
            if int(actor) not in corpora.speakers(corpus):
                raise ConfigError(
                    f"split.{key}: actor {actor} does not exist in {corpus}; its actors are "
                    + _span(corpora.speakers(corpus))
                )


def _span(actors: tuple[int, ...]) -> str:
    if list(actors) == list(range(actors[0], actors[-1] + 1)):
        return f"{actors[0]} to {actors[-1]}"
    return ", ".join(map(str, actors))


def _folds(section: _Section) -> tuple[int, ...]:
    # A list rather than a count so that dvc.yaml can repeat the fold stages over it (foreach).
    value = section.raw["folds"]
    allowed = "a list [1, 2, ..., k] of at least 3 fold numbers, e.g. [1, 2, 3, 4, 5]"
    if not isinstance(value, list) or len(value) < 3 or value != list(range(1, len(value) + 1)):
        raise ConfigError(f"{section.key('folds')}: expected {allowed}, got {_show(value)}")
    return tuple(value)


def _augment(section: _Section) -> AugmentParams:
    params = AugmentParams(
        seed=section.integer("seed", minimum=0),
        copies=section.integer("copies", minimum=1, maximum=100),
        noise=section.boolean("noise"),
        noise_amplitude=section.number("noise_amplitude", minimum=1e-6, maximum=1.0),
        shift=section.boolean("shift"),
        shift_seconds=section.number("shift_seconds", minimum=0.0, maximum=10.0),
        pitch=section.boolean("pitch"),
        pitch_min=section.number("pitch_min", minimum=-24.0, maximum=24.0),
        pitch_max=section.number("pitch_max", minimum=-24.0, maximum=24.0),
        speed=section.boolean("speed"),
        speed_min=section.number("speed_min", minimum=0.1, maximum=10.0),
        speed_max=section.number("speed_max", minimum=0.1, maximum=10.0),
        gain=section.boolean("gain"),
        gain_min=section.number("gain_min", minimum=0.0, maximum=100.0),
        gain_max=section.number("gain_max", minimum=0.0, maximum=100.0),
        only_classes=section.strings("only_classes"),
        members=section.strings("members", allowed=AUGMENTED_MEMBERS),
        channels=section.strings("channels", allowed=CHANNELS),
    )
    for low, high in (
        ("pitch_min", "pitch_max"),
        ("speed_min", "speed_max"),
        ("gain_min", "gain_max"),
    ):
        if getattr(params, low) > getattr(params, high):
            raise ConfigError(f"augment.{low}: must not exceed augment.{high}")
    return params


def _labels(section: _Section, vocabulary: tuple[str, ...]) -> LabelParams:
    """Groupings over ``vocabulary``: RAVDESS's emotions and those of the corpora's tables."""
    raw_groupings = section.raw["groupings"]
    if not isinstance(raw_groupings, Mapping) or not raw_groupings:
        raise ConfigError("labels.groupings: expected a mapping of grouping name -> classes")
    groupings: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, classes in raw_groupings.items():
        key = f"labels.groupings.{name}"
        if not isinstance(classes, Mapping) or len(classes) < 2:
            raise ConfigError(f"{key}: expected at least two classes, each a list of emotions")
        seen: dict[str, str] = {}
        grouping: dict[str, tuple[str, ...]] = {}
        for class_name, emotions in classes.items():
            if not isinstance(emotions, list) or not emotions:
                raise ConfigError(f"{key}.{class_name}: expected a non-empty list of emotions")
            for emotion in emotions:
                if emotion not in vocabulary:
                    raise ConfigError(
                        f"{key}.{class_name}: emotion {emotion!r} does not exist; choose from: "
                        + ", ".join(vocabulary)
                    )
                if emotion in seen:
                    raise ConfigError(
                        f"{key}.{class_name}: emotion {emotion!r} is already in class "
                        f"{seen[emotion]!r}"
                    )
                seen[emotion] = str(class_name)
            grouping[str(class_name)] = tuple(emotions)
        groupings[str(name)] = grouping
    return LabelParams(
        grouping=section.choice("grouping", tuple(groupings)),
        gender=section.choice("gender", GENDERS),
        by_gender=section.boolean("by_gender"),
        groupings=groupings,
    )


def _model(section: _Section) -> ModelParams:
    model = ModelParams(
        arch=section.choice("arch", ARCHS),
        filters=section.integer("filters", minimum=1, maximum=1024),
        dropout=section.number("dropout", minimum=0.0, maximum=0.9),
        l2=section.number("l2", minimum=0.0, maximum=1.0),
        spec_augment=section.boolean("spec_augment"),
        noise=section.number("noise", minimum=0.0, maximum=10.0),
        ensemble=section.integer("ensemble", minimum=1, maximum=10),
        dilations=_dilations(section),
        stride=section.integer("stride", minimum=1, maximum=8),
        stats_weight=section.number("stats_weight", minimum=0.0, maximum=1.0),
        stats_units=section.integer("stats_units", minimum=1, maximum=4096),
        stats_epochs=section.integer("stats_epochs", minimum=1, maximum=10000),
        stats_batch_size=section.integer("stats_batch_size", minimum=1, maximum=65536),
        stats_pooling=_stats_pooling(section),
        stats_normalize=section.choice("stats_normalize", STATS_NORMALIZE),
        stats_single_draw=section.boolean("stats_single_draw"),
        speaker_shrinkage=section.number("speaker_shrinkage", minimum=0.0, maximum=1000.0),
        speaker_draws=section.integer("speaker_draws", minimum=1, maximum=10),
        speaker_whole_draw=section.boolean("speaker_whole_draw"),
        speaker_draw_max=_optional(
            section,
            "speaker_draw_max",
            lambda name: section.integer(name, minimum=1, maximum=100000),
        ),
        speaker_blend=section.number("speaker_blend", minimum=0.0, maximum=1000.0),
        speaker_blend_warm_start=section.boolean("speaker_blend_warm_start"),
        first_copies=_optional(
            section, "first_copies", lambda name: section.integer(name, minimum=1, maximum=100)
        ),
        test_speeds=_test_speeds(section),
        test_temperature=section.number("test_temperature", minimum=0.05, maximum=20.0),
    )
    return model


def _stats_pooling(section: _Section) -> tuple[str, ...]:
    value = section.raw["stats_pooling"]
    allowed = "a list of statistics from " + ", ".join(UTTERANCE_STATISTICS)
    if (
        not isinstance(value, list)
        or not value
        or any(v not in UTTERANCE_STATISTICS for v in value)
        or len(set(value)) != len(value)
    ):
        raise ConfigError(
            f"{section.key('stats_pooling')}: expected {allowed}, each once, got {_show(value)}"
        )
    return tuple(value)


def _test_speeds(section: _Section) -> tuple[float, ...]:
    value = section.raw["test_speeds"]
    allowed = (
        f"a list of up to {MAX_TEST_SPEEDS} speeds from {TEST_SPEED_RANGE[0]} to "
        f"{TEST_SPEED_RANGE[1]} other than 1, each once, e.g. [0.95, 1.05] (or [] for none)"
    )
    if (
        not isinstance(value, list)
        or len(value) > MAX_TEST_SPEEDS
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)
        or any(not TEST_SPEED_RANGE[0] <= v <= TEST_SPEED_RANGE[1] or v == 1 for v in value)
        or len(set(value)) != len(value)
    ):
        raise ConfigError(f"{section.key('test_speeds')}: expected {allowed}, got {_show(value)}")
    return tuple(float(v) for v in value)


def _dilations(section: _Section) -> tuple[int, ...]:
    value = section.raw["dilations"]
    allowed = "a list of up to 8 dilation rates from 1 to 64, e.g. [2, 4] (or [] for none)"
    if (
        not isinstance(value, list)
        or len(value) > 8
        or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64 for v in value)
    ):
        raise ConfigError(f"{section.key('dilations')}: expected {allowed}, got {_show(value)}")
    return tuple(value)


def _train(section: _Section) -> TrainParams:
    return TrainParams(
        seed=section.integer("seed", minimum=0),
        epochs=section.integer("epochs", minimum=1, maximum=10000),
        batch_size=_optional(section, "batch_size", lambda k: section.integer(k, minimum=1)),
        learning_rate=_optional(
            section, "learning_rate", lambda k: section.number(k, minimum=1e-8, maximum=10.0)
        ),
        optimizer=_optional(section, "optimizer", lambda k: section.choice(k, OPTIMIZERS)),
        early_stopping_patience=section.integer("early_stopping_patience", minimum=1),
        reduce_lr_patience=section.integer("reduce_lr_patience", minimum=1),
        reduce_lr_factor=section.number("reduce_lr_factor", minimum=0.01, maximum=0.99),
        class_weights=section.boolean("class_weights"),
        label_smoothing=section.number("label_smoothing", minimum=0.0, maximum=0.5),
        mixup=section.number("mixup", minimum=0.0, maximum=10.0),
        ema=section.number("ema", minimum=0.0, maximum=0.9999),
    )


def parse_params(raw: Any) -> Params:
    """Validate a params mapping (as read from params.yaml) into :class:`Params`."""
    root = _Section(raw, "", _names(Params))
    data = _data(root.section("data", _names(DataParams)))
    params = Params(
        data=data,
        features=_features(root.section("features", _names(FeatureParams))),
        split=_split(root.section("split", _names(SplitParams))),
        augment=_augment(root.section("augment", _names(AugmentParams))),
        labels=_labels(root.section("labels", _names(LabelParams)), data.emotions),
        model=_model(root.section("model", _names(ModelParams))),
        train=_train(root.section("train", _names(TrainParams))),
    )
    if params.model.arch == "auto":
        arch = "seed" if params.features.kind == "seed" else "cnn"
        params = dataclasses.replace(params, model=dataclasses.replace(params.model, arch=arch))
    _check_speakers(params.data, params.split)
    _check_test_corpus(params.data, params.split)
    from ser.data.labels import LabelSpec

    class_names = LabelSpec.from_params(params.labels).class_names
    unknown = [name for name in params.augment.only_classes if name not in class_names]
    if unknown:
        raise ConfigError(
            f"augment.only_classes: {unknown[0]!r} is not a class of grouping "
            f"{params.labels.grouping!r}; choose from: " + ", ".join(class_names)
        )
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise ConfigError naming the first bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the project root") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    return parse_params(raw)


def override(raw: dict, assignment: str) -> None:
    """Apply one `key=value` to a raw params.yaml mapping in place, as `dvc exp run -S` does:
    a dotted key that params.yaml already has, and a YAML value."""
    key, sep, text = assignment.partition("=")
    node: Any = raw
    *parents, last = key.split(".")
    for name in parents:
        node = node.get(name) if isinstance(node, dict) else None
    if not sep or not isinstance(node, dict) or last not in node:
        raise ConfigError(f"-S {assignment!r}: expected key=value with a key of params.yaml")
    node[last] = yaml.safe_load(text)
