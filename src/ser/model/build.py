"""Keras architectures: one build function each, Functional API, uncompiled."""

from __future__ import annotations

from dataclasses import dataclass

from ser.errors import ConfigError


@dataclass(frozen=True)
class TrainingDefaults:
    optimizer: str
    learning_rate: float
    batch_size: int


# What train.optimizer / learning_rate / batch_size mean when left null in params.yaml.
DEFAULTS = {
    "cnn": TrainingDefaults(optimizer="adam", learning_rate=1e-3, batch_size=32),
    # The 2019 network was tuned with SGD at 1e-4 and batch 16.
    "seed": TrainingDefaults(optimizer="sgd", learning_rate=1e-4, batch_size=16),
}


def build_model(
    arch: str,
    *,
    input_shape: tuple[int, int],
    num_classes: int,
    filters: int = 64,
    dropout: float = 0.3,
    l2: float = 0.0,
    spec_augment: bool = False,
    noise: float = 0.0,
    dilations: tuple[int, ...] = (),
    stride: int = 1,
    seed: int | None = None,
):
    """Build the named architecture for inputs (n_frames, n_features) -> class probabilities."""
    if arch == "cnn":
        return build_cnn(
            input_shape,
            num_classes,
            filters=filters,
            dropout=dropout,
            l2=l2,
            spec_augment=spec_augment,
            noise=noise,
            dilations=dilations,
            stride=stride,
            seed=seed,
        )
    if arch == "seed":
        return build_seed(input_shape, num_classes)
    raise ConfigError(f"model.arch: {arch!r} is not allowed; choose one of: {', '.join(DEFAULTS)}")


def build_seed(input_shape: tuple[int, int], num_classes: int):
    """The 2019 tuned network: eight Conv1D layers (256, 256, 128 x4, 64, 64), kernel 8, ReLU,
    two BatchNorm, two Dropout 0.25, two MaxPool 8, Dense softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for index, width in enumerate((256, 256, 128, 128, 128, 128, 64, 64)):
        x = layers.Conv1D(width, 8, padding="same", name=f"conv{index + 1}")(x)
        if index in (1, 5):
            x = layers.BatchNormalization(name=f"batchnorm{index + 1}")(x)
        x = layers.Activation("relu")(x)
        if index in (1, 5):
            x = layers.Dropout(0.25)(x)
            x = layers.MaxPooling1D(pool_size=8, padding="same")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_2019")


def build_cnn(
    input_shape: tuple[int, int],
    num_classes: int,
    *,
    filters: int,
    dropout: float,
    l2: float = 0.0,
    spec_augment: bool = False,
    noise: float = 0.0,
    dilations: tuple[int, ...] = (),
    stride: int = 1,
    seed: int | None = None,
):
    """The default: inputs standardised with training statistics, two Conv1D blocks, then
    mean and standard deviation over time (statistics pooling) of the convolution features
    and, beside them, of the inputs themselves; dropout, softmax.

    Chosen by 5-fold actor cross-validation on RAVDESS speech (see README): deeper stacks
    with max pooling overfit the 12-16 training speakers and did worse; the inputs'
    own statistics (what an SVM baseline sees) added 5 points to the convolutions' alone.
    """
    import keras
    from keras import layers

    from ser.model.layers import SpecAugment, StatisticsPooling

    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input(shape=input_shape, name="features")
    # Standardise each feature with training-set statistics (set by train.fit via adapt()).
    x = layers.Normalization(axis=-1, name="normalize")(inputs)
    # Utterance statistics of the (unmasked) inputs go straight to the classifier.
    direct = StatisticsPooling(name="input_statistics")(x)
    direct = layers.BatchNormalization(name="input_statistics_norm")(direct)
    if spec_augment:
        x = SpecAugment(seed=seed, name="spec_augment")(x)
    if noise > 0:
        x = layers.GaussianNoise(noise, seed=seed, name="noise")(x)
    # stride > 1: the first convolution still reads every frame, but the rest of the
    # network runs on 1/stride as many, so training and prediction cost about 1/stride.
    for index, (width, kernel, step) in enumerate(
        ((filters, 5, stride), (filters * 2, 3, 1)), start=1
    ):
        x = _conv_block(x, width, kernel, index=index, regularizer=regularizer, stride=step)
    # Residual dilated blocks widen the receptive field: 7 frames (70 ms) after the two
    # convolutions above, 19 frames (190 ms) with dilations [2, 4].
    for index, rate in enumerate(dilations, start=3):
        h = _conv_block(x, filters * 2, 3, index=index, regularizer=regularizer, dilation=rate)
        x = layers.Add(name=f"residual{index}")([x, h])
    x = StatisticsPooling(name="statistics")(x)
    x = layers.Concatenate(name="utterance")([x, direct])
    x = layers.Dropout(dropout, seed=seed)(x)
    outputs = layers.Dense(
        num_classes, activation="softmax", kernel_regularizer=regularizer, name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name="ser_cnn")


def _conv_block(
    x, width: int, kernel: int, *, index: int, regularizer, dilation: int = 1, stride: int = 1
):
    """Conv1D (no bias: batch norm's shift replaces it), batch norm, ReLU; layers named
    conv/batchnorm/relu + index."""
    from keras import layers

    x = layers.Conv1D(
        width,
        kernel,
        padding="same",
        strides=stride,
        dilation_rate=dilation,
        use_bias=False,
        kernel_regularizer=regularizer,
        name=f"conv{index}",
    )(x)
    x = layers.BatchNormalization(name=f"batchnorm{index}")(x)
    return layers.Activation("relu", name=f"relu{index}")(x)
