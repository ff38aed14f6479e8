"""Does `ser predict`'s check for recordings without speech (ser.serve.recording.speech_of)
ever refuse real speech, and does it refuse noise?

Every clip of the archives given (RAVDESS-like zips: speech, song), clean, through each
channel of ser.features.channel (applied at the file's own rate, as benchmarks/robustness.py
applies them) and under noise at 5 and 0 dB SNR, is decoded and resampled as
``Predictor.predict_array`` does; the report gives, per archive and condition, how many
clips the check refuses, and the least trimmed speech and voiced seconds
(recording.voiced_seconds) of any clip. Then noises of several colours and lengths with no
voice in them, and what the check says of each:

    python benchmarks/voice_check.py ../shared/data/ravdess-speech-actors01-20-24k.zip \\
        ../shared/data/ravdess-song-actors01-20-24k.zip --json voice.json

docs/robustness.md (Recordings without speech) gives the figures measured.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.features import audio, channel, extract
from ser.params import load_params
from ser.serve import recording

# Noise louder than the channels' (10 dB SNR at worst): where the check starts refusing speech.
LOUDER_NOISE = {"noise_5db": 5.0, "noise_0db": 0.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archives", nargs="*", type=Path, help="zips of .wav clips")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--every", type=int, default=1, help="take every Nth clip")
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser.parse_args(argv)


def clips(archive: Path, every: int):
    with zipfile.ZipFile(archive) as bundle:
        names = sorted(name for name in bundle.namelist() if name.endswith(".wav"))
        for name in names[::every]:
            samples, rate = sf.read(io.BytesIO(bundle.read(name)), dtype="float32")
            yield name, samples, rate


def measure(mono: np.ndarray, params) -> tuple[float, float, str]:
    """(trimmed speech seconds, voiced seconds, the check's refusal or "") of a recording
    at the analysis rate."""
    rate = extract.analysis_rate(params)
    speech, missing = recording.speech_of(mono, params)
    return len(speech) / rate, recording.voiced_seconds(speech, rate), missing


def noises(rate: int) -> dict[str, np.ndarray]:
    """Recordings with no voice: white, pink and brown noise, a fan (pink noise beating at
    25 Hz) and mains hum (50 Hz and its third harmonic), 2 and 60 s long."""
    found = {}
    for seconds in (2, 60):
        size = rate * seconds
        rng = np.random.default_rng(seconds)
        frequencies = np.fft.rfftfreq(size, 1 / rate)
        time = np.arange(size) / rate
        for name, power in (("white", 0), ("pink", 1), ("brown", 2)):
            spectrum = np.fft.rfft(rng.standard_normal(size))
            spectrum[1:] /= frequencies[1:] ** (power / 2)
            spectrum[0] = 0
            noise = np.fft.irfft(spectrum, size)
            found[f"{name} {seconds} s"] = 0.05 * noise / noise.std()
        found[f"fan {seconds} s"] = found[f"pink {seconds} s"] * (
            1 + 0.3 * np.sin(2 * np.pi * 25 * time)
        )
        hum = 0.05 * np.sin(2 * np.pi * 50 * time) + 0.02 * np.sin(2 * np.pi * 150 * time)
        found[f"hum {seconds} s"] = hum + 0.002 * rng.standard_normal(size)
    return {name: samples.astype(np.float32) for name, samples in found.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params).features
    rate = extract.analysis_rate(params)
    report: dict = {"clips": {}, "noise": {}}
    for archive in args.archives:
        rows: dict[str, list[tuple[float, float, str]]] = {}
        for _, samples, file_rate in clips(archive, args.every):
            for name in ("clean", *channel.names(), *LOUDER_NOISE):
                if name == "clean":
                    heard = samples
                elif name in LOUDER_NOISE:
                    heard = channel.add_noise(
                        samples, sample_rate=file_rate, seed=1, snr_db=LOUDER_NOISE[name]
                    )
                else:
                    heard = channel.perturb(samples, name=name, sample_rate=file_rate, seed=1)
                mono = audio.mono_at(heard, orig_sr=file_rate, target_sr=rate)
                rows.setdefault(name, []).append(measure(mono, params))
        for name, measured in rows.items():
            speech, voiced, missing = zip(*measured, strict=True)
            report["clips"][f"{archive.name} {name}"] = {
                "clips": len(measured),
                "refused": sum(bool(reason) for reason in missing),
                "least_speech_s": round(min(speech), 3),
                "least_voiced_s": round(min(voiced), 3),
                "voiced_s_1st_percentile": round(float(np.percentile(voiced, 1)), 3),
            }
    for name, samples in noises(rate).items():
        speech, voiced, missing = measure(samples, params)
        report["noise"][name] = {
            "speech_s": round(speech, 3),
            "voiced_s": round(voiced, 3),
            "refused": bool(missing),
        }
    for section in report.values():
        for name, row in section.items():
            print(f"{name:48s} " + "  ".join(f"{key} {value}" for key, value in row.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
