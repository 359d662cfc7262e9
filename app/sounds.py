"""Short sound cues (recording started, stopped, something failed) played on the default output.

`SoundCues.play` only hands the cue's name to a thread of its own and returns, so it is safe on the GUI thread.
That thread loads the WAV files once, opens a PortAudio output stream when a cue comes, and closes it again
`linger_s` after the last cue has been written, so that the sound device is not held between dictations. A cue
asked for while another is playing replaces it (the old one fades out over a few milliseconds, so no click).
Without an output device or PortAudio the cues are silent: the reason is logged once and kept in `problem`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

from stt.microphone import _PortAudio
from stt.nativelog import import_sounddevice, stderr_to_log
from stt.resources import resources_dir

log = logging.getLogger("perch.sounds")

Cue = Literal["start", "stop", "error"]
CUES: tuple[Cue, ...] = get_args(Cue)
LINGER_S = 1.0
"""How long the output stream stays open after a cue, so a quick next cue needs no new stream."""
RETRY_S = 30.0
"""After the output could not be opened, the next attempt waits at least this long."""
FADE_S = 0.005
"""A cut-off cue fades out over this long under the new one."""
_CLOSE_WAIT_S = 2.0

Samples = npt.NDArray[np.float32]


class OutputStream(Protocol):
    """What SoundCues needs of an output stream: sounddevice.OutputStream or a test double."""

    def start(self) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


StreamFactory = Callable[..., OutputStream]
"""Called like sounddevice.OutputStream(device=, samplerate=, channels=, dtype=, latency=, callback=)."""


def sounds_dir() -> Path:
    """The folder of the cue WAV files."""
    return resources_dir() / "sounds"


def load_cues(folder: Path) -> tuple[dict[Cue, Samples], int]:
    """The cues as float32 mono samples at one sample rate (the first file's); an unreadable file is left out."""
    cues: dict[Cue, Samples] = {}
    common = 0
    for name in CUES:
        path = folder / f"{name}.wav"
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            log.warning("the %s sound cannot be read (%s); it stays silent", name, exc)
            continue
        mono = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
        common = common or int(rate)
        if rate != common:
            mono = soxr.resample(mono, rate, common).astype(np.float32)
        cues[name] = mono
    return cues, common or 48000


@dataclass
class _Request:
    samples: Samples
    asked_at: float
    """time.perf_counter() at play()."""


class SoundCues:
    """Plays the start, stop and error cues without ever blocking or raising in the caller."""

    def __init__(
        self,
        enabled: bool = True,
        *,
        device: int | str | None = None,
        folder: Path | None = None,
        stream_factory: StreamFactory | None = None,
        linger_s: float = LINGER_S,
    ) -> None:
        self._enabled = enabled
        self._device = device
        self._folder = folder if folder is not None else sounds_dir()
        self._factory = stream_factory
        self._portaudio = stream_factory is None
        self._linger = linger_s
        self._cond = threading.Condition()
        self._pending: Cue | None = None
        self._handling = False  # the player has taken a cue and not yet handed it to the stream
        self._asked_at = 0.0
        self._closing = False
        self._problem: str | None = None
        self._retry_at = 0.0
        self._latency: float | None = None
        # Shared with the PortAudio callback, under _mix: what to start next, what is playing and where.
        self._mix = threading.Lock()
        self._incoming: _Request | None = None
        self._current: Samples | None = None
        self._position = 0
        self._fade: Samples = np.zeros(0, dtype=np.float32)
        # Only the player thread touches these.
        self._cues: dict[Cue, Samples] = {}
        self._rate = 48000
        self._resampled: dict[tuple[Cue, int], Samples] = {}
        self._stream: OutputStream | None = None
        self._stream_rate = 0
        self._counted = False
        self._close_at = 0.0
        self._thread = threading.Thread(target=self._run, name="perch-sounds", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        """Whether cues are played (the `sound_cues` setting)."""
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        with self._cond:
            if on and not self._enabled:
                self._retry_at = 0.0  # switching them on again tries the output at once
            self._enabled = on

    @property
    def problem(self) -> str | None:
        """Why the last cue could not be played (no output device, no PortAudio, …); None when all is well."""
        return self._problem

    @property
    def latency_s(self) -> float | None:
        """Seconds from the last `play` whose cue was heard to its first sample written to the output."""
        return self._latency

    def play(self, name: Cue) -> None:
        """Play a cue; returns at once, never raises. A cue still playing is cut off."""
        try:
            if not self._enabled or self._closing:
                return
            with self._cond:
                self._pending, self._asked_at = name, time.perf_counter()
                self._cond.notify()
        except Exception:  # a cue is never worth an exception in the caller
            log.exception("could not ask for the %s sound", name)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no cue is waiting or being written; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pending is None and not self._handling and not self._writing():
                return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        """Stop the thread and release the output device."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=_CLOSE_WAIT_S)

    def _writing(self) -> bool:
        with self._mix:
            return self._incoming is not None or self._current is not None

    # The player thread.

    def _run(self) -> None:
        try:
            self._cues, self._rate = load_cues(self._folder)
            if self._portaudio:
                self._factory = _portaudio_factory()  # PortAudio starts here, not on the first cue
        except _NoOutputError as exc:
            self._give_up(str(exc), permanent=True)
        except Exception as exc:
            log.exception("the sound cues could not be prepared")
            self._give_up(f"the sound cues could not be prepared: {exc}", permanent=True)
        try:
            self._serve()
        finally:
            self._close_stream()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    if self._stream is None:
                        self._cond.wait()
                        continue
                    left = self._close_at - time.monotonic()
                    if left <= 0 and self._writing() and left > -_CLOSE_WAIT_S:
                        left = 0.02  # the device is behind: let it finish the cue
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._closing:
                    return
                name, asked_at, self._pending = self._pending, self._asked_at, None
                self._handling = name is not None
            try:
                if name is None:
                    self._close_stream()
                else:
                    self._start(name, asked_at)
            finally:
                self._handling = False

    def _start(self, name: Cue, asked_at: float) -> None:
        samples = self._cues.get(name)
        if samples is None or not self._ensure_stream():
            return
        samples = self._at_stream_rate(name, samples)
        with self._mix:
            self._incoming = _Request(samples, asked_at)
        self._close_at = time.monotonic() + len(samples) / self._stream_rate + self._linger

    def _ensure_stream(self) -> bool:
        """Open the output stream unless it is open; False (logged once) when there is none to open."""
        if self._stream is not None:
            if getattr(self._stream, "active", True):
                return True
            self._close_stream()  # the device went away since the last cue
        if self._factory is None or time.monotonic() < self._retry_at:
            return False
        failures: dict[str, None] = {}  # the same complaint for each format is told once
        for rate, channels in self._formats():
            try:
                self._stream = self._open(rate, channels)
            except Exception as exc:
                failures[str(exc) or type(exc).__name__] = None
                continue
            self._stream_rate = rate
            if self._problem is not None:
                log.info("sound cues play again")
            self._problem = None
            return True
        where = "the default output" if self._device is None else f"output {self._device!r}"
        self._give_up(
            f"sound cues are off: {where} cannot be opened ({'; '.join(failures)}); check the sound settings",
            permanent=False,
        )
        return False

    def _formats(self) -> list[tuple[int, int]]:
        """(rate, channels) to try: the cues' own rate first, then the device's, mono then stereo."""
        rates = [self._rate]
        device_rate = _default_rate(self._device) if self._portaudio else None
        if device_rate and device_rate != self._rate:
            rates.append(device_rate)
        return [(rate, channels) for rate in rates for channels in (1, 2)]

    def _open(self, rate: int, channels: int) -> OutputStream:
        assert self._factory is not None
        # A microphone must not restart PortAudio under an open output stream; ALSA's probing goes to the log.
        with _PortAudio.lock, stderr_to_log("PortAudio"):
            stream = self._factory(
                device=self._device,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                latency="low",
                callback=self._callback,
            )
            try:
                stream.start()
            except Exception:
                _close_quietly(stream)
                raise
            _PortAudio.open_streams += 1
        self._counted = True
        return stream

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        _close_quietly(stream)
        if self._counted:
            with _PortAudio.lock:
                _PortAudio.open_streams -= 1
            self._counted = False
        with self._mix:
            self._incoming, self._current, self._position = None, None, 0

    def _give_up(self, reason: str, *, permanent: bool) -> None:
        if self._problem is None:
            log.warning("%s", reason)
        else:
            log.debug("%s", reason)
        self._problem = reason
        if permanent:
            self._factory = None
        self._retry_at = time.monotonic() + RETRY_S

    def _at_stream_rate(self, name: Cue, samples: Samples) -> Samples:
        if self._stream_rate == self._rate:
            return samples
        key = (name, self._stream_rate)
        if key not in self._resampled:
            self._resampled[key] = soxr.resample(samples, self._rate, self._stream_rate).astype(np.float32)
        return self._resampled[key]

    # PortAudio's thread: copy samples, nothing slow.

    def _callback(self, outdata: npt.NDArray[np.float32], frames: int, time_info: Any, status: Any) -> None:
        with self._mix:
            request, self._incoming = self._incoming, None
            if request is not None:
                self._switch_to(request)
            out = np.zeros(frames, dtype=np.float32)
            current = self._current
            if current is not None:
                chunk = current[self._position : self._position + frames]
                out[: len(chunk)] = chunk
                fade, self._fade = self._fade[:frames], self._fade[frames:]
                out[: len(fade)] += fade
                self._position += len(chunk)
                if self._position >= len(current) and not len(self._fade):
                    self._current, self._position = None, 0
        outdata[:] = out[:, None]

    def _switch_to(self, request: _Request) -> None:
        """Start a new cue, fading out what is left of the old one under it (caller holds _mix)."""
        old = self._current
        self._fade = np.zeros(0, dtype=np.float32)
        if old is not None and self._position < len(old):
            tail = old[self._position : self._position + max(1, round(FADE_S * self._stream_rate))]
            self._fade = tail * np.linspace(1, 0, len(tail) + 1, dtype=np.float32)[1:]
        self._current, self._position = request.samples, 0
        self._latency = time.perf_counter() - request.asked_at


class _NoOutputError(Exception):
    """PortAudio cannot be used at all."""


def _portaudio_factory() -> StreamFactory:
    """sounddevice.OutputStream; raises _NoOutputError when PortAudio or sounddevice is missing."""
    try:
        sounddevice = import_sounddevice()
    except OSError as exc:
        raise _NoOutputError(f"sound cues are off: PortAudio is not installed ({exc})") from exc
    except Exception as exc:
        raise _NoOutputError(f"sound cues are off: PortAudio cannot be used ({exc})") from exc
    factory: StreamFactory = sounddevice.OutputStream
    return factory


def _default_rate(device: int | str | None) -> int | None:
    """The output device's preferred sample rate, if PortAudio can tell."""
    try:
        sounddevice = import_sounddevice()
        with stderr_to_log("PortAudio"):
            return round(float(sounddevice.query_devices(device, kind="output")["default_samplerate"]))
    except Exception:
        return None


def _close_quietly(stream: OutputStream) -> None:
    for action in (stream.abort, stream.close):
        try:
            action()
        except Exception as exc:
            log.debug("closing the sound output: %s", exc)
