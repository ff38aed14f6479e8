import dataclasses

import numpy as np
import pytest

from ser.params import parse_params
from ser.train import class_weights, fit, predict_proba


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
        dataclasses.replace(params.model, filters=8, l2=0.0),
        dataclasses.replace(
            params.train, epochs=6, early_stopping_patience=3, reduce_lr_patience=2
        ),
    )


def test_training_learns_and_keeps_the_best_val_loss_epoch(small_problem, params):
    import keras

    (x_train, y_train), (x_val, y_val) = small_problem
    model_params, train_params = params
    model, history = fit(
        x_train,
        y_train,
        x_val,
        y_val,
        num_classes=3,
        model_params=model_params,
        train_params=train_params,
    )
    best = history["best_epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    probabilities = predict_proba(model, x_val)
    loss = float(keras.losses.sparse_categorical_crossentropy(y_val, probabilities).numpy().mean())
    assert loss == pytest.approx(min(history["val_loss"]), rel=1e-3)
    assert (probabilities.argmax(axis=1) == y_val).mean() > 0.6


def test_same_seed_gives_identical_weights_and_another_seed_differs(small_problem, params):
    (x_train, y_train), (x_val, y_val) = small_problem
    model_params, train_params = params
    train_params = dataclasses.replace(train_params, epochs=2)
    runs = [
        fit(
            x_train,
            y_train,
            x_val,
            y_val,
            num_classes=3,
            model_params=model_params,
            train_params=dataclasses.replace(train_params, seed=seed),
        )[0]
        for seed in (0, 0, 1)
    ]
    first, second, other = (predict_proba(model, x_val) for model in runs)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_class_weights_balance_rare_classes():
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights[1] == pytest.approx(3 * weights[0])
    assert weights[2] == 0.0
