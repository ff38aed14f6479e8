"""`ser serve` as a real subprocess on 127.0.0.1, over real HTTP, with the tiny trained model:
each endpoint, each bad input (the service answers after each), long uploads, sessions, and
the quiet terminal of `ser` commands."""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.serve.predict import Predictor

SER = [sys.executable, "-m", "ser.serve.cli"]
MAX_BYTES = 256 * 2**20  # the default


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """A running `ser serve` and a small HTTP client for it."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process, self.port = process, port

    def request(
        self,
        method: str,
        path: str,
        body=None,
        headers: dict | None = None,
        *,
        timeout: float = 120,
    ) -> tuple[int, dict | str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.getheader("content-type", "").startswith("application/json"):
            return response.status, json.loads(text)
        return response.status, text

    def post_file(self, path: Path, query: str = "", headers: dict | None = None):
        return self.request("POST", f"/predict{query}", path.read_bytes(), headers)

    def answers(self) -> bool:
        status, answer = self.request("GET", "/health", timeout=10)
        return status == 200 and answer["status"] == "ok"

    def peak_memory_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        return int(peak.split()[1])


@contextlib.contextmanager
def running(model: Path, *args: str):
    port = free_port()
    process = subprocess.Popen(
        [*SER, "serve", "--model", str(model), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    service = Service(process, port)
    try:
        deadline = time.monotonic() + 600  # TensorFlow's start-up, on a busy machine
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if service.request("GET", "/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "ser serve did not start in 600 s"
            time.sleep(0.25)
        yield service
    finally:
        process.terminate()
        service.output = process.communicate(timeout=60)


@pytest.fixture(scope="module")
def service(tiny_model):
    with running(tiny_model) as started:
        yield started
    # Everything the module sent it, good and bad, left its terminal clean.
    stdout, stderr = started.output
    assert stderr == "", stderr
    assert stdout.splitlines()[0].startswith("ser serve: loading")
    assert "ready" in stdout.splitlines()[1]


@pytest.fixture(scope="module")
def clips(tiny_corpus) -> list[Path]:
    return sorted((tiny_corpus / "speech" / "Actor_04").glob("*.wav"))[:4]


def ser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SER, *args], capture_output=True, text=True, timeout=300, check=False)


def rounded(value, digits: int = 6):
    """A JSON value with its floats rounded, to compare answers computed apart."""
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    return round(value, digits) if isinstance(value, float) else value


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, dict]:
    """A multipart/form-data body: field name -> (file name, content)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, content) in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_health_and_model_describe_the_model(service, tiny_model):
    assert service.answers()
    status, model = service.request("GET", "/model")
    info = ser("info", "--model", str(tiny_model))
    described = json.loads(info.stdout)
    assert status == 200 and model == {**described, "answers": described["classes"]}


@pytest.mark.parametrize("per_window", [False, True])
def test_predict_answers_what_ser_predict_prints(service, tiny_model, clips, per_window):
    flags = ["--per-window"] if per_window else []
    printed = ser("predict", str(clips[0]), "--model", str(tiny_model), "--format", "json", *flags)
    expected = json.loads(printed.stdout)[0]
    query = "?per_window=true" if per_window else ""

    status, raw = service.post_file(clips[0], query, {"Content-Type": "audio/wav"})
    assert status == 200, raw
    # The body alone has no name: reported as ser predict reports stdin.
    assert rounded(raw) == rounded({**expected, "file": "-"})
    assert ("windows" in raw) == per_window

    body, headers = multipart({"file": (clips[0].name, clips[0].read_bytes())})
    status, form = service.request("POST", f"/predict{query}", body, headers)
    assert status == 200, form
    assert rounded(form) == rounded({**expected, "file": clips[0].name})


def test_predictions_run_concurrently_and_agree(service, clips):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda clip: service.post_file(clip), clips * 4))
    assert all(status == 200 for status, _ in answers)
    by_clip = [answer["probabilities"] for _, answer in answers]
    for index, probabilities in enumerate(by_clip):
        assert probabilities == pytest.approx(by_clip[index % len(clips)], abs=1e-6)


def silence(seconds: float) -> bytes:
    path = Path(f"/tmp/ser-test-silence-{uuid.uuid4().hex}.wav")
    sf.write(path, np.zeros(int(16000 * seconds), dtype=np.float32), 16000)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    path = Path(f"/tmp/ser-test-tone-{uuid.uuid4().hex}.wav")
    sf.write(path, samples, rate)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def click() -> np.ndarray:
    samples = np.zeros(32000, dtype=np.float32)
    samples[16000:16020] = 0.5
    return samples


def hiss() -> np.ndarray:
    return (0.1 * np.random.default_rng(2).standard_normal(32000)).astype(np.float32)


BAD_UPLOADS = {
    "garbage": (b"\x00\x13 this is not audio \xff" * 100, {}, 415, "not audio that can be read"),
    "empty": (b"", {}, 400, "empty upload"),
    "silence": (silence(2.0), {}, 422, "silent"),
    "too short": (wav_bytes(tone(0.1)), {}, 422, "too short"),
    "click in silence": (wav_bytes(click()), {}, 422, "no speech in the recording: only"),
    "hiss": (wav_bytes(hiss()), {}, 422, "no speech in the recording: no voice"),
    "form without file": (
        *multipart({"audio": ("a.wav", b"RIFF")}),
        400,
        "no field 'file'",
    ),
    "truncated form": (
        b"--abc\r\nContent-Disposition: form-data; name=file\r\n\r\nRIFF",
        {"Content-Type": "multipart/form-data; boundary=abc"},
        415,
        "not audio",
    ),
    "form without boundary": (b"x", {"Content-Type": "multipart/form-data"}, 400, "boundary"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_gets_one_line_of_json_and_the_service_goes_on(service, case):
    body, headers, expected_status, words = BAD_UPLOADS[case]
    status, answer = service.request("POST", "/predict", body, headers)
    assert status == expected_status, answer
    assert list(answer) == ["error"] and words in answer["error"]
    assert "\n" not in answer["error"]
    assert service.answers()


def test_an_unreadable_upload_names_what_is_allowed(service):
    _, answer = service.request("POST", "/predict", b"not audio at all" * 10)
    assert "WAV, FLAC" in answer["error"] and "/tmp" not in answer["error"]


@pytest.mark.parametrize(
    ("method", "path", "expected_status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/predict", 405),
        ("POST", "/predict?per_window=maybe", 422),
    ],
)
def test_wrong_requests_get_json_errors(service, method, path, expected_status):
    status, answer = service.request(method, path, b"x" if method == "POST" else None)
    assert status == expected_status and list(answer) == ["error"]
    assert service.answers()


def test_an_upload_over_the_limit_is_refused_from_its_content_length(service):
    """The service answers 413 from the header alone: the body is never sent."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Length", str(MAX_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413 and "over 268435456 bytes" in answer["error"]
    assert service.answers()


def test_a_streamed_upload_over_the_limit_is_refused_while_it_streams(service):
    """Without Content-Length (chunked), the service counts the bytes as they arrive, answers
    413 once past the limit and closes the connection: the client cannot go on sending.

    A client that goes on sending after the answer still reads it: the service drops what
    is in flight before it closes (ClosingRefusal)."""
    block = b"\x01" * 2**20
    sent, reply = 0, b""
    with socket.create_connection(("127.0.0.1", service.port), timeout=60) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 4 * MAX_BYTES and not select.select([connection], [], [], 0)[0]:
                connection.sendall(b"%x\r\n%b\r\n" % (len(block), block))
                sent += len(block)
            for _ in range(16):  # the answer is in; go on sending without reading it
                connection.sendall(b"%x\r\n%b\r\n" % (len(block), block))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the service: its answer is waiting to be read
        time.sleep(0.2)
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:200]
    assert "over 268435456 bytes" in json.loads(body)["error"]
    assert MAX_BYTES < sent < MAX_BYTES + 64 * 2**20  # what was in flight when it answered
    assert service.answers()


def write_minutes(path: Path, minutes: int, rate: int = 16000) -> int:
    """``minutes`` of a modulated tone as 16-bit stereo WAV, a minute at a time; its size."""
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        minute = tone(60.0, rate)
        for _ in range(minutes):
            out.write(np.stack([minute, minute], axis=1))
    return path.stat().st_size


@pytest.mark.slow
def test_an_hour_long_upload_streams_with_bounded_memory(service, tmp_path):
    """An hour of 16 kHz stereo (230 MB) is predicted window by window: the hour raises the
    service's peak over what ten minutes took by less than its samples would take held at
    once (220 MiB: an hour at the model's 16 kHz, float32). What it grows by, and the aim of
    an hour costing what ten minutes cost: docs/serving.md."""

    def post(path: Path, size: int) -> dict:
        with open(path, "rb") as body:
            status, answer = service.request(
                "POST",
                "/predict?per_window=true",
                body,
                {"Content-Length": str(size)},
                timeout=1800,
            )
        assert status == 200, answer
        return answer

    ten, hour = tmp_path / "ten.wav", tmp_path / "hour.wav"
    post(ten, write_minutes(ten, 10))
    before = service.peak_memory_kib()
    size = write_minutes(hour, 60)
    assert 200 * 2**20 < size < MAX_BYTES
    answer = post(hour, size)
    assert answer["status"] == "ok" and len(answer["windows"]) > 2000
    grown = (service.peak_memory_kib() - before) * 1024
    assert grown < 160 * 2**20, f"peak memory grew by {grown / 2**20:.0f} MiB"
    assert service.answers()


def test_a_session_judges_each_recording_with_those_before(service, tiny_model, clips):
    """The page's one-speaker sessions: what Predictor.stream() gives, per session id."""
    stream = Predictor(tiny_model).stream()
    expected = [stream.add_file(clip).probabilities for clip in clips[:3]]
    session = uuid.uuid4().hex
    for clip, probabilities in zip(clips[:3], expected, strict=True):
        status, answer = service.post_file(clip, headers={"X-Ser-Session": session})
        assert status == 200, answer
        assert answer["probabilities"] == pytest.approx(probabilities, abs=1e-5)
    # A second session starts afresh; the query parameter works as the header does.
    status, fresh = service.post_file(clips[2], query=f"?session={uuid.uuid4().hex}")
    alone = Predictor(tiny_model).stream().add_file(clips[2]).probabilities
    assert fresh["probabilities"] == pytest.approx(alone, abs=1e-5)
    assert service.request("DELETE", f"/session/{session}") == (200, {"dropped": True})
    assert service.request("DELETE", f"/session/{session}") == (200, {"dropped": False})


def test_a_bad_session_id_is_refused(service, clips):
    status, answer = service.post_file(clips[0], headers={"X-Ser-Session": "x"})
    assert status == 400 and "session id" in answer["error"]


def test_the_page_and_its_assets_come_from_the_service(service):
    status, page = service.request("GET", "/")
    assert status == 200 and "<html" in page
    # Nothing from elsewhere: every src and href is a path on this service.
    for attribute in ("src=", "href="):
        for link in page.split(attribute)[1:]:
            assert link[1] == "/" and not link[1:].startswith("//"), link[:40]
    for asset in ("/static/app.js", "/static/style.css", "/static/recorder-worklet.js"):
        status, text = service.request("GET", asset)
        assert status == 200 and "http://" not in text and "https://" not in text


@pytest.mark.slow
def test_several_workers_serve_without_sessions(tiny_model, clips):
    with running(tiny_model, "--workers", "2") as several:
        assert several.request("GET", "/health")[1]["sessions"] is False
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(several.post_file, clips))
        assert all(status == 200 for status, _ in answers)
        status, answer = several.post_file(clips[0], headers={"X-Ser-Session": uuid.uuid4().hex})
        assert status == 400 and "sessions are off" in answer["error"]


@pytest.mark.slow
def test_a_service_for_some_classes_answers_among_them(tiny_model, clips):
    with running(tiny_model, "--classes", "sad,happy") as restricted:
        assert restricted.request("GET", "/model")[1]["answers"] == ["happy", "sad"]
        status, answer = restricted.post_file(clips[0])
    printed = ser(
        "predict",
        str(clips[0]),
        "--model",
        str(tiny_model),
        "--format",
        "json",
        "--classes",
        "happy,sad",
    )
    expected = json.loads(printed.stdout)[0]
    assert status == 200 and list(answer["probabilities"]) == ["happy", "sad"]
    assert rounded(answer["probabilities"]) == rounded(expected["probabilities"])
    assert answer["label"] == expected["label"]


def test_serve_refuses_a_class_the_model_lacks(tiny_model):
    result = ser("serve", "--model", str(tiny_model), "--classes", "happy,glee", "--port", "1")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "glee is not a class" in result.stderr


def test_serve_refuses_a_folder_that_is_not_a_model(tmp_path):
    result = ser("serve", "--model", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")


def test_ser_predict_keeps_the_terminal_clean(tiny_model, clips, tmp_path):
    """No TensorFlow or absl start-up lines: nothing on stderr for a good file, and for a bad
    one exactly one line, the error."""
    good = ser("predict", str(clips[0]), "--model", str(tiny_model))
    assert good.returncode == 0 and good.stderr == ""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    result = ser("predict", str(bad), "--model", str(tiny_model))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
