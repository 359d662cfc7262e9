"""What native libraries print (ALSA, JACK, PortAudio, codecs, ONNX Runtime's provider loading) goes to the debug
log, never to the terminal, where only Perch's own one-line messages belong."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("perch.native")

_STDERR = 2
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_lock = threading.Lock()
_depth = 0
_saved_fd = -1
_capture: Any = None
_handlers: list[Any] = []  # the C callbacks must outlive every call into the libraries


@contextlib.contextmanager
def stderr_to_log(what: str) -> Iterator[None]:
    """While native code runs, send the process's stderr (file descriptor 2) to a file, then log each line it
    wrote at debug level under `what`. Nested and concurrent uses share one redirection."""
    global _depth, _saved_fd, _capture  # noqa: PLW0603
    with _lock:
        if _depth == 0:
            try:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                _capture = tempfile.TemporaryFile()  # noqa: SIM115  (closed when the last user leaves)
                _saved_fd = os.dup(_STDERR)
                os.dup2(_capture.fileno(), _STDERR)
            except OSError as exc:  # no stderr at all (a windowed executable): nothing can reach a terminal
                log.debug("cannot redirect stderr: %s", exc)
                _capture = None
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _capture is not None:
                os.dup2(_saved_fd, _STDERR)
                os.close(_saved_fd)
                _capture.seek(0)
                said = _capture.read().decode("utf-8", errors="replace")
                _capture.close()
                _capture = None
                for line in _COLOUR.sub("", said).splitlines():
                    if line.strip():
                        log.debug("%s: %s", what, line.rstrip())


def route_audio_library_messages() -> None:
    """ALSA's and JACK's error and info messages go to the debug log instead of stderr, for the life of the
    process (underruns during a recording included). Call before PortAudio starts; later calls do nothing."""
    with _lock:
        if _handlers:
            return
        _handlers.append(None)
    if sys.platform.startswith("linux"):
        _route_alsa()
    _route_jack()


def import_sounddevice() -> Any:
    """The sounddevice module, imported (PortAudio starts and probes every device then) with the audio
    libraries' messages sent to the debug log; import errors propagate unchanged."""
    route_audio_library_messages()
    with stderr_to_log("PortAudio"):
        import sounddevice
    return sounddevice


def _load(name: str) -> ctypes.CDLL | None:
    found = ctypes.util.find_library(name)
    if found is None:
        return None
    try:
        return ctypes.CDLL(found)
    except OSError:
        return None


def _route_alsa() -> None:
    library = _load("asound")
    if library is None:
        return
    # void handler(const char *file, int line, const char *function, int err, const char *fmt, ...): the
    # arguments of the format cannot be read from Python, so the format itself is logged.
    handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)

    def alsa(file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
        log.debug("ALSA %s:%d (%s) %s", _text(file), line, _text(function), _text(fmt))

    callback = handler_type(alsa)
    try:
        library.snd_lib_error_set_handler(callback)
    except AttributeError:
        return
    _handlers.append(callback)


def _route_jack() -> None:
    library = _load("jack")
    if library is None:
        return
    message_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p)

    def jack(message: bytes | None) -> None:
        log.debug("JACK: %s", _text(message))

    callback = message_type(jack)
    for setter in ("jack_set_error_function", "jack_set_info_function"):
        with contextlib.suppress(AttributeError):
            getattr(library, setter)(callback)
    _handlers.append(callback)


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", errors="replace").strip() if value else ""
