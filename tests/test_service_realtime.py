"""`WS /v1/realtime?intent=transcription` of `perch serve`, driven by the real `openai` SDK realtime client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.service.realtime_events import BadEventError, ItemEvents, RealtimeConfig, TurnDetection, apply_update
from app.service.session import Committed, Failed, Final, Partial, SpeechStart, SpeechStop

from .conftest import Speak
from .service_process import ServeProcess, serving

WAIT = 30.0
MAX_SESSIONS = 2


@dataclass
class Served(ServeProcess):
    speech: npt.NDArray[np.float32]
    """"seven three five" between silences, at 16 kHz."""

    def client(self, token: str | None = None) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.base}/v1", api_key=token or self.token)


@pytest.fixture(scope="module")
def served(words_model: Path, speak: Speak, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `perch serve` for the module."""
    silence = np.zeros(8000, np.float32)
    speech = np.concatenate([silence, speak("seven three five"), silence, silence])
    with serving(words_model, tmp_path_factory.mktemp("realtime"), "--max-sessions", str(MAX_SESSIONS)) as server:
        yield Served(server.process, server.port, server.token, server.output, speech)


def _chunks(samples: npt.NDArray[np.float32]) -> list[str]:
    """100 ms chunks of base64 PCM16 at 24 kHz."""
    pcm = (np.clip(soxr.resample(samples, 16000, 24000), -1, 1) * 32767).astype("<i2").tobytes()
    step = 2400 * 2
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm), step)]


async def _until(connection: AsyncRealtimeConnection, kind: str) -> list[dict[str, Any]]:
    """Every server event up to and including the first of type `kind`."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != kind:
        event = await asyncio.wait_for(connection.recv(), WAIT)
        events.append(event.to_dict())
    return events


def _connect(client: AsyncOpenAI) -> Any:
    return client.realtime.connect(model="gpt-4o-transcribe", extra_query={"intent": "transcription"}, max_retries=0)


TURNS = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}


def test_server_vad_turns_speech_into_a_completed_transcript(served: Served) -> None:
    async def run() -> list[dict[str, Any]]:
        async with _connect(served.client()) as connection:
            created = await _until(connection, "session.created")
            assert created[0]["session"]["type"] == "transcription"
            audio_input = {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": TURNS}
            audio_input["transcription"] = {"model": "gpt-4o-transcribe", "language": "en"}
            await connection.session.update(session={"type": "transcription", "audio": {"input": audio_input}})
            updated = (await _until(connection, "session.updated"))[-1]
            assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
            for chunk in _chunks(served.speech):
                await connection.input_audio_buffer.append(audio=chunk)
            return await _until(connection, "conversation.item.input_audio_transcription.completed")

    events = asyncio.run(run())
    kinds = [e["type"] for e in events]
    started = kinds.index("input_audio_buffer.speech_started")
    assert started < kinds.index("input_audio_buffer.speech_stopped") < kinds.index("input_audio_buffer.committed")
    item = events[started]["item_id"]
    assert all(e["item_id"] == item for e in events if "item_id" in e), events
    assert 300 <= events[started]["audio_start_ms"] <= 700, events[started]
    committed = events[kinds.index("input_audio_buffer.committed")]
    assert committed["previous_item_id"] is None
    completed = events[-1]
    assert completed["content_index"] == 0
    assert completed["transcript"].lower().split() == ["seven", "three", "five"], completed
    deltas = "".join(e["delta"] for e in events if e["type"].endswith("transcription.delta"))
    assert deltas == completed["transcript"]


def test_speech_sent_in_real_time_gets_deltas_before_it_is_committed(served: Served) -> None:
    async def run() -> list[dict[str, Any]]:
        async with _connect(served.client()) as connection:
            await _until(connection, "session.created")
            for chunk in _chunks(served.speech):
                await connection.input_audio_buffer.append(audio=chunk)
                await asyncio.sleep(0.1)
            return await _until(connection, "conversation.item.input_audio_transcription.completed")

    events = asyncio.run(run())
    kinds = [e["type"] for e in events]
    first_delta = kinds.index("conversation.item.input_audio_transcription.delta")
    assert first_delta < kinds.index("input_audio_buffer.committed"), kinds
    assert events[first_delta]["delta"].lower().startswith("seven")
    assert events[-1]["transcript"].lower().split() == ["seven", "three", "five"], events[-1]


def test_manual_commit_without_vad_and_the_beta_session_shape(served: Served) -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with _connect(served.client()) as connection:
            await _until(connection, "session.created")
            beta = {"input_audio_format": "pcm16", "turn_detection": None}
            await connection.send({"type": "transcription_session.update", "session": beta})
            updated = (await _until(connection, "transcription_session.updated"))[-1]
            for chunk in _chunks(served.speech):
                await connection.input_audio_buffer.append(audio=chunk)
            await connection.input_audio_buffer.commit()
            return updated, await _until(connection, "conversation.item.input_audio_transcription.completed")

    updated, events = asyncio.run(run())
    assert updated["session"]["turn_detection"] is None
    assert updated["session"]["input_audio_format"] == "pcm16"
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" not in kinds
    assert kinds.index("input_audio_buffer.committed") < len(kinds) - 1
    assert events[-1]["transcript"].lower().split() == ["seven", "three", "five"], events[-1]


def test_clear_drops_the_uncommitted_audio(served: Served) -> None:
    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with _connect(served.client()) as connection:
            await _until(connection, "session.created")
            manual = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            await connection.session.update(session=manual)
            await _until(connection, "session.updated")
            for chunk in _chunks(served.speech):
                await connection.input_audio_buffer.append(audio=chunk)
            await connection.input_audio_buffer.clear()
            await _until(connection, "input_audio_buffer.cleared")
            await connection.input_audio_buffer.commit()
            cleared = await _until(connection, "error")
            for chunk in _chunks(served.speech):
                await connection.input_audio_buffer.append(audio=chunk)
            await connection.input_audio_buffer.commit()
            return cleared, await _until(connection, "conversation.item.input_audio_transcription.completed")

    cleared, events = asyncio.run(run())
    assert "commit" in cleared[-1]["error"]["message"]
    assert events[-1]["transcript"].lower().split() == ["seven", "three", "five"], events[-1]


def test_an_unknown_or_malformed_event_is_an_error_and_the_socket_goes_on(served: Served) -> None:
    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        async with _connect(served.client()) as connection:
            await _until(connection, "session.created")
            await connection.send({"type": "response.create", "event_id": "mine"})
            unknown = await _until(connection, "error")
            await connection.input_audio_buffer.append(audio="not base64!")
            malformed = await _until(connection, "error")
            await connection.input_audio_buffer.commit()
            empty = await _until(connection, "error")
            await connection.session.update(session={"type": "transcription"})
            await _until(connection, "session.updated")
            return unknown, malformed, empty

    unknown, malformed, empty = asyncio.run(run())
    assert unknown[-1]["error"]["type"] == "invalid_request_error"
    assert unknown[-1]["error"]["event_id"] == "mine"
    assert "response.create" in unknown[-1]["error"]["message"]
    assert "base64" in malformed[-1]["error"]["message"]
    assert "commit" in empty[-1]["error"]["message"]


def test_a_connection_without_the_right_token_is_refused(served: Served) -> None:
    async def with_sdk() -> None:
        async with _connect(served.client("wrong-token")) as connection:
            await connection.recv()

    async def without_token() -> None:
        url = f"ws://127.0.0.1:{served.port}/v1/realtime?intent=transcription"
        async with connect(url) as ws:
            await ws.recv()

    for attempt in (with_sdk, without_token):
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(attempt())
        assert refused.value.response.status_code == 403


def test_refuses_a_session_past_the_limit_with_1013(served: Served) -> None:
    async def run() -> int | None:
        url = f"ws://127.0.0.1:{served.port}/v1/realtime?intent=transcription"
        headers = {"Authorization": f"Bearer {served.token}"}
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(MAX_SESSIONS):
                await _open_session(stack, url, headers)
            async with connect(url, additional_headers=headers) as extra:
                with pytest.raises(ConnectionClosed) as closed:
                    await extra.recv()
                return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(run()) == 1013


async def _open_session(stack: contextlib.AsyncExitStack, url: str, headers: dict[str, str]) -> None:
    """A session held open until `stack` closes, once the sessions of earlier tests are over on the server."""
    for _ in range(50):
        ws = await stack.enter_async_context(connect(url, additional_headers=headers))
        try:
            assert json.loads(await ws.recv())["type"] == "session.created"
            return
        except ConnectionClosed:
            await asyncio.sleep(0.1)
    raise AssertionError("the server kept refusing sessions")


def test_session_updates_map_onto_the_segmenter_and_refuse_what_it_cannot_do() -> None:
    config = RealtimeConfig("m")
    turns = {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200, "silence_duration_ms": 700}
    ga = apply_update(config, {"type": "session.update", "session": {"audio": {"input": {"turn_detection": turns}}}})
    assert ga.turn_detection == TurnDetection(0.6, 200, 700)
    vad = ga.turn_detection.vad()
    assert (vad.threshold, vad.lookback_ms, vad.min_silence_ms, vad.cut_after_s) == (0.6, 200, 700, 0.0)
    assert vad.exit_threshold <= vad.threshold
    beta = apply_update(config, {"type": "transcription_session.update", "session": {"turn_detection": None}})
    assert beta.turn_detection is None and beta.beta("s")["turn_detection"] is None
    refused: list[dict[str, Any]] = [
        {"type": "session.update", "session": {"type": "realtime"}},
        {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}},
        {"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"threshold": 2}}}}},
        {"type": "transcription_session.update", "session": {"input_audio_format": "g711_ulaw"}},
        {"type": "transcription_session.update", "session": {"turn_detection": {"type": "other"}}},
        {"type": "session.update", "session": []},
    ]
    for event in refused:
        with pytest.raises(BadEventError):
            apply_update(config, event)


def test_item_events_keep_one_item_from_speech_to_final() -> None:
    items = ItemEvents()
    sent = [items.messages(e) for e in (SpeechStart(0.5), Partial("seven"), Partial("seven three"))]
    sent += [items.messages(e) for e in (SpeechStop(1.5), Committed(0.5, 1.5), Final("seven three five", 0.5, 1.5))]
    sent += [items.messages(e) for e in (Committed(2.0, 3.0), Failed("engine", segment=True))]
    messages = [m for batch in sent for m in batch]
    first = messages[0]["item_id"]
    assert [m["delta"] for m in messages if "delta" in m] == ["seven", " three", " five"]
    assert all(m["item_id"] == first for m in messages[:-2])
    assert messages[-2]["previous_item_id"] == first != messages[-2]["item_id"] == messages[-1]["item_id"]
    assert messages[-1]["type"] == "conversation.item.input_audio_transcription.failed"
