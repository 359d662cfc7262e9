"""Let other apps use Perch: the background service on its own thread, and the real app serving with its model."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from app.service.background import BackgroundService, ServiceStartError
from app.service.wyoming_server import WyomingOptions
from stt.engine import Recognizer
from stt.worker import EngineWorker
from tests.perch_process import App, perch_app_fixture  # noqa: F401  (the `perch_app` fixture)
from tests.service_process import free_port, has_ipv6_loopback, health

SPOKEN = "seven three five hello world"


def _idle_worker() -> EngineWorker:
    """A worker that is never started: the service answers, but has no model."""

    def no_model() -> Recognizer:
        raise AssertionError("not loaded in these tests")

    return EngineWorker(no_model, lambda _event: None)


def test_serves_on_loopback_and_stops_within_seconds() -> None:
    port = free_port()
    service = BackgroundService(_idle_worker(), "words", port, "secret")
    service.start()
    assert service.url == f"http://127.0.0.1:{port}/v1"
    assert health(f"http://127.0.0.1:{port}") == 503  # up, the model not loaded
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 3
    assert not service.running
    assert health(f"http://127.0.0.1:{port}") == 0
    service.start()  # the same port again at once
    assert health(f"http://127.0.0.1:{port}") == 503
    service.stop()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_serves_ipv6_loopback_on_the_same_port() -> None:
    port = free_port()
    service = BackgroundService(_idle_worker(), "words", port, "secret")
    service.start()
    try:
        assert health(f"http://[::1]:{port}") == 503 and health(f"http://127.0.0.1:{port}") == 503
    finally:
        service.stop()
    assert health(f"http://[::1]:{port}") == 0
    with socket.socket(socket.AF_INET6) as taken:  # the IPv6 side in use is as clear as the IPv4 one
        taken.bind(("::1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        service = BackgroundService(_idle_worker(), "words", port, "secret")
        with pytest.raises(ServiceStartError, match=rf"^cannot listen on \[::1\]:{port} \(.*choose another port$"):
            service.start()
    assert not service.running and health(f"http://127.0.0.1:{port}") == 0  # nothing left half-started


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        service = BackgroundService(_idle_worker(), "words", port, "secret")
        with pytest.raises(ServiceStartError) as caught:
            service.start()
    message = str(caught.value)
    assert message.startswith(f"cannot listen on 127.0.0.1:{port} (") and "choose another port" in message
    assert "\n" not in message and not service.running
    service.stop()  # nothing to stop: no error


def test_wyoming_is_served_alongside_and_a_taken_port_is_refused() -> None:
    async def describe(port: int) -> Info:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            while True:
                event = await client.read_event()
                assert event is not None
                if Info.is_type(event.type):
                    return Info.from_event(event)

    service = BackgroundService(_idle_worker(), "words-tdt", free_port(), "secret", wyoming=True)
    assert service.wyoming == WyomingOptions()  # 127.0.0.1:10300 in the app
    service.wyoming = WyomingOptions(port=free_port())
    service.start()
    try:
        (program,) = asyncio.run(describe(service.wyoming.port)).asr
        assert program.name == "perch"
    finally:
        service.stop()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = free_port()
        service = BackgroundService(_idle_worker(), "words-tdt", port, "secret", wyoming=True)
        service.wyoming = WyomingOptions(port=int(taken.getsockname()[1]))
        with pytest.raises(ServiceStartError, match=r"Wyoming server cannot listen.*turn Wyoming off"):
            service.start()
    assert not service.running and health(f"http://127.0.0.1:{port}") == 0


def _wait_healthy(perch: App, base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while health(base) != 200:
        assert perch.process.poll() is None, (perch.home / "stderr.txt").read_text()
        assert time.monotonic() < deadline, perch.log()
        time.sleep(0.1)


def test_the_app_serves_other_apps_with_its_model(
    perch_app: Callable[..., App], speech_file: Callable[[str], Path], tmp_path: Path
) -> None:
    port = free_port()
    perch = perch_app(home=tmp_path / "on", service_enabled=True, service_port=port)
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(perch, base)
    token = (perch.home / "config" / "perch" / "service-token").read_text(encoding="utf-8").strip()
    form = ["-F", f"file=@{speech_file(SPOKEN)}", "-F", "model=whisper-1", "-F", "response_format=text"]
    done = subprocess.run(
        ["curl", "-s", "-H", f"Authorization: Bearer {token}", *form, f"{base}/v1/audio/transcriptions"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"at {base}/v1" in perch.log()
    assert " ".join(done.stdout.lower().replace(",", " ").replace(".", " ").split()) == SPOKEN
    perch.close()
    assert perch.process.returncode == 0
    assert health(base) == 0  # quitting the app stopped the service


def test_nothing_listens_with_the_setting_off(perch_app: Callable[..., App], tmp_path: Path) -> None:
    port = free_port()
    perch = perch_app(home=tmp_path / "off", service_port=port)
    perch.wait_status("idle")
    assert health(f"http://127.0.0.1:{port}") == 0
    assert f"at http://127.0.0.1:{port}/v1" not in perch.log()
