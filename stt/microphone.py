"""Live microphone capture through PortAudio, delivered as 16 kHz mono blocks from a worker thread."""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from stt.errors import MicrophoneError
from stt.nativelog import import_sounddevice, stderr_to_log
from stt.sources import SAMPLE_RATE, AudioBlock, AudioSink, CaptureStats, ErrorSink, level_dbfs

logger = logging.getLogger("perch.audio")

NO_MICROPHONE = (
    "No microphone found: connect one or check that PipeWire/PulseAudio is running; `perch devices` lists the inputs."
)
MAX_CHANNELS = 2
_POLL_S = 0.1  # how often an idle consumer checks that the stream is still alive
_STALL_S = 0.5  # no block for this long while running means the device is gone
_HEALTHY_S = 0.1  # a block this recent means the stream is flowing and may stop gracefully
_FIRST_BLOCK_S = 3.0  # a device may take this long after opening to deliver its first block
_REPORT_INTERVAL_S = 5.0  # at most one overflow/drop warning per interval


class _PortAudio:
    """Process-wide PortAudio bookkeeping."""

    # PortAudio's device list is fixed when it initialises; refreshing it (terminate + initialise) closes
    # every stream, so it is done only while no Microphone of this process has one open.

    lock = threading.RLock()
    open_streams = 0


@dataclass(frozen=True)
class InputDevice:
    """An input device as PortAudio reports it."""

    index: int
    name: str
    host_api: str
    channels: int
    default_rate: int
    is_default: bool


class InputStream(Protocol):
    """What Microphone needs from a stream: sounddevice.InputStream or a test double."""

    @property
    def active(self) -> bool: ...

    @property
    def samplerate(self) -> float: ...

    @property
    def channels(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


StreamFactory = Callable[..., InputStream]
_Item = tuple[npt.NDArray[np.float32], float]


def _sounddevice() -> Any:
    """Import sounddevice, turning a missing or broken PortAudio into MicrophoneError."""
    try:
        sounddevice = import_sounddevice()
    except OSError as exc:
        raise MicrophoneError(
            f"PortAudio is not installed ({exc}), so no microphone can be used: install it "
            "(Debian/Ubuntu: `sudo apt-get install libportaudio2`, Fedora: `sudo dnf install portaudio`) and try again."
        ) from exc
    except ImportError as exc:
        raise MicrophoneError(
            f"The sounddevice package is missing ({exc}): run `pip install sounddevice` in Perch's environment."
        ) from exc
    except Exception as exc:  # PortAudioError from Pa_Initialize while importing
        raise MicrophoneError(
            f"PortAudio could not start ({exc}); check that PipeWire/PulseAudio or ALSA is working."
        ) from exc
    return sounddevice


def _refresh(sd: Any) -> bool:
    """Re-initialise PortAudio so that its device list is current; False when a stream is open."""
    with _PortAudio.lock:
        if _PortAudio.open_streams > 0 or not hasattr(sd, "_terminate") or not hasattr(sd, "_initialize"):
            return False
        try:
            with stderr_to_log("PortAudio"):
                if getattr(sd, "_initialized", 1) > 0:
                    sd._terminate()
                sd._initialize()
        except Exception as exc:
            raise MicrophoneError(
                f"PortAudio could not start ({exc}); check that PipeWire/PulseAudio or ALSA is working."
            ) from exc
        return True


def _query_inputs(sd: Any) -> list[InputDevice]:
    """Every device with at least one input channel, in PortAudio's order."""
    try:
        with stderr_to_log("PortAudio"):
            devices = sd.query_devices()
            apis = sd.query_hostapis()
            try:
                default = int(sd.query_devices(kind="input")["index"])
            except Exception:
                default = -1
    except Exception as exc:
        raise MicrophoneError(
            f"Cannot list the audio devices: {exc}. Check that PipeWire/PulseAudio is running."
        ) from exc
    return [
        InputDevice(
            index=int(info["index"]),
            name=str(info["name"]),
            host_api=str(apis[info["hostapi"]]["name"]),
            channels=int(info["max_input_channels"]),
            default_rate=round(float(info["default_samplerate"])),
            is_default=int(info["index"]) == default,
        )
        for info in devices
        if int(info["max_input_channels"]) > 0
    ]


def list_input_devices() -> list[InputDevice]:
    """The input devices PortAudio sees now; raises MicrophoneError when PortAudio is unusable."""
    sd = _sounddevice()
    with _PortAudio.lock:
        _refresh(sd)
        return _query_inputs(sd)


def _names(devices: Sequence[InputDevice]) -> str:
    return ", ".join(f"{d.name!r} ({d.index})" for d in devices)


def choose_input(devices: Sequence[InputDevice], spec: str | int | None) -> InputDevice:
    """The device `spec` names: None for the default, an index, or a case-insensitive (part of a) name."""
    if not devices:
        raise MicrophoneError(NO_MICROPHONE)
    if spec is None:
        return next((d for d in devices if d.is_default), devices[0])
    if isinstance(spec, int):
        for device in devices:
            if device.index == spec:
                return device
        raise MicrophoneError(f"There is no input device number {spec}. Available inputs: {_names(devices)}.")
    wanted = spec.strip().lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    partial = [d for d in devices if wanted in d.name.lower()]
    if exact or partial:
        return (exact or partial)[0]
    raise MicrophoneError(
        f"No input device matches {spec!r}. Available inputs: {_names(devices)}. `perch devices` lists them."
    )


class Microphone:
    """Capture from an input device at its own rate and channel count, delivered as 16 kHz mono blocks.

    The PortAudio callback only queues a copy of each block; a worker thread downmixes, resamples and
    calls the sink. A lost device is reported once through `on_error` and reopened every
    `reopen_interval_s` (the same device, else the default) until it works again or `stop` is called.
    `sample_rate` overrides the device's default rate. With a custom `stream_factory` the device spec is
    passed through unresolved and the stream's own `samplerate` and `channels` are used.
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        block_ms: int = 40,
        queue_blocks: int = 200,
        stream_factory: StreamFactory | None = None,
        reopen_interval_s: float = 1.0,
        sample_rate: int | None = None,
    ) -> None:
        if block_ms <= 0 or queue_blocks <= 0 or reopen_interval_s <= 0:
            raise ValueError("block_ms, queue_blocks and reopen_interval_s must be positive")
        if sample_rate is not None and sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self._spec = device
        self._block_ms = block_ms
        self._queue_blocks = queue_blocks
        self._factory = stream_factory
        self._reopen_interval = reopen_interval_s
        self._sample_rate = sample_rate
        self.last_open_seconds = 0.0
        self._device: InputDevice | None = None
        self._stats = CaptureStats()
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_blocks)
        self._lock = threading.Lock()  # guards _stream against stop() racing a reopen
        self._stream: InputStream | None = None
        self._counted = False  # whether _stream counts in _PortAudio.open_streams
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # no reopening from now on
        self._done = threading.Event()  # the stream is closed: drain the queue and finish
        self._sink: AudioSink = _ignore
        self._on_error: ErrorSink = _ignore
        self._resampler: soxr.ResampleStream | None = None
        self._last_block = 0.0
        self._got_block = False
        self._recovering = False  # lost and reported; the next block from a reopened stream ends it
        self._reopen_at = 0.0
        self._reported = (0, 0)
        self._last_report = -math.inf
        self._last_sink_failure = -math.inf

    @property
    def stats(self) -> CaptureStats:
        """Counts for the current (or last) run; reset by `start`."""
        return self._stats

    @property
    def running(self) -> bool:
        """True from `start` until `stop`, also while a lost device is being reopened."""
        return self._thread is not None

    @property
    def device(self) -> InputDevice | None:
        """The device the stream was last opened on."""
        return self._device

    def start(self, sink: AudioSink, on_error: ErrorSink) -> None:
        """Open the device and begin delivery; raises MicrophoneError naming the problem and the fix."""
        if self._thread is not None:
            raise RuntimeError("The microphone is already running; call stop() first.")
        self._stats = CaptureStats()
        self._queue = queue.Queue(maxsize=self._queue_blocks)
        self._stopping.clear()
        self._done.clear()
        self._sink, self._on_error = sink, on_error
        self._reported, self._last_report = (0, 0), -math.inf
        self._recovering = False
        began = time.monotonic()
        try:
            self._stream = self._open(self._spec, refresh=False)
        except MicrophoneError:
            # A device plugged in (or a sound server started) after PortAudio initialised needs a fresh list.
            if self._factory is not None or not _refresh(_sounddevice()):
                raise
            self._stream = self._open(self._spec, refresh=False)
        self.last_open_seconds = time.monotonic() - began
        self._thread = threading.Thread(target=self._consume, name="perch-microphone", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the stream, deliver what is still queued and wait for the worker thread."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        with self._lock:
            # A graceful stop waits for the next buffer, which a stalled device never delivers: abort unless
            # blocks are flowing (aborting loses at most the buffer in progress).
            self._close_stream(abort=time.monotonic() - self._last_block > _HEALTHY_S)
        self._done.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wake the worker if it waits for a block
        if thread is not threading.current_thread():
            thread.join()
        self._thread = None

    # PortAudio's thread: copy and queue, nothing else.
    def _callback(self, indata: npt.NDArray[np.float32], frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self._stats.overflows += 1
        try:
            self._queue.put_nowait((indata.copy(), time.monotonic()))
        except queue.Full:
            self._stats.dropped_blocks += 1

    def _open(self, spec: str | int | None, *, refresh: bool) -> InputStream:
        """Open and start a stream on `spec` and set up resampling for its rate."""
        custom = self._factory is not None
        stream = self._open_custom(spec) if custom else self._open_portaudio(spec, refresh=refresh)
        rate, channels = float(stream.samplerate), int(stream.channels)
        if custom:
            name = "default" if spec is None else str(spec)
            self._device = InputDevice(-1, name, "", channels, round(rate), spec is None)
        self._resampler = (
            soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") if rate != SAMPLE_RATE else None
        )
        self._last_block, self._got_block = time.monotonic(), False
        logger.info("Microphone %s: %g Hz, %d channel(s)", self._describe(), rate, channels)
        return stream

    def _open_custom(self, spec: str | int | None) -> InputStream:
        assert self._factory is not None
        rate = self._sample_rate
        blocksize = round(rate * self._block_ms / 1000) if rate else 0
        try:
            stream = self._factory(
                device=spec,
                samplerate=rate,
                channels=None,
                blocksize=blocksize,
                dtype="float32",
                callback=self._callback,
            )
        except MicrophoneError:
            raise
        except Exception as exc:
            raise MicrophoneError(f"Cannot open the microphone {spec!r}: {exc}") from exc
        try:
            stream.start()
        except Exception as exc:
            _close_quietly(stream)
            raise MicrophoneError(f"Cannot start the microphone {spec!r}: {exc}") from exc
        return stream

    def _open_portaudio(self, spec: str | int | None, *, refresh: bool) -> InputStream:
        sd = _sounddevice()
        with _PortAudio.lock:
            if refresh:
                _refresh(sd)
            device = choose_input(_query_inputs(sd), spec)
            rate = self._sample_rate or device.default_rate
            channels = min(MAX_CHANNELS, device.channels)
            try:
                with stderr_to_log("PortAudio"):
                    stream = sd.InputStream(
                        device=device.index,
                        samplerate=rate,
                        channels=channels,
                        blocksize=max(1, round(rate * self._block_ms / 1000)),
                        dtype="float32",
                        callback=self._callback,
                    )
            except Exception as exc:
                raise MicrophoneError(
                    f"Cannot open the microphone {device.name!r} ({device.host_api}, {rate} Hz): {exc}. Check that it "
                    "is connected and not held by another program; `perch devices` lists the inputs."
                ) from exc
            try:
                with stderr_to_log("PortAudio"):
                    stream.start()
            except Exception as exc:
                _close_quietly(stream)
                raise MicrophoneError(f"Cannot start the microphone {device.name!r}: {exc}.") from exc
            _PortAudio.open_streams += 1
        self._device = device
        self._counted = True
        result: InputStream = stream
        return result

    def _close_stream(self, *, abort: bool) -> None:
        """Stop (or abort) and close the current stream, if any (caller holds _lock)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        _close_quietly(stream, abort=abort)
        if self._counted:
            with _PortAudio.lock:
                _PortAudio.open_streams -= 1
            self._counted = False

    def _consume(self) -> None:
        """The worker thread: deliver blocks, watch the stream, reopen a lost device."""
        while not self._done.is_set():
            if self._stream is None:
                self._reopen_when_due()
                continue
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                self._check_stream()
            else:
                if item is not None:
                    self._deliver(*item)
            self._report_problems(final=False)
        self._drain()
        self._flush()
        self._report_problems(final=True)

    def _deliver(self, block: npt.NDArray[np.float32], captured: float) -> None:
        self._last_block, self._got_block = captured, True
        if self._recovering:
            self._recovering = False
            self._stats.reopened += 1
            logger.warning("Microphone %s reopened; capture resumes", self._describe())
        if block.ndim == 1 or block.shape[1] == 1:
            mono = np.ascontiguousarray(block.reshape(-1), dtype=np.float32)
        else:  # the mean of the channels; a product with equal weights is ten times faster than mean(axis=1)
            channels = block.shape[1]
            mono = np.ascontiguousarray(block @ np.full(channels, 1 / channels, dtype=np.float32), dtype=np.float32)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono)
        self._emit(mono, captured)

    def _emit(self, samples: npt.NDArray[np.float32], captured: float) -> None:
        if not len(samples):
            return
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        self._stats.blocks += 1
        try:
            self._sink(AudioBlock(samples=samples, captured=captured, level_db=level_dbfs(samples)))
        except Exception:
            now = time.monotonic()
            if now - self._last_sink_failure >= _REPORT_INTERVAL_S:
                self._last_sink_failure = now
                logger.exception("The audio sink failed on a block; capture goes on")

    def _drain(self) -> None:
        """Deliver every block still queued."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._deliver(*item)

    def _flush(self) -> None:
        """Deliver what the resampler still holds; a new stream gets a new resampler."""
        if self._resampler is not None:
            self._emit(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True), self._last_block)
            self._resampler = None

    def _check_stream(self) -> None:
        """Called when no block came for a while: decide whether the device is gone."""
        stream = self._stream
        if stream is None or self._stopping.is_set():
            return
        try:
            active = bool(stream.active)
        except Exception as exc:
            self._lost(f"PortAudio reported an error: {exc}")
            return
        if not active:
            self._lost("the audio stream stopped")
            return
        silent = time.monotonic() - self._last_block
        limit = _STALL_S if self._got_block else _FIRST_BLOCK_S
        if silent > limit:
            self._lost(f"no audio arrived for {silent:.1f} s")

    def _lost(self, reason: str) -> None:
        """Close the dead stream, deliver what it had captured, report once, and schedule reopening."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._close_stream(abort=True)
        self._drain()
        self._flush()
        self._reopen_at = time.monotonic() + self._reopen_interval
        name = self._describe()
        if self._recovering:  # a reopened stream that never delivered: already reported
            logger.debug("Microphone %s still unusable (%s)", name, reason)
            return
        self._recovering = True
        logger.warning("Microphone %s lost (%s); reopening every %g s", name, reason, self._reopen_interval)
        error = MicrophoneError(
            f"The microphone {name} stopped delivering audio ({reason}). Check that it is still connected; "
            f"Perch tries to reopen it every {self._reopen_interval:g} s."
        )
        try:
            self._on_error(error)
        except Exception:
            logger.exception("The microphone error handler failed")

    def _reopen_when_due(self) -> None:
        if self._stopping.is_set():
            self._done.wait()
            return
        delay = self._reopen_at - time.monotonic()
        if delay > 0 and self._stopping.wait(delay):
            return
        with self._lock:
            if self._stopping.is_set():
                return
            specs: list[str | int | None] = [self._spec] if self._spec is None else [self._spec, None]
            failures = []
            for spec in specs:
                try:
                    self._stream = self._open(spec, refresh=True)
                    break
                except MicrophoneError as exc:
                    failures.append(str(exc))
            if self._stream is None:
                logger.debug("Reopening the microphone failed: %s", " / ".join(failures))
                self._reopen_at = time.monotonic() + self._reopen_interval

    def _report_problems(self, *, final: bool) -> None:
        """Warn about overflows and dropped blocks: at once, then at most every few seconds, and at the end."""
        now = time.monotonic()
        if not final and now - self._last_report < _REPORT_INTERVAL_S:
            return
        overflows, dropped = self._stats.overflows, self._stats.dropped_blocks
        new_overflows, new_dropped = overflows - self._reported[0], dropped - self._reported[1]
        if new_overflows or new_dropped:
            logger.warning(
                "Audio input could not keep up: %d overflow(s) and %d dropped block(s) of %d ms (%d and %d in all); "
                "words may be missing from the transcript",
                new_overflows,
                new_dropped,
                self._block_ms,
                overflows,
                dropped,
            )
            self._reported, self._last_report = (overflows, dropped), now

    def _describe(self) -> str:
        if self._device is not None:
            return repr(self._device.name)
        return "(default)" if self._spec is None else repr(self._spec)


def _close_quietly(stream: InputStream, *, abort: bool = True) -> None:
    """Stop and close a stream that may already be dead; `abort` drops pending buffers instead of waiting."""
    halt = getattr(stream, "abort", stream.stop) if abort else stream.stop
    for action in (halt, stream.close):
        try:
            with stderr_to_log("PortAudio"):
                action()
        except Exception as exc:
            logger.debug("Closing the audio stream: %s", exc)


def _ignore(_: object) -> None:
    return None
