"""Benchmark of the speech service beside dictation: `python -m pytest tests/bench_service.py -s`.

In one process, one engine worker with the words model (fp32, CPU) serves push-to-talk dictation (Silero VAD,
partials "low", as in tests/bench_files.py) and the in-process service (`BackgroundService`) at the same time:

- STREAMS (4) `/v1/stream` WebSocket clients, each sending espeak-ng phrases at real-time speed (40 ms s16le frames
  at 16 kHz, a 1 s pause after each phrase) for the whole loaded phase;
- one `openai` SDK client uploading a 24 s file for transcription every UPLOAD_EVERY_S seconds.

It prints PERCH_BENCH_RUNS (10) dictations' stop→final without and with that load, every stream's phrase and
final count, the stream final latency and the upload latency. Stream final latency is measured from sending the
40 ms frame that holds a phrase's last speech sample to receiving its `final` message, so it includes the VAD's
end-of-speech wait (`min_silence_ms`, 500 ms).

With PERCH_BENCH_MODEL=DIR (and PERCH_BENCH_QUANTIZATION, default int8) it runs another model, e.g. the
real-size one from bench/make_real_size_model.py; its random weights give no words, so only timings and counts
are checked. PERCH_BENCH_NO_YIELD=1 lets API work run to its end instead of giving way to dictation, and before the
caption's partial steps (only dictation jobs waiting go first), for comparison. PERCH_BENCH_GAP_S puts a
pause after each dictation under load.

It is not part of the test run (the file name does not start with `test_`).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from openai import OpenAI
from websockets.asyncio.client import connect

from app.service.background import BackgroundService
from stt.dictation import Dictation, DictationOptions
from stt.engine import Recognizer
from stt.events import Partial
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.vad import SileroVad
from stt.worker import EngineWorker, WorkerOptions

from .bench_files import UTTERANCE, dictate, percentile
from .conftest import Speak
from .live import HandSource, Recorder
from .longaudio import spaced_phrases, write_long_file
from .service_process import free_port

PHRASES = ["seven three five", "hello world", "left right up down", "yes no stop go"]
RUNS = int(os.environ.get("PERCH_BENCH_RUNS", "10"))
GAP_S = float(os.environ.get("PERCH_BENCH_GAP_S", "0"))
"""The pause between two dictations under load (0: one after the other, the person never stops)."""
STREAMS = 4
UPLOAD_SECONDS = 24.0
UPLOAD_EVERY_S = 5.0
UPLOAD_TEXTS = (PHRASES * 2)[:6]
"""The phrases in the uploaded file, one every 4 s from 1 s."""
FRAME = 640
TOKEN = "bench-token"
T = TypeVar("T")


@dataclass
class StreamStats:
    """What one stream client sent and got."""

    phrase_ends: list[float] = field(default_factory=list)
    """When the frame holding each phrase's last speech sample was sent (perf_counter)."""
    finals: list[tuple[float, str]] = field(default_factory=list)
    """When each final arrived, and its text."""

    def latencies_ms(self) -> list[float]:
        return [(got - sent) * 1000 for (got, _), sent in zip(self.finals, self.phrase_ends, strict=False)]


def track(speak: Speak) -> tuple[npt.NDArray[np.int16], list[int]]:
    """The phrases, each followed by a 1 s pause, as s16le samples; where each phrase ends."""
    parts: list[npt.NDArray[np.float32]] = [np.zeros(8000, np.float32)]
    ends: list[int] = []
    position = 8000
    for text in PHRASES:
        speech = speak(text)
        parts += [speech, np.zeros(16000, np.float32)]
        position += len(speech)
        ends.append(position)
        position += 16000
    audio = np.concatenate(parts)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2"), ends


async def stream_client(url: str, pcm: npt.NDArray[np.int16], ends: list[int], stop: threading.Event) -> StreamStats:
    """Loop the track at real-time speed until `stop`, then ask for the last finals."""
    stats = StreamStats()
    async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:

        async def read() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "final":
                    stats.finals.append((time.perf_counter(), message["text"]))

        reader = asyncio.create_task(read())
        started = time.perf_counter()
        sent = 0
        while not stop.is_set():
            for first in range(0, len(pcm), FRAME):
                await ws.send(pcm[first : first + FRAME].tobytes())
                now = time.perf_counter()
                stats.phrase_ends += [now for end in ends if first < end <= first + FRAME]
                sent += 1
                await asyncio.sleep(max(0.0, started + sent * 0.04 - time.perf_counter()))
            if stop.is_set():
                break
        await ws.send(json.dumps({"type": "stop"}))
        await reader
    return stats


def uploader(client: OpenAI, path: Path, stop: threading.Event, latencies: list[float], texts: list[str]) -> None:
    """Upload the file every UPLOAD_EVERY_S seconds until `stop`."""
    while not stop.is_set():
        began = time.perf_counter()
        with path.open("rb") as audio:
            result = client.audio.transcriptions.create(model="whisper-1", file=audio)
        latencies.append((time.perf_counter() - began) * 1000)
        texts.append(result.text)
        stop.wait(max(0.0, UPLOAD_EVERY_S - (time.perf_counter() - began)))


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):7.1f} ms  p95 {percentile(values, 95):7.1f} ms  max {max(values):7.1f} ms"


def _never_yield(
    self: EngineWorker, work: Callable[[Recognizer, ort.RunOptions], T], *, redo: bool = True
) -> Future[T]:
    return self.submit(lambda recognizer: work(recognizer, ort.RunOptions()))


@pytest.mark.slow
def test_service_beside_dictation(
    words_model: Path, speak: Speak, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = os.environ.get("PERCH_BENCH_MODEL")
    check = other is None
    model = Path(other) if other else words_model
    quantization: Literal["fp32", "int8"] = "fp32"
    if other:
        quantization = "fp32" if os.environ.get("PERCH_BENCH_QUANTIZATION") == "fp32" else "int8"
    gives_way = os.environ.get("PERCH_BENCH_NO_YIELD") != "1"
    if not gives_way:
        monkeypatch.setattr(EngineWorker, "submit_yielding", _never_yield)
        monkeypatch.setattr(EngineWorker, "_takes_job", lambda self: bool(self._jobs))
    print(f"\nmodel {model} ({quantization}); API work gives way to dictation and its caption: {gives_way}")
    print(f"pause after each dictation under load: {GAP_S} s")
    recognizer = Recognizer(ModelFiles.locate(model, quantization), RuntimeOptions(device="cpu"))
    events = Recorder()
    worker = EngineWorker(lambda: recognizer, events, WorkerOptions(partials="low"))
    worker.start()
    worker.ready.wait()
    port = free_port()
    service = BackgroundService(worker, "words", port, TOKEN)
    service.start()

    source = HandSource()
    dictation = Dictation(source, worker, events, DictationOptions(mode="ptt", preroll_ms=500), vad=SileroVad())
    dictation.open()
    speech = speak(UTTERANCE)
    idle = [dictate(source, dictation, events, speech, i, check=check) for i in range(RUNS)]
    idle_partials = len(events.of(Partial))

    pcm, ends = track(speak)
    upload = write_long_file(
        tmp_path / "upload.wav", UPLOAD_SECONDS, spaced_phrases(speak, UPLOAD_TEXTS, every_s=4.0, first_s=1.0)
    )
    stop = threading.Event()
    results: list[StreamStats] = []

    def streams() -> None:
        async def run() -> list[StreamStats]:
            url = f"ws://127.0.0.1:{port}/v1/stream"
            return list(await asyncio.gather(*(stream_client(url, pcm, ends, stop) for _ in range(STREAMS))))

        results.extend(asyncio.run(run()))

    uploads: list[float] = []
    upload_texts: list[str] = []
    client = OpenAI(base_url=service.url, api_key=TOKEN, max_retries=0, timeout=120)
    threads = [
        threading.Thread(target=streams, name="bench-streams"),
        threading.Thread(target=uploader, args=(client, upload, stop, uploads, upload_texts), name="bench-upload"),
    ]
    for thread in threads:
        thread.start()
    time.sleep(3.0)
    busy = []
    for i in range(RUNS):
        busy.append(dictate(source, dictation, events, speech, RUNS + i, check=check))
        time.sleep(GAP_S)
    stop.set()
    for thread in threads:
        thread.join(120)
    dictation.close()
    service.stop()
    worker.close()

    print()
    print(f"{'':32} {'count':>12}  latency")
    print(f"{'dictation stop->final, idle':32} {RUNS:>12}  {ms(idle)}")
    print(f"{'dictation stop->final, loaded':32} {RUNS:>12}  {ms(busy)}")
    print(f"{'  p95 difference':32} {'':>12}  {percentile(busy, 95) - percentile(idle, 95):+.1f} ms")
    loaded_partials = len(events.of(Partial)) - idle_partials
    updates = f"idle {idle_partials / RUNS:.1f}, loaded {loaded_partials / RUNS:.1f}"
    print(f"{'caption updates per dictation':32} {'':>12}  {updates}")
    latencies: list[float] = []
    for i, stats in enumerate(results):
        latencies += stats.latencies_ms()
        counts = f"{len(stats.finals):>5} / {len(stats.phrase_ends):<4}"
        print(f"{f'stream {i + 1} finals / phrases':32} {counts}  {ms(stats.latencies_ms())}")
    print(f"{'stream final latency, all':32} {len(latencies):>12}  {ms(latencies)}")
    print(f"{f'upload ({UPLOAD_SECONDS:.0f} s file)':32} {len(uploads):>12}  {ms(uploads)}")
    expected = " ".join(UPLOAD_TEXTS)
    right = sum(" ".join(t.lower().replace(",", " ").replace(".", " ").split()) == expected for t in upload_texts)
    if check:
        print(f"uploads with every word right: {right} / {len(upload_texts)}")
    for stats in results:
        assert len(stats.finals) == len(stats.phrase_ends), stats.finals
