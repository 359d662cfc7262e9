"""`perch` with no command: the tray app."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from app import ipc
from app.commands.common import model_files, runtime_options
from app.history import History
from app.launch import LaunchSettings
from app.settings import SettingsStore, dictation_options, resolved_weights, worker_options
from stt.catalog import CATALOG
from stt.engine import Recognizer
from stt.errors import ModelNotFoundError
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
    from app.gui.download_dialog import needs_download
    from app.logs import setup_app_logging

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Perch")
    app.setDesktopFileName("io.github.perch.Perch")  # Wayland compositors and portals match the .desktop file
    app.setQuitOnLastWindowClosed(False)
    setup_app_logging(args.debug)
    if ipc.send("show") is not None:
        print("perch: Perch is already running; its settings were brought forward", file=sys.stderr)
        return 0

    store = SettingsStore()
    store.load()
    overrides = {
        "mode": args.mode,
        "microphone": None if args.mic is None else str(args.mic),
        "model": args.model,
        "quantization": args.quantization,
        "device": args.device,
    }
    launch = LaunchSettings(store, overrides)
    settings = launch.current()
    controllers: list[Controller] = []

    def load() -> Recognizer:
        # On the engine thread: finding out whether CUDA works takes a moment, and the tray is already up.
        current = launch.current()
        cuda = current.quantization == "auto" and _cuda_usable(current.device)
        chosen = resolved_weights(current, cuda_available=cuda)
        if needs_download(current.model, chosen.quantization):
            picked = controllers[0].live.await_download(current.model, current.quantization, cuda)
            if picked is None:
                raise ModelNotFoundError(
                    f"no speech model is downloaded yet: choose one in Settings ▸ Model, or run "
                    f"`perch models download {current.model} --quantization {chosen.quantization}`"
                )
            current = launch.current()
            chosen = resolved_weights(current, cuda_available=cuda)
        log.info("model %s: %s weights", current.model, chosen.describe())
        name = current.model if current.model in CATALOG else Path(current.model).name or current.model
        options.model_label = f"{name} ({chosen.quantization})"
        options.weights = chosen
        chosen_args = argparse.Namespace(
            model=current.model,
            quantization=chosen.quantization,
            device=current.device,
            threads=args.threads,
            weights=chosen,
        )
        return Recognizer(model_files(chosen_args), runtime_options(chosen_args))

    def source() -> AudioSource:
        from stt.microphone import Microphone

        mic: str | int | None = launch.current().microphone
        if isinstance(mic, str) and mic.isdigit():
            mic = int(mic)
        return Microphone(mic)

    options = AppOptions(
        load=load,
        model_label=str(settings.model),
        source=source,
        dictation=dictation_options(settings),
        worker=worker_options(settings),
        keep_recordings=settings.keep_recordings,
        history=History() if settings.history_enabled else None,
        history_keep_days=settings.history_keep_days,
        caption=settings.caption,
        typing_strategy=settings.typing_strategy,
        type_into_any_focus=settings.type_into_any_focus,
        smart_spacing=settings.smart_spacing,
        ptt_hotkey=settings.ptt_hotkey,
        toggle_hotkey=settings.toggle_hotkey,
        sound_cues=settings.sound_cues,
        replacements=settings.vocabulary.replacement_rules(),
        save_caption_geometry=lambda geometry: _save_geometry(store, geometry),
        problems=[*store.problems],
        settings=launch,
    )
    controller = Controller(options)
    controllers.append(controller)
    controller.start()
    log.info("tray up %.0f ms after start", (time.perf_counter() - started) * 1000)
    try:
        return int(app.exec())
    finally:
        controller.close()


def _cuda_usable(device: str) -> bool:
    """Whether sessions for `device` would run on a CUDA GPU."""
    if device == "cpu":
        return False
    from stt.runtime import cuda_problem

    return cuda_problem() is None


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
