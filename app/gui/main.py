"""`perch` with no command: the tray app."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import replace

from app import ipc
from app.commands.common import model_files, runtime_options
from app.history import History
from app.settings import SettingsStore, dictation_options, resolved_quantization, worker_options
from stt.engine import Recognizer
from stt.sources import AudioSource

log = logging.getLogger("perch.app")


def run(args: argparse.Namespace) -> int:
    """Start the app, or bring the running one forward."""
    started = time.perf_counter()
    problem = _no_display()
    if problem is not None:
        print(f"perch: error: {problem}", file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from app.gui.controller import AppOptions, Controller
    from app.logs import setup_app_logging

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Perch")
    app.setQuitOnLastWindowClosed(False)
    setup_app_logging(args.debug)
    if ipc.send("show") is not None:
        print("perch: Perch is already running; its settings were brought forward", file=sys.stderr)
        return 0

    store = SettingsStore()
    settings = store.load()
    if args.mode is not None:
        settings = replace(settings, mode=args.mode)
    if args.mic is not None:
        settings = replace(settings, microphone=str(args.mic))
    args.model = args.model or settings.model
    args.device = args.device or settings.device
    chosen_quantization = args.quantization

    def load() -> Recognizer:
        # On the engine thread: finding out whether CUDA works takes a moment, and the tray is already up.
        if chosen_quantization is None:
            from stt.runtime import cuda_unavailable_reason

            cuda = args.device in ("auto", "cuda", "tensorrt") and not cuda_unavailable_reason()
            args.quantization = resolved_quantization(settings, cuda_available=cuda)
        options.model_label = f"{args.model} ({args.quantization})"
        return Recognizer(model_files(args), runtime_options(args))

    def source() -> AudioSource:
        from stt.microphone import Microphone

        mic: str | int | None = settings.microphone
        if isinstance(mic, str) and mic.isdigit():
            mic = int(mic)
        return Microphone(mic)

    options = AppOptions(
        load=load,
        model_label=str(args.model),
        source=source,
        dictation=dictation_options(settings),
        worker=worker_options(settings),
        keep_recordings=settings.keep_recordings,
        history=History() if settings.history_enabled else None,
        caption=settings.caption,
        typing_strategy=settings.typing_strategy,
        type_into_any_focus=settings.type_into_any_focus,
        smart_spacing=settings.smart_spacing,
        ptt_hotkey=settings.ptt_hotkey,
        toggle_hotkey=settings.toggle_hotkey,
        save_caption_geometry=lambda geometry: _save_geometry(store, geometry),
        problems=[*store.problems],
    )
    controller = Controller(options)
    controller.start()
    log.info("tray up %.0f ms after start", (time.perf_counter() - started) * 1000)
    try:
        return int(app.exec())
    finally:
        controller.close()


def _save_geometry(store: SettingsStore, geometry: tuple[int, int, int, int]) -> None:
    """The caption window was moved or resized: remember where."""
    current = store.current
    store.save(replace(current, caption=replace(current.caption, geometry=geometry)))


def _no_display() -> str | None:
    """Why no window can open here (Linux without X11 or Wayland), or None."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display: the tray app needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not set); "
        "to dictate in this terminal run `perch listen`"
    )
