"""`WS /v1/stream` of `perch serve`, driven by the real `websockets` client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.service.recognition import WorkerTranscriber
from app.service.session import UNREAD_EVENTS, Ended, Final, SessionOptions, StreamSession
from app.service.sessions import SessionLimit
from app.service.stream import PcmDecoder, StreamEndpoint, event_messages
from stt.engine import Recognizer
from stt.errors import TranscriptionError
from stt.results import Word
from stt.worker import EngineWorker, WorkerOptions

from .conftest import Speak
from .service_process import ServeProcess, serving

MAX_SESSIONS = 2


@dataclass
class Served(ServeProcess):
    speech: npt.NDArray[np.float32]
    """"seven three five", a second of silence, "hello world", at 16 kHz."""
    first_end: float
    """Where "seven three five" ends."""

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream{query}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def served(words_model: Path, speak: Speak, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `perch serve` for the module, taking two streams at once."""
    first, second = speak("seven three five"), speak("hello world")
    silence = np.zeros(16000, np.float32)
    speech = np.concatenate([silence[:8000], first, silence, second, silence])
    with serving(words_model, tmp_path_factory.mktemp("stream"), "--max-sessions", str(MAX_SESSIONS)) as server:
        yield Served(server.process, server.port, server.token, server.output, speech, (8000 + len(first)) / 16000)


def _frames(samples: npt.NDArray[np.float32], rate: int, encoding: str) -> list[bytes]:
    """40 ms frames of PCM."""
    if encoding == "pcm_s16le":
        data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        width = 2
    else:
        data = samples.astype("<f4").tobytes()
        width = 4
    step = rate * 40 // 1000 * width
    return [data[i : i + step] for i in range(0, len(data), step)]


async def _stream(ws: ClientConnection, frames: list[bytes], *, pace: float = 0.0) -> list[dict[str, Any]]:
    """Send every frame and stop; every message up to session.end."""
    for frame in frames:
        await ws.send(frame)
        if pace:
            await asyncio.sleep(pace)
    await ws.send(json.dumps({"type": "stop"}))
    return [json.loads(m) async for m in ws]


def _check_transcript(messages: list[dict[str, Any]], served: Served) -> None:
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "session.begin" and kinds[-1] == "session.end", kinds
    assert "vad.speech_start" in kinds and "vad.speech_end" in kinds
    finals = [m for m in messages if m["type"] == "final"]
    text = " ".join(f["text"] for f in finals).lower()
    assert text.split() == ["seven", "three", "five", "hello", "world"], text
    words = [m for m in messages if m["type"] == "word"]
    assert [w["word"].lower() for w in words] == text.split()
    total = len(served.speech) / 16000
    for word in words:
        assert 0.4 <= word["start_time"] < word["end_time"] <= total, word
        assert 0.0 <= word["confidence"] <= 1.0
    assert words[2]["end_time"] <= served.first_end + 0.3 < words[3]["start_time"], words
    for final in finals:
        assert final["start_time"] < final["end_time"]
        assert all(final["start_time"] - 0.4 <= w["start_time"] for w in final["words"])


def test_streams_s16le_speech_in_real_time_to_partials_words_and_finals(served: Served) -> None:
    async def run() -> list[dict[str, Any]]:
        async with connect(served.url(), additional_headers=served.auth) as ws:
            return await _stream(ws, _frames(served.speech, 16000, "pcm_s16le"), pace=0.04)

    messages = asyncio.run(run())
    _check_transcript(messages, served)
    kinds = [m["type"] for m in messages]
    assert "partial" in kinds[: kinds.index("final")], kinds
    first = next(m["text"] for m in messages if m["type"] == "partial")
    assert first.split()[0].lower() == "seven"


def test_closes_a_stream_on_a_message_over_1_mib(served: Served) -> None:
    async def run() -> int | None:
        async with connect(served.url(), additional_headers=served.auth, max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.begin"
            await ws.send(bytes(2 << 20))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(run()) == 1009


def test_streams_f32_at_24khz(served: Served) -> None:
    audio = soxr.resample(served.speech, 16000, 24000).astype(np.float32)

    async def run() -> list[dict[str, Any]]:
        url = served.url("?encoding=pcm_f32le&sample_rate=24000")
        async with connect(url, additional_headers=served.auth) as ws:
            return await _stream(ws, _frames(audio, 24000, "pcm_f32le"))

    _check_transcript(asyncio.run(run()), served)


def test_refuses_a_stream_without_the_token(served: Served) -> None:
    async def run(headers: dict[str, str]) -> int | None:
        try:
            async with connect(served.url(), additional_headers=headers) as ws:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        except InvalidStatus as exc:
            return exc.response.status_code
        return None

    assert asyncio.run(run({})) in (1008, 403)
    assert asyncio.run(run({"Authorization": "Bearer wrong"})) in (1008, 403)


def test_refuses_a_stream_past_max_sessions(served: Served) -> None:
    async def run() -> tuple[int, str]:
        open_ones = [await connect(served.url(), additional_headers=served.auth) for _ in range(MAX_SESSIONS)]
        try:
            for ws in open_ones:
                assert json.loads(await ws.recv())["type"] == "session.begin"
            async with connect(served.url(), additional_headers=served.auth) as extra:
                with pytest.raises(ConnectionClosed) as closed:
                    await extra.recv()
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code, closed.value.rcvd.reason
        finally:
            for ws in open_ones:
                await ws.close()

    code, reason = asyncio.run(run())
    assert code == 1013 and "2 streams" in reason


def test_garbage_text_is_an_error_and_the_session_goes_on(served: Served) -> None:
    async def run() -> list[dict[str, Any]]:
        async with connect(served.url(), additional_headers=served.auth) as ws:
            assert json.loads(await ws.recv())["type"] == "session.begin"
            await ws.send("not json {")
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["message"]
            await ws.send(json.dumps({"type": "config", "vocabulary": "seven"}))
            assert json.loads(await ws.recv())["type"] == "error"
            await ws.send(json.dumps({"type": "config", "vocabulary": ["hello world"]}))
            return [error, *await _stream(ws, _frames(served.speech, 16000, "pcm_s16le"))]

    messages = asyncio.run(run())
    finals = " ".join(m["text"] for m in messages if m["type"] == "final").lower()
    assert "hello world" in finals
    assert messages[-1]["type"] == "session.end"


def test_a_client_that_leaves_does_not_disturb_another(served: Served) -> None:
    frames = _frames(served.speech, 16000, "pcm_s16le")

    async def leaver() -> None:
        ws = await connect(served.url(), additional_headers=served.auth)
        for frame in frames[: len(frames) // 2]:
            await ws.send(frame)
        ws.transport.abort()  # gone without a closing handshake

    async def stayer() -> list[dict[str, Any]]:
        async with connect(served.url(), additional_headers=served.auth) as ws:
            return await _stream(ws, frames, pace=0.002)

    async def run() -> list[dict[str, Any]]:
        left = asyncio.create_task(leaver())
        messages = await stayer()
        await left
        return messages

    _check_transcript(asyncio.run(run()), served)
    assert served.process.poll() is None


def test_pcm_decoder_keeps_split_samples_and_resamples() -> None:
    decoder = PcmDecoder("pcm_s16le", 16000)
    data = (np.array([0.5, -0.25], np.float32) * 32768).astype("<i2").tobytes()
    assert decoder.decode(data[:3]).tolist() == [0.5]
    assert decoder.decode(data[3:]).tolist() == [-0.25]
    resampler = PcmDecoder("pcm_f32le", 48000)
    out = np.concatenate([resampler.decode(np.ones(4800, "<f4").tobytes()), resampler.decode(b"", last=True)])
    assert abs(len(out) - 1600) <= 2
    with pytest.raises(ValueError, match="encoding"):
        PcmDecoder("mulaw", 16000)


def test_a_final_becomes_word_messages_then_the_final() -> None:
    final = Final("hello world", 1.0, 2.0, [Word("hello", 1.0, 1.4, 0.9), Word("world", 1.5, 2.0, 0.8)])
    messages = event_messages(final)
    assert [m["type"] for m in messages] == ["word", "word", "final"]
    assert messages[0] == {"type": "word", "word": "hello", "start_time": 1.0, "end_time": 1.4, "confidence": 0.9}
    assert messages[2]["words"][1]["word"] == "world" and messages[2]["end_time"] == 2.0


class _FailingRecognizer:
    """Loads, then fails every segment."""

    max_segment_seconds = 20.0
    boost = None

    def transcribe_segment(self, samples: object, offset: float = 0.0, run_options: object = None) -> None:
        raise TranscriptionError("the device went away")


@pytest.fixture
def failing_stream() -> Iterator[TestClient]:
    """The stream route alone, on an engine that fails, with sessions that end after 0.5 s without audio."""
    worker = EngineWorker(lambda: cast("Recognizer", _FailingRecognizer()), lambda event: None, WorkerOptions())
    worker.start()
    worker.ready.wait(10)
    endpoint = StreamEndpoint(WorkerTranscriber(worker, "m"), SessionLimit(1), options=SessionOptions(idle_seconds=0.5))
    with TestClient(Starlette(routes=[WebSocketRoute("/v1/stream", endpoint.__call__)])) as client:
        yield client
    worker.close()


def test_an_engine_failure_is_an_error_message_and_the_session_ends_cleanly(
    failing_stream: TestClient, speak: Speak
) -> None:
    audio = np.concatenate([np.zeros(8000, np.float32), speak("hello world"), np.zeros(16000, np.float32)])
    with failing_stream.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "session.begin"
        for frame in _frames(audio, 16000, "pcm_s16le"):
            ws.send_bytes(frame)
        ws.send_text('{"type":"stop"}')
        messages = []
        while (message := ws.receive_json())["type"] != "session.end":
            messages.append(message)
    kinds = [m["type"] for m in messages]
    assert "vad.speech_start" in kinds and "final" not in kinds
    assert any(m["type"] == "error" and "the device went away" in m["message"] for m in messages)


def test_a_silent_client_is_ended_after_the_idle_time(failing_stream: TestClient) -> None:
    with failing_stream.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "session.begin"
        assert ws.receive_json()["type"] == "session.end"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1000 and "no audio" in closed.value.reason


class _CountingWorker:
    """Takes partial requests and fails them at once, counting them."""

    def __init__(self) -> None:
        self.submitted = 0

    def pending(self) -> int:
        return 0

    def submit_yielding(self, work: object, redo: bool = True) -> Future[object]:
        self.submitted += 1
        future: Future[object] = Future()
        future.set_exception(RuntimeError("not needed"))
        return future


def test_a_client_that_does_not_read_gets_no_more_partials() -> None:
    """Its unread messages pile up; the engine does no more preview work for it (finals still queue)."""
    worker = _CountingWorker()

    async def run() -> int:
        session = StreamSession(cast("EngineWorker", worker), SessionOptions(partial_interval=0.0))
        session._open_from = 0
        session._audio = np.zeros(16000, np.float32)
        session._maybe_partial()
        await asyncio.sleep(0.01)
        for _ in range(UNREAD_EVENTS + 1):
            session.events.put_nowait(Ended())
        session._maybe_partial()
        await asyncio.sleep(0.01)
        return worker.submitted

    assert asyncio.run(run()) == 1


class _DeafSocket:
    """A WebSocket whose client takes `session.begin` and then nothing more, while it keeps sending audio."""

    def __init__(self, frames: list[bytes]) -> None:
        self.query_params: dict[str, str] = {}
        self.frames = frames
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    async def send_json(self, message: dict[str, Any]) -> None:
        if self.sent:
            await asyncio.Event().wait()  # never taken
        self.sent.append(message)

    async def receive(self) -> dict[str, Any]:
        if self.frames:
            await asyncio.sleep(0)
            return {"type": "websocket.receive", "bytes": self.frames.pop(0)}
        return {"type": "websocket.receive", "text": '{"type":"stop"}'}

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)


@pytest.mark.parametrize("unread", [4, 1000], ids=["while-sending", "at-the-end"])
def test_a_client_that_stops_reading_is_dropped(speak: Speak, unread: int) -> None:
    """Its messages pile up (or one never goes out): the session is dropped with 1008 instead of waiting on it."""
    worker = EngineWorker(lambda: cast("Recognizer", _FailingRecognizer()), lambda event: None, WorkerOptions())
    worker.start()
    worker.ready.wait(10)
    speech = np.concatenate([speak("hello world"), np.zeros(16000, np.float32)])
    deaf = _DeafSocket(list(_frames(np.tile(speech, 4), 16000, "pcm_s16le")))
    options = SessionOptions(max_unread_events=unread, send_seconds=0.5)
    endpoint = StreamEndpoint(WorkerTranscriber(worker, "m"), SessionLimit(1), options=options)

    async def serve() -> None:
        await asyncio.wait_for(endpoint._serve(cast("WebSocket", deaf), PcmDecoder("pcm_s16le", 16000)), 30)

    try:
        asyncio.run(serve())
    finally:
        worker.close()
    assert deaf.closed == (1008, "the client did not read its messages")
    assert deaf.sent == [{"type": "session.begin"}]
    if unread == 4:
        assert deaf.frames, "it was dropped while it still sent audio"
