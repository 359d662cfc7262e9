"""The OpenAI-compatible API served from inside another program (the desktop app), on its own thread and loop.

It uses the host's engine worker, so one model in memory serves both dictation and other programs.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from app import __version__
from app.service.recognition import WorkerTranscriber
from app.service.server import DEFAULT_HOST, PreboundServer, ServiceOptions, ServiceStartError, build_server
from app.service.wyoming_server import WyomingOptions, WyomingServer, WyomingStartError
from stt.worker import EngineWorker

log = logging.getLogger("perch.service")

STOP_SECONDS = 2.0
"""How long requests in flight may take to finish when the service stops."""
START_SECONDS = 10.0
"""How long the Wyoming server may take to listen."""

__all__ = ["BackgroundService", "ServiceStartError"]


class BackgroundService:
    """`start()` listens on 127.0.0.1:`port` and [::1]:`port` and serves on a daemon thread; `stop()` shuts it
    down. With `wyoming`, the Wyoming protocol is served too, on 127.0.0.1 at its usual port."""

    def __init__(self, worker: EngineWorker, model_name: str, port: int, token: str, wyoming: bool = False) -> None:
        self.worker = worker
        self.model_name = model_name
        self.options = ServiceOptions(token=token, host=DEFAULT_HOST, port=port)
        self.wyoming = WyomingOptions() if wyoming else None
        self._server: PreboundServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients use."""
        return self.options.url

    @property
    def running(self) -> bool:
        """Whether the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind the port and serve in the background; raises `ServiceStartError` when a port cannot be used."""
        if self.running:
            return
        transcriber = WorkerTranscriber(self.worker, self.model_name)
        server = build_server(transcriber, self.options)
        server.config.timeout_graceful_shutdown = int(STOP_SECONDS)
        wyoming = None if self.wyoming is None else WyomingServer(transcriber, self.wyoming, __version__)
        listening = threading.Event()
        failed: list[str] = []
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server, wyoming, listening, failed), name="perch-service", daemon=True
        )
        self._thread.start()
        listening.wait(START_SECONDS)
        if failed:
            self.stop()
            raise ServiceStartError(failed[0])
        log.info("serving %s at %s", self.model_name, self.url)

    def stop(self) -> None:
        """Stop serving: requests in flight get `STOP_SECONDS`, then connections are closed."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=STOP_SECONDS + 1)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=1)
        log.info("stopped serving at %s", self.url)

    @staticmethod
    def _serve(
        server: PreboundServer,
        wyoming: WyomingServer | None,
        listening: threading.Event,
        failed: list[str],
    ) -> None:
        async def serve() -> None:
            if wyoming is not None:
                try:
                    await wyoming.start()
                except WyomingStartError as exc:
                    failed.append(f"{exc}; choose another port or turn Wyoming off")
                    return
            listening.set()
            try:
                await server.serve()
            finally:
                if wyoming is not None:
                    await wyoming.close()

        try:
            asyncio.run(serve())
        except (Exception, SystemExit):  # uvicorn exits when it cannot start; the app must carry on
            log.exception("the service stopped unexpectedly")
        finally:
            server.close_sockets()
            listening.set()
