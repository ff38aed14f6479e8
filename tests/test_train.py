import dataclasses

import numpy as np
import pytest

from ser.data.dataset import Rows
from ser.features import store
from ser.model import inference
from ser.model.inference import predict_proba
from ser.params import parse_params
from ser.training import train
from ser.training.data import TrainingData
from ser.training.train import class_weights, fit


@pytest.fixture
def small_problem(rng):
    """A learnable 3-class problem: class k has a bump in feature k."""

    def make(n):
        y = rng.integers(0, 3, n)
        x = rng.standard_normal((n, 32, 6)).astype(np.float32)
        x[np.arange(n), :, y] += 1.5
        return x, y

    return make(96), make(48)


@pytest.fixture
def params(params_dict):
    params = parse_params(params_dict)
    return (
        # No weight decay: keras' val_loss then is the plain cross-entropy the test recomputes.
        # No statistics member: these tests look at the network (those that add the member
        # say so; its statistics standardised over all clips unless they ask for speakers).
        dataclasses.replace(
            params.model, filters=8, l2=0.0, stats_weight=0.0, stats_normalize="none"
        ),
        dataclasses.replace(
            params.train, epochs=6, early_stopping_patience=3, reduce_lr_patience=2
        ),
    )


@pytest.fixture
def fitted(small_problem, params):
    """fit on the small problem's arrays (or problem= ((x, y) train, (x, y) val)); keywords
    change train params, model= model params, copies= (x, y) the statistics member's
    copies, speakers= TrainingData's *_speakers keys."""
    model_params, train_params = params

    def run(
        model: dict | None = None,
        copies: tuple | None = None,
        problem: tuple | None = None,
        speakers: dict | None = None,
        **train_changes,
    ):
        (x_train, y_train), (x_val, y_val) = problem or small_problem
        x_copies, y_copies = copies or (None, None)
        data = TrainingData(x_train, y_train, x_val, y_val, x_copies, y_copies, **(speakers or {}))
        return fit(
            data,
            num_classes=3,
            model_params=dataclasses.replace(model_params, **(model or {})),
            train_params=dataclasses.replace(train_params, **train_changes),
        )

    return run


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_training_learns_and_keeps_the_best_val_loss_epoch(small_problem, fitted, label_smoothing):
    import keras

    _, (x_val, y_val) = small_problem
    model, history = fitted(label_smoothing=label_smoothing)
    best = history["best_epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    probabilities = predict_proba(model, x_val)
    # The loss trained on: cross-entropy against targets smoothed by train.label_smoothing.
    targets = np.eye(3, dtype=np.float32)[y_val]
    loss = float(
        keras.losses.categorical_crossentropy(
            targets, probabilities, label_smoothing=label_smoothing
        )
        .numpy()
        .mean()
    )
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-3)
    assert (probabilities.argmax(axis=1) == y_val).mean() > 0.6


def test_weight_averaging_keeps_the_average_with_the_best_val_loss(small_problem, fitted):
    import keras

    _, (x_val, y_val) = small_problem
    runs = [fitted(ema=ema, label_smoothing=0.0, seed=0) for ema in (0.9, 0.9, 0.0)]
    (model, history), (again, _), (plain, _) = runs
    probabilities = predict_proba(model, x_val)
    # What validation scored, and the checkpoint kept, is the averaged network: its loss
    # recomputed here is the history's lowest, and it differs from the unaveraged run's.
    loss = float(keras.losses.sparse_categorical_crossentropy(y_val, probabilities).numpy().mean())
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-3)
    assert history["val_loss"][history["best_epoch"] - 1] == min(history["val_loss"])
    np.testing.assert_array_equal(probabilities, predict_proba(again, x_val))
    assert not np.allclose(probabilities, predict_proba(plain, x_val), atol=1e-3)
    assert (probabilities.argmax(axis=1) == y_val).mean() > 0.6


def test_same_seed_gives_identical_weights_and_another_seed_differs(small_problem, fitted):
    _, (x_val, _) = small_problem
    runs = [fitted(epochs=2, seed=seed)[0] for seed in (0, 0, 1)]
    first, second, other = (predict_proba(model, x_val) for model in runs)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_class_weights_balance_rare_classes():
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights[1] == pytest.approx(3 * weights[0])
    assert weights[2] == 0.0


class CountingRows(Rows):
    """Rows that remember how many rows each read asked for."""

    def __init__(self, *parts):
        super().__init__(*parts)
        self.reads = []

    def __getitem__(self, index):
        rows = super().__getitem__(index)
        self.reads.append(len(rows))
        return rows

    def __array__(self, dtype=None, copy=None):
        self.reads.append(len(self))
        return super().__array__(dtype, copy)


def stored(folder, x, shard_clips=10):
    """x written to a sharded feature store, and read back lazily."""
    ids = [str(index) for index in range(len(x))]
    store.write(
        folder,
        zip(ids, x, strict=True),
        row_shape=x.shape[1:],
        settings={},
        shard_clips=shard_clips,
    )
    return store.load(folder)[1]


def test_small_stores_train_exactly_as_the_arrays_they_hold(
    small_problem, params, fitted, tmp_path
):
    (x_train, y_train), (x_val, y_val) = small_problem
    model_params, train_params = params
    train_params = dataclasses.replace(train_params, epochs=2)
    rows = stored(tmp_path / "s", np.concatenate([x_train, x_val]))
    from_store = fit(
        TrainingData(
            Rows((rows, np.arange(len(x_train)))),
            y_train,
            Rows((rows, len(x_train) + np.arange(len(x_val)))),
            y_val,
        ),
        num_classes=3,
        model_params=model_params,
        train_params=train_params,
    )[0]
    from_arrays = fitted(epochs=2)[0]
    np.testing.assert_array_equal(
        predict_proba(from_store, x_val), predict_proba(from_arrays, x_val)
    )


@pytest.mark.slow
def test_large_data_trains_from_disk_batch_by_batch(small_problem, params, tmp_path, monkeypatch):
    (x_train, y_train), (x_val, y_val) = small_problem
    model_params, train_params = params
    monkeypatch.setattr(train, "IN_MEMORY_BYTES", 1000)  # this data counts as large
    monkeypatch.setattr(inference, "READ_ROWS", 40)
    rows = stored(tmp_path / "s", np.concatenate([x_train, x_val]))
    runs = []
    for _ in range(2):
        x_rows = CountingRows((rows, np.arange(len(x_train))))
        val_rows = CountingRows((rows, len(x_train) + np.arange(len(x_val))))
        model, history = fit(
            TrainingData(x_rows, y_train, val_rows, y_val),
            num_classes=3,
            model_params=model_params,
            train_params=train_params,
        )
        batch_size = train.TrainingSettings.resolve(model_params, train_params).batch_size
        # Never read whole: batches, and READ_ROWS blocks for the normalisation statistics.
        assert max(x_rows.reads + val_rows.reads) <= max(batch_size, 40) < len(x_train)
        assert len(history["loss"]) == train_params.epochs
        runs.append(predict_proba(model, CountingRows((rows, len(x_train) + np.arange(48)))))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert (runs[0].argmax(axis=1) == y_val).mean() > 0.6


def test_predictions_from_rows_equal_predictions_from_the_array(
    small_problem, fitted, tmp_path, monkeypatch
):
    monkeypatch.setattr(inference, "READ_ROWS", 16)  # three blocks of two batches of 8
    _, (x_val, _) = small_problem
    model, _ = fitted(epochs=1)
    rows = stored(tmp_path / "s", x_val, shard_clips=7)
    np.testing.assert_array_equal(
        predict_proba(model, Rows((rows, np.arange(len(x_val)))), batch_size=8),
        predict_proba(model, x_val, batch_size=8),
    )


@pytest.mark.slow
def test_an_ensemble_averages_members_trained_with_consecutive_seeds(
    small_problem, fitted, tmp_path
):
    from ser.model import modelio

    _, (x_val, y_val) = small_problem

    def trained(seed, members):
        return fitted(model={"ensemble": members}, seed=seed)

    alone = [predict_proba(trained(seed, 1)[0], x_val) for seed in (4, 5)]
    ensemble, history = trained(4, 2)
    averaged = predict_proba(ensemble, x_val)
    np.testing.assert_allclose(averaged, (alone[0] + alone[1]) / 2, atol=1e-5)
    assert [m["best_epoch"] for m in history["members"]][0] == history["best_epoch"]
    assert history["ensemble"]["val_accuracy"] == pytest.approx(
        float((averaged.argmax(axis=1) == y_val).mean())
    )
    # One Keras model: it saves and loads like any other.
    modelio.save(tmp_path / "model", ensemble, {"classes": ["a", "b", "c"]})
    loaded, _ = modelio.load(tmp_path / "model")
    np.testing.assert_allclose(predict_proba(loaded, x_val), averaged, atol=1e-6)


@pytest.mark.parametrize(("label_smoothing", "mixup"), [(0.1, 0.0), (0.0, 0.4), (0.1, 0.4)])
def test_soft_targets_learn_and_repeat_run_for_run(small_problem, fitted, label_smoothing, mixup):
    _, (x_val, y_val) = small_problem
    runs = [fitted(label_smoothing=label_smoothing, mixup=mixup) for _ in range(2)]
    first, second = (predict_proba(model, x_val) for model, _ in runs)
    np.testing.assert_array_equal(first, second)
    assert (first.argmax(axis=1) == y_val).mean() > 0.6
    # The history's val_loss is that of the soft-target loss, on one-hot validation labels.
    assert runs[0][1]["val_loss"][runs[0][1]["best_epoch"] - 1] == min(runs[0][1]["val_loss"])


def test_mixup_batches_blend_clips_labels_and_class_weights(rng):
    x = rng.standard_normal((10, 4, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    y = train._one_hot(labels, 3)
    weights = class_weights(labels, 3)
    batches = train._mixed_batches(x, y, 4, alpha=0.4, seed=0, weights=weights)
    assert len(batches) == 3
    features, targets, sample = batches[0]
    rows, others, share = batches.order[:4], batches.partners[:4], batches.shares[:4]
    assert np.all((share >= 0) & (share <= 1)) and np.unique(share).size == 4
    np.testing.assert_allclose(
        features, share[:, None, None] * x[rows] + (1 - share[:, None, None]) * x[others], rtol=1e-6
    )
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(targets, share[:, None] * y[rows] + (1 - share[:, None]) * y[others])
    table = np.array([weights[k] for k in range(3)])
    np.testing.assert_allclose(
        sample, share * table[labels[rows]] + (1 - share) * table[labels[others]], rtol=1e-6
    )
    assert len(batches[2][0]) == 2  # the last, short batch
    before = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(before, batches.order)  # a new order each epoch
    again = train._mixed_batches(x, y, 4, alpha=0.4, seed=0, weights=weights)
    np.testing.assert_array_equal(again[0][0], features)  # and the same run after run


@pytest.mark.parametrize(
    "pooling", [("mean", "std"), ("mean", "std", "max", "p10", "p90"), ("min", "diff")]
)
def test_the_statistics_member_is_averaged_in_with_its_weight(
    small_problem, fitted, tmp_path, pooling
):
    from ser.model import modelio
    from ser.model.layers import UtteranceStatistics

    (x_train, y_train), (x_val, y_val) = small_problem
    network, _ = fitted()
    fused, history = fitted(
        model={
            "stats_weight": 0.25,
            "stats_epochs": 100,
            "stats_units": 16,
            "stats_pooling": pooling,
        }
    )
    assert history["statistics"] == {
        "weight": 0.25,
        "epochs": 100,
        "clips": 144,
        "copies": 0,
        "pooling": list(pooling),
        "normalize": "none",
    }
    member = fused.get_layer("statistics_head")
    assert member.input_shape[-1] == 6 * len(pooling)
    member_probabilities = np.asarray(member(UtteranceStatistics(pooling)(x_val)))
    # The member learns the problem on its own (class k: a higher mean of feature k).
    assert (member_probabilities.argmax(axis=1) == y_val).mean() > 0.8
    np.testing.assert_allclose(
        predict_proba(fused, x_val),
        0.75 * predict_proba(network, x_val) + 0.25 * member_probabilities,
        atol=1e-5,
    )
    modelio.save(tmp_path / "model", fused, {"classes": ["a", "b", "c"]})
    loaded, _ = modelio.load(tmp_path / "model")
    np.testing.assert_allclose(predict_proba(loaded, x_val), predict_proba(fused, x_val), atol=1e-6)


def test_batches_run_many_to_a_call_give_the_weights_of_one_a_call(
    small_problem, fitted, monkeypatch
):
    """STEPS_PER_EXECUTION only saves Python's round trips: the network and the member learn
    the same weights as with one batch a call, with a last call of fewer batches too."""
    (_, _), (x_val, _) = small_problem
    # Batches of 4: the network's 96 rows 24 steps an epoch, the member's 144 (train and val)
    # 36; neither a multiple of 5 or of 32.
    member = {"stats_weight": 0.25, "stats_epochs": 3, "stats_units": 16, "stats_batch_size": 4}
    runs = []
    for steps in (1, 5, train.STEPS_PER_EXECUTION):
        monkeypatch.setattr(train, "STEPS_PER_EXECUTION", steps)
        model, history = fitted(model=member, batch_size=4, epochs=3)
        runs.append((predict_proba(model, x_val), history["val_loss"]))
    for probabilities, val_loss in runs[1:]:
        np.testing.assert_array_equal(probabilities, runs[0][0])
        assert val_loss == runs[0][1]


def test_the_2019_network_gets_no_statistics_member(small_problem, fitted):
    model, history = fitted(model={"arch": "seed", "stats_weight": 0.5}, epochs=1)
    assert "statistics" not in history
    assert model.name == "seed_2019"


def test_the_statistics_member_alone_trains_on_the_copies(small_problem, params, fitted):
    from ser.model.layers import UtteranceStatistics

    (x_train, y_train), (x_val, _) = small_problem
    # Copies unlike any clip (every feature shifted by 4), so their mark is easy to see.
    x_copies, y_copies = x_train[:40] + 4.0, y_train[:40]
    member = {"stats_weight": 0.25, "stats_epochs": 5, "stats_units": 16}
    plain, plain_history = fitted(model=member)
    with_copies, history = fitted(model=member, copies=(x_copies, y_copies))
    assert plain_history["statistics"]["copies"] == 0
    assert history["statistics"]["copies"] == 40 and history["statistics"]["clips"] == 144
    # The member standardised its inputs over the train, val AND copied clips ...
    pooling = UtteranceStatistics(params[0].stats_pooling)
    rows = np.concatenate([x_train, x_val, x_copies])
    normalize = with_copies.get_layer("statistics_head").get_layer("normalize_statistics")
    np.testing.assert_allclose(
        np.ravel(normalize.mean), np.asarray(pooling(rows)).mean(axis=0), atol=1e-4
    )
    # ... while the network, trained on x_train alone, is the same network with or without them.
    network = [
        next(
            layer
            for layer in m.layers
            if layer.name not in ("statistics_head",) and hasattr(layer, "predict")
        )
        for m in (plain, with_copies)
    ]
    np.testing.assert_array_equal(
        predict_proba(network[0], x_val), predict_proba(network[1], x_val)
    )


def test_speaker_moments_are_each_speakers_mean_and_std_in_any_blocks(rng):
    statistics = (rng.standard_normal((30, 5)) * 3 + 1).astype(np.float32)  # as pooled
    speakers = np.array(["a"] * 12 + ["b"] * 17 + ["c"])
    whole, blocks = inference.SpeakerMoments(), inference.SpeakerMoments()
    whole.add(statistics, speakers)
    for start in range(0, 30, 7):
        blocks.add(statistics[start : start + 7], speakers[start : start + 7])
    for key in ("a", "b"):
        rows = statistics[speakers == key]
        expected = np.stack([rows.mean(axis=0), rows.std(axis=0)])
        np.testing.assert_allclose(whole.table()[key], expected, rtol=1e-5)
        np.testing.assert_allclose(blocks.table()[key], expected, rtol=1e-5)
    standardized = whole.standardize(statistics, speakers)
    np.testing.assert_allclose(standardized[speakers == "b"].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(standardized[speakers == "b"].std(axis=0), 1, atol=1e-4)
    # A speaker with one clip: its statistics are its mean, standardised to 0 with scale 1;
    # a statistic that does not vary gets the floor as its scale.
    np.testing.assert_array_equal(standardized[speakers == "c"], 0)
    np.testing.assert_array_equal(whole.table()["c"][1], 1)
    constant = inference.SpeakerMoments()
    constant.add(np.ones((4, 2), dtype=np.float32), ["d"] * 4)
    np.testing.assert_allclose(constant.table()["d"], [[1, 1], [inference.SCALE_FLOOR] * 2])


@pytest.fixture
def speaker_problem(small_problem, rng):
    """The small problem's clips dealt to speakers (train: 0-3, val: 4-5), each speaker's
    features offset by its own constant, as voices differ."""
    (x_train, y_train), (x_val, y_val) = small_problem
    train_speakers, val_speakers = np.arange(96) % 4, 4 + np.arange(48) % 2
    offsets = rng.normal(0, 2, size=(6, 1, 6)).astype(np.float32)
    return (
        (x_train + offsets[train_speakers], y_train, train_speakers),
        (x_val + offsets[val_speakers], y_val, val_speakers),
    )


def test_the_member_can_standardise_its_statistics_per_speaker(
    speaker_problem, params, fitted, tmp_path, monkeypatch
):
    from ser.model.layers import UtteranceStatistics

    (x_train, y_train, train_speakers), (x_val, y_val, val_speakers) = speaker_problem
    settings = {"stats_weight": 0.25, "stats_epochs": 60, "stats_units": 16}
    settings["stats_normalize"] = "speaker"
    model_params = dataclasses.replace(params[0], **settings)

    def trained(model: dict, **speakers):
        problem = ((x_train, y_train), (x_val, y_val))
        return fitted(model=model, problem=problem, speakers=speakers)

    with pytest.raises(ValueError, match="val_speakers"):
        trained(settings, train_speakers=train_speakers)
    fused, history = trained(settings, train_speakers=train_speakers, val_speakers=val_speakers)
    assert history["statistics"]["normalize"] == "speaker"
    assert [tensor.name for tensor in fused.inputs] == ["features", inference.SPEAKER_INPUT]
    assert inference.needs_speakers(fused)
    with pytest.raises(ValueError, match="speaker key"):
        predict_proba(fused, x_val)

    # The member sees each clip's statistics standardised over its speaker's clips ...
    pooling = UtteranceStatistics(model_params.stats_pooling)
    head = fused.get_layer("statistics_head")

    def member(x, speakers):
        moments = inference.SpeakerMoments()
        moments.add(np.asarray(pooling(x)), speakers)
        return np.asarray(head(moments.standardize(np.asarray(pooling(x)), speakers)))

    network, _ = trained({**settings, "stats_weight": 0.0})
    np.testing.assert_allclose(
        predict_proba(fused, x_val, speakers=val_speakers),
        0.75 * predict_proba(network, x_val) + 0.25 * member(x_val, val_speakers),
        atol=1e-5,
    )
    # ... so a speaker's constant offset (another voice, another microphone) changes nothing
    # the member sees, and it still learns the problem.
    shifted = x_val + np.where(val_speakers == 4, 5.0, -3.0)[:, None, None].astype(np.float32)
    np.testing.assert_allclose(
        member(shifted, val_speakers), member(x_val, val_speakers), atol=1e-4
    )
    assert (member(x_val, val_speakers).argmax(axis=1) == y_val).mean() > 0.8
    # Read from disk block by block, the moments and the probabilities are the same.
    monkeypatch.setattr(inference, "READ_ROWS", 16)
    rows = Rows((stored(tmp_path / "s", x_val, shard_clips=7), np.arange(len(x_val))))
    np.testing.assert_allclose(
        predict_proba(fused, rows, speakers=val_speakers, batch_size=8),
        predict_proba(fused, x_val, speakers=val_speakers, batch_size=8),
        atol=1e-6,
    )


def test_calibration_probabilities_come_from_parts_that_never_learnt_the_validation_clips(
    small_problem, params, fitted, rng
):
    (x_train, y_train), (x_val, y_val) = small_problem
    model_params, train_params = params
    member = {"stats_weight": 0.5, "stats_epochs": 100, "stats_units": 32}
    # Validation labels the member can only memorise: a shipped member trains on them.
    wrong = (y_val + rng.integers(1, 3, len(y_val))) % 3
    model, _ = fitted(model=member, problem=((x_train, y_train), (x_val, wrong)))
    train_speakers, val_speakers = np.zeros(len(x_train)), np.ones(len(x_val))

    def held_out(x_copies=None, y_copies=None, copy_speakers=None, copy_in_train=None):
        data = TrainingData(
            x_train,
            y_train,
            x_val,
            y_val,
            x_copies,
            y_copies,
            train_speakers=train_speakers,
            val_speakers=val_speakers,
            copy_speakers=copy_speakers,
            copy_in_train=copy_in_train,
        )
        return train.held_out_validation(
            model,
            data,
            num_classes=3,
            model_params=dataclasses.replace(model_params, **member),
            train_params=train_params,
        )

    fair = held_out()
    own = predict_proba(model, x_val)
    # The model's own validation scores reward the memorised labels; the held-out ones do not.
    assert (own.argmax(axis=1) == wrong).mean() > (fair.argmax(axis=1) == wrong).mean()
    assert (fair.argmax(axis=1) == y_val).mean() > 0.6
    # Copies of validation clips are left out of the held-out member, whatever their labels.
    copies = (x_val + 0.1, wrong, val_speakers, np.zeros(len(x_val), dtype=bool))
    np.testing.assert_allclose(held_out(*copies), fair, atol=1e-6)
    # Copies of training clips are learnt, though a channel gives them a speaker key of their
    # own (2 here, as "speaker|channel" in the pipeline): their shifted labels move it.
    shifted = (y_train + 1) % 3
    learnt = held_out(x_train, shifted, np.full(len(x_train), 2.0), np.ones(len(x_train), bool))
    assert not np.allclose(learnt, fair, atol=1e-3)
    with pytest.raises(ValueError, match="copy_in_train must flag each of the x_copies rows"):
        held_out(*copies[:3])


def test_a_warm_start_begins_from_the_given_models_network(small_problem, params, fitted):
    (x_train, y_train), (x_val, y_val) = small_problem
    member = {"stats_weight": 0.5, "stats_epochs": 2, "stats_units": 8}
    first, _ = fitted(model=member, epochs=2)
    model_params, train_params = params
    # Other rows (shifted), a step too small to move a weight: the network is the first
    # one's but for its input standardisation, adapted to the new rows.
    shifted = TrainingData(x_train + 1.0, y_train, x_val + 1.0, y_val)

    def second(start):
        model, _ = fit(
            shifted,
            num_classes=3,
            model_params=dataclasses.replace(model_params, **member),
            train_params=dataclasses.replace(train_params, epochs=1, learning_rate=1e-8),
            start=start,
        )
        return train.network_of(model)

    warm, cold, source = second(first), second(None), train.network_of(first)
    for name in ("conv1", "conv2", "probabilities"):
        kernel = source.get_layer(name).get_weights()[0]
        np.testing.assert_allclose(warm.get_layer(name).get_weights()[0], kernel, atol=1e-6)
        assert not np.allclose(cold.get_layer(name).get_weights()[0], kernel, atol=1e-3)
    np.testing.assert_allclose(
        warm.get_layer("normalize").mean.numpy().ravel(),
        source.get_layer("normalize").mean.numpy().ravel() + 1.0,
        atol=1e-4,
    )
    with pytest.raises(ValueError, match=r"as many networks as model.ensemble \(2\); .* has 1"):
        fit(
            shifted,
            num_classes=3,
            model_params=dataclasses.replace(model_params, ensemble=2),
            train_params=train_params,
            start=first,
        )


def test_an_ensemble_starts_each_network_from_its_counterpart(small_problem, params, fitted):
    (x_train, y_train), (x_val, y_val) = small_problem
    pair = {"ensemble": 2, "stats_weight": 0.5, "stats_epochs": 2, "stats_units": 8}
    first, _ = fitted(model=pair, epochs=2)
    model_params, train_params = params
    warm, _ = fit(
        TrainingData(x_train, y_train, x_val, y_val),
        num_classes=3,
        model_params=dataclasses.replace(model_params, **pair),
        train_params=dataclasses.replace(train_params, epochs=1, learning_rate=1e-8),
        start=first,
    )
    sources, networks = (train.network_of(model) for model in (first, warm))
    kernels = [sources.get_layer(f"member{i}").get_layer("conv1").get_weights()[0] for i in (1, 2)]
    assert not np.allclose(kernels[0], kernels[1], atol=1e-3)
    for i, kernel in zip((1, 2), kernels, strict=True):
        started = networks.get_layer(f"member{i}").get_layer("conv1").get_weights()[0]
        np.testing.assert_allclose(started, kernel, atol=1e-6)


def test_the_held_out_member_reuses_the_statistics_the_member_read(
    small_problem, params, fitted, rng
):
    (x_train, y_train), (x_val, y_val) = small_problem
    model_params, train_params = params
    member = dataclasses.replace(model_params, stats_weight=0.5, stats_epochs=3, stats_units=8)
    copies = (x_train + rng.normal(0, 0.1, x_train.shape).astype(np.float32), y_train)

    def data():
        keys = np.zeros(len(x_train)), np.ones(len(x_val)), np.zeros(len(x_train))
        of_train = np.ones(len(x_train), dtype=bool)
        return TrainingData(x_train, y_train, x_val, y_val, *copies, *keys, of_train)

    read = data()
    model, _ = fit(read, num_classes=3, model_params=member, train_params=train_params)
    assert len(read.memo) == 3  # train, val, copies
    arguments = dict(num_classes=3, model_params=member, train_params=train_params)
    np.testing.assert_allclose(
        train.held_out_validation(model, read, **arguments),
        train.held_out_validation(model, data(), **arguments),
        atol=1e-6,
    )


def test_without_a_member_calibration_uses_the_models_own_validation_probabilities(
    small_problem, params, fitted
):
    (x_train, y_train), (x_val, y_val) = small_problem
    model, _ = fitted(epochs=1)
    np.testing.assert_array_equal(
        train.held_out_validation(
            model,
            TrainingData(x_train, y_train, x_val, y_val),
            num_classes=3,
            model_params=params[0],
            train_params=params[1],
        ),
        predict_proba(model, x_val),
    )


@pytest.mark.slow
def test_a_blended_run_trains_and_saves_the_whole_speaker_model_beside_it(
    tiny_corpus, params_dict, tmp_path
):
    import pandas as pd

    from ser.data.labels import LabelSpec
    from ser.features import extract
    from ser.serve.predict import Predictor
    from ser.training.run import train_run

    params = parse_params(params_dict)
    params = dataclasses.replace(
        params,
        model=dataclasses.replace(
            params.model,
            filters=8,
            stats_epochs=2,
            speaker_blend=8.0,
            speaker_blend_warm_start=False,  # from random weights; the warm start below
        ),
        train=dataclasses.replace(params.train, epochs=1),
    )
    spec = LabelSpec.from_params(params.labels)
    files = sorted((tiny_corpus / "speech").rglob("*.wav"))
    x, _ = extract.featurize_many([str(f) for f in files], params.features)
    y = np.array([int(f.stem.split("-")[2]) - 1 for f in files])
    actors = np.array([int(f.stem[-2:]) for f in files])
    clips = pd.DataFrame(
        {
            "clip_id": [f.stem for f in files],
            "subset": np.where(actors <= 3, "train", "val"),
            "label": [spec.class_names[i] for i in y],
            "y": y,
            "row": np.arange(len(files)),
            "speaker": actors,
        }
    )
    trained = train_run(clips, x, params, spec)
    whole = trained.whole_speaker
    # The whole-speaker model: every clip standardised by all of its speaker's, no shrinkage,
    # its member per speaker; its own calibration; no blend of its own.
    assert whole is not None and whole.whole_speaker is None
    assert whole.fields["model_params"] == params.whole_speaker.model
    assert (
        whole.fields["model_params"].speaker_shrinkage,
        whole.fields["normalizer"].shrinkage,
    ) == (0, 0)
    assert whole.fields["model_params"].speaker_statistics
    assert len(whole.model.inputs) == 2 and len(trained.model.inputs) == 1
    assert trained.summary["whole_speaker"] == whole.summary
    assert "temperature" in whole.summary["calibration"]
    meta = trained.save(
        tmp_path / "model",
        labels=spec,
        feature_settings=extract.describe(params.features),
        corpus="synthetic",
        actors={"train": [1, 2, 3], "val": [4], "test": []},
    )
    assert meta["blend"] == {"folder": "whole_speaker", "recordings": 8.0}
    predictor = Predictor(tmp_path / "model")
    assert predictor.whole_speaker is not None and predictor.blend_recordings == 8.0
    assert predictor.whole_speaker.normalizer.shrinkage == 0
    assert predictor.predict_file(files[0]).status == "ok"

    # model.speaker_blend_warm_start (the default): the same first model; the whole-speaker
    # model starts from it instead of from the random weights it shared with it (same seed).
    warm = train_run(
        clips,
        x,
        dataclasses.replace(
            params, model=dataclasses.replace(params.model, speaker_blend_warm_start=True)
        ),
        spec,
    )

    def kernel(model):
        return train.network_of(model).get_layer("conv1").get_weights()[0]

    np.testing.assert_array_equal(kernel(warm.model), kernel(trained.model))
    assert not np.allclose(kernel(warm.whole_speaker.model), kernel(whole.model), atol=1e-4)


@pytest.mark.slow
def test_the_first_model_trains_on_its_first_copies_and_the_whole_speaker_model_on_all(
    tiny_corpus, params_dict
):
    import pandas as pd

    from ser.data.labels import LabelSpec
    from ser.features import extract
    from ser.training.run import train_run

    params = parse_params(params_dict)
    model = dataclasses.replace(params.model, filters=8, stats_epochs=2, first_copies=2)
    params = dataclasses.replace(
        params, model=model, train=dataclasses.replace(params.train, epochs=1)
    )
    spec = LabelSpec.from_params(params.labels)
    files = sorted((tiny_corpus / "speech").rglob("*.wav"))[:80]
    x, _ = extract.featurize_many([str(f) for f in files], params.features)
    y = np.array([int(f.stem.split("-")[2]) - 1 for f in files])
    actors = np.array([int(f.stem[-2:]) for f in files])
    clips = pd.DataFrame(
        {
            "clip_id": [f.stem for f in files],
            "subset": np.where(actors == actors.min(), "train", "val"),
            "label": [spec.class_names[i] for i in y],
            "y": y,
            "row": np.arange(len(files)),
            "speaker": actors.astype(str),
        }
    )
    # Three "copies" of every clip: the clip's own features again, through no channel.
    copies = pd.DataFrame(
        [
            {"clip_id": clip, "row": row, "copy": copy, "channel": ""}
            for row, clip in enumerate(clips["clip_id"])
            for copy in range(3)
        ]
    )
    trained = train_run(clips, x, params, spec, copies=copies, augmented=x)
    n_train = int((clips["subset"] == "train").sum())
    assert trained.summary["clips"]["train_augmented"] == 2 * n_train
    assert trained.summary["whole_speaker"]["clips"]["train_augmented"] == 3 * n_train
    # The first model is the one trained on those copies alone, to the weight.
    alone = train_run(
        clips,
        x,
        dataclasses.replace(params, model=dataclasses.replace(model, speaker_blend=0.0)),
        spec,
        copies=copies[copies["copy"] < 2],
        augmented=x,
    )
    for mine, theirs in zip(trained.model.get_weights(), alone.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
