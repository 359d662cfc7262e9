"""The running app: engine, microphone and tray tied together through the coordinator."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMenu

from app import coordinator as co
from app import notices
from app.gui import socket_commands
from app.gui.bridge import EngineBridge
from app.gui.caption import CaptionWindow
from app.gui.caption_parts import BUSY_LINES, StateLine, delivery_line, ending_line
from app.gui.file_jobs import FileJobs
from app.gui.icons import state_icon
from app.gui.live_settings import LiveSettings
from app.gui.service_host import ServiceHost, Wanted
from app.gui.stall_probe import StallProbe
from app.gui.tray import Tray
from app.gui.tray_menu import MicrophoneList, build_menu
from app.gui.windows import Windows
from app.history import History, NewEntry, entry_from_final
from app.hotkeys import Hotkey, HotkeyBackend, choose_backend, parse_hotkey
from app.injection import DeliveryResult, TypingMemory, WindowRef, choose_typist, deliver
from app.ipc import CommandServer
from app.launch import LaunchSettings
from app.settings import CaptionSettings, TypingStrategy
from app.sounds import SoundCues
from stt.boost.replacements import Replacement, apply_replacements, replace_partial
from stt.dictation import Dictation, DictationOptions
from stt.engine import Recognizer
from stt.errors import PerchError
from stt.events import Error, Event, Final, Idle, Level, Listening, Partial
from stt.filejob import FileJob, FileResult
from stt.latency import LatencyLog
from stt.recordings import RecordingStore
from stt.sources import AudioSource
from stt.worker import EngineWorker, WorkerOptions

if TYPE_CHECKING:
    from app.doctor import DoctorContext
    from stt.quantization import WeightsChoice

log = logging.getLogger("perch.app")


@dataclass
class AppOptions:
    """What the app starts with."""

    load: Callable[[], Recognizer]
    model_label: str
    source: Callable[[], AudioSource]
    dictation: DictationOptions
    worker: WorkerOptions
    keep_recordings: int = 20
    history: History | None = None
    caption: CaptionSettings = field(default_factory=CaptionSettings)
    typing_strategy: TypingStrategy = "auto"
    type_into_any_focus: bool = False
    smart_spacing: bool = True
    save_caption_geometry: Callable[[tuple[int, int, int, int]], None] | None = None
    ptt_hotkey: str = "Ctrl+Alt+Space"
    toggle_hotkey: str = "Ctrl+Alt+D"
    hotkeys: Callable[[], HotkeyBackend] | None = None
    """Builds the global-hotkey backend; None picks the one for this desktop."""
    problems: list[str] = field(default_factory=list)
    """Messages to show once the tray is up (a settings file that could not be read, …)."""
    settings: LaunchSettings | None = None
    """The settings in effect; when given, every saved change applies at once and the menu can change them."""
    sound_cues: bool = False
    history_keep_days: int = 0
    weights: WeightsChoice | None = None
    """The weights the loaded model uses and why (set by `load`)."""
    replacements: list[Replacement] = field(default_factory=list)
    """Spoken forms written otherwise, applied to each final before it is shown and typed."""


class Controller(QObject):
    """Owns the coordinator state; every input goes through `feed`, on the GUI thread."""

    _input = Signal(object)
    _delivered = Signal(int, object)
    _copy = Signal(str)
    _hotkey_problem = Signal(str)
    _notice = Signal(object)
    _service_changed = Signal()

    def __init__(self, options: AppOptions) -> None:
        super().__init__()
        self.options = options
        self.state = co.State()
        self.device_note = ""
        self.load_note = ""
        """What loading waits for (a download), shown in the tooltip."""
        self._input.connect(self.feed)
        self._delivered.connect(self._on_delivered)
        self._copy.connect(lambda text: QGuiApplication.clipboard().setText(text))
        self._notice.connect(self.notify)
        self.notices = notices.NoticeGate()
        # Typing may wait for the person to let go of modifier keys, and a paste for the window to fetch it.
        self._typing_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perch-typing")
        self.typist = choose_typist(options.typing_strategy, copy=self._copy.emit)
        self.memory = TypingMemory()
        self._started_in: WindowRef | None = None
        self._targets: dict[int, WindowRef | None] = {}
        self.bridge = EngineBridge()
        self.bridge.arrived.connect(self._on_engine_event)
        self.recordings = RecordingStore(keep=options.keep_recordings)
        self.worker = self._new_worker()
        self.dictation = self._new_dictation()
        # Microphone opening and closing may take a while; they run here, in order, off the GUI thread.
        self._audio_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perch-control")
        self.tray = Tray(state_icon(co.Phase.LOADING), self._build_menu, self.toggle)
        self.caption = CaptionWindow(options.caption)
        if options.save_caption_geometry is not None:
            self.caption.geometry_changed.connect(options.save_caption_geometry)
        self.server = CommandServer(self.command)
        self.hotkeys = (options.hotkeys or choose_backend)()
        self._hotkey_problem.connect(lambda text: self.notify(notices.from_hotkey_problem(text)))
        self.sounds = SoundCues(enabled=options.sound_cues)
        self.files = FileJobs(lambda: self.worker, lambda: self.options.history, lambda: self.options.model_label)
        self.windows = Windows(self)
        self.caption.add_to_vocabulary.connect(self.windows.ask_to_add_to_vocabulary)
        self.microphones = MicrophoneList()
        self.probe = StallProbe.from_env()
        self.typed: list[tuple[int, str]] = []
        self.quit_requested = False
        self.latency = LatencyLog()
        self._history_ids: dict[int, int] = {}
        """Utterance → history row; only the history thread touches it."""
        self._history_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perch-history")
        self._hotkeys_thread = threading.Thread()
        self.live = LiveSettings(self)
        self.service = ServiceHost(
            self._wanted_service,
            lambda text: self._notice.emit(notices.from_service_problem(text)),
            self._service_changed.emit,
        )
        self._service_changed.connect(self._refresh)

    def _new_worker(self) -> EngineWorker:
        return EngineWorker(self.options.load, self.bridge.post, self.options.worker, self.recordings)

    def _new_dictation(self) -> Dictation:
        options = self.options
        return Dictation(options.source(), self.worker, self.bridge.post, options.dictation, store=self.recordings)

    def start(self) -> None:
        """Show the tray at once; load the model and open the microphone in the background."""
        self.tray.show()
        self._refresh()
        for problem in self.options.problems:
            self.notify(notices.from_settings_problem(problem))
        self.server.listen()
        self._hotkeys_thread = threading.Thread(target=self._start_hotkeys, name="perch-hotkeys-setup", daemon=True)
        self._hotkeys_thread.start()
        self._start_engine()
        self.sync_service()
        self._audio_thread.submit(self._open_microphone)
        if self.options.history is not None and self.options.history_keep_days:
            self._history_thread.submit(self._apply_retention, self.options.history)
        settings = self.options.settings
        if settings is not None and settings.current().start_at_login:
            # The entry names this installation's command, which may have moved since it was written.
            threading.Thread(target=self.live.set_autostart, args=(True,), daemon=True).start()

    def _start_engine(self) -> None:
        self.post(co.ModelLoading())
        worker = self.worker
        worker.start()
        threading.Thread(target=self._await_model, args=(worker,), name="perch-load-watch", daemon=True).start()

    def sync_service(self, *, restart: bool = False) -> None:
        """Serve other apps with the current worker when the settings say so, else stop (from any thread)."""
        self.service.sync(restart=restart)

    def _wanted_service(self) -> Wanted:
        settings = self.options.settings
        if settings is None:
            return Wanted(False, 0, self.worker, "")
        current = settings.current()
        return Wanted(
            current.service_enabled, current.service_port, self.worker, current.model, current.service_wyoming
        )

    def close(self) -> None:
        """Finish what was captured and stop everything."""
        if self.probe is not None:
            self.probe.report("exit")
        self.live.close()
        self.windows.close()
        self._hotkeys_thread.join(timeout=10)
        self.hotkeys.stop()
        self.server.close()
        self._audio_thread.submit(self.dictation.close).result(timeout=10)
        self._audio_thread.shutdown()
        self.files.close()
        self.service.close()
        self.worker.close()
        self._typing_thread.shutdown(wait=True)
        self.typist.close()
        self.sounds.close()
        self.tray.hide()
        self.caption.close()
        self._history_thread.shutdown(wait=True)
        if self.options.history is not None:
            self.options.history.close()

    # Inputs.

    def feed(self, event: co.Input, *, delivered: StateLine | None = None) -> None:
        """Advance the state machine, carry out what it asks and show the new state.

        `delivered` is what the caption says of a `Typed` text: how it went in.
        """
        before = self.state
        self.state, actions = co.step(self.state, event)
        for action in actions:
            self._do(action)
        ending = co.ending(before, event, self.state)
        if ending is None:
            self._refresh()
        else:
            self._refresh(delivered if ending.kind == "typed" and delivered is not None else ending_line(ending))

    def post(self, event: co.Input) -> None:
        """`feed` from any thread."""
        self._input.emit(event)

    def _start_hotkeys(self) -> None:
        """Register the push-to-talk and toggle hotkeys (off the GUI thread: a portal may take seconds to answer)."""
        problems: list[str] = []
        keys: list[Hotkey | None] = []
        for label, text in (("push-to-talk", self.options.ptt_hotkey), ("toggle", self.options.toggle_hotkey)):
            try:
                keys.append(parse_hotkey(text))
            except ValueError as exc:
                keys.append(None)
                problems.append(f"The {label} hotkey cannot be used: {exc}")
        problems += self.hotkeys.register(keys[0], keys[1])
        self.hotkeys.start(self._hotkey_down, self._hotkey_up, self._hotkey_problem.emit)
        for message in problems:
            self._hotkey_problem.emit(message)

    def _restart_hotkeys(self) -> None:
        """New hotkeys: let go of the old grabs, then register the new ones (off the GUI thread)."""
        self._hotkeys_thread.join(timeout=10)
        old = self.hotkeys

        def restart() -> None:
            old.stop()
            self.hotkeys = (self.options.hotkeys or choose_backend)()
            self._start_hotkeys()

        self._hotkeys_thread = threading.Thread(target=restart, name="perch-hotkeys-setup", daemon=True)
        self._hotkeys_thread.start()

    def pause_hotkeys(self, paused: bool) -> None:
        """Let go of the global hotkeys while the settings record a new one; take them again after."""
        if paused:
            self._hotkeys_thread.join(timeout=10)
            self._hotkeys_thread = threading.Thread(target=self.hotkeys.stop, name="perch-hotkeys-pause", daemon=True)
            self._hotkeys_thread.start()
        else:
            self._restart_hotkeys()

    def _hotkey_down(self, action: str) -> None:
        """From the hotkey thread: push-to-talk down, or the toggle key."""
        self.post(co.Press() if action == "ptt" else co.Toggle())

    def _hotkey_up(self, action: str) -> None:
        """From the hotkey thread: push-to-talk up (the toggle key's release means nothing)."""
        if action == "ptt":
            self.post(co.Release())

    def toggle(self) -> None:
        """Tray click, toggle hotkey or `perch toggle`."""
        self.feed(co.Toggle())

    def command(self, line: str) -> str:
        """A command from `perch …` on the local socket."""
        return socket_commands.answer(self, line)

    def quit(self) -> None:
        """Leave the event loop; `close` then finishes what was captured."""
        self.quit_requested = True
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def _on_engine_event(self, event: Event) -> None:
        if isinstance(event, Level):
            if self._caption_on:
                self.caption.set_level(event.db)
        elif isinstance(event, Partial):
            if self._caption_on and event.utterance not in self.state.dropped:  # not a cancelled utterance's
                self.caption.show_partial(*replace_partial(event.text, event.stable_chars, self.options.replacements))
                log.debug("caption shows partial %r", event.text)
        elif isinstance(event, Listening):
            if self.dictation.options.mode == "handsfree":
                self._started_in = self.typist.focused_window()
            self._targets[event.utterance] = self._started_in
            self.feed(co.Started(event.utterance))
        elif isinstance(event, Final):
            if self.options.replacements and event.text:
                event = replace(event, text=apply_replacements(event.text, event.words, self.options.replacements).text)
            self._remember(event)
            if self._caption_on and event.text and event.utterance not in self.state.dropped:
                self.caption.show_final(event.text)
            self.feed(co.FinalText(event.utterance, event.text))
        elif isinstance(event, Idle):
            self.feed(co.EngineIdle())
            if self._caption_on and self.state.phase in (co.Phase.IDLE, co.Phase.ERROR, co.Phase.LOADING):
                self.caption.idle()  # nothing left to type: the caption can go
        elif isinstance(event, Error):
            if self._caption_on and event.kind != "vocabulary":
                self.caption.show_state(event.message, error=True)
            if event.kind == "model":
                self.feed(co.ModelFailed(event.message))
            elif event.kind == "transcription" and event.utterance is not None:
                self._remember_failure(event)
                self.feed(co.UtteranceFailed(event.utterance, event.message))
            elif event.kind in ("microphone", "device-lost"):
                self.feed(co.CaptureFailed(event.message))
            else:
                self.notify(notices.from_engine_error(event.kind, event.message, model=self._model_name))

    @property
    def _model_name(self) -> str | None:
        return self.options.settings.current().model if self.options.settings is not None else None

    @property
    def _caption_on(self) -> bool:
        return self.options.caption.show

    def show_captions(self, on: bool) -> None:
        """Menu: show or hide the caption window."""
        if self.options.settings is not None:
            current = self.options.settings.store.current
            self.options.settings.update(caption=replace(current.caption, show=on))
            return
        self._set_caption(replace(self.options.caption, show=on))

    def _set_caption(self, caption: CaptionSettings) -> None:
        self.options.caption = caption
        self.caption.apply_settings(caption)
        if not caption.show:
            self.caption.hide()

    def _remember(self, final: Final) -> None:
        """Latency and history of a final (history keeps the audio path, so nothing is ever lost)."""
        self.latency.add_final(final)
        history = self.options.history
        if history is None:
            return
        recognizer = self.worker.recognizer
        device = recognizer.device if recognizer is not None else ""
        duration = max((s.end for s in final.segments), default=0.0)
        entry = entry_from_final(final, model=self.options.model_label, device=device, duration_s=duration)
        self._history_thread.submit(self._add_history, history, final.utterance, entry)

    def _remember_failure(self, error: Error) -> None:
        """A dictation that could not be transcribed goes into the history with its audio, to try again later."""
        history = self.options.history
        if history is None or error.utterance is None:
            return
        label, audio, message = self.options.model_label, error.audio, error.message

        def add() -> None:
            history.add(text="", model=label, audio_path=audio, status="failed", error=message)
            self.windows.history_changed.emit()

        self._history_thread.submit(add)

    def _add_history(self, history: History, utterance: int, entry: NewEntry) -> None:
        self._history_ids[utterance] = history.add(**entry)
        self.windows.history_changed.emit()

    def _set_history_typed(self, history: History, utterance: int, typed_ms: float) -> None:
        row = self._history_ids.pop(utterance, None)
        if row is not None:
            history.set_typed(row, typed_ms)
            self.windows.history_changed.emit()

    def _apply_retention(self, history: History) -> None:
        history.apply_retention(self.options.history_keep_days, self.recordings.keep)

    def _await_model(self, worker: EngineWorker) -> None:
        worker.ready.wait()
        if worker is not self.worker:
            return  # replaced by a newer load
        recognizer = worker.recognizer
        if recognizer is not None:
            self.device_note = "; ".join(recognizer.report.notes)
            self.notices.forget(["model-missing", "model-corrupt", "model-failed"])
            requested = self.options.settings.current().device if self.options.settings is not None else "auto"
            notice = notices.from_device_notes(requested, recognizer.device, list(recognizer.report.notes))
            if notice is not None:
                self._notice.emit(notice)
            self.post(co.ModelLoaded())

    def _open_microphone(self) -> None:
        try:
            self.dictation.open()
        except PerchError as exc:
            self.post(co.CaptureFailed(str(exc)))
        else:
            self.notices.forget(["microphone-lost", "no-microphone"])

    def doctor_context(self) -> DoctorContext:
        """What Check setup examines: the settings in effect, with the hotkeys held by this app."""
        from app.doctor import DoctorContext

        settings = self.options.settings
        if settings is None:
            return DoctorContext(app_running=True)
        return DoctorContext(
            settings=settings.current(),
            settings_path=settings.store.path,
            settings_problems=tuple(settings.store.problems),
            app_running=True,
        )

    def retranscribe(self, path: Path) -> str:
        """Transcribe a recording or a file again with the loaded model, after any dictation (blocks: call it
        off the GUI thread)."""
        done: Future[FileResult] = Future()
        self.worker.add_file(FileJob(path, on_done=done.set_result))
        result = done.result()
        if result.state != "done" or result.transcript is None:
            raise PerchError(result.error or "the transcription was cancelled")
        return result.transcript.text

    def type_again(self, text: str) -> None:
        """Type text from the history into whatever has the focus now."""

        def run() -> None:
            result = deliver(self.typist, text, None, True, strategy=self.options.typing_strategy)
            notice = notices.from_delivery(result)
            if notice is not None:
                self._notice.emit(notice)

        self._typing_thread.submit(run)

    # Actions.

    def _do(self, action: co.Action) -> None:
        if isinstance(action, co.StartCapture):
            self._started_in = self.typist.focused_window()
            self.sounds.play("start")
            self._audio_thread.submit(self._start_capture)
        elif isinstance(action, co.StopCapture):
            self.sounds.play("stop")
            self._audio_thread.submit(self.dictation.stop)
        elif isinstance(action, co.CancelCapture):
            self._audio_thread.submit(self.dictation.cancel)
        elif isinstance(action, co.TypeText):
            self._deliver_text(action)
        else:
            self.notify(notices.from_engine_error(action.kind, action.message, model=self._model_name))

    def notify(self, notice: notices.Notice) -> None:
        """Show a notification (once per minute for the same problem; the error sound every time)."""
        if notice.error:
            self.sounds.play("error")
        if self.notices.allow(notice):
            self.tray.notify(notice.title, notice.message, error=notice.error)

    def _start_capture(self) -> None:
        try:
            self.dictation.start()
        except PerchError as exc:
            self.post(co.CaptureFailed(str(exc)))

    def _deliver_text(self, action: co.TypeText) -> None:
        """Type (or paste) into the window that had focus when the utterance began, off the GUI thread."""
        target = self._targets.pop(action.utterance, self._started_in)
        self._typing_thread.submit(self._deliver_in_background, action, target)

    def _deliver_in_background(self, action: co.TypeText, target: WindowRef | None) -> None:
        result = deliver(
            self.typist,
            action.text,
            target,
            self.options.type_into_any_focus,
            strategy=self.options.typing_strategy,
            memory=self.memory if self.options.smart_spacing else None,
        )
        self._delivered.emit(action.utterance, result)

    def _on_delivered(self, utterance: int, result: DeliveryResult) -> None:
        notice = notices.from_delivery(result)
        if notice is not None:
            self.notify(notice)
        self.typed.append((utterance, result.text))
        line = StateLine(delivery_line(result, self._typed_now(utterance)), notice is not None and notice.error)
        self.feed(co.Typed(utterance), delivered=line)
        if self.probe is not None:
            self.probe.report(f"utterance {utterance} typed")

    def _typed_now(self, utterance: int) -> float | None:
        """Record when an utterance's text went in; its time from stop to typed, when known."""
        sample = self.latency.add_typed(utterance, time.monotonic())
        if sample is None or sample.stop_to_typed_ms is None:
            return None
        if self._caption_on:
            self.caption.set_latency(sample.stop_to_typed_ms)
        if self.options.history is not None:
            self._history_thread.submit(
                self._set_history_typed, self.options.history, utterance, sample.stop_to_typed_ms
            )
        return sample.stop_to_typed_ms

    # Presentation.

    def _tooltip(self) -> str:
        phase = self.state.phase.value
        lines = [f"Perch: {phase}", self.options.model_label]
        if self.load_note and not self.state.model_ready:
            lines.append(self.load_note)
        recognizer = self.worker.recognizer
        if recognizer is not None:
            device = "CUDA" if recognizer.device in ("cuda", "tensorrt") else "CPU"
            lines.append(f"on {device}" + (f" ({self.device_note})" if self.device_note else ""))
            lines.append(recognizer.report.summary())
        if self.state.model_error:
            lines.append(self.state.model_error)
        if self.service.url:
            lines.append(f"Serving other apps at {self.service.url}")
        return "\n".join(lines)

    def _refresh(self, ended: StateLine | None = None) -> None:
        """The tray and the caption's state line show the state; `ended` says how the last step ended an utterance."""
        self.tray.set_state(state_icon(self.state.phase), self._tooltip())
        self._show_state(ended)
        self.live.apply_pending()

    def _show_state(self, ended: StateLine | None) -> None:
        """The caption's state line follows the phase while dictation is busy, then says how the utterance ended."""
        if not self._caption_on:
            return
        busy = BUSY_LINES.get(self.state.phase)
        if busy is not None:
            self.caption.show_state(busy)
        elif ended is not None:
            self.caption.show_state(ended.text, error=ended.problem)
            self.caption.idle()

    def _build_menu(self, menu: QMenu) -> None:
        build_menu(menu, self)
