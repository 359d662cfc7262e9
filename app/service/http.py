"""The OpenAI-compatible HTTP API: `/v1/audio/transcriptions`, `/v1/models` and `/health`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from app.service.errors import error_body, error_response
from app.service.guard import Guard, GuardRules
from app.service.realtime import RealtimeEndpoint
from app.service.recognition import WorkerTranscriber
from app.service.responses import RESPONSE_FORMATS, render, sse_event
from app.service.sessions import SessionLimit
from app.service.stream import StreamEndpoint
from stt.audio import read_audio_bytes, to_mono_16k
from stt.errors import AudioError, PerchError
from stt.text import join_texts

log = logging.getLogger("perch.service")

ALIASES = ("whisper-1",)
"""Model names clients commonly hard-code; they all mean the loaded model."""


@dataclass(frozen=True)
class ApiOptions:
    """Per-server behaviour of the API."""

    rules: GuardRules
    max_sessions: int = 4
    """Transcriptions at once; more get 503 with `Retry-After` (each still runs on the one engine thread, in turn)."""
    debug: bool = False
    """Log what was transcribed (never without it)."""


def create_app(transcriber: WorkerTranscriber, options: ApiOptions) -> Starlette:
    """The ASGI application, every route behind the guard."""
    api = _Api(transcriber, options)
    streams = SessionLimit(options.max_sessions)  # one limit for both streaming routes
    stream = StreamEndpoint(transcriber, streams, options.debug)
    realtime = RealtimeEndpoint(transcriber, streams, options.debug)
    return Starlette(
        routes=[
            Route("/health", api.health, methods=["GET"]),
            Route("/v1/models", api.models, methods=["GET"]),
            Route("/v1/audio/transcriptions", api.transcriptions, methods=["POST"]),
            WebSocketRoute("/v1/stream", stream.__call__),
            WebSocketRoute("/v1/realtime", realtime.__call__),
        ],
        middleware=_middleware(options.rules),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )


def _middleware(rules: GuardRules) -> list[Middleware]:
    """The guard, then CORS for the web origins it lets in (none by default: no CORS headers at all)."""
    if not rules.origins:
        return [Middleware(Guard, rules=rules)]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=sorted(rules.origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    return [Middleware(Guard, rules=rules), cors]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("a request failed: %s", type(exc).__name__)  # the message could quote the audio's text
    return error_response(500, "the server failed on this request; `perch serve --debug` shows why", "server_error")


class _InMemoryParser(MultiPartParser):
    """Keeps uploads in memory: the guard caps the body, so the audio never touches the disk."""

    spool_max_size = 1 << 62


class _Api:
    def __init__(self, transcriber: WorkerTranscriber, options: ApiOptions) -> None:
        self.transcriber = transcriber
        self.options = options
        self.active = 0

    async def health(self, request: Request) -> Response:
        if self.transcriber.loaded:
            return JSONResponse({"status": "ok"})
        error = self.transcriber.worker.load_error
        return JSONResponse({"status": "error" if error else "loading model"}, status_code=503)

    async def models(self, request: Request) -> Response:
        names = [self.transcriber.model_name, *ALIASES]
        return JSONResponse(
            {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "perch"} for n in names]}
        )

    async def transcriptions(self, request: Request) -> Response:
        if not self.transcriber.loaded:
            return error_response(503, "the model is still loading; try again shortly", "server_error")
        if self.active >= self.options.max_sessions:
            return self._busy()
        self.active += 1
        streaming = False
        try:
            response = await self._transcribe(request)
            streaming = isinstance(response, StreamingResponse)  # the stream gives its session back when it ends
            return response
        finally:
            if not streaming:
                self.active -= 1

    def _busy(self) -> Response:
        message = (
            f"the server is already running {self.options.max_sessions} transcription(s), its limit "
            "(--max-sessions); try again in a moment"
        )
        return error_response(503, message, "server_error", code="server_busy", headers={"Retry-After": "1"})

    def _release(self) -> None:
        self.active -= 1

    async def _transcribe(self, request: Request) -> Response:
        form = await _read_form(request)
        try:
            return await self._answer(form)
        finally:
            await form.close()

    async def _answer(self, form: FormData) -> Response:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return error_response(400, "the `file` field is required: send the audio as a multipart file", param="file")
        fmt = str(form.get("response_format") or "json")
        if fmt not in RESPONSE_FORMATS:
            message = f"response_format {fmt!r} is not supported: use {', '.join(RESPONSE_FORMATS)}"
            return error_response(400, message, param="response_format")
        data = await upload.read()
        try:
            samples = await asyncio.to_thread(_decode, data, upload.filename or "upload")
        except AudioError as exc:
            return error_response(400, str(exc), param="file", code="invalid_audio")
        vocabulary = [str(v) for v in form.getlist("vocabulary") if str(v).strip()]
        language = str(form.get("language") or "unknown")
        granularities = [str(g) for g in form.getlist("timestamp_granularities[]")]
        if str(form.get("stream") or "").lower() == "true":
            return _SessionStream(self._events(samples, vocabulary), self._release)
        try:
            transcript = await self.transcriber.transcribe(samples, vocabulary)
        except PerchError as exc:
            log.error("a transcription failed: %s", type(exc).__name__)
            return error_response(500, f"transcription failed: {exc}", "server_error")
        if self.options.debug:
            log.debug("transcribed %.1f s: %s", transcript.duration, transcript.text)
        return render(fmt, transcript, language, granularities)

    async def _events(self, samples: npt.NDArray[np.float32], vocabulary: list[str]) -> AsyncIterator[bytes]:
        """A delta per engine segment, then the whole text; a failure ends the stream with an `error` event (the
        openai SDK raises it as an APIError)."""
        texts: list[str] = []
        try:
            async for part, _ in self.transcriber.segments(samples, vocabulary):
                if part.text:
                    delta = (" " if texts else "") + part.text
                    texts.append(part.text)
                    yield sse_event({"type": "transcript.text.delta", "delta": delta})
        except Exception as exc:
            log.error("a streamed transcription failed: %s", type(exc).__name__)
            yield sse_event({"type": "error", **error_body(f"transcription failed: {exc}", "server_error")})
            return
        text = join_texts(texts)
        if self.options.debug:
            log.debug("streamed: %s", text)
        yield sse_event({"type": "transcript.text.done", "text": text})


class _SessionStream(StreamingResponse):
    """Server-sent events that give their session back however the stream ends, even when the client has gone
    before the first byte (the generator then never runs, so its own cleanup would not either)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream")
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _read_form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(400, "send the request as multipart/form-data with a `file` field")
    parser = _InMemoryParser(request.headers, request.stream(), max_files=4, max_fields=100)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"the multipart body could not be read: {exc.message}") from exc


def _decode(data: bytes, name: str) -> npt.NDArray[np.float32]:
    samples, rate = read_audio_bytes(data, name)
    return to_mono_16k(samples, rate)
