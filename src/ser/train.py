"""Training: seeded, deterministic Keras fitting that keeps the best-val_loss weights."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ser.model import DEFAULTS, build_model
from ser.params import ModelParams, TrainParams


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
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic kernels.

    With op determinism on, TensorFlow's CPU kernels give the same results run after run
    (Keras docs: keras.utils.set_random_seed + tf.config.experimental.enable_op_determinism).
    """
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights inversely proportional to class frequency, averaging 1 over the training set."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return {index: float(weight) for index, weight in enumerate(weights)}


def fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    num_classes: int,
    model_params: ModelParams,
    train_params: TrainParams,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    verbose: int = 0,
):
    """Train from scratch and return (model with the best-val_loss weights, history dict).

    x: (n, n_frames, n_features) float32; y: (n,) int class indices.
    ReduceLROnPlateau and early stopping both watch val_loss; the weights returned are those
    of the epoch with the lowest val_loss, not the last epoch's.
    """
    make_deterministic(train_params.seed)
    import keras

    settings = TrainingSettings.resolve(model_params, train_params)
    model = build_model(
        model_params.arch,
        input_shape=x_train.shape[1:],
        num_classes=num_classes,
        filters=model_params.filters,
        dropout=model_params.dropout,
        l2=model_params.l2,
        spec_augment=model_params.spec_augment,
        noise=model_params.noise,
        seed=train_params.seed,
    )
    if any(layer.name == "normalize" for layer in model.layers):
        model.get_layer("normalize").adapt(x_train)
    if settings.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=settings.learning_rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    best = _best_weights_callback()
    callbacks = [
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
    weights = class_weights(y_train, num_classes) if train_params.class_weights else None
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=train_params.epochs,
        batch_size=settings.batch_size,
        class_weight=weights,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )
    best.restore(model)
    summary = {key: [float(v) for v in values] for key, values in history.history.items()}
    summary["best_epoch"] = best.epoch
    return model, summary


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


def predict_proba(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, num_classes) in batches."""
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
