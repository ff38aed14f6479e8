"""Training: seeded, deterministic Keras fitting that keeps the best-val_loss weights.

Training data up to IN_MEMORY_BYTES is read into memory and fitted as arrays; more (a large
corpus's feature store on disk, ser.features.store) is read batch by batch from disk and never
held whole (blocks of ser.model.inference.READ_ROWS rows).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ser.model import inference
from ser.model.build import DEFAULTS, build_model
from ser.model.inference import POOLING_LAYER, SPEAKER_INPUT, SpeakerMoments, predict_proba
from ser.params import ModelParams, TrainParams
from ser.training.data import TrainingData

# Training and validation data up to this size are fitted in memory, as arrays; above it,
# from disk in batches (an order of its own: the same seed gives other, equally
# deterministic weights than the in-memory fit of the same data would). Streaming
# reads and standardises every batch in Python as it trains, an epoch 1.1 to 1.4 times as
# long (benchmarks/fit_speed.py). The limit lets the corpora a user trains on a laptop fit:
# RAVDESS speech with 16 training actors and 4 validating (the default split of the whole
# corpus) comes to 1.11 GB with its draws and copies, speech and song to about 1.9 GB. A
# fixed size, not a share of free memory, so that the same params train the same model on
# every machine.
IN_MEMORY_BYTES = 2 << 30
# What the statistics member's fused model appends to its network's name: held-out
# calibration finds the network inside by it.
WITH_STATISTICS = "_with_statistics"
# Batches Keras runs in one call into TensorFlow. The updates are those of one batch a call,
# in the same order (tests/test_train.py pins the weights), without the Python round trip
# after every batch: about a third of the small statistics member's fit
# (docs/experiments.md E54).
STEPS_PER_EXECUTION = 32


@dataclass(frozen=True)
class TrainingSettings:
    """Train params with the architecture's defaults filled in for the null ones."""

    optimizer: str
    learning_rate: float
    batch_size: int

    @classmethod
    def resolve(cls, model: ModelParams, train: TrainParams) -> TrainingSettings:
        defaults = DEFAULTS[model.arch]
        return cls(
            optimizer=train.optimizer or defaults.optimizer,
            learning_rate=train.learning_rate or defaults.learning_rate,
            batch_size=train.batch_size or defaults.batch_size,
        )


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend; on TensorFlow, ask for deterministic kernels.

    With op determinism on, TensorFlow's CPU kernels give the same results run after run
    (Keras docs: keras.utils.set_random_seed + tf.config.experimental.enable_op_determinism).
    Another Keras backend (``KERAS_BACKEND=jax``, say, on a machine without TensorFlow) is
    seeded the same way, with whatever determinism its own kernels have.
    """
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights inversely proportional to class frequency, averaging 1 over the training set."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return {index: float(weight) for index, weight in enumerate(weights)}


def fit(
    data: TrainingData,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 0,
    in_memory: bool | None = None,
    start=None,
):
    """Train on ``data`` (ser.training.data.build_training_data, or a TrainingData of
    arrays), from random weights unless ``start`` is given, and return (model with the
    best-val_loss weights, history dict).

    With ``model_params.ensemble`` = n > 1, n networks are trained one after the other, each
    as below with training seed ``seed + i``, and the model returned averages their class
    probabilities: one Keras model (an Average over n nested networks). The history is the
    first member's; ``history["members"]`` gives each member's kept epoch and validation
    scores and ``history["ensemble"]`` the averaged model's. ``on_epoch_end`` sees every
    member's epochs, one after the other.

    With ``model_params.stats_weight`` = w > 0 and the cnn architecture (not the 2019
    network), a second member joins: a dense network on each clip's utterance
    statistics (``stats_pooling``: the mean, standard deviation, extremes or percentiles of
    every feature over its frames; input dropout 0.2, ``stats_units`` ReLU units, dropout
    0.5, softmax), trained with Adam for a fixed ``stats_epochs`` epochs on the training
    and validation clips together (it has no early stopping to feed). The model returned
    gives (1 - w) x the network's (or ensemble's) probabilities + w x the member's, still one
    Keras model; ``history["statistics"]`` = {"weight", "epochs", "clips", "copies",
    "pooling", "normalize"}. ``data.x_copies``, ``data.y_copies``: augmented copies that
    the statistics member trains on as well (the network trains on x_train alone: put
    copies there for it).

    With ``model_params.stats_normalize`` = "speaker", the member's statistics are first
    standardised over the clips of the same speaker (SpeakerMoments): ``data``'s
    ``train_speakers``, ``val_speakers`` and ``copy_speakers`` give one speaker key per row
    of x_train, x_val and x_copies (a speaker's copies are standardised over its copies).
    The model returned then takes two inputs: the features and each clip's speaker moments
    (SPEAKER_INPUT, (2, width)); predict_proba(model, x, speakers=...) computes them.

    ``start``: a model this function returned for the same architecture, features and
    model.ensemble; each network starts from its counterpart's weights (the ensemble's
    member of the same number) instead of random ones, all but the input standardisation,
    which is adapted to ``data`` as ever.
    """
    arguments = dict(
        num_classes=num_classes,
        model_params=model_params,
        train_params=train_params,
        on_epoch_end=on_epoch_end,
        verbose=verbose,
        in_memory=in_memory,
    )
    subsets = (data.x_train, data.y_train, data.x_val, data.y_val)
    if model_params.ensemble == 1:
        model, history = _fit_one(*subsets, **arguments, start=_starts(start, 1)[0])
    else:
        model, history = _fit_ensemble(
            *subsets, **arguments, starts=_starts(start, model_params.ensemble)
        )
    if model_params.statistics_member:
        model, history = _with_statistics_member(
            model,
            history,
            data,
            num_classes=num_classes,
            model_params=model_params,
            train_params=train_params,
            verbose=verbose,
        )
    return model, history


def _fit_ensemble(
    x_train,
    y_train: np.ndarray,
    x_val,
    y_val: np.ndarray,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 0,
    in_memory: bool | None = None,
    starts: list | None = None,
):
    """model_params.ensemble networks with consecutive seeds, averaged (see fit); member i
    starts from starts[i] where that is given."""
    import dataclasses

    import keras

    members, histories = [], []
    for member in range(model_params.ensemble):
        model, history = _fit_one(
            x_train,
            y_train,
            x_val,
            y_val,
            num_classes=num_classes,
            model_params=model_params,
            train_params=dataclasses.replace(train_params, seed=train_params.seed + member),
            on_epoch_end=on_epoch_end,
            verbose=verbose,
            in_memory=in_memory,
            start=starts[member] if starts else None,
        )
        members.append(keras.Model(model.input, model.output, name=f"member{member + 1}"))
        histories.append(history)
    inputs = keras.Input(shape=tuple(x_train.shape[1:]), name="features")
    outputs = keras.layers.Average(name="probabilities")([member(inputs) for member in members])
    ensemble = keras.Model(inputs, outputs, name=f"ensemble{len(members)}")
    summary = dict(histories[0])
    summary["members"] = [
        {
            "best_epoch": history["best_epoch"],
            "epochs_run": len(history["loss"]),
            "val_loss": history["val_loss"][history["best_epoch"] - 1],
            "val_accuracy": history["val_accuracy"][history["best_epoch"] - 1],
        }
        for history in histories
    ]
    summary["ensemble"] = _validation_scores(ensemble, x_val, y_val)
    return ensemble, summary


def _with_statistics_member(
    network,
    history: dict,
    data: TrainingData,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
    verbose: int = 0,
):
    """network's probabilities averaged with those of a small dense network on each clip's
    utterance statistics, with weight model_params.stats_weight on the latter (see fit).
    It trains on the training, validation and copied clips (x_copies; None for none).
    The statistics are computed block by block, so x may stream from disk; the speaker
    keys are for model_params.speaker_statistics."""
    import keras
    from keras import layers

    from ser.model.layers import SpeakerStandardize, UtteranceStatistics

    by_speaker = model_params.speaker_statistics
    pooling = UtteranceStatistics(model_params.stats_pooling, name=POOLING_LAYER)
    x_train, x_val, x_copies = data.member_rows()
    copies = 0 if x_copies is None else len(x_copies)
    rows = [(x_train, data.y_train), (x_val, data.y_val)]
    if copies:
        rows.append((x_copies, data.y_copies))
    speakers = (data.train_speakers, data.val_speakers, data.copy_speakers)
    if by_speaker:
        missing = [
            name
            for name, (x, _), keys in zip(("train", "val", "copy"), rows, speakers, strict=False)
            if keys is None or len(keys) != len(x)
        ]
        if missing:
            raise ValueError(
                "model.stats_normalize: speaker needs one speaker key per clip: "
                + ", ".join(f"{name}_speakers" for name in missing)
            )
    statistics = [
        _member_statistics(x, pooling, keys if by_speaker else None, memo=data.memo)
        for (x, _), keys in zip(rows, speakers, strict=False)
    ]
    head = fit_statistics_head(
        np.concatenate(statistics),
        np.concatenate([np.asarray(y) for _, y in rows]),
        num_classes=num_classes,
        model_params=model_params,
        train_params=train_params,
        verbose=verbose,
    )
    inputs = keras.Input(shape=tuple(x_train.shape[1:]), name="features")
    pooled = pooling(inputs)
    model_inputs = inputs
    if by_speaker:
        moments_input = keras.Input(shape=(2, pooled.shape[-1]), name=SPEAKER_INPUT)
        pooled = SpeakerStandardize(name="speaker_standardize")([pooled, moments_input])
        model_inputs = [inputs, moments_input]
    member = head(pooled)
    weight = model_params.stats_weight
    fused = layers.Add(name="probabilities")(
        [
            layers.Rescaling(1.0 - weight, name="network_share")(network(inputs)),
            layers.Rescaling(weight, name="statistics_share")(member),
        ]
    )
    history = dict(history)
    history["statistics"] = {
        "weight": weight,
        "epochs": model_params.stats_epochs,
        "clips": len(x_train) + len(x_val),
        "copies": copies,
        "pooling": list(model_params.stats_pooling),
        "normalize": model_params.stats_normalize,
    }
    return keras.Model(model_inputs, fused, name=network.name + WITH_STATISTICS), history


def fit_statistics_head(
    statistics: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
    verbose: int = 0,
):
    """The statistics member alone: a Keras model from (n, 2 * n_features) utterance
    statistics to class probabilities, trained on all the rows given (see fit)."""
    make_deterministic(train_params.seed)
    import keras
    from keras import layers

    inputs = keras.Input(shape=statistics.shape[1:], name="statistics")
    normalize = layers.Normalization(name="normalize_statistics")
    normalize.adapt(statistics)
    x = layers.Dropout(0.2, seed=train_params.seed)(normalize(inputs))
    x = layers.Dense(model_params.stats_units, activation="relu", name="statistics_hidden")(x)
    x = layers.Dropout(0.5, seed=train_params.seed + 1)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="statistics_probabilities")(x)
    head = keras.Model(inputs, outputs, name="statistics_head")
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=train_params.label_smoothing),
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    head.fit(
        statistics,
        _one_hot(labels, num_classes),
        batch_size=model_params.stats_batch_size,
        epochs=model_params.stats_epochs,
        shuffle=True,
        verbose=verbose,
    )
    return head


def _statistics(x, pooling) -> np.ndarray:
    """Each clip's utterance statistics, computed block by block by the member's own layer."""
    return np.concatenate([np.asarray(pooling(block)) for block in inference.blocks(x)]).astype(
        np.float32
    )


def _member_statistics(x, pooling, speakers, *, memo: dict | None = None) -> np.ndarray:
    """The statistics member's inputs for the rows of x: their utterance statistics, each
    standardised over its speaker's rows when speakers (one key per row) are given. A
    speaker's copies are standardised over its copies, its clips over its clips.

    memo: a TrainingData's memo. The member and its held-out twin (held_out_validation) read
    the same rows; reading them again (standardised, from disk) cost about 15 s of a RAVDESS
    train stage."""
    key = (id(x), tuple(pooling.statistics), speakers is not None)
    if memo is not None and key in memo:
        return memo[key]
    values = _statistics(x, pooling)
    if speakers is not None:
        moments = SpeakerMoments()
        moments.add(values, speakers)
        values = moments.standardize(values, speakers)
    if memo is not None:
        memo[key] = values
    return values


def held_out_validation(
    model,
    data: TrainingData,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
) -> np.ndarray:
    """Validation probabilities from parts that never learnt the validation clips, for
    fitting a calibration temperature (ser.model.calibration).

    A model with a statistics member (fit) cannot judge its own validation clips fairly:
    the member trains on them. Here its network, which only chose its epoch on them, is
    blended as in the model with a second member trained the same way on the training clips
    and their copies alone. That member never ships; it costs one more member fit (seconds).
    Without a member, the model's own validation probabilities.
    """
    if not model_params.statistics_member:
        return predict_proba(model, data.x_val)
    by_speaker = model_params.speaker_statistics
    pooling = model.get_layer(POOLING_LAYER)
    network = network_of(model)
    x_train, x_val, x_copies = data.member_rows()
    keys = (data.train_speakers, data.val_speakers) if by_speaker else (None, None)
    rows = [_member_statistics(x_train, pooling, keys[0], memo=data.memo)]
    labels = [np.asarray(data.y_train)]
    if x_copies is not None and len(x_copies):
        # Only the copies of training clips: a validation clip's copy is the clip, changed.
        if data.copy_in_train is None or len(data.copy_in_train) != len(x_copies):
            raise ValueError(
                "TrainingData.copy_in_train must flag each of the x_copies rows (True for a "
                "copy of a training clip) for the held-out calibration member"
            )
        mine = np.asarray(data.copy_in_train, dtype=bool)
        copied = _member_statistics(
            x_copies, pooling, data.copy_speakers if by_speaker else None, memo=data.memo
        )
        rows.append(copied[mine])
        labels.append(np.asarray(data.y_copies)[mine])
    head = fit_statistics_head(
        np.concatenate(rows),
        np.concatenate(labels),
        num_classes=num_classes,
        model_params=model_params,
        train_params=train_params,
    )
    member = np.asarray(
        head.predict(_member_statistics(x_val, pooling, keys[1], memo=data.memo), verbose=0)
    )
    weight = model_params.stats_weight
    return (1.0 - weight) * predict_proba(network, data.x_val) + weight * member


def _starts(start, count: int) -> list:
    """The network each of ``count`` networks starts from: ``start``'s network, or its
    ensemble's members in order; Nones without a start."""
    if start is None:
        return [None] * count
    network = network_of(start)
    found = int(network.name.removeprefix("ensemble")) if network.name.startswith("ensemble") else 1
    if found != count:
        raise ValueError(
            f"a warm start needs as many networks as model.ensemble ({count}); "
            f"the start has {found}"
        )
    return [network] if count == 1 else [network.get_layer(f"member{i + 1}") for i in range(count)]


def network_of(model):
    """The network (or ensemble) of a model fit returned, without its statistics member."""
    if model.name.endswith(WITH_STATISTICS):
        return model.get_layer(model.name.removesuffix(WITH_STATISTICS))
    return model


def _validation_scores(model, x_val, y_val: np.ndarray) -> dict[str, float]:
    """Cross-entropy and accuracy of a trained model on the validation clips."""
    probabilities = predict_proba(model, x_val).astype(np.float64)
    picked = probabilities[np.arange(len(y_val)), y_val]
    return {
        "val_loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "val_accuracy": float(np.mean(probabilities.argmax(axis=1) == y_val)),
    }


def _fit_one(
    x_train,
    y_train: np.ndarray,
    x_val,
    y_val: np.ndarray,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 0,
    in_memory: bool | None = None,
    start=None,
):
    """Train one network: (model with the best-val_loss weights, history dict). From
    random weights, or from those of ``start``'s network (see fit).

    x: (n, n_frames, n_features) float32, an array or array-like rows read when indexed
    (ser.data.dataset.Rows, ser.features.store.ShardedArray); y: (n,) int class indices.
    ReduceLROnPlateau and early stopping both watch val_loss; the weights returned are those
    of the epoch with the lowest val_loss, not the last epoch's. ``in_memory``: None decides
    by size (IN_MEMORY_BYTES); True reads x into memory, False streams it from where it is.
    """
    make_deterministic(train_params.seed)
    import keras

    if in_memory is None:
        in_memory = fits_in_memory(x_train, x_val)
    if in_memory:
        x_train, x_val = np.asarray(x_train), np.asarray(x_val)
    settings = TrainingSettings.resolve(model_params, train_params)
    model = build_model(
        model_params.arch,
        input_shape=tuple(x_train.shape[1:]),
        num_classes=num_classes,
        filters=model_params.filters,
        dropout=model_params.dropout,
        l2=model_params.l2,
        spec_augment=model_params.spec_augment,
        noise=model_params.noise,
        dilations=model_params.dilations,
        stride=model_params.stride,
        seed=train_params.seed,
    )
    if any(layer.name == "normalize" for layer in model.layers):
        model.get_layer("normalize").adapt(x_train if in_memory else inference.blocks(x_train))
    if start is not None:
        source = network_of(start)
        for layer in model.layers:
            if layer.trainable_weights and layer.name != "normalize":
                layer.set_weights(source.get_layer(layer.name).get_weights())
    # With train.ema the optimizer keeps the average of the weights over steps; the average
    # is what validation scores and what the best-epoch checkpoint keeps (SwapEMAWeights
    # below puts it in the model at each epoch's end, before `best` looks).
    averaging = {"use_ema": True, "ema_momentum": train_params.ema} if train_params.ema > 0 else {}
    if settings.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=settings.learning_rate, **averaging)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate, **averaging)
    soft = train_params.label_smoothing > 0 or train_params.mixup > 0
    if soft:
        # Soft targets need one-hot labels; off, the loss is the integer-label one.
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=train_params.label_smoothing)
        y_train, y_val = _one_hot(y_train, num_classes), _one_hot(y_val, num_classes)
    else:
        loss = "sparse_categorical_crossentropy"
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    best = _best_weights_callback()
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if averaging else []
    callbacks += [
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=train_params.reduce_lr_factor,
            patience=train_params.reduce_lr_patience,
            min_lr=1e-6,
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=train_params.early_stopping_patience
        ),
        best,
    ]
    if on_epoch_end is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end))
    weights = None
    if train_params.class_weights:
        weights = class_weights(y_train.argmax(axis=1) if soft else y_train, num_classes)
    if train_params.mixup > 0:
        data = {
            "x": _mixed_batches(
                x_train,
                y_train,
                settings.batch_size,
                alpha=train_params.mixup,
                seed=train_params.seed,
                weights=weights,
            ),
            "validation_data": (x_val, y_val)
            if in_memory
            else _batches(x_val, y_val, settings.batch_size, seed=None),
        }
        weights = None  # in the batches' sample weights instead
    elif in_memory:
        data = {
            "x": x_train,
            "y": y_train,
            "validation_data": (x_val, y_val),
            "batch_size": settings.batch_size,
            "shuffle": True,
        }
    else:
        data = {
            "x": _batches(x_train, y_train, settings.batch_size, seed=train_params.seed),
            "validation_data": _batches(x_val, y_val, settings.batch_size, seed=None),
        }
    history = model.fit(
        **data,
        epochs=train_params.epochs,
        class_weight=weights,
        callbacks=callbacks,
        verbose=verbose,
    )
    best.restore(model)
    summary = {key: [float(v) for v in values] for key, values in history.history.items()}
    summary["best_epoch"] = best.epoch
    return model, summary


def fits_in_memory(x_train, x_val) -> bool:
    """Whether fitting reads these rows into memory (True) or streams them (IN_MEMORY_BYTES)."""
    return _nbytes(x_train) + _nbytes(x_val) <= IN_MEMORY_BYTES


def _nbytes(x) -> int:
    return int(np.prod(x.shape)) * np.dtype(np.float32).itemsize


def _batches(x, y: np.ndarray, batch_size: int, *, seed: int | None):
    """A keras PyDataset of (x, y) batches read from x when asked for.

    seed: reshuffled every epoch from (seed, epoch), so the order is the same run after run;
    None keeps x's order (validation).
    """
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            if seed is None:
                return np.arange(len(x))
            return np.random.default_rng([seed, self.epoch]).permutation(len(x))

        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def __getitem__(self, index: int):
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            return np.asarray(x[rows]), y[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return Batches()


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def _mixed_batches(
    x, y: np.ndarray, batch_size: int, *, alpha: float, seed: int, weights: dict | None
):
    """Mixup (Zhang et al. 2018): a keras PyDataset of batches in which each clip is blended
    with another clip of the training set, features and one-hot labels alike, with a
    weight drawn from Beta(alpha, alpha); with class weights, each blend's sample weight
    is the same blend of its two clips' weights. Order and draws come from (seed, epoch)."""
    import keras

    class_weight = None if weights is None else np.array([weights[i] for i in range(y.shape[1])])

    class Mixed(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self._draw()

        def _draw(self) -> None:
            rng = np.random.default_rng([seed, self.epoch])
            self.order, self.partners = rng.permutation(len(x)), rng.permutation(len(x))
            self.shares = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)

        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def __getitem__(self, index: int):
            picked = slice(index * batch_size, (index + 1) * batch_size)
            rows, others = self.order[picked], self.partners[picked]
            share = self.shares[picked]
            features = share[:, None, None] * np.asarray(x[rows]) + (
                1 - share[:, None, None]
            ) * np.asarray(x[others])
            targets = share[:, None] * y[rows] + (1 - share[:, None]) * y[others]
            if class_weight is None:
                return features, targets
            sample = targets @ class_weight
            return features, targets, sample.astype(np.float32)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._draw()

    return Mixed()


def _best_weights_callback():
    """A Keras callback keeping the lowest-val_loss epoch's weights (an in-memory checkpoint)."""
    import keras

    class BestWeights(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best_loss = np.inf
            self.weights = None
            self.epoch = 0

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("val_loss", np.inf)
            if np.isfinite(loss) and loss < self.best_loss:
                self.best_loss = loss
                self.weights = self.model.get_weights()
                self.epoch = epoch + 1

        def restore(self, model):
            if self.weights is not None:
                model.set_weights(self.weights)

    return BestWeights()
