"""`perch serve` under misbehaving clients: one that never reads, one that hangs up mid-upload."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from websockets.asyncio.client import connect

from .conftest import Speak
from .service_process import ServeProcess, health, serving

SPOKEN = "seven three five hello world"
FRAME = 640
"""Samples in a 40 ms frame at 16 kHz."""


@dataclass
class Served(ServeProcess):
    speech: npt.NDArray[np.float32]
    """"seven three five", a second of silence, "hello world", at 16 kHz, with silence around."""
    wav: Path


@pytest.fixture(scope="module")
def served(
    words_model: Path,
    speak: Speak,
    speech_file: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """One `perch serve --max-sessions 2` for the module."""
    silence = np.zeros(16000, np.float32)
    speech = np.concatenate([silence[:8000], speak("seven three five"), silence, speak("hello world"), silence])
    with serving(words_model, tmp_path_factory.mktemp("faults"), "--max-sessions", "2") as server:
        yield Served(server.process, server.port, server.token, server.output, speech, speech_file(SPOKEN))


def _pcm(samples: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _words(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").split())


class DeafClient:
    """A `/v1/stream` client on a raw socket with a tiny receive buffer that sends audio and never reads."""

    def __init__(self, served: Served) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", served.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {served.token}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.sock.recv(1)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 101"), reply
        self.sent = 0

    def send(self, payload: bytes) -> None:
        """One binary frame, masked with a zero key (so the payload goes as is)."""
        size = (
            bytes([0x80 | 126]) + struct.pack(">H", len(payload))
            if len(payload) > 125
            else bytes([0x80 | len(payload)])
        )
        header = bytes([0x82]) + size
        self.sock.sendall(header + bytes(4) + payload)
        self.sent += 1

    def close(self) -> None:
        self.sock.close()


async def _stream_finals(served: Served) -> tuple[list[dict[str, Any]], float]:
    """Stream the speech at real-time speed through the `websockets` client; its messages and the time taken."""
    data = _pcm(served.speech)
    began = time.monotonic()
    async with connect(
        f"ws://127.0.0.1:{served.port}/v1/stream", additional_headers={"Authorization": f"Bearer {served.token}"}
    ) as ws:
        for first in range(0, len(data), FRAME * 2):
            await ws.send(data[first : first + FRAME * 2])
            await asyncio.sleep(0.04)
        await ws.send(json.dumps({"type": "stop"}))
        messages = [json.loads(m) async for m in ws]
    return messages, time.monotonic() - began


def test_a_client_that_never_reads_blocks_no_one(served: Served) -> None:
    deaf = DeafClient(served)
    stop = threading.Event()
    loud = np.tile(served.speech, 4)

    def feed() -> None:
        try:
            while not stop.is_set():
                for first in range(0, len(loud) - FRAME, FRAME):
                    if stop.is_set():
                        return
                    deaf.send(_pcm(loud[first : first + FRAME]))
                    time.sleep(0.01)
        except OSError:
            return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        time.sleep(3.0)
        messages, took = asyncio.run(_stream_finals(served))
        finals = [m["text"] for m in messages if m["type"] == "final"]
        assert _words(" ".join(finals)) == SPOKEN, messages
        assert took < len(served.speech) / 16000 + 10, took
        with served.wav.open("rb") as audio:
            result = served.openai().audio.transcriptions.create(model="whisper-1", file=audio)
        assert _words(result.text) == SPOKEN
        assert deaf.sent > 100
        unread = bytearray(4)
        fcntl.ioctl(deaf.sock, termios.FIONREAD, unread)
        assert int.from_bytes(unread, sys.byteorder) > 0, "the server sent the deaf client nothing"
    finally:
        stop.set()
        deaf.close()
        feeder.join(timeout=10)


def test_a_client_that_hangs_up_mid_upload_leaves_the_server_answering(served: Served, tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    long.write_bytes(served.wav.read_bytes() + bytes(200_000))
    command = ["curl", "-s", "-o", "/dev/null", "--limit-rate", "20k", "-H", f"Authorization: Bearer {served.token}"]
    command += ["-F", f"file=@{long}", "-F", "model=whisper-1", f"{served.base}/v1/audio/transcriptions"]
    curl = subprocess.Popen(command)
    try:
        time.sleep(2.0)
        assert curl.poll() is None, "the upload finished before it could be cut"
        assert health(served.base) == 200
    finally:
        curl.kill()
        curl.wait()
    assert health(served.base) == 200


def test_after_the_faults_health_and_transcription_are_right(served: Served) -> None:
    assert served.process.poll() is None, served.output.read_text()
    assert health(served.base) == 200
    with served.wav.open("rb") as audio:
        result = served.openai().audio.transcriptions.create(model="whisper-1", file=audio)
    assert _words(result.text) == SPOKEN
    messages, _ = asyncio.run(_stream_finals(served))
    assert _words(" ".join(m["text"] for m in messages if m["type"] == "final")) == SPOKEN
