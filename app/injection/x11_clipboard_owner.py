"""Owning the X11 CLIPBOARD selection from a thread of its own, which answers the programs that paste."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from app.injection.types import InjectionError
from app.injection.x11_clipboard_formats import ClipboardSnapshot, ClipData
from app.injection.x11_display import _log_x_error, _open_display

log = logging.getLogger("perch.injection")

T = TypeVar("T")

INCR_CHUNK = 65536
"""Bytes per step when a large format is sent incrementally (ICCCM INCR)."""
TRANSFER_TIMEOUT_S = 5.0
"""An incremental transfer whose requestor stops reading is dropped after this long."""


@dataclass
class _Transfer:
    window: Any
    prop: int
    type: int
    format: int
    data: bytes
    offset: int
    deadline: float


class _ClipboardOwner:
    """The owner side of the CLIPBOARD: a connection and window of its own, served from a thread."""

    def __init__(self, display: str | None = None) -> None:
        self.display_name = display if display is not None else os.environ.get("DISPLAY", "")
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake: tuple[int, int] | None = None
        self._stop = False
        self._changed = threading.Condition()
        # Owner thread state (read elsewhere only under `_changed`).
        self._conn: Any = None
        self._window: Any = None
        self._atoms: dict[str, int] = {}
        self._owned: dict[int, ClipData] | None = None
        self._owned_time = 0
        self._generation = 0
        self._served: list[str] = []
        self._last_request = 0.0
        self._transfers: dict[tuple[int, int], _Transfer] = {}

    # Owner thread.

    def _window_id(self) -> int | None:
        with self._changed:
            return None if self._window is None else int(self._window.id)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            from Xlib import X

            display = _open_display(self.display_name)
            display.set_error_handler(_log_x_error)
            root = display.screen().root
            window = root.create_window(-10, -10, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask)
            names = ("CLIPBOARD", "TARGETS", "TIMESTAMP", "MULTIPLE", "INCR", "ATOM", "INTEGER", "PERCH_TIME")
            with self._changed:
                self._conn, self._window = display, window
                self._atoms = {name: display.intern_atom(name) for name in names}
            display.flush()
            self._stop = False
            self._wake = os.pipe()
            self._thread = threading.Thread(target=self._loop, name="perch-clipboard", daemon=True)
            self._thread.start()

    def _call(self, function: Callable[[], T], timeout: float = 5.0) -> T:
        if threading.current_thread() is self._thread:
            return function()
        future: Future[T] = Future()
        self._calls.put((function, future))
        self._poke()
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            raise InjectionError("the clipboard thread did not answer") from exc

    def _poke(self) -> None:
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"\0")

    def _loop(self) -> None:
        display = self._conn
        wake = self._wake
        assert wake is not None
        try:
            while not self._stop:
                while True:
                    try:
                        function, future = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(function())
                        except BaseException as exc:
                            future.set_exception(exc)
                while display.pending_events():
                    self._handle(display.next_event())
                display.flush()
                self._expire_transfers()
                ready, _, _ = select.select([display.fileno(), wake[0]], [], [], 0.5)
                if wake[0] in ready:
                    os.read(wake[0], 4096)
        except Exception:
            log.exception("the clipboard thread stopped")
        finally:
            with self._changed:
                self._owned = None
                self._changed.notify_all()
            with contextlib.suppress(Exception):
                display.close()

    def _server_time(self) -> int:
        """A current server timestamp, from a zero-length property change on our window."""
        from Xlib import X, Xatom

        display, window = self._conn, self._window
        atom = self._atoms["PERCH_TIME"]
        window.change_property(atom, Xatom.STRING, 8, b"", mode=X.PropModeAppend)
        display.flush()
        while True:
            event = display.next_event()
            if event.type == X.PropertyNotify and event.window.id == window.id and event.atom == atom:
                return int(event.time)
            self._handle(event)

    def _own(self, formats: dict[str, ClipData]) -> int:
        display, window = self._conn, self._window
        stamp = self._server_time()
        clipboard = self._atoms["CLIPBOARD"]
        window.set_selection_owner(clipboard, stamp)
        owner = display.get_selection_owner(clipboard)
        if (owner if isinstance(owner, int) else owner.id) != window.id:
            raise InjectionError("another program kept the clipboard")
        owned = {display.intern_atom(name): data for name, data in formats.items()}
        with self._changed:
            self._owned, self._owned_time = owned, stamp
            self._generation += 1
            self._served = []
            self._changed.notify_all()
            return self._generation

    def _disown(self) -> None:
        from Xlib import X
        from Xlib.protocol import request

        display = self._conn
        stamp = self._server_time()
        request.SetSelectionOwner(
            display=display.display, window=X.NONE, selection=self._atoms["CLIPBOARD"], time=stamp
        )
        display.flush()
        with self._changed:
            self._owned = None
            self._generation += 1
            self._served = []
            self._changed.notify_all()

    def _owned_snapshot(self) -> ClipboardSnapshot:
        display = self._conn
        owned = self._owned or {}
        return ClipboardSnapshot({display.get_atom_name(atom): data for atom, data in owned.items()})

    def _handle(self, event: Any) -> None:
        """One event on the owner connection; a misbehaving requestor costs only its own request."""
        try:
            self._dispatch(event)
        except Exception as exc:
            log.debug("clipboard event %s failed: %s", type(event).__name__, exc)

    def _dispatch(self, event: Any) -> None:
        from Xlib import X

        if event.type == X.SelectionRequest:
            self._answer(event)
        elif event.type == X.SelectionClear and event.atom == self._atoms["CLIPBOARD"]:
            if event.time == X.CurrentTime or event.time >= self._owned_time:
                with self._changed:
                    self._owned = None
                    self._changed.notify_all()
        elif event.type == X.PropertyNotify and event.state == X.PropertyDelete:
            transfer = self._transfers.get((event.window.id, event.atom))
            if transfer is not None:
                self._send_chunk(transfer)

    def _answer(self, event: Any) -> None:
        """Serve one SelectionRequest: TARGETS, TIMESTAMP or a format we hold; refuse anything else."""
        from Xlib import X
        from Xlib.protocol import event as xevent

        display = self._conn
        atoms = self._atoms
        requestor = event.requestor
        prop = event.property or event.target  # obsolete clients leave the property as None
        owned = self._owned
        current = owned is not None and event.selection == atoms["CLIPBOARD"]
        current = current and (event.time == X.CurrentTime or event.time >= self._owned_time)
        answered = False
        if current and owned is not None:
            if event.target == atoms["TARGETS"]:
                targets = [atoms["TARGETS"], atoms["TIMESTAMP"], *owned]
                requestor.change_property(prop, atoms["ATOM"], 32, targets)
                answered = True
            elif event.target == atoms["TIMESTAMP"]:
                requestor.change_property(prop, atoms["INTEGER"], 32, [self._owned_time])
                answered = True
            elif event.target in owned:
                data = owned[event.target]
                kind = display.get_atom(data.type)
                limit = min(4 * int(display.display.info.max_request_length) - 64, 4 * INCR_CHUNK)
                if len(data.data) > limit:
                    self._start_transfer(requestor, prop, kind, data)
                else:
                    requestor.change_property(prop, kind, data.format, data.data)
                answered = True
        notify = xevent.SelectionNotify(
            time=event.time,
            requestor=requestor,
            selection=event.selection,
            target=event.target,
            property=prop if answered else X.NONE,
        )
        requestor.send_event(notify, event_mask=0)
        display.flush()
        if current:
            name = display.get_atom_name(event.target)
            log.debug("clipboard request for %s (%s)", name, "served" if answered else "refused")
            with self._changed:
                self._served.append(name)
                self._last_request = time.monotonic()
                self._changed.notify_all()

    def _start_transfer(self, requestor: Any, prop: int, kind: int, data: ClipData) -> None:
        from Xlib import X

        requestor.change_attributes(event_mask=X.PropertyChangeMask)
        requestor.change_property(prop, self._atoms["INCR"], 32, [len(data.data)])
        self._transfers[(requestor.id, prop)] = _Transfer(
            requestor, prop, kind, data.format, data.data, 0, time.monotonic() + TRANSFER_TIMEOUT_S
        )

    def _send_chunk(self, transfer: _Transfer) -> None:
        from Xlib import X

        chunk = transfer.data[transfer.offset : transfer.offset + INCR_CHUNK]
        transfer.window.change_property(transfer.prop, transfer.type, transfer.format, chunk)
        transfer.offset += len(chunk)
        transfer.deadline = time.monotonic() + TRANSFER_TIMEOUT_S
        if not chunk:  # the zero-length property that ends the transfer has been written
            del self._transfers[(transfer.window.id, transfer.prop)]
            if not any(key[0] == transfer.window.id for key in self._transfers):
                transfer.window.change_attributes(event_mask=X.NoEventMask)
        self._conn.flush()

    def _expire_transfers(self) -> None:
        now = time.monotonic()
        for key, transfer in list(self._transfers.items()):
            if now > transfer.deadline:
                log.debug("dropping a stalled clipboard transfer to window %#x", key[0])
                del self._transfers[key]

    def _hand_to_manager(self) -> None:
        """Ask a running clipboard manager (freedesktop ClipboardManager) to copy what we own."""
        from Xlib import X

        display, window = self._conn, self._window
        manager = display.intern_atom("CLIPBOARD_MANAGER")
        if self._owned is None or display.get_selection_owner(manager) == X.NONE:
            return
        save = display.intern_atom("SAVE_TARGETS")
        window.convert_selection(manager, save, display.intern_atom("PERCH_SAVE"), self._server_time())
        display.flush()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if not display.pending_events():
                select.select([display.fileno()], [], [], max(0.0, deadline - time.monotonic()))
                if not display.pending_events():
                    continue
            event = display.next_event()
            if event.type == X.SelectionNotify and event.selection == manager:
                return
            self._handle(event)
