"""Load on `ser serve`: C concurrent clients posting 2.4 s WAV clips, a fixed count of them.

    python benchmarks/serve_load.py                          # data/model, 8 clients, 800 clips
    python benchmarks/serve_load.py --model DIR --clients 8 --requests 800 --workers 1

Starts `ser serve` on 127.0.0.1 (a free port) with the model, waits until it answers, warms
it with a few requests, then C clients (threads, each with its own keep-alive connection)
send --requests clips in all as the raw body of POST /predict. Reports clips/s (the count
over the wall time) and the p50 and p95 latency of a request, as a client sees it.

Beside it, the same clips through `ser predict`'s code file by file: Predictor.predict_file
in this process, warm, one after another (the service stopped first, so the two do not
share the CPU).

The clips are synthetic voices (ser.data.corpora.synthetic) cut to 2.4 s, 16 kHz mono.
Prints a Markdown summary; --json PATH also writes the figures.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CLIP_SECONDS = 2.4
DISTINCT_CLIPS = 16


def make_clips(folder: Path) -> list[bytes]:
    """DISTINCT_CLIPS synthetic clips of 2.4 s, as WAV files' bytes."""
    from ser.data.corpora import synthetic

    synthetic.generate(folder / "speech", seed=0, actors=[1, 2], sample_rate=16000)
    clips = []
    for path in sorted((folder / "speech").rglob("*.wav"))[:: 120 // DISTINCT_CLIPS][
        :DISTINCT_CLIPS
    ]:
        samples, rate = sf.read(path, dtype="float32")
        length = int(CLIP_SECONDS * rate)
        samples = np.resize(samples, length)  # repeats a clip shorter than 2.4 s
        out = folder / f"clip-{len(clips):02d}.wav"
        sf.write(out, samples, rate, subtype="PCM_16")
        clips.append(out)
    return clips


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(model: Path, port: int, workers: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ser.serve.cli",
            "serve",
            "--model",
            str(model),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 900  # TensorFlow's start-up on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"ser serve stopped: {process.stderr.read()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.25)
    process.kill()
    sys.exit("ser serve did not answer in 900 s")


def load(port: int, bodies: list[bytes], *, clients: int, requests: int) -> dict:
    """``clients`` threads send ``requests`` bodies in all; latencies in seconds."""
    counter = itertools.count()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while (index := next(counter)) < requests:
            body = bodies[index % len(bodies)]
            start = time.perf_counter()
            connection.request("POST", "/predict", body, {"Content-Type": "audio/wav"})
            response = connection.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    failures.append(f"{response.status} {answer[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "wall_s": wall,
        "clips_per_s": len(latencies) / wall,
        **percentiles(latencies),
    }


def percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


def file_by_file(model: Path, clips: list[Path], count: int) -> dict:
    """Predictor.predict_file on ``count`` clips one after another, warm."""
    from ser.serve.predict import Predictor

    predictor = Predictor(model)
    for clip in clips[:4]:
        predictor.predict_file(clip)  # loads and traces the model, warms the feature code
    latencies = []
    start = time.perf_counter()
    for index in range(count):
        begin = time.perf_counter()
        result = predictor.predict_file(clips[index % len(clips)])
        latencies.append(time.perf_counter() - begin)
        assert result.status == "ok", result.message
    wall = time.perf_counter() - start
    return {"clips": count, "wall_s": wall, "clips_per_s": count / wall, **percentiles(latencies)}


def machine() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": date.today().isoformat(),
        "commit": commit,
        "cores": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "data" / "model")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=int, default=800, help="clips in all (default 800)")
    parser.add_argument("--workers", type=int, default=1, help="ser serve --workers (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not (args.model / "model.json").exists():
        sys.exit(f"error: {args.model}: no model.json (train one: make repro)")

    with tempfile.TemporaryDirectory(prefix="ser-serve-load-") as folder:
        clips = make_clips(Path(folder))
        bodies = [clip.read_bytes() for clip in clips]
        port = free_port()
        process = start_service(args.model, port, args.workers)
        try:
            load(port, bodies, clients=args.clients, requests=4 * args.clients)  # warm-up
            served = load(port, bodies, clients=args.clients, requests=args.requests)
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=60)
        direct = file_by_file(args.model, clips, min(args.requests, 200))

    figures = {
        "machine": machine(),
        "settings": vars(args) | {"model": str(args.model), "json": None},
        "serve": served,
        "predict_file": direct,
        "serve_stderr": stderr,
    }
    print(
        f"ser serve load: {args.clients} clients, {served['requests']} clips of "
        f"{CLIP_SECONDS} s, --workers {args.workers}; {figures['machine']}\n\n"
        "| path | clips/s | p50 latency | p95 latency | failures |\n"
        "|---|---|---|---|---|\n"
        f"| POST /predict, {args.clients} concurrent clients | {served['clips_per_s']:.1f} | "
        f"{served['p50_ms']:.1f} ms | {served['p95_ms']:.1f} ms | {served['failures']} |\n"
        f"| Predictor.predict_file, one after another (warm) | {direct['clips_per_s']:.1f} | "
        f"{direct['p50_ms']:.1f} ms | {direct['p95_ms']:.1f} ms | 0 |"
    )
    if served["failures"]:
        print(f"first failure: {served['first_failure']}")
    if stderr.strip():
        print(f"ser serve wrote on stderr:\n{stderr}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if served["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
