"""`perch serve` as clients use it: the real openai SDK and curl against the command in its own process."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt
from openai import AuthenticationError, OpenAI
from openai.types import AudioResponseFormat
from starlette.testclient import TestClient

from app.service.guard import GuardRules
from app.service.http import ApiOptions, create_app
from app.service.recognition import WorkerTranscriber
from app.service.server import is_loopback
from app.service.token import load_or_create_token, token_path
from stt.engine import Recognizer
from stt.errors import TranscriptionError
from stt.worker import EngineWorker, WorkerOptions

from .conftest import ROOT
from .service_process import ServeProcess, health, serving

SPOKEN = "seven three five hello world"


@dataclass
class Served(ServeProcess):
    speech: Path


@pytest.fixture(scope="module")
def served(
    words_model: Path, speech_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One `perch serve` for the module, with a generated token (from the isolated config directory)."""
    speech = speech_file(SPOKEN)
    with serving(words_model, tmp_path_factory.mktemp("serve")) as server:
        yield Served(server.process, server.port, server.token, server.output, speech)


def _curl(served: Served, path: str, *args: str, token: str | None = None, auth: bool = True) -> tuple[int, str]:
    """Status and body; the module's token unless `token` (or none at all without `auth`)."""
    header = ["-H", f"Authorization: Bearer {served.token if token is None else token}"] if auth else []
    done = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *header, *args, f"{served.base}{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def _words(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").split())


def test_the_command_names_url_and_token_file(served: Served) -> None:
    shown = served.output.read_text()
    assert f"http://127.0.0.1:{served.port}/v1" in shown
    assert str(token_path()) in shown
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_every_response_format_through_the_sdk(served: Served, fmt: AudioResponseFormat) -> None:
    with served.speech.open("rb") as audio:
        result = served.openai().audio.transcriptions.create(model="whisper-1", file=audio, response_format=fmt)
    if fmt in ("json", "verbose_json"):
        assert not isinstance(result, str)
        assert _words(result.text) == SPOKEN
        return
    assert isinstance(result, str)
    if fmt == "srt":
        result = " ".join(cue.content for cue in srt.parse(result))
    if fmt == "vtt":
        result = " ".join(cue.text for cue in webvtt.from_string(result).captions)
    assert _words(result) == SPOKEN


def test_word_and_segment_timestamps(served: Served) -> None:
    duration = sf.info(str(served.speech)).duration
    with served.speech.open("rb") as audio:
        result = served.openai().audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.words is not None and result.segments
    assert " ".join(w.word for w in result.words) == SPOKEN
    for word in result.words:
        assert 0.0 <= word.start < word.end <= duration + 0.1
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert result.segments[0].start <= starts[0] and result.segments[-1].end >= result.words[-1].end
    assert result.duration == pytest.approx(duration, abs=0.1)


def test_streamed_events(served: Served) -> None:
    with served.speech.open("rb") as audio:
        events = list(served.openai().audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    assert [e.type for e in events][-1] == "transcript.text.done"
    assert all(e.type == "transcript.text.delta" for e in events[:-1]) and len(events) >= 2
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert events[-1].type == "transcript.text.done"
    assert _words(deltas) == _words(events[-1].text) == SPOKEN


def test_models_list(served: Served) -> None:
    names = [m.id for m in served.openai().models.list()]
    assert names == ["words-tdt", "whisper-1"]


def test_vocabulary_field_is_accepted(served: Served) -> None:
    code, body = _curl(
        served,
        "/v1/audio/transcriptions",
        "-F",
        f"file=@{served.speech}",
        "-F",
        "model=whisper-1",
        "-F",
        "vocabulary=hello world",
        "-F",
        "vocabulary=seven",
        "-F",
        "response_format=text",
    )
    assert code == 200, body
    assert _words(body) == SPOKEN


def test_wrong_or_missing_token(served: Served) -> None:
    assert _curl(served, "/v1/models", auth=False)[0] == 401
    assert _curl(served, "/v1/models", token="")[0] == 401
    code, body = _curl(served, "/v1/models", token="not-the-token")
    assert code == 401 and '"error"' in body and '"message"' in body
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{served.base}/v1", api_key="wrong", max_retries=0).models.list()
    assert _curl(served, "/health", auth=False)[0] == 200


def test_foreign_host_and_origin_are_refused(served: Served) -> None:
    assert _curl(served, "/v1/models", "-H", "Host: evil.example")[0] == 421
    assert _curl(served, "/v1/models", "-H", f"Host: evil.example:{served.port}")[0] == 421
    assert _curl(served, "/health", "-H", "Host: evil.example")[0] == 421
    assert _curl(served, "/v1/models", "-H", f"Host: localhost:{served.port}")[0] == 200
    code, _ = _curl(served, "/v1/models", "-H", "Origin: https://evil.example", "-i")
    assert code == 403
    done = subprocess.run(
        ["curl", "-s", "-i", "-H", "Origin: https://evil.example", f"{served.base}/health"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "access-control-allow-origin" not in done.stdout.lower()


def test_bad_requests_are_openai_errors(served: Served, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(os.urandom(4000))
    route = "/v1/audio/transcriptions"
    code, body = _curl(served, route, "-F", f"file=@{garbage}", "-F", "model=whisper-1")
    assert code == 400 and "Cannot decode" in body and '"param":"file"' in body
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert _curl(served, route, "-F", f"file=@{empty}", "-F", "model=whisper-1")[0] == 400
    code, body = _curl(served, route, "-F", "model=whisper-1")
    assert code == 400 and "`file`" in body
    code, body = _curl(served, route, "-F", f"file=@{served.speech}", "-F", "response_format=lrc")
    assert code == 400 and '"param":"response_format"' in body
    assert _curl(served, route, "-d", "x=1")[0] == 400
    assert _curl(served, "/v1/nothing")[0] == 404


def test_uploads_over_25_mb(served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (30 * 1024 * 1024))
    route = "/v1/audio/transcriptions"
    code, body = _curl(served, route, "-F", f"file=@{big}", "-F", "model=whisper-1")
    assert code == 413 and '"error"' in body
    # Without a Content-Length the guard counts the bytes as they arrive.
    chunked = ("-H", "Transfer-Encoding: chunked", "-F", f"file=@{big}", "-F", "model=whisper-1")
    assert _curl(served, route, *chunked)[0] == 413


def test_still_answers_after_the_bad_requests(served: Served) -> None:
    with served.speech.open("rb") as audio:
        result = served.openai().audio.transcriptions.create(model="my-own-name", file=audio)
    assert _words(result.text) == SPOKEN


def test_ctrl_c_stops_cleanly(served: Served) -> None:
    served.stop()
    assert health(served.base) == 0


def test_token_is_generated_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "config" / "service-token"
    token = load_or_create_token(path)
    assert len(token) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == token
    path.write_text("")
    assert load_or_create_token(path) not in ("", token)


def test_health_and_requests_wait_for_the_model() -> None:
    worker = EngineWorker(lambda: pytest.fail("never loaded"), lambda event: None)
    rules = GuardRules.for_bind("127.0.0.1", 8737, "secret")
    app = create_app(WorkerTranscriber(worker, "m"), ApiOptions(rules))
    with TestClient(app, base_url="http://127.0.0.1:8737") as client:
        reply = client.get("/health")
        assert reply.status_code == 503 and reply.json() == {"status": "loading model"}
        reply = client.post(
            "/v1/audio/transcriptions", headers={"Authorization": "Bearer secret"}, files={"file": ("a.wav", b"x")}
        )
        assert reply.status_code == 503 and reply.json()["error"]["type"] == "server_error"


def test_guard_rules() -> None:
    rules = GuardRules.for_bind("::1", 8737, "t")
    assert rules.host_allowed("[::1]:8737") and rules.host_allowed("LOCALHOST") and rules.host_allowed("127.0.0.1:8737")
    assert not rules.host_allowed("127.0.0.1:9999") and not rules.host_allowed("") and not rules.host_allowed(None)
    assert rules.token_matches("Bearer t") and rules.token_matches("bearer t")
    assert not rules.token_matches("Bearer tt") and not rules.token_matches("t") and not rules.token_matches(None)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_other_hosts_are_warned_about(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--host", "0.0.0.0", "--model", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "warning: listening on 0.0.0.0" in done.stderr and "token" in done.stderr


class _FailingRecognizer:
    """Loads, then fails every segment (as a broken model or device would)."""

    max_segment_seconds = 20.0
    boost = None

    def transcribe_segment(self, samples: object, offset: float = 0.0, run_options: object = None) -> None:
        raise TranscriptionError("the device went away")


def _wav_bytes() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def failing_api() -> Iterator[Callable[[int], TestClient]]:
    worker = EngineWorker(
        lambda: cast("Recognizer", _FailingRecognizer()), lambda event: None, WorkerOptions(partials="off")
    )
    worker.start()
    worker.ready.wait(10)

    def _client(max_sessions: int) -> TestClient:
        rules = GuardRules.for_bind("127.0.0.1", 8737, "secret")
        app = create_app(WorkerTranscriber(worker, "m"), ApiOptions(rules, max_sessions))
        return TestClient(app, base_url="http://127.0.0.1:8737", headers={"Authorization": "Bearer secret"})

    yield _client
    worker.close()


def test_engine_failures_are_errors_not_crashes(failing_api: Callable[[int], TestClient]) -> None:
    client = failing_api(4)
    files = {"file": ("a.wav", _wav_bytes())}
    reply = client.post("/v1/audio/transcriptions", files=files)
    assert reply.status_code == 500 and "the device went away" in reply.json()["error"]["message"]
    reply = client.post("/v1/audio/transcriptions", files=files, data={"stream": "true"})
    assert reply.status_code == 200 and '"type": "error"' in reply.text and "transcript.text.done" not in reply.text
    assert client.post("/v1/audio/transcriptions", files=files).status_code == 500  # every session was given back


def test_sessions_over_the_limit_are_refused(failing_api: Callable[[int], TestClient]) -> None:
    reply = failing_api(0).post("/v1/audio/transcriptions", files={"file": ("a.wav", _wav_bytes())})
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert reply.json()["error"]["code"] == "server_busy" and "try again" in reply.json()["error"]["message"]
