"""`ser serve`: predictions over HTTP, and a page to record from the microphone.

    POST /predict           an audio file (raw body, or multipart field ``file``) -> the JSON
                            object ``ser predict --format json`` prints for it
    GET  /model             what ``ser info`` prints
    GET  /health            {"status": "ok", ...} once the model is warm
    DELETE /session/{id}    forget a page's speaker session
    GET  /                  the page (ser/serve/static/)

Each worker process loads the model once, warms it, and predicts in a thread pool, off the
event loop. An upload streams to a temporary file a chunk at a time (memory does not grow
with its size) and is refused with 413 past ``max_bytes``: from Content-Length before any
of it is read, or while it streams when there is none. Every refusal is a 4xx with one line
of JSON, ``{"error": "..."}``, and the service goes on serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from threadpoolctl import threadpool_limits

from ser.serve.results import as_dict

# Formats the upload may be in: whatever `ser predict` reads (libsndfile, then audioread).
FORMATS = "WAV, FLAC, OGG/Opus, MP3, AIFF or another format libsndfile reads"
ENDPOINTS = "GET /, GET /health, GET /model, POST /predict, DELETE /session/{id}"
DEFAULT_MAX_BYTES = 256 * 2**20  # an hour of 16-bit mono at 32 kHz
# Page sessions: a random id of the page's making; dropped after this long unused.
SESSION_IDLE_SECONDS = 30 * 60
# A session holds its recordings' features in memory (about 150 kB a second of audio):
# these bound it.
MAX_SESSIONS = 100
SESSION_MAX_SECONDS = 600.0
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
SESSION_HEADER = "X-Ser-Session"
LINGER_QUIET_SECONDS = 0.5  # ClosingRefusal
LINGER_MAX_SECONDS = 5.0
# The settings reach each uvicorn worker process through the environment (the app factory
# runs there, imported by name).
ENVIRONMENT = {
    "model_dir": "SER_SERVE_MODEL",
    "max_bytes": "SER_SERVE_MAX_BYTES",
    "sessions": "SER_SERVE_SESSIONS",
    "classes": "SER_SERVE_CLASSES",
}


@dataclass(frozen=True)
class ServeSettings:
    model_dir: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    # Whether page sessions are offered: only with one worker process, as every request of
    # a session must reach the process that holds its statistics.
    sessions: bool = True
    # The classes answers are chosen among (Predictor's ``classes``); None: all of the model's.
    classes: tuple[str, ...] | None = None

    def to_environment(self) -> dict[str, str]:
        return {
            ENVIRONMENT["model_dir"]: str(self.model_dir),
            ENVIRONMENT["max_bytes"]: str(self.max_bytes),
            ENVIRONMENT["sessions"]: "1" if self.sessions else "0",
            ENVIRONMENT["classes"]: ",".join(self.classes or ()),
        }

    @classmethod
    def from_environment(cls) -> ServeSettings:
        classes = os.environ.get(ENVIRONMENT["classes"], "")
        return cls(
            model_dir=Path(os.environ[ENVIRONMENT["model_dir"]]),
            max_bytes=int(os.environ[ENVIRONMENT["max_bytes"]]),
            sessions=os.environ[ENVIRONMENT["sessions"]] == "1",
            classes=tuple(classes.split(",")) if classes else None,
        )


class BadUpload(Exception):
    """An upload the service refuses: the status code and the one-line message.

    ``unread``: the body was not read to its end; the answer then closes the connection
    (ClosingRefusal), as the server would otherwise read (and drop) the rest of it.
    """

    def __init__(self, status: int, message: str, *, unread: bool = False):
        super().__init__(message)
        self.status, self.unread = status, unread


class ClosingRefusal(JSONResponse):
    """A refusal sent before the request's body was read to its end, then the connection
    closed once the client has stopped sending.

    Closing a socket with unread data in it resets the connection, and the reset can reach
    a client that is still sending before it has read the answer: it then sees "connection
    reset" instead of the 413 and its message. So after the answer the rest of what is in
    flight is read and dropped, until LINGER_QUIET_SECONDS pass with nothing more (at most
    LINGER_MAX_SECONDS in all, against a client that never stops).
    """

    async def __call__(self, scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        with anyio.move_on_after(LINGER_MAX_SECONDS):
            while True:
                with anyio.move_on_after(LINGER_QUIET_SECONDS) as quiet:
                    message = await receive()
                if quiet.cancelled_caught or not message.get("more_body", False):
                    break  # quiet, the body's end, or http.disconnect
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class _Session:
    stream: object  # ser.serve.predict.SpeakerStream
    lock: threading.Lock
    used: float  # time.monotonic() of the last request
    seconds: float = 0.0  # audio added so far


class Sessions:
    """Each page session's speaker stream (Predictor.stream()), in memory only.

    A stream judges each recording with the speaker statistics of all recordings so far; a
    session is dropped on DELETE /session/{id} or after SESSION_IDLE_SECONDS unused.
    """

    def __init__(self, predictor):
        self.predictor = predictor
        self._streams: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._streams)

    def take(self, session_id: str) -> _Session:
        """A session, made on first use."""
        with self._lock:
            self._drop_idle()
            session = self._streams.get(session_id)
            if session is None:
                if len(self._streams) >= MAX_SESSIONS:
                    raise BadUpload(503, f"too many open sessions ({MAX_SESSIONS}); try later")
                session = _Session(self.predictor.stream(), threading.Lock(), 0.0)
                self._streams[session_id] = session
            session.used = time.monotonic()
            return session

    def drop(self, session_id: str) -> bool:
        with self._lock:
            return self._streams.pop(session_id, None) is not None

    def drop_idle(self) -> None:
        with self._lock:
            self._drop_idle()

    def _drop_idle(self) -> None:
        oldest = time.monotonic() - SESSION_IDLE_SECONDS
        for key in [key for key, session in self._streams.items() if session.used < oldest]:
            del self._streams[key]


def create_app(settings: ServeSettings) -> FastAPI:
    """The service for one model folder; loads the model and warms it before returning."""
    from ser.errors import DataError
    from ser.features import audio
    from ser.serve.predict import Predictor
    from ser.serve.recording import MIN_SECONDS

    predictor = Predictor(settings.model_dir, classes=settings.classes)
    tone = 0.1 * np.sin(2 * np.pi * 220.0 * np.arange(predictor.rate) / predictor.rate)
    predictor.predict_array(tone.astype(np.float32), predictor.rate)  # features and model
    predictor.warm_model()  # and the whole-speaker model, which one short recording skips
    sessions = Sessions(predictor) if settings.sessions and hasattr(predictor, "stream") else None
    # Predictions at a time in this process: more only queue for the same cores.
    limiter = anyio.CapacityLimiter(max(2, os.cpu_count() or 1))
    # The cores are shared by requests judged side by side; BLAS and OpenMP pools of their
    # own in each (numpy's and scipy's OpenBLAS, libgomp) only oversubscribe them on
    # matrices this small (docs/serving.md: speed). After the warm-up, so that every such
    # library is loaded and limited.
    threadpool_limits(limits=1)

    async def expire_sessions() -> None:
        while True:
            await asyncio.sleep(60)
            sessions.drop_idle()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(expire_sessions()) if sessions is not None else None
        print(
            f"ser serve: model {settings.model_dir} ready (process {os.getpid()})",
            flush=True,
        )
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        title="ser",
        summary="Speech emotion recognition",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    static = resources.files("ser.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}; {ENDPOINTS}"
        elif error.status_code == 405:
            message = f"method not allowed: {request.method} {request.url.path}; {ENDPOINTS}"
        else:
            message = str(error.detail)
        return JSONResponse({"error": message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=422)

    @app.exception_handler(BadUpload)
    async def bad_upload(request: Request, error: BadUpload) -> JSONResponse:
        if error.unread:
            return ClosingRefusal(
                {"error": str(error)}, status_code=error.status, headers={"Connection": "close"}
            )
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        message = f"internal error: {type(error).__name__}: {error}".splitlines()[0]
        return JSONResponse({"error": message}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "sessions": sessions is not None,
            "open_sessions": 0 if sessions is None else len(sessions),
        }

    @app.get("/model")
    async def model() -> dict:
        # answers: the classes this service chooses among (ser serve --classes)
        return {**predictor.meta, "answers": predictor.answers}

    @app.delete("/session/{session_id}")
    async def end_session(session_id: str) -> dict:
        return {"dropped": sessions is not None and sessions.drop(session_id)}

    @app.post("/predict")
    async def predict(
        request: Request, per_window: bool = False, session: str | None = None
    ) -> JSONResponse:
        session = session or request.headers.get(SESSION_HEADER)
        speaker = None
        if session is not None:
            if sessions is None:
                raise BadUpload(
                    400,
                    "sessions are off: this service runs several worker processes or its "
                    "model has no streams; send the recording without a session",
                )
            if not SESSION_ID.fullmatch(session):
                raise BadUpload(400, "bad session id: 8 to 64 letters, digits, - or _")
            speaker = sessions.take(session)
        folder = Path(tempfile.mkdtemp(prefix="ser-serve-"))
        try:
            path, name = await receive_upload(request, folder, settings.max_bytes)
            result = await anyio.to_thread.run_sync(judge, path, speaker, limiter=limiter)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result.source = name
        result.message = result.message.replace(str(path), name)
        if result.status == "error":
            raise BadUpload(415, f"not audio that can be read: {result.message}; send {FORMATS}")
        if result.status == "silent":
            raise BadUpload(422, "the recording is silent: send one with speech in it")
        if result.status == "no_speech":
            raise BadUpload(422, f"no speech in the recording: {result.message}")
        if result.status == "too_short":
            raise BadUpload(
                422,
                f"the recording is too short ({result.message}); send at least "
                f"{MIN_SECONDS} s of speech",
            )
        return JSONResponse(as_dict(result, per_window=per_window))

    def judge(path: Path, speaker: _Session | None):
        if speaker is None:
            return predictor.predict_file(path)
        try:  # a session keeps its audio's features in memory: bound it
            seconds = audio.frames_at(path, predictor.rate) / predictor.rate
        except DataError:
            seconds = 0.0  # not audio libsndfile reads: add_file says so, or decodes it
        with speaker.lock:
            if speaker.seconds + seconds > SESSION_MAX_SECONDS:
                raise BadUpload(
                    413,
                    f"a session holds at most {SESSION_MAX_SECONDS:.0f} s of audio and this "
                    f"one would hold {speaker.seconds + seconds:.0f} s; untick 'one speaker' "
                    "to send longer recordings",
                )
            result = speaker.stream.add_file(path)
            speaker.seconds += seconds
            return result

    return app


def create_app_from_environment() -> FastAPI:
    """The app factory uvicorn imports by name in each worker process."""
    return create_app(ServeSettings.from_environment())


async def receive_upload(request: Request, folder: Path, max_bytes: int) -> tuple[Path, str]:
    """Stream the request's audio file into ``folder``: (its path, the name to report).

    The body is the file itself (reported as ``-``, as ser predict reports stdin), or
    multipart/form-data whose field ``file`` is (reported by its file name)."""
    length = request.headers.get("content-length")
    too_big = f"the upload is over {max_bytes} bytes, this service's limit (--max-bytes)"
    if length is not None:
        if not length.isdigit():
            raise BadUpload(400, f"bad Content-Length: {length!r}")
        if int(length) > max_bytes:
            raise BadUpload(413, too_big, unread=True)
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    path = folder / "upload"
    received = 0
    with open(path, "wb") as out:
        if media_type == b"multipart/form-data":
            form = _FormFile(out, options.get(b"boundary", b""))
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise BadUpload(413, too_big, unread=True)
            if media_type == b"multipart/form-data":
                form.write(chunk)
            else:
                out.write(chunk)
    if media_type == b"multipart/form-data":
        form.finish()
        name = form.filename or "file"
    else:
        name = "-"
    if path.stat().st_size == 0:
        raise BadUpload(
            400,
            "empty upload: send an audio file as the request body or as the multipart "
            f"field 'file' ({FORMATS})",
        )
    return path, name


class _FormFile:
    """Writes the multipart field ``file`` of a streamed form to ``out``, part by part."""

    def __init__(self, out, boundary: bytes):
        if not boundary:
            raise BadUpload(400, "multipart/form-data without a boundary")
        self.out, self.filename, self.found = out, None, False
        self._in_file, self._field, self._value = False, b"", b""
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except Exception as error:  # python-multipart's own errors, on a malformed form
            raise BadUpload(400, f"malformed multipart form: {error}", unread=True) from error

    def finish(self) -> None:
        try:
            self.parser.finalize()
        except Exception as error:
            raise BadUpload(400, f"malformed multipart form: {error}") from error
        if not self.found:
            raise BadUpload(
                400, f"the multipart form has no field 'file': send the audio in it ({FORMATS})"
            )

    def _part_begin(self) -> None:
        self._headers, self._in_file = {}, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and not self.found:
            self._in_file = self.found = True
            filename = options.get(b"filename", b"").decode("utf-8", "replace")
            self.filename = Path(filename.replace("\\", "/")).name or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.out.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False


def serve(
    settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1
) -> None:
    """Run the service until interrupted: ``workers`` uvicorn processes, each with the model."""
    import uvicorn

    if workers > 1:
        settings = dataclasses.replace(settings, sessions=False)
    os.environ.update(settings.to_environment())
    uvicorn.run(
        "ser.serve.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
