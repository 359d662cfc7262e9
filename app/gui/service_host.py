"""The desktop app's side of "Let other apps use Perch": the background service kept in step with the settings
and the engine worker, started and stopped on a thread of its own so that the GUI never waits for it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app.service.background import BackgroundService, ServiceStartError
from app.service.token import load_or_create_token
from stt.worker import EngineWorker

log = logging.getLogger("perch.app")


@dataclass(frozen=True)
class Wanted:
    """How the service should run: off, or on `port` with `worker`, which loads `model` (a name or a folder)."""

    enabled: bool
    port: int
    worker: EngineWorker
    model: str
    wyoming: bool = False


class ServiceHost:
    """Starts, restarts and stops the background service as `wanted()` says at that moment; `wanted`, `problem`
    and `changed` are called from its thread."""

    def __init__(
        self, wanted: Callable[[], Wanted], problem: Callable[[str], None], changed: Callable[[], None]
    ) -> None:
        self._wanted = wanted
        self._problem = problem
        self._changed = changed
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perch-service-control")
        self._service: BackgroundService | None = None
        self.url = ""
        """The API's address while it serves, else empty."""
        self.worker: EngineWorker | None = None
        """The engine worker it serves with, while it serves."""

    def sync(self, *, restart: bool = False) -> Future[None]:
        """Bring the service in line with `wanted()`; `restart` also restarts it unchanged (a new token)."""
        return self._thread.submit(self._sync, restart)

    def close(self) -> None:
        """Stop serving and wait for it."""
        self._thread.submit(self._stop)
        self._thread.shutdown(wait=True)

    def _sync(self, restart: bool) -> None:
        wanted = self._wanted()  # read now, so that the last request sees the newest worker and settings
        service = self._service
        name = Path(wanted.model).name if Path(wanted.model).is_dir() else wanted.model
        if service is not None and (
            restart
            or not wanted.enabled
            or (service.worker, service.model_name, service.options.port, service.wyoming is not None)
            != (wanted.worker, name, wanted.port, wanted.wyoming)
        ):
            self._stop()
        if wanted.enabled and self._service is None:
            try:
                token = load_or_create_token()
                service = BackgroundService(wanted.worker, name, wanted.port, token, wanted.wyoming)
                service.start()
            except (ServiceStartError, OSError) as exc:
                log.warning("the service for other apps did not start: %s", exc)
                self._problem(str(exc))
            else:
                self._service, self.url, self.worker = service, service.url, wanted.worker
        self._changed()

    def _stop(self) -> None:
        if self._service is not None:
            self._service.stop()
        self._service, self.url, self.worker = None, "", None
