"""The Wyoming protocol (Home Assistant's speech services) over TCP: `describe` → `info`, and `transcribe`,
`audio-start`, `audio-chunk`…, `audio-stop` → `transcript`; clients of wyoming 1.7 or later get `transcript-start`,
`transcript-chunk`s of settled partial text while the audio arrives, and `transcript-stop` around it.

Wyoming has no authentication, so peers are checked by address, and every read is bounded in size and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr
import uvicorn
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, Eventable, async_write_event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.ping import Ping, Pong

from app.service.recognition import WorkerTranscriber
from stt.catalog import CATALOG, DEFAULT_MODEL
from stt.engine import SAMPLE_RATE
from stt.errors import PerchError

log = logging.getLogger("perch.service.wyoming")

DEFAULT_WYOMING_HOST = "127.0.0.1"
DEFAULT_WYOMING_PORT = 10300
"""The port Home Assistant's speech-to-text services conventionally use."""
STREAMING_SINCE = (1, 7, 0)
"""The wyoming release that added transcript-start/-chunk/-stop; older clients do not know them."""
PREVIEW_INTERVAL = 0.5
"""Seconds between the starts of one connection's partial transcriptions."""
PREVIEW_MAX_SECONDS = 30.0
"""Utterances longer than this get no more partials (only the final)."""
_WIDTHS = (1, 2, 3, 4)
_WORD = re.compile(r"\S+")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WyomingStartError(OSError):
    """The Wyoming server could not listen (the port is taken, or the address is not this machine's)."""


class BadEventError(Exception):
    """The peer sent something that is not a Wyoming event within this server's limits."""


@dataclass(frozen=True)
class WyomingOptions:
    """Where the Wyoming server listens, whom it serves, and its per-connection limits."""

    host: str = DEFAULT_WYOMING_HOST
    port: int = DEFAULT_WYOMING_PORT
    allowed: tuple[Network, ...] = ()
    """Peers let in besides loopback (needed when binding an address other machines can reach)."""
    max_audio_seconds: float = 300.0
    idle_seconds: float = 30.0
    """How long a connection may send nothing before it is closed."""
    max_event_bytes: int = 4 << 20
    max_connections: int = 8
    debug: bool = False
    """Log what was transcribed (never without it)."""


def parse_allowed(values: Iterable[str]) -> tuple[Network, ...]:
    """`--wyoming-allow` values (addresses or networks such as 192.168.1.0/24); raises ValueError."""
    return tuple(ipaddress.ip_network(v.strip("[]"), strict=False) for v in values)


def peer_allowed(peer: object, allowed: Iterable[Network]) -> bool:
    """Whether a socket's `peername` is loopback or inside one of the allowed networks."""
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or any(address in network for network in allowed)


def model_languages(name: str) -> list[str]:
    """The languages of a model: the catalog's, the v3 set for other v3 builds, else English."""
    spec = CATALOG.get(name)
    if spec is None and "v3" in name.lower():
        spec = CATALOG.get(DEFAULT_MODEL)
    return spec.languages.split() if spec is not None else ["en"]


def describe(model_name: str, version: str) -> Info:
    """The `info` answer: one ASR program with the loaded model."""
    spec = CATALOG.get(model_name)
    model = AsrModel(
        name=model_name,
        attribution=Attribution(name="NVIDIA", url="https://huggingface.co/nvidia"),
        installed=True,
        description=spec.description if spec is not None else "NVIDIA Parakeet-TDT",
        version=None,
        languages=model_languages(model_name),
    )
    program = AsrProgram(
        name="perch",
        attribution=Attribution(name="Perch", url="https://pypi.org/project/perch-dictation/"),
        installed=True,
        description="Perch: offline speech recognition (Parakeet-TDT on ONNX Runtime)",
        version=version,
        models=[model],
        supports_transcript_streaming=True,  # transcript-chunk for clients of wyoming 1.7 or later
    )
    return Info(asr=[program])


def pcm_to_float(payload: bytes, width: int, channels: int) -> npt.NDArray[np.float32]:
    """Little-endian PCM (8-bit unsigned, 16/24/32-bit signed) as mono float32 in [-1, 1]."""
    frame = width * channels
    data = payload[: len(payload) - len(payload) % frame]
    if width == 1:
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = ((value << 8) >> 8).astype(np.float32) / float(1 << 23)
    else:
        kind = np.dtype("<i2") if width == 2 else np.dtype("<i4")
        samples = np.frombuffer(data, kind).astype(np.float32) / float(1 << (8 * width - 1))
    mono = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
    return np.ascontiguousarray(mono, dtype=np.float32)


class AudioCollector:
    """One utterance's chunks, downmixed and resampled to 16 kHz as they arrive."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.seconds = 0.0
        self._pieces: list[npt.NDArray[np.float32]] = []
        self._rate = 0
        self._stream: soxr.ResampleStream | None = None

    def add(self, payload: bytes, rate: int, width: int, channels: int) -> bool:
        """Take one chunk; False once the utterance is longer than allowed."""
        if not 0 < rate <= 384_000 or width not in _WIDTHS or not 0 < channels <= 32:
            raise BadEventError(f"unsupported audio format: {rate} Hz, {width} bytes, {channels} channels")
        mono = pcm_to_float(payload, width, channels)
        self.seconds += mono.size / rate
        if self.seconds > self.max_seconds:
            return False
        if rate != self._rate:
            self._flush()
            self._rate = rate
            if rate != SAMPLE_RATE:
                self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        self._pieces.append(self._stream.resample_chunk(mono) if self._stream is not None else mono)
        return True

    def so_far(self) -> npt.NDArray[np.float32]:
        """The audio at 16 kHz received until now, the stream left open (the resampler keeps a few ms back)."""
        samples = np.concatenate(self._pieces) if self._pieces else np.zeros(0, np.float32)
        self._pieces = [samples]
        return samples

    def finish(self) -> npt.NDArray[np.float32]:
        """All the audio at 16 kHz."""
        self._flush()
        samples = np.concatenate(self._pieces) if self._pieces else np.zeros(0, np.float32)
        self._pieces = []
        return np.ascontiguousarray(samples, dtype=np.float32)

    def _flush(self) -> None:
        if self._stream is not None:
            self._pieces.append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
            self._stream = None


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> tuple[Event, str] | None:
    """The next event and the peer's wyoming version, None at the end; raises BadEventError."""
    try:
        line = await reader.readline()
        if not line:
            return None
        header = json.loads(line)
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise BadEventError("not a Wyoming event header")
        data = header.get("data") or {}
        data_length = header.get("data_length") or 0
        payload_length = header.get("payload_length") or 0
        for length in (data_length, payload_length):
            if not isinstance(length, int) or not 0 <= length <= max_bytes:
                raise BadEventError("an event's length is out of bounds")
        if data_length:
            data = {**data, **json.loads(await reader.readexactly(data_length))}
        if not isinstance(data, dict):
            raise BadEventError("an event's data is not an object")
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except (ValueError, TypeError) as exc:  # bad JSON, or a line past the reader's limit
        raise BadEventError("not a Wyoming event") from exc
    return Event(header["type"], data, payload), str(header.get("version") or "")


def knows_streaming(version: str) -> bool:
    """Whether a client of this wyoming version understands transcript-start, -chunk and -stop."""
    try:
        return tuple(int(p) for p in version.split(".")[:3]) >= STREAMING_SINCE
    except ValueError:
        return False


class SettledText:
    """The words of successive partials that will not change, as transcript-chunk deltas: a word is settled once
    it is the same, at the same place, in two partials in a row and is not the newest partial's last word."""

    def __init__(self) -> None:
        self.sent = ""
        """The concatenation of the deltas handed out so far."""
        self._words: list[str] = []
        self._previous: list[str] = []

    def partial(self, text: str) -> str:
        """The newly settled text of a partial (with its leading space), or "" when nothing new settled."""
        words = _WORD.findall(text)
        previous, self._previous = self._previous, words
        if words[: len(self._words)] != self._words:
            return ""  # a word already sent changed: send nothing until the partials agree with it again
        settled = len(self._words)
        while settled < len(words) - 1 and settled < len(previous) and words[settled] == previous[settled]:
            settled += 1
        if settled == len(self._words):
            return ""
        delta = (" " if self._words else "") + " ".join(words[len(self._words) : settled])
        self._words = words[:settled]
        self.sent += delta
        return delta

    def rest(self, final: str) -> str:
        """What the final text adds to what was sent ("" when nothing, or when it no longer starts with it)."""
        if not final.startswith(self.sent):
            return ""
        delta = final[len(self.sent) :]
        self.sent = final
        return delta


class _Connection:
    """One client's state: the requested language and the utterance being received."""

    def __init__(self, service: WyomingServer, writer: asyncio.StreamWriter) -> None:
        self.service = service
        self.writer = writer
        self.language: str | None = None
        self.audio: AudioCollector | None = None
        self.streaming = False
        self.settled = SettledText()
        self._preview: asyncio.Task[None] | None = None
        self._preview_started = -PREVIEW_INTERVAL

    async def send(self, message: Eventable) -> None:
        await async_write_event(message.event(), self.writer)

    def close(self) -> None:
        """Drop a partial transcription in progress (its result is not wanted any more)."""
        if self._preview is not None:
            self._preview.cancel()
            self._preview = None

    async def handle(self, event: Event, version: str) -> bool:
        """Answer one event; False closes the connection."""
        if Describe.is_type(event.type):
            await self.send(describe(self.service.transcriber.model_name, self.service.version))
        elif Ping.is_type(event.type):
            await self.send(Pong(text=Ping.from_event(event).text))
        elif Transcribe.is_type(event.type):
            language = Transcribe.from_event(event).language
            self.language = language if isinstance(language, str) and language else None
        elif AudioStart.is_type(event.type) or (AudioChunk.is_type(event.type) and self.audio is None):
            self.close()
            self.audio = AudioCollector(self.service.options.max_audio_seconds)
            self.streaming = knows_streaming(version)
            self.settled = SettledText()
            if self.streaming:
                await self.send(TranscriptStart(language=self.language))
            if AudioChunk.is_type(event.type):
                return await self._chunk(event)
        elif AudioChunk.is_type(event.type):
            return await self._chunk(event)
        elif AudioStop.is_type(event.type):
            return await self._stop()
        return True

    async def _chunk(self, event: Event) -> bool:
        assert self.audio is not None
        try:
            chunk = AudioChunk.from_event(event)
            rate, width, channels = int(chunk.rate), int(chunk.width), int(chunk.channels)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadEventError("an audio-chunk without rate, width and channels") from exc
        if self.audio.add(chunk.audio, rate, width, channels):
            self._maybe_preview()
            return True
        limit = self.service.options.max_audio_seconds
        await self.send(Error(text=f"the audio is longer than this server's limit of {limit:g} s", code="too-long"))
        return False

    def _maybe_preview(self) -> None:
        """Start a partial transcription of the audio so far when one is useful and none is running."""
        assert self.audio is not None
        now = asyncio.get_running_loop().time()
        if (
            not self.streaming
            or (self._preview is not None and not self._preview.done())
            or now - self._preview_started < PREVIEW_INTERVAL
            or self.audio.seconds > PREVIEW_MAX_SECONDS
        ):
            return
        samples = self.audio.so_far()
        if samples.size:
            self._preview_started = now
            self._preview = asyncio.create_task(self._run_preview(samples))

    async def _run_preview(self, samples: npt.NDArray[np.float32]) -> None:
        """Send the text that a partial settled (cancelled, by `close`, once it is stale)."""
        partial = await self.service.transcriber.preview(samples)
        if partial is None or self._preview is not asyncio.current_task():
            return
        delta = self.settled.partial(partial.text)
        if self.service.options.debug:
            log.debug("Wyoming: partial of %.1f s: %s", samples.size / SAMPLE_RATE, partial.text)
        if delta:
            with contextlib.suppress(OSError):  # the client went away: the connection's loop sees it
                await self.send(TranscriptChunk(text=delta))

    async def _stop(self) -> bool:
        self.close()
        samples = self.audio.finish() if self.audio is not None else np.zeros(0, np.float32)
        self.audio = None
        text = ""
        if samples.size:
            try:
                text = (await self.service.transcriber.transcribe(samples)).text
            except PerchError as exc:
                log.error("a Wyoming transcription failed: %s", type(exc).__name__)
                await self.send(Error(text=f"transcription failed: {exc}", code="transcription-failed"))
                return False
        if self.service.options.debug:
            log.debug("Wyoming: transcribed %.1f s: %s", samples.size / SAMPLE_RATE, text)
        language = self.language or self.service.default_language
        rest = self.settled.rest(text) if self.streaming else ""
        if rest:
            await self.send(TranscriptChunk(text=rest))
        await self.send(Transcript(text=text, language=language))
        if self.streaming:
            await self.send(TranscriptStop())
        return True


class WyomingServer:
    """The Wyoming TCP server; `start()` and `close()` inside the event loop that serves HTTP too."""

    def __init__(self, transcriber: WorkerTranscriber, options: WyomingOptions, version: str) -> None:
        self.transcriber = transcriber
        self.options = options
        self.version = version
        languages = model_languages(transcriber.model_name)
        self.default_language = languages[0] if len(languages) == 1 else None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def uri(self) -> str:
        """Where clients connect, as wyoming writes it."""
        host = self.options.host.strip("[]")
        host = f"[{host}]" if ":" in host else host
        return f"tcp://{host}:{self.options.port}"

    async def start(self) -> None:
        """Listen; raises WyomingStartError when it cannot."""
        try:
            self._server = await asyncio.start_server(self._serve, self.options.host.strip("[]"), self.options.port)
        except OSError as exc:
            raise WyomingStartError(f"the Wyoming server cannot listen at {self.uri}: {exc.strerror or exc}") from exc

    async def close(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        where = peer[0] if isinstance(peer, tuple) and peer else "an unknown address"
        try:
            if not peer_allowed(peer, self.options.allowed):
                log.info("refused a Wyoming connection from %s (not in --wyoming-allow)", where)
            elif len(self._connections) >= self.options.max_connections:
                log.info("refused a Wyoming connection from %s: too many at once", where)
            elif task is not None:
                self._connections.add(task)
                await self._converse(reader, writer, where)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str) -> None:
        connection = _Connection(self, writer)
        options = self.options
        try:
            while True:
                got = await asyncio.wait_for(read_event(reader, options.max_event_bytes), options.idle_seconds)
                if got is None or not await connection.handle(*got):
                    return
        except asyncio.TimeoutError:
            log.info("closed an idle Wyoming connection from %s", where)
        except BadEventError as exc:
            log.info("closed a Wyoming connection from %s: %s", where, exc)
            with contextlib.suppress(OSError):
                await connection.send(Error(text=str(exc), code="bad-event"))
        except OSError:
            pass  # the client went away
        except Exception as exc:
            log.warning("a Wyoming connection from %s failed: %s", where, type(exc).__name__)
        finally:
            connection.close()


async def serve_with(http: uvicorn.Server, wyoming: WyomingServer) -> None:
    """Serve HTTP and Wyoming in this event loop until the HTTP server exits (Ctrl+C or `should_exit`)."""
    await wyoming.start()
    try:
        await http.serve()
    finally:
        await wyoming.close()
