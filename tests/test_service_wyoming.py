"""`perch serve --wyoming` as Home Assistant uses it, driven by the wyoming package's own client."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info

from app.service.recognition import WorkerTranscriber
from app.service.wyoming_server import (
    AudioCollector,
    SettledText,
    WyomingOptions,
    WyomingServer,
    knows_streaming,
    model_languages,
    parse_allowed,
    pcm_to_float,
    peer_allowed,
)
from stt.worker import EngineWorker

from .conftest import ROOT
from .service_process import ServeProcess, free_port, health, serving

SPOKEN = "seven three five hello world"
LONGER = "nine two zero hello world seven three five go left stop"


@dataclass
class Served(ServeProcess):
    wyoming_port: int
    speech: Path
    longer: Path


@pytest.fixture(scope="module")
def served(
    words_model: Path, speech_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One `perch serve --wyoming` for the module."""
    speech = speech_file(SPOKEN)
    longer = speech_file(LONGER)
    wyoming_port = free_port()
    with serving(
        words_model, tmp_path_factory.mktemp("wyoming"), "--wyoming", "--wyoming-port", str(wyoming_port)
    ) as server:
        yield Served(server.process, server.port, server.token, server.output, wyoming_port, speech, longer)


def _words(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").split())


def _pcm(path: Path, rate: int) -> bytes:
    """The clip as 16-bit stereo at `rate` (the left and right channels differ a little)."""
    samples, native = sf.read(str(path), dtype="float32")
    if rate != native:
        samples = soxr.resample(samples, native, rate)
    stereo = np.stack([samples, samples * 0.8], axis=1)
    return bytes((np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes())


async def _until(client: AsyncTcpClient, kind: str, seen: list[str] | None = None) -> Event:
    while True:
        event = await asyncio.wait_for(client.read_event(), 60)
        assert event is not None, f"the connection closed before {kind}"
        if seen is not None:
            seen.append(event.type)
        if event.type in (kind, "error"):
            return event


async def _send_audio(client: AsyncTcpClient, pcm: bytes, rate: int, channels: int = 2) -> None:
    await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
    step = 1024 * 2 * channels
    for start in range(0, len(pcm), step):
        await client.write_event(
            AudioChunk(rate=rate, width=2, channels=channels, audio=pcm[start : start + step]).event()
        )
    await client.write_event(AudioStop().event())


async def _send_paced(write: Callable[[Event], Awaitable[None]], pcm: bytes, rate: int) -> None:
    """Stereo 16-bit audio in 100 ms chunks at the pace of speech."""
    await write(AudioStart(rate=rate, width=2, channels=2).event())
    step = rate // 10 * 2 * 2
    for start in range(0, len(pcm), step):
        await write(AudioChunk(rate=rate, width=2, channels=2, audio=pcm[start : start + step]).event())
        await asyncio.sleep(0.1)


def test_the_command_names_the_wyoming_address(served: Served) -> None:
    assert f"tcp://127.0.0.1:{served.wyoming_port}" in served.output.read_text()


def test_describe_names_the_model(served: Served) -> None:
    async def talk() -> Info:
        async with AsyncTcpClient("127.0.0.1", served.wyoming_port) as client:
            await client.write_event(Describe().event())
            return Info.from_event(await _until(client, "info"))

    info = asyncio.run(talk())
    (program,) = info.asr
    assert program.name == "perch" and program.installed
    assert [(m.name, m.languages) for m in program.models] == [("words-tdt", ["en"])]
    assert program.supports_transcript_streaming


@pytest.mark.parametrize("rate", [22050, 44100])
def test_transcribe_stereo_speech(served: Served, rate: int) -> None:
    async def talk() -> tuple[Transcript, list[Event]]:
        seen: list[Event] = []
        async with AsyncTcpClient("127.0.0.1", served.wyoming_port) as client:
            await client.write_event(Transcribe(language="en").event())
            await _send_audio(client, _pcm(served.speech, rate), rate)
            while not seen or seen[-1].type not in ("transcript-stop", "error"):
                event = await asyncio.wait_for(client.read_event(), 60)
                assert event is not None
                seen.append(event)
        return Transcript.from_event(seen[-2]), seen

    transcript, seen = asyncio.run(talk())
    assert _words(transcript.text) == SPOKEN and transcript.language == "en"
    chunks = [TranscriptChunk.from_event(e).text for e in seen[1:-2]]
    assert [e.type for e in seen] == [
        "transcript-start",
        *["transcript-chunk"] * len(chunks),
        "transcript",
        "transcript-stop",
    ]
    assert chunks and all(chunks) and "".join(chunks) == transcript.text


def test_empty_and_tiny_utterances_on_one_connection(served: Served) -> None:
    async def talk() -> list[str]:
        texts = []
        async with AsyncTcpClient("127.0.0.1", served.wyoming_port) as client:
            for pcm in (b"", b"\1\0" * 5):
                await _send_audio(client, pcm, 16000, channels=1)
                texts.append(Transcript.from_event(await _until(client, "transcript")).text)
        return texts

    assert asyncio.run(talk()) == ["", ""]


def test_dropped_and_garbled_clients_do_not_disturb_the_next(served: Served) -> None:
    async def drop_mid_stream() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", served.wyoming_port)
        pcm = _pcm(served.speech, 22050)[:40000]
        client_events = [Transcribe().event(), AudioStart(22050, 2, 2).event(), AudioChunk(22050, 2, 2, pcm).event()]
        for event in client_events:
            await async_write_event(event, writer)
        writer.write(
            b'{"type": "audio-chunk", "data": {"rate": 22050, "width": 2, "channels": 2}, "payload_length": 9000}\n'
        )
        writer.write(b"\0" * 100)  # then goes away mid-payload
        await writer.drain()
        writer.close()

    async def garbage() -> Event | None:
        async with AsyncTcpClient("127.0.0.1", served.wyoming_port) as client:
            assert client._writer is not None
            client._writer.write(b"this is not json\n")
            await client._writer.drain()
            return await asyncio.wait_for(client.read_event(), 10)

    async def transcribe() -> Transcript:
        async with AsyncTcpClient("127.0.0.1", served.wyoming_port) as client:
            await client.write_event(Transcribe(language="en").event())
            await _send_audio(client, _pcm(served.speech, 44100), 44100)
            return Transcript.from_event(await _until(client, "transcript"))

    asyncio.run(drop_mid_stream())
    answer = asyncio.run(garbage())
    assert answer is not None and Error.is_type(answer.type)
    assert _words(asyncio.run(transcribe()).text) == SPOKEN


def test_partial_text_streams_while_the_audio_arrives(served: Served) -> None:
    async def talk() -> list[tuple[Event, bool]]:
        seen: list[tuple[Event, bool]] = []  # each event, and whether audio-stop had been sent before it came
        audio_stopped = asyncio.Event()
        async with AsyncTcpClient("127.0.0.1", served.wyoming_port) as client:

            async def read() -> None:
                while not seen or seen[-1][0].type not in ("transcript-stop", "error"):
                    event = await asyncio.wait_for(client.read_event(), 60)
                    assert event is not None, "the connection closed early"
                    seen.append((event, audio_stopped.is_set()))

            reading = asyncio.create_task(read())
            await client.write_event(Transcribe(language="en").event())
            await _send_paced(client.write_event, _pcm(served.longer, 22050), 22050)
            audio_stopped.set()
            await client.write_event(AudioStop().event())
            await reading
        return seen

    seen = asyncio.run(talk())
    kinds = [event.type for event, _ in seen]
    assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript", "transcript-stop"], kinds
    assert set(kinds[1:-2]) == {"transcript-chunk"}
    live = [TranscriptChunk.from_event(event).text for event, after in seen[1:-2] if not after]
    assert live, "no transcript-chunk came before audio-stop"
    chunks = [TranscriptChunk.from_event(event).text for event, _ in seen[1:-2]]
    transcript = Transcript.from_event(seen[-2][0]).text
    assert all(chunks) and "".join(chunks) == transcript
    assert _words(transcript) == LONGER


def test_a_client_before_wyoming_1_7_gets_only_the_transcript(served: Served) -> None:
    async def talk() -> list[Event]:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.wyoming_port)

        async def write(event: Event) -> None:  # as wyoming 1.6 writes events: its version in every header
            header: dict[str, object] = {"type": event.type, "version": "1.6.0", "data": event.data}
            header["payload_length"] = len(event.payload or b"")
            writer.write(json.dumps(header).encode() + b"\n" + (event.payload or b""))
            await writer.drain()

        try:
            await write(Transcribe(language="en").event())
            await _send_paced(write, _pcm(served.speech, 22050), 22050)
            await write(AudioStop().event())
            await write(Describe().event())  # answered after everything the utterance brings
            seen: list[Event] = []
            while not seen or seen[-1].type not in ("info", "error"):
                event = await asyncio.wait_for(async_read_event(reader), 60)
                assert event is not None, "the connection closed early"
                seen.append(event)
        finally:
            writer.close()
        return seen

    seen = asyncio.run(talk())
    assert [event.type for event in seen] == ["transcript", "info"]
    assert _words(Transcript.from_event(seen[0]).text) == SPOKEN


def test_a_taken_wyoming_port_is_an_error(served: Served, words_model: Path) -> None:
    command = [sys.executable, "-m", "app", "serve", "--model", str(words_model), "--device", "cpu"]
    command += ["--port", str(free_port()), "--wyoming", "--wyoming-port", str(served.wyoming_port)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "the Wyoming server cannot listen" in done.stderr


def test_ctrl_c_stops_both_servers(served: Served) -> None:
    served.stop()
    assert health(served.base) == 0
    with pytest.raises(OSError):
        asyncio.run(asyncio.open_connection("127.0.0.1", served.wyoming_port))


def test_a_reachable_host_needs_an_allow_list(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "app", "serve", "--wyoming", "--wyoming-host", "0.0.0.0"]
    done = subprocess.run(
        [*command, "--model", str(tmp_path / "none")], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--wyoming-allow" in done.stderr


def _unloaded_server(**limits: float) -> WyomingServer:
    worker = EngineWorker(lambda: pytest.fail("never loaded"), lambda event: None)
    options = WyomingOptions(port=free_port(), **limits)  # type: ignore[arg-type]
    return WyomingServer(WorkerTranscriber(worker, "parakeet-tdt-0.6b-v2"), options, "0")


def test_limits_and_failures_end_one_connection_with_an_error() -> None:
    server = _unloaded_server(max_audio_seconds=0.5, idle_seconds=0.5)

    async def talk() -> tuple[Event | None, Event | None, Event | None]:
        await server.start()
        try:
            async with AsyncTcpClient("127.0.0.1", server.options.port) as client:
                await _send_audio(client, b"\0" * 32000 * 2, 16000, channels=1)  # 2 s, over the limit
                too_long = await _until(client, "error")
            async with AsyncTcpClient("127.0.0.1", server.options.port) as client:
                await _send_audio(client, b"\0" * 3200, 16000, channels=1)
                not_loaded = await _until(client, "error")
            async with AsyncTcpClient("127.0.0.1", server.options.port) as client:
                idle = await asyncio.wait_for(client.read_event(), 5)  # closed after half a second of silence
        finally:
            await server.close()
        return too_long, not_loaded, idle

    too_long, not_loaded, idle = asyncio.run(talk())
    assert too_long is not None and Error.from_event(too_long).code == "too-long"
    assert not_loaded is not None and "not loaded" in Error.from_event(not_loaded).text
    assert idle is None


def _lan_address() -> str:
    """This machine's address on its network (for a peer that is not loopback), or skip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            pytest.skip("this machine has no network address")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine has no network address")
    return address


def test_only_allowed_peers_are_served() -> None:
    address = _lan_address()

    async def describe(allowed: str) -> Event | None:
        worker = EngineWorker(lambda: pytest.fail("never loaded"), lambda event: None)
        options = WyomingOptions(host=address, port=free_port(), allowed=parse_allowed([allowed]))
        server = WyomingServer(WorkerTranscriber(worker, "m"), options, "0")
        await server.start()
        try:
            async with AsyncTcpClient(address, options.port) as client:
                await client.write_event(Describe().event())
                return await asyncio.wait_for(client.read_event(), 10)
        except ConnectionError:
            return None  # reset: the server closed the socket with the request unread
        finally:
            await server.close()

    assert asyncio.run(describe("203.0.113.0/24")) is None  # closed at once, unanswered
    answer = asyncio.run(describe(address))
    assert answer is not None and Info.is_type(answer.type)


def test_peer_addresses() -> None:
    lan = parse_allowed(["192.168.1.0/24", "10.0.0.7", "[fd00::5]"])
    assert peer_allowed(("127.0.0.1", 5000), ()) and peer_allowed(("::1", 5000, 0, 0), ())
    assert not peer_allowed(("192.168.1.9", 5000), ()) and peer_allowed(("192.168.1.9", 5000), lan)
    assert peer_allowed(("::ffff:10.0.0.7", 1, 0, 0), lan) and peer_allowed(("fd00::5", 1, 0, 0), lan)
    assert not peer_allowed(("10.0.0.8", 1), lan) and not peer_allowed(None, lan) and not peer_allowed("x", lan)
    with pytest.raises(ValueError):
        parse_allowed(["home-assistant.local"])


def test_model_languages_and_versions() -> None:
    assert len(model_languages("parakeet-tdt-0.6b-v3")) == 25 and "uk" in model_languages("parakeet-tdt-0.6b-v3")
    assert len(model_languages("my-parakeet-v3-int8")) == 25
    assert model_languages("parakeet-tdt-0.6b-v2") == model_languages("words-tdt") == ["en"]
    assert knows_streaming("1.10.2") and knows_streaming("1.7.0")
    assert not knows_streaming("1.6.3") and not knows_streaming("") and not knows_streaming("x.y")


def test_settled_text_hands_out_only_words_that_stay() -> None:
    settled = SettledText()
    assert settled.partial("seven") == "" and settled.partial("seven three") == "seven"
    assert settled.partial("seven three fi") == " three" and settled.partial("seven three five") == ""
    assert settled.partial("seven tree five hello") == ""  # a sent word changed: nothing until they agree again
    assert settled.partial("seven three five hello") == " five" and settled.sent == "seven three five"
    assert settled.rest("seven three five hello world") == " hello world" and settled.rest("x") == ""
    changed = SettledText()
    changed.partial("go left")
    assert changed.partial("go left stop") == "go left" and changed.rest("no left stop") == ""
    assert changed.sent == "go left" and changed.partial("go left stop") == "" and changed.partial("") == ""


def test_audio_so_far_leaves_the_utterance_whole() -> None:
    pcm = (np.sin(np.arange(22050) / 7) * 20000).astype("<i2").tobytes()
    whole, peeked = AudioCollector(10), AudioCollector(10)
    seen = []
    for start in range(0, len(pcm), 4410):
        whole.add(pcm[start : start + 4410], 22050, 2, 1)
        peeked.add(pcm[start : start + 4410], 22050, 2, 1)
        seen.append(peeked.so_far().size)
    expected = whole.finish()
    assert seen == sorted(seen) and 0 < seen[-1] <= expected.size
    assert np.array_equal(peeked.finish(), expected) and abs(expected.size - 16000) <= 1


def test_pcm_widths() -> None:
    assert pcm_to_float(bytes([0, 128, 255]), 1, 1).tolist() == pytest.approx([-1.0, 0.0, 127 / 128])
    assert pcm_to_float(np.array([-32768, 16384], "<i2").tobytes(), 2, 1).tolist() == [-1.0, 0.5]
    assert pcm_to_float(bytes([0, 0, 0x80, 0xFF, 0xFF, 0x7F]), 3, 1).tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)
    stereo = np.array([[1 << 30, 0], [-(1 << 31), -(1 << 31)]], "<i4").tobytes()
    assert pcm_to_float(stereo, 4, 2).tolist() == [0.25, -1.0]
    assert pcm_to_float(b"\0\0\0", 2, 1).size == 1  # a torn frame at the end is dropped
