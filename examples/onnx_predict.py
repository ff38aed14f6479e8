"""Predict emotions with a model exported by `ser export --format onnx`, without this project.

    pip install numpy librosa onnxruntime
    python onnx_predict.py emotion.onnx recording.wav [more recordings of the same speaker ...]

The settings come from the JSON that `ser export` writes beside the model (emotion.onnx.json).
The features are computed as ser computes them for `features.kind: mfcc`, and a long
recording is cut into windows whose probabilities are averaged, as `ser predict` does.
With `normalize: speaker` (the default), the features of all the recordings given are
standardised together, as `ser predict --speaker all` does: one recording works, several
of the same speaker work better. So are the statistics member's statistics of a model
exported with a second input (`model.stats_normalize: speaker`), in the two passes that
the JSON's speaker_input.how describes. A model exported with a whole-speaker model beside
it (`model.speaker_blend`, the default) blends the two as the JSON's blend.how describes.
A model that judges speed copies of each recording beside it (`model.test_speeds`, the
default) gets them as the JSON's speed_copies.how describes.
"""

import json
import sys
from pathlib import Path

import librosa
import numpy as np
import onnxruntime


def trim(samples, noise_db, max_pause=None):
    """The recording from its first to its last frame (512 samples, hop 128) louder than 40 dB
    below its loudest and, with noise_db (settings trim_noise_db), louder than its noise
    floor (the 10th percentile of its frame energies, dB) by noise_db, or by half of the
    floor's distance to the peak where that is less. With max_pause (samples; settings
    max_pause_seconds), every pause between two such frames longer than that, counted
    from 256 samples after the one to 256 before the other, loses its middle down to it."""
    if noise_db is None and max_pause is None:
        return librosa.effects.trim(samples, top_db=40, frame_length=512, hop_length=128)[0]
    energy = librosa.feature.rms(y=samples, frame_length=512, hop_length=128)[0] ** 2
    level = 10 * np.log10(np.maximum(1e-10, energy))
    peak, floor = level.max(), np.percentile(level, 10)
    threshold = peak - 40
    if noise_db is not None and floor < peak:
        threshold = max(threshold, floor + min(noise_db, 0.5 * (peak - floor)))
    loud = np.flatnonzero(level > threshold)
    if loud.size == 0:
        return samples[:0]
    start, end = loud[0] * 128, min(len(samples), (loud[-1] + 1) * 128)
    if max_pause is None:
        return samples[start:end]
    kept, cursor = [], start
    for before, after in zip(loud[:-1], loud[1:], strict=True):
        quiet_from, quiet_to = before * 128 + 256, after * 128 - 256
        if quiet_to - quiet_from > max_pause:
            kept.append(samples[cursor : quiet_from + max_pause // 2])
            cursor = quiet_to - (max_pause - max_pause // 2)
    return np.concatenate([*kept, samples[cursor:end]])


def speech(samples, settings):
    """A mono recording without its leading and trailing silence, its long pauses shortened."""
    pause = settings.get("max_pause_seconds")
    rate = settings["sample_rate"]
    return trim(
        samples, settings.get("trim_noise_db"), None if pause is None else round(pause * rate)
    )


def spans(size, settings):
    """(start, stop) samples of the analysis windows of a recording's speech of ``size``
    samples: one window when it is at most one and a half windows long, else windows half a
    window apart."""
    length = round(settings["window_seconds"] * settings["sample_rate"])
    if size <= 1.5 * length:
        start = round(settings["offset_seconds"] * settings["sample_rate"])
        return [(start, min(size, start + length))]
    hop = length // 2
    return [(start, min(size, start + length)) for start in range(0, size - length + hop, hop)]


def windows(samples, settings):
    """Analysis windows of a mono recording: pauses trimmed, at most window_seconds each."""
    trimmed = speech(samples, settings)
    return [trimmed[start:stop] for start, stop in spans(len(trimmed), settings)]


def delta(contours):
    """Deltas over time of (n, frames) contours; a very short window gets a narrower delta."""
    frames = contours.shape[1]
    width = min(9, frames if frames % 2 == 1 else frames - 1)
    if width < 3:
        return np.zeros_like(contours)
    return librosa.feature.delta(contours, width=width, mode="nearest")


def contours(window, power, settings):
    """(2, frames): log F0 (YIN, 60-500 Hz, 64 ms frames) and log energy, frames as power's."""
    rate, hop, frames = settings["sample_rate"], settings["hop_length"], power.shape[1]
    if rate > 8000 and (hop * 8000) % rate == 0:  # YIN at 8 kHz, on the same frame grid
        window = librosa.resample(window, orig_sr=rate, target_sr=8000, res_type="polyphase")
        rate, hop = 8000, hop * 8000 // rate
    frame = round(0.064 * rate)
    padded = np.pad(window, (0, max(0, frame - window.size)))
    f0 = librosa.yin(padded, fmin=60.0, fmax=500.0, sr=rate, frame_length=frame, hop_length=hop)
    log_f0 = np.log(np.nan_to_num(f0, nan=60.0).clip(60.0, 500.0))
    log_f0 = np.pad(log_f0, (0, max(0, frames - log_f0.size)), mode="edge")[:frames]
    rms = librosa.feature.rms(S=np.sqrt(power), frame_length=settings["n_fft"])[0]
    return np.stack([log_f0, np.log(rms + 1e-6)])


def at_level(window, level_db, rate):
    """The window scaled so that its 20 ms frames within 40 dB of the loudest have an RMS of
    level_db dBFS (silence as it is)."""
    frame = max(1, round(0.02 * rate))
    count = max(1, window.size // frame)
    frames = window[: count * frame].reshape(count, -1) if window.size >= frame else window[None]
    powers = np.mean(frames.astype(np.float64) ** 2, axis=1)
    if powers.max(initial=0.0) == 0.0:
        return window
    power = np.mean(powers[powers >= powers.max() * 10 ** (-40 / 10)])
    return (window * (10 ** (level_db / 20) / np.sqrt(power))).astype(np.float32)


def analyse(samples, settings):
    """(STFT power, prosody contours or None) of a window or of a recording's speech."""
    if settings.get("level_db") is not None:
        samples = at_level(samples, settings["level_db"], settings["sample_rate"])
    stft = librosa.stft(samples, n_fft=settings["n_fft"], hop_length=settings["hop_length"])
    power = np.abs(stft) ** 2
    return power, contours(samples, power, settings) if settings.get("prosody", False) else None


def features(window, settings, analysis=None, speed=1.0, frames=None):
    """One window -> (n_frames, n_features) float32: MFCCs, deltas, log-mels, prosody. Or,
    from the analysis of a recording's speech, the window of its frames ``frames`` played at
    ``speed`` (as settings speed_copies.how says)."""
    rate, n_mfcc, n_fft = settings["sample_rate"], settings["n_mfcc"], settings["n_fft"]
    power, prosodic = analyse(window, settings) if analysis is None else analysis
    if frames is not None:
        power = power[:, frames]
        prosodic = None if prosodic is None else prosodic[:, frames]
    if speed != 1.0 and prosodic is not None:
        prosodic = np.stack(
            [np.clip(prosodic[0] + np.log(speed), np.log(60.0), np.log(500.0)), prosodic[1]]
        )

    def bands(count):
        # The mel filters at speed times each bin's frequency (at speed 1, librosa's own).
        mel = librosa.filters.mel(sr=rate * speed, n_fft=n_fft, n_mels=count, fmax=rate / 2)
        return librosa.power_to_db(mel @ power)

    log_mel = bands(max(64, n_mfcc))
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc)
    blocks = [mfcc]
    if settings["deltas"]:
        blocks.append(delta(mfcc))
    if settings.get("mels", 0):
        blocks.append(log_mel if settings["mels"] == log_mel.shape[0] else bands(settings["mels"]))
    if prosodic is not None:
        deltas = delta(prosodic)
        blocks.append(np.stack([prosodic[0], deltas[0], prosodic[1], deltas[1]]))
    matrix = np.concatenate(blocks).T[: settings["n_frames"]]
    if settings["normalize"] == "utterance":
        matrix = (matrix - matrix.mean(axis=0)) / np.maximum(matrix.std(axis=0), 1e-5)
    if settings["pad"] == "repeat":
        matrix = matrix[np.arange(settings["n_frames"]) % len(matrix)]
    else:
        matrix = np.pad(matrix, ((0, settings["n_frames"] - len(matrix)), (0, 0)))
    return np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def load_audio(path, rate):
    """A recording, mono, less its mean (a microphone's constant offset), at ``rate``."""
    samples, native = librosa.load(path, sr=None, mono=True)
    return librosa.resample(samples - samples.mean(), orig_sr=native, target_sr=rate)


def read(paths, feature_settings, speeds=()):
    """Each recording's (windows, n_frames, n_features) features, then those of its copies
    played at each of speeds: one list of batches for the recordings, one for each speed."""
    rate, hop = feature_settings["sample_rate"], feature_settings["hop_length"]
    batches = [[] for _ in [1.0, *speeds]]
    for path in paths:
        samples = load_audio(path, rate)
        trimmed = speech(samples, feature_settings)
        parts = spans(len(trimmed), feature_settings)
        own = np.stack([features(trimmed[start:stop], feature_settings) for start, stop in parts])
        batches[0].append(own)
        if trimmed.size == 0:
            for batch in batches[1:]:
                batch.append(own)
            continue
        analysis = analyse(trimmed, feature_settings) if speeds else None
        for batch, speed in zip(batches[1:], speeds, strict=True):
            speed = rate / round(rate / speed)  # the whole sample rate it is resampled to
            copy = []
            for start, stop in spans(int(np.ceil(len(trimmed) / speed)), feature_settings):
                # Frame i of the copy's window: the speech's frame nearest its time.
                times = (start + np.arange(1 + (stop - start) // hop) * hop) * speed
                frames = np.minimum(np.round(times / hop).astype(int), analysis[0].shape[1] - 1)
                copy.append(features(None, feature_settings, analysis, speed, frames))
            batch.append(np.stack(copy))
    return batches


def predict(session, settings, batches):
    """Class probabilities of each recording (one speaker's; its features from read), in
    settings["classes"] order."""
    feature_settings = settings["features"]
    if "normalizer" in settings:  # settings["normalizer"]["how"] says what this does
        normalizer = settings["normalizer"]
        frames = np.concatenate(batches).reshape(-1, feature_settings["n_features"])
        k, prior = len(batches), normalizer["shrinkage"]  # recordings, not windows
        mean = (k * frames.mean(axis=0) + prior * np.array(normalizer["population_mean"])) / (
            k + prior
        )
        var = (k * frames.var(axis=0) + prior * np.array(normalizer["population_var"])) / (
            k + prior
        )
        std = np.maximum(np.sqrt(var), 1e-5)
        trust = np.float32(k / (k + prior))
        batches = [
            np.concatenate(
                [(batch - mean) / std, np.full((*batch.shape[:2], 1), trust)], axis=-1
            ).astype(np.float32)
            for batch in batches
        ]
    if "speaker_input" not in settings:
        return [
            calibrated(session.run(["probabilities"], {"features": b})[0], settings).mean(axis=0)
            for b in batches
        ]
    # First pass: every window's statistics; their mean and std over all windows given.
    speaker = settings["speaker_input"]
    width = speaker["shape"][-1]
    windows_given = np.concatenate(batches)
    ones = np.ones((len(windows_given), 2, width), dtype=np.float32)
    feed = {"features": windows_given, "speaker_statistics": ones}
    statistics = session.run(["statistics"], feed)[0].astype(np.float64)
    scale = np.maximum(statistics.std(axis=0), speaker["scale_floor"])
    if len(statistics) == 1:  # one window has no spread
        scale = np.ones_like(scale)
    moments = np.stack([statistics.mean(axis=0), scale]).astype(np.float32)
    # Second pass: the probabilities, given the speaker's moments.
    return [
        calibrated(
            session.run(
                ["probabilities"],
                {"features": b, "speaker_statistics": np.repeat(moments[None], len(b), axis=0)},
            )[0],
            settings,
        ).mean(axis=0)
        for b in batches
    ]


def calibrated(probabilities, settings):
    """Each window's probabilities rescaled by the model's temperature, as ser predict does."""
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0))
    logits /= settings.get("temperature", 1.0)
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def load(model_path):
    """(session, settings) of an exported model."""
    with open(model_path + ".json") as file:
        settings = json.load(file)
    return onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"]), settings


def predict_files(model_path, paths):
    """(probabilities of each recording, settings): predict, with the whole-speaker model
    blended in where the export has one (settings["blend"]["how"] says how), averaged with
    the speed copies' where it names some (settings["speed_copies"]["how"])."""
    session, settings = load(model_path)
    companion = None
    if "blend" in settings:
        companion = load(str(Path(model_path).with_name(settings["blend"]["file"])))
    copies = settings.get("speed_copies", {"speeds": []})
    speeds = [1.0, *copies["speeds"]]
    judged = []
    for batches in read(paths, settings["features"], copies["speeds"]):
        results = predict(session, settings, batches)
        if companion is not None:
            whole = predict(*companion, batches)
            others = len(batches) - 1  # the recordings beyond one
            weight = others / (others + settings["blend"]["recordings"])
            results = [(1 - weight) * a + weight * b for a, b in zip(results, whole, strict=True)]
        judged.append(results)
    if len(speeds) == 1:
        return judged[0], settings
    temperature = {"temperature": copies["temperature"]}
    means = [np.mean(parts, axis=0) for parts in zip(*judged, strict=True)]
    return [calibrated(mean[None], temperature)[0] for mean in means], settings


def main(model_path, *recordings):
    with open(model_path + ".json") as file:
        if json.load(file)["features"]["kind"] != "mfcc":
            sys.exit("this example computes features.kind 'mfcc' only")
    results, settings = predict_files(model_path, recordings)
    for path, probabilities in zip(recordings, results, strict=True):
        best = int(probabilities.argmax())
        print(f"{path}\t{settings['classes'][best]}\t{probabilities[best]:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
