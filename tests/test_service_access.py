"""Who reaches `perch serve`, and what it keeps: both loopback families, web origins let in with `--allow-origin`,
a busy server's 503, a port in use, and logs without the audio's words."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.commands.serve import web_origin
from app.service.server import listen

from .conftest import ROOT
from .service_process import ServeProcess, has_ipv6_loopback, serving

SPOKEN = "seven three five hello world"
ORIGIN = "http://localhost:3000"


@dataclass
class Served(ServeProcess):
    speech: Path
    temp: Path
    """The server's temporary folder (TMPDIR), which should stay empty."""


@contextmanager
def _serving(model: Path, speech: Path, folder: Path, *args: str) -> Iterator[Served]:
    temp = folder / "tmp"
    temp.mkdir()
    with serving(model, folder, *args, env={**os.environ, "TMPDIR": str(temp)}) as server:
        yield Served(server.process, server.port, server.token, server.output, speech, temp)


@pytest.fixture(scope="module")
def served(
    words_model: Path, speech_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One `perch serve --max-sessions 1 --allow-origin http://localhost:3000` (no --debug) for the module."""
    folder = tmp_path_factory.mktemp("access")
    with _serving(words_model, speech_file(SPOKEN), folder, "--max-sessions", "1", "--allow-origin", ORIGIN) as served:
        yield served


def _curl(url: str, *args: str) -> tuple[int, str, str]:
    """Status, lowercased headers and body."""
    done = subprocess.run(
        ["curl", "-s", "-g", "-D", "-", "-o", "/dev/stderr", "-w", "%{http_code}", *args, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    headers, _, code = done.stdout.rpartition("\n\n")  # text mode reads CRLF as LF
    return int(code or 0), headers.lower(), done.stderr


def _auth(served: Served) -> tuple[str, str]:
    return "-H", f"Authorization: Bearer {served.token}"


def _words(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").split())


def test_listens_on_both_loopback_families(served: Served) -> None:
    assert _curl(f"{served.base}/health")[0] == 200
    assert _curl(f"{served.base}/v1/models", *_auth(served), "-H", f"Host: [::1]:{served.port}")[0] == 200
    if not has_ipv6_loopback():
        return
    assert _curl(f"http://[::1]:{served.port}/health")[0] == 200
    code, _, body = _curl(f"http://[::1]:{served.port}/v1/models", *_auth(served))
    assert code == 200 and "whisper-1" in body


def test_listen_binds_one_port_on_both_families_and_other_hosts_alone() -> None:
    both = listen("127.0.0.1", 0)
    try:
        assert both[0].getsockname()[0] == "127.0.0.1"
        assert len({s.getsockname()[1] for s in both}) == 1
        assert len(both) == (2 if has_ipv6_loopback() else 1)
    finally:
        for sock in both:
            sock.close()
    (alone,) = listen("127.0.0.2", 0)
    assert alone.family == socket.AF_INET and alone.getsockname()[0] == "127.0.0.2"
    alone.close()


def test_an_allowed_origin_gets_cors_and_still_needs_the_token(served: Served) -> None:
    models = f"{served.base}/v1/models"
    code, headers, _ = _curl(models, *_auth(served), "-H", f"Origin: {ORIGIN}")
    assert code == 200 and f"access-control-allow-origin: {ORIGIN}" in headers
    assert _curl(models, "-H", f"Origin: {ORIGIN}")[0] == 401
    preflight = ("-X", "OPTIONS", "-H", f"Origin: {ORIGIN}", "-H", "Access-Control-Request-Method: POST")
    route = f"{served.base}/v1/audio/transcriptions"
    code, headers, _ = _curl(route, *preflight, "-H", "Access-Control-Request-Headers: authorization, content-type")
    assert code == 200 and f"access-control-allow-origin: {ORIGIN}" in headers
    assert "access-control-allow-methods:" in headers and "post" in headers.split("access-control-allow-methods:")[1]
    assert "authorization" in headers.split("access-control-allow-headers:")[1].split("\n")[0]


def test_other_origins_are_refused_without_cors(served: Served) -> None:
    other = "http://localhost:3001"
    code, headers, body = _curl(f"{served.base}/v1/models", *_auth(served), "-H", f"Origin: {other}")
    assert code == 403 and "access-control" not in headers and "--allow-origin" in body
    preflight = ("-X", "OPTIONS", "-H", f"Origin: {other}", "-H", "Access-Control-Request-Method: POST")
    code, headers, _ = _curl(f"{served.base}/v1/audio/transcriptions", *preflight)
    assert code == 403 and "access-control" not in headers


def _hold_a_session(served: Served) -> socket.socket:
    """A client that starts an upload and stalls: it holds a transcription session until it hangs up."""
    sock = socket.create_connection(("127.0.0.1", served.port))
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{served.port}\r\nAuthorization: Bearer {served.token}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n"
    )
    sock.sendall(head.encode())
    return sock


def test_over_the_session_limit_is_503_with_retry_after(served: Served) -> None:
    form = ("-F", f"file=@{served.speech}", "-F", "model=whisper-1", "-F", "response_format=text")
    route = f"{served.base}/v1/audio/transcriptions"
    with _hold_a_session(served):
        deadline = time.monotonic() + 20
        while (reply := _curl(route, *_auth(served), *form))[0] == 200:  # until the stalled upload is counted
            assert time.monotonic() < deadline
            time.sleep(0.1)
        code, headers, body = reply
        assert code == 503 and "retry-after: 1" in headers
        assert '"code":"server_busy"' in body and "try again" in body
    deadline = time.monotonic() + 20
    while (reply := _curl(route, *_auth(served), *form))[0] != 200:  # hanging up gave the session back
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)
    assert _words(reply[2]) == SPOKEN


def test_a_port_in_use_is_one_clear_line(words_model: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "app", "serve", "--model", str(words_model), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"perch: error: cannot listen on 127.0.0.1:{port} (" in done.stderr and "choose another port" in done.stderr
    assert "serving" not in done.stdout


def _heard(served: Served) -> None:
    """Transcribe the clip whole and streamed, and check what came back (so the log had the chance to hold it)."""
    with served.speech.open("rb") as audio:
        assert _words(served.openai().audio.transcriptions.create(model="whisper-1", file=audio).text) == SPOKEN
    with served.speech.open("rb") as audio:
        events = list(served.openai().audio.transcriptions.create(model="whisper-1", file=audio, stream=True))
    assert events[-1].type == "transcript.text.done" and _words(events[-1].text) == SPOKEN


def test_an_upload_never_touches_the_disk(served: Served, tmp_path: Path) -> None:
    """A 3 MB upload (past the size where form parsers usually spill to a temporary file), sent slowly: the server
    opens no new file in its temporary folder, nor any deleted one, while it reads and transcribes it."""
    temp = served.temp
    before = set(temp.iterdir())  # ONNX Runtime leaves a small `.ses` note there when it loads
    big = tmp_path / "big.wav"
    big.write_bytes(served.speech.read_bytes() + bytes(3_000_000))
    command = ["curl", "-s", "--limit-rate", "1M", *_auth(served), "-F", f"file=@{big}", "-F", "model=whisper-1"]
    command += ["-F", "response_format=text"]
    curl = subprocess.Popen([*command, f"{served.base}/v1/audio/transcriptions"], stdout=subprocess.PIPE, text=True)
    opened: set[str] = set()
    fds = Path(f"/proc/{served.process.pid}/fd")
    while curl.poll() is None:
        for fd in fds.iterdir():
            try:
                opened.add(str(fd.readlink()))
            except OSError:
                continue  # closed meanwhile
        time.sleep(0.02)
    answer, _ = curl.communicate()
    assert _words(answer).startswith(SPOKEN), answer
    assert not [name for name in opened if name.startswith(str(temp)) or "(deleted)" in name], opened
    assert set(temp.iterdir()) == before


def test_the_log_holds_none_of_the_words(served: Served) -> None:
    _heard(served)
    shown = served.stop().lower()
    assert "perch: serving" in shown
    assert not [word for word in SPOKEN.split() if word in shown], shown


def test_debug_logs_the_text(words_model: Path, served: Served, tmp_path: Path) -> None:
    with _serving(words_model, served.speech, tmp_path, "--debug") as debug:
        try:
            _heard(debug)
        finally:
            shown = debug.stop()
    assert SPOKEN in _words(shown)


def test_allow_origin_takes_origins_as_browsers_send_them() -> None:
    assert web_origin("HTTP://LocalHost:3000/") == "http://localhost:3000"
    assert web_origin("https://app.example") == "https://app.example"
    for wrong in ("localhost:3000", "http://localhost:3000/page", "ftp://x", "*", "http://"):
        with pytest.raises(ValueError, match="--allow-origin"):
            web_origin(wrong)
