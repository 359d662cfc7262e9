"""A local stand-in for the Hugging Face hub's file endpoints, answering as huggingface_hub 2.x expects."""

from __future__ import annotations

import functools
import hashlib
import random
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import unquote

from stt.catalog import ModelFile, ModelSpec

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Files at least this big are served like LFS/Xet files: the hub redirects to a CDN on another origin.
LFS_MIN_SIZE = 1024

_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)")
_CDN = re.compile(r"/cdn/(?P<repo>[^/]+/[^/]+)/(?P<file>.+)")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    range: str | None


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a blob, which the hub sends as the ETag of a small file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """Serves `repos` ({repo_id: {file name: bytes}}) on 127.0.0.1, with a CDN on a second port."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.requests: list[Request] = []
        # File name -> byte offset at which the next transfer of that file drops its connection (once).
        self.drop_at: dict[str, int] = {}
        # After a dropped transfer, answer 503 to everything until `outage` is cleared.
        self.outage_after_drop = False
        self.outage = False
        # Files served with their first byte changed, while the metadata still describes the good bytes.
        self.corrupt: set[str] = set()
        self._lock = threading.Lock()
        self._hub = _Server(self, cdn=False)
        self._cdn = _Server(self, cdn=True)
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for server in (self._hub, self._cdn)
        ]

    @property
    def endpoint(self) -> str:
        """The value for HF_ENDPOINT."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn(self) -> str:
        """Where large files are redirected to."""
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def start(self) -> HubServer:
        """Begin answering in background threads."""
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and free the ports."""
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def gets(self, file: str) -> list[Request]:
        """The GET requests that fetched the bytes of `file`, from the hub or the CDN."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and unquote(r.path).endswith(f"/{file}")]

    def log(self, request: Request) -> None:
        """Record a request."""
        with self._lock:
            self.requests.append(request)

    def take_drop(self, file: str) -> int | None:
        """The offset at which this transfer of `file` must drop, consuming it."""
        with self._lock:
            return self.drop_at.pop(file, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: HubServer, *, cdn: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub
        self.is_cdn = cdn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def _hub(self) -> HubServer:
        return cast(_Server, self.server).hub

    def _answer(self, *, body: bool) -> None:
        hub = self._hub
        hub.log(Request(self.command, self.path, self.headers.get("Range")))
        if hub.outage:
            self._status(503, {}, "the hub is down", body)
        elif cast(_Server, self.server).is_cdn:
            self._answer_cdn(body)
        else:
            self._answer_resolve(body)

    def _answer_cdn(self, body: bool) -> None:
        match = _CDN.fullmatch(self.path)
        files = self._hub.repos.get(match["repo"], {}) if match else {}
        name = unquote(match["file"]) if match else ""
        if name not in files:
            self._status(404, {}, "no such object", body)
            return
        data = files[name]
        self._content(name, data, {"ETag": f'"{hashlib.sha256(data).hexdigest()}"'}, body)

    def _answer_resolve(self, body: bool) -> None:
        hub = self._hub
        match = _RESOLVE.fullmatch(self.path)
        if match is None or match["repo"] not in hub.repos:
            self._status(404, {"X-Error-Code": "RepoNotFound"}, "Repository not found", body)
            return
        if match["revision"] not in {"main", COMMIT}:
            self._status(404, {"X-Error-Code": "RevisionNotFound"}, "Invalid rev id", body)
            return
        name = unquote(match["file"])
        data = hub.repos[match["repo"]].get(name)
        if data is None:
            self._status(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, "Entry not found", body)
        elif len(data) >= LFS_MIN_SIZE:
            headers = {
                "Location": f"{hub.cdn}/cdn/{match['repo']}/{match['file']}",
                "X-Repo-Commit": COMMIT,
                "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'"{git_blob_sha1(name.encode())}"',
            }
            self._status(302, headers, "Found. Redirecting", body)
        else:
            self._content(name, data, {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": COMMIT}, body)

    def _status(self, code: int, headers: dict[str, str], message: str, body: bool) -> None:
        payload = message.encode()
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        if code >= 400:
            self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _content(self, name: str, data: bytes, headers: dict[str, str], body: bool) -> None:
        hub = self._hub
        if name in hub.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start, end, code = 0, len(data) - 1, 200
        requested = self.headers.get("Range")
        if requested:
            match = _RANGE.fullmatch(requested)
            if match is None or int(match[1]) >= len(data):
                self._status(416, {"Content-Range": f"bytes */{len(data)}"}, "bad range", body)
                return
            start, code = int(match[1]), 206
            end = min(int(match[2]), end) if match[2] else end
        payload = data[start : end + 1]
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if not body:
            return
        drop = hub.take_drop(name)
        if drop is not None and start <= drop < end + 1:
            self.wfile.write(payload[: drop - start])
            self.wfile.flush()
            self.close_connection = True
            # Drop the connection mid-body, as a network failure would.
            self.connection.shutdown(socket.SHUT_RDWR)
            if hub.outage_after_drop:
                hub.outage = True
            return
        self.wfile.write(payload)


def closed_port_endpoint() -> str:
    """An address on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


TINY_NAME = "tiny-tdt"
TINY_REPO = "perch-tests/tiny-tdt-onnx"
MIB = 1024 * 1024
# The 97-byte config.json both Parakeet repos ship.
CONFIG = b'{\n    "model_type": "nemo-conformer-tdt",\n    "features_size": 128,\n    "subsampling_factor": 8\n}'


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def tiny_repo() -> dict[str, bytes]:
    """Files shaped like a Parakeet ONNX repo; the external-data file is over one 10 MiB read chunk."""
    return dict(_tiny_repo())


@functools.cache
def _tiny_repo() -> dict[str, bytes]:
    return {
        "config.json": CONFIG,
        "vocab.txt": b"".join(b"tok%d %d\n" % (i, i) for i in range(40)),
        "encoder-model.onnx": _noise(1, 200_000),
        "encoder-model.onnx.data": _noise(2, 12 * MIB + 12_345),
        "decoder_joint-model.onnx": _noise(3, 50_000),
        "encoder-model.int8.onnx": _noise(4, 100_000),
        "decoder_joint-model.int8.onnx": _noise(5, 30_000),
        "nemo128.onnx": _noise(6, 2_000),
    }


def tiny_spec(repo_id: str = TINY_REPO, **sha_overrides: str) -> ModelSpec:
    """A catalog entry for `tiny_repo()`, mixing exact, hashed and approximate files as the real one does."""
    files = tiny_repo()

    def exact(name: str, with_sha: bool = False) -> ModelFile:
        data = files[name]
        sha = sha_overrides.get(name) or (hashlib.sha256(data).hexdigest() if with_sha else None)
        return ModelFile(name, len(data), sha, len(data))

    return ModelSpec(
        name=TINY_NAME,
        repo_id=repo_id,
        languages="en",
        description="a tiny stand-in served by the local test hub",
        files={
            "fp32": (
                exact("config.json", with_sha=True),
                exact("vocab.txt"),
                exact("encoder-model.onnx"),
                ModelFile("encoder-model.onnx.data", None, None, 12_000_000),
                exact("decoder_joint-model.onnx", with_sha=True),
            ),
            "int8": (
                exact("config.json", with_sha=True),
                exact("vocab.txt"),
                exact("encoder-model.int8.onnx"),
                exact("decoder_joint-model.int8.onnx", with_sha=True),
            ),
        },
    )
