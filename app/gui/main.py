"""`perch` with no command: the tray app."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from app import ipc
from app.commands.common import model_files, runtime_options
from stt.dictation import DictationOptions
from stt.engine import Recognizer
from stt.worker import WorkerOptions

log = logging.getLogger("perch.app")


def run(args: argparse.Namespace) -> int:
    """Start the app, or bring the running one forward."""
    started = time.perf_counter()
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

    def load() -> Recognizer:
        return Recognizer(model_files(args), runtime_options(args))

    def source() -> object:
        from stt.microphone import Microphone

        return Microphone(args.mic)

    options = AppOptions(
        load=load,
        model_label=f"{args.model} ({args.quantization})",
        source=source,  # type: ignore[arg-type]
        dictation=DictationOptions(mode=args.mode),
        worker=WorkerOptions(partials="auto"),
    )
    controller = Controller(options)
    controller.start()
    log.info("tray up %.0f ms after start", (time.perf_counter() - started) * 1000)
    try:
        return int(app.exec())
    finally:
        controller.close()
