"""Problems become notices of the right kind, with advice, from the messages the code really produces."""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import coordinator as co
from app.commands.common import model_files
from app.hotkeys import choose_backend, parse_hotkey
from app.hotkeys.wayland import PortalBackend
from app.injection import ClipboardOnlyTypist, DeliveryResult, InjectionError, WindowRef, deliver
from app.notices import (
    TITLES,
    Notice,
    NoticeGate,
    from_delivery,
    from_device_notes,
    from_engine_error,
    from_exception,
    from_hotkey_problem,
    from_settings_problem,
)
from app.settings import SettingsStore
from stt.engine import Recognizer
from stt.errors import ContractError, MicrophoneError, ModelFileError, ModelNotFoundError, TranscriptionError
from stt.microphone import NO_MICROPHONE, InputDevice, Microphone, choose_input
from stt.modelfiles import ModelFiles
from stt.modelstore import marker_path, resolve_model_dir
from stt.runtime import RuntimeOptions
from tests.modelgen import build_model

V3 = "parakeet-tdt-0.6b-v3"
CPU = RuntimeOptions(device="cpu", cache_optimized=False)
PULSE = InputDevice(3, "pulse", "ALSA", 32, 44100, is_default=True)


def raised(action: Callable[[], Any]) -> BaseException:
    """The exception `action` raises."""
    try:
        action()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing was raised")


def check(notice: Notice, kind: str, *parts: str, error: bool = True) -> None:
    assert notice.kind == kind, notice
    assert notice.title == TITLES[notice.kind]
    assert notice.error is error
    first = notice.message.split()[0]
    assert not (first.isalpha() and first.islower()), notice.message  # a sentence, unless it starts with a file
    assert notice.message.endswith((".", "`")), notice.message
    for part in parts:
        assert part in notice.message, (part, notice.message)


# The microphone.


def test_no_microphone_at_all() -> None:
    exc = raised(lambda: choose_input([], None))
    notice = from_exception(exc)
    check(notice, "no-microphone", "connect one", "`perch devices`")
    assert notice.message == NO_MICROPHONE  # it already says what to do: nothing added
    assert from_engine_error("microphone", str(exc)) == notice


@pytest.mark.parametrize("spec", ["Blue Yeti", 7])
def test_the_chosen_microphone_is_not_there(spec: str | int) -> None:
    exc = raised(lambda: choose_input([PULSE], spec))
    check(from_exception(exc), "no-microphone", "'pulse' (3)")


class FailingStream:
    """A stream factory whose device refuses to open with PortAudio's own error."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __call__(self, **_: Any) -> Any:
        try:
            import sounddevice
        except OSError as exc:
            pytest.skip(f"PortAudio is not installed (apt-get install libportaudio2): {exc}")
        raise sounddevice.PortAudioError(*self.args)


def test_alsa_refuses_access_to_the_microphone() -> None:
    denied = FailingStream("Error opening InputStream: Unanticipated host error", -9999, (0, -13, "Permission denied"))
    exc = raised(lambda: Microphone("hw:1", stream_factory=denied).start(lambda _b: None, lambda _e: None))
    assert isinstance(exc, MicrophoneError) and "Permission denied" in str(exc)
    linux = from_exception(exc, platform="linux")
    check(linux, "microphone-permission", "audio group", "Permission denied")
    mac = from_engine_error("microphone", str(exc), platform="darwin")
    check(
        mac, "microphone-permission", "Perch needs microphone access: System Settings ▸ Privacy & Security ▸ Microphone"
    )
    windows = from_exception(exc, platform="win32")
    check(windows, "microphone-permission", "Settings ▸ Privacy & security ▸ Microphone")


def test_portaudio_reports_an_invalid_device() -> None:
    invalid = FailingStream("Error opening InputStream: Invalid device", -9996)
    exc = raised(lambda: Microphone(9, stream_factory=invalid).start(lambda _b: None, lambda _e: None))
    notice = from_exception(exc)
    check(notice, "no-microphone", "Invalid device", "Check that a microphone is connected")
    assert from_exception(exc.__cause__ or exc).kind == "no-microphone"  # PortAudioError itself


class DeadStream:
    """Opens, then is found inactive at the first check: the device went away."""

    samplerate = 16000.0
    channels = 1
    active = False

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def test_a_microphone_that_stops_delivering_is_lost() -> None:
    errors: list[BaseException] = []
    reported = threading.Event()
    mic = Microphone("USB mic", stream_factory=lambda **_: DeadStream(), reopen_interval_s=60)

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        reported.set()

    mic.start(lambda _b: None, on_error)
    try:
        assert reported.wait(5)
    finally:
        mic.stop()
    message = str(errors[0])
    lost = from_engine_error("device-lost", message)
    check(lost, "microphone-lost", "'USB mic'", "still connected")
    # The coordinator passes it on as a plain microphone notice; the wording still says lost.
    (notify,) = co.step(co.State(capturing=True), co.CaptureFailed(message))[1]
    assert isinstance(notify, co.Notify)
    assert from_engine_error(notify.kind, notify.message) == lost
    assert lost.key == from_engine_error("device-lost", message.replace("stream stopped", "x")).key


# The model.


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("notice-model"), int8=False)


@pytest.fixture
def models_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERCH_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_a_catalog_model_that_is_not_downloaded(models_home: Path) -> None:
    exc = raised(lambda: resolve_model_dir(V3, "fp32"))
    assert isinstance(exc, ModelNotFoundError)
    notice = from_exception(exc)
    check(notice, "model-missing", f"`perch models download {V3} --quantization fp32`", "open Settings ▸ Model")
    assert from_engine_error("model", str(exc)) == notice


@pytest.mark.parametrize("where", ["/no/such/model/folder", "nonsense-model"])
def test_an_unknown_model(models_home: Path, where: str) -> None:
    exc = raised(lambda: resolve_model_dir(where))
    check(from_exception(exc), "model-missing", where, "Open Settings ▸ Model")


def test_a_folder_without_the_model_files(tmp_path: Path) -> None:
    exc = raised(lambda: ModelFiles.locate(tmp_path, "fp32"))
    assert isinstance(exc, ModelNotFoundError)
    check(from_engine_error("model", str(exc)), "model-missing", "encoder-model.onnx", "Settings ▸ Model")


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_a_damaged_download(models_home: Path, quantization: str) -> None:
    marker = marker_path(V3, quantization)  # type: ignore[arg-type]
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"files": {}}))
    exc = raised(lambda: resolve_model_dir(V3, quantization))  # type: ignore[arg-type]
    assert isinstance(exc, ModelFileError)
    extra = " --quantization int8" if quantization == "int8" else ""
    notice = from_exception(exc)
    check(notice, "model-corrupt", "is damaged", f"Download it again: `perch models download {V3}{extra} --force`")
    assert notice.message.count("perch models download") == 1
    assert from_engine_error("model", str(exc)) == notice


def test_a_truncated_onnx_file(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    copy.mkdir()
    for path in model_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    encoder = copy / "encoder-model.onnx"
    encoder.write_bytes(encoder.read_bytes()[:1000])
    args = argparse.Namespace(model=str(copy), quantization="fp32")
    exc = raised(lambda: Recognizer(model_files(args), CPU, warm_up=False))
    assert isinstance(exc, ModelFileError) and "not a loadable ONNX model" in str(exc)
    # A folder of one's own: the message already says to replace the file.
    check(from_exception(exc), "model-corrupt", "encoder-model.onnx", f"replace it with a good copy in {copy}")
    # The catalog model set in the settings: download it again.
    check(from_engine_error("model", str(exc), model=V3), "model-corrupt", f"`perch models download {V3} --force`")


def test_a_vocabulary_that_does_not_fit_the_model(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    copy.mkdir()
    for path in model_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    *tokens, blank = (copy / "vocab.txt").read_text().splitlines()
    tokens.append(f"extra {len(tokens)}")  # one token more than the joint has logits for
    (copy / "vocab.txt").write_text("\n".join([*tokens, f"{blank.split()[0]} {len(tokens)}"]) + "\n")
    exc = raised(lambda: Recognizer(ModelFiles.locate(copy, "fp32"), CPU, warm_up=False))
    assert isinstance(exc, ContractError), exc
    check(from_exception(exc), "model-corrupt", "vocab", "Replace the file with a good copy")
    check(from_exception(exc, model=V3), "model-corrupt", f"`perch models download {V3} --force`")


def test_a_model_that_fails_for_another_reason() -> None:
    check(
        from_engine_error("model", "MemoryError"),
        "model-failed",
        "could not be loaded: MemoryError",
        "Settings ▸ Model",
    )


# The device the model runs on.


def test_cuda_asked_for_but_running_on_the_cpu(model_dir: Path) -> None:
    files = ModelFiles.locate(model_dir, "fp32")
    cuda = Recognizer(files, RuntimeOptions(device="cuda", cache_optimized=False), warm_up=False)
    notes = list(cuda.report.notes)
    notice = from_device_notes("cuda", notes)
    if cuda.device != "cpu":  # a machine where CUDA works
        assert notice is None
        return
    assert notice is not None
    check(notice, "cuda-fallback", notes[0].partition(": ")[2], "Dictation works on the CPU")
    assert any(fix in notice.message for fix in ("perch-dictation[cuda]", "nvidia-smi"))
    assert from_device_notes("auto", notes, gpu_present=True) == Notice(
        "cuda-fallback", notice.title, notice.message, False, notice.key
    )
    assert from_device_notes("auto", notes, gpu_present=False) is None  # nothing to fix without a GPU
    assert from_device_notes("cuda", cuda.device, notes) == notice  # with what it runs on, as the app knows it
    on_cpu = Recognizer(files, CPU, warm_up=False)
    assert from_device_notes("cpu", list(on_cpu.report.notes)) is None
    assert from_device_notes("cpu", notes) is None


def test_tensorrt_asked_for_but_running_on_cuda() -> None:
    notes = ["running on CUDA without TensorRT: the TensorRT libraries were not found"]
    notice = from_device_notes("tensorrt", notes)
    assert notice is not None and notice.kind == "cuda-fallback" and not notice.error
    assert "set the device to cuda" in notice.message
    assert from_device_notes("tensorrt", "cuda", notes) == notice
    assert from_device_notes("tensorrt", "tensorrt", []) is None
    assert from_device_notes("cuda", "cuda", []) is None


# Typing.


class Desk(ClipboardOnlyTypist):
    """A typist on a desk with two windows; what it copies and pastes is kept."""

    def __init__(self, focus: WindowRef | None, *, paste_taken: bool = True, copy_fails: bool = False) -> None:
        self.copied: list[str] = []
        super().__init__("", self._copy_text)
        self.focus, self.paste_taken, self.copy_fails = focus, paste_taken, copy_fails

    def _copy_text(self, text: str) -> None:
        if self.copy_fails:
            raise OSError("the clipboard owner vanished")
        self.copied.append(text)

    def problem(self) -> str | None:
        return None

    def focused_window(self) -> WindowRef | None:
        return self.focus

    def type_text(self, text: str) -> None:
        raise InjectionError("no keyboard")

    def paste(self, text: str) -> bool:
        return self.paste_taken


EDITOR, TERMINAL = WindowRef(1, "Editor"), WindowRef(2, "Terminal")


def test_text_left_on_the_clipboard_when_the_focus_moved() -> None:
    result = deliver(Desk(TERMINAL), "hello there", EDITOR, False)
    notice = from_delivery(result, platform="linux")
    assert notice is not None
    check(notice, "typed-to-clipboard", 'from "Editor" to "Terminal"', "paste it with Ctrl+V", error=False)
    mac = from_delivery(result, platform="darwin")
    assert mac is not None and "Cmd+V" in mac.message
    # Every text on the clipboard is told about, however alike.
    again = from_delivery(deliver(Desk(TERMINAL), "hello there", EDITOR, False), platform="linux")
    assert again is not None and again.key != notice.key
    gate = NoticeGate()
    assert gate.allow(notice) and gate.allow(again)


def test_text_copied_because_typing_is_set_to_clipboard() -> None:
    notice = from_delivery(deliver(Desk(EDITOR), "hi", EDITOR, False, strategy="clipboard"))
    assert notice is not None and notice.kind == "typed-to-clipboard" and not notice.error


def test_typing_that_cannot_work_here() -> None:
    typist = ClipboardOnlyTypist("there is no X11 or Wayland display to type into", lambda _t: None)
    notice = from_delivery(deliver(typist, "hi", None, False), platform="linux")
    assert notice is not None
    check(notice, "typing-failed", "Perch could not type the text (there is no X11", "It is on the clipboard")


def test_text_neither_typed_nor_copied() -> None:
    result = deliver(Desk(TERMINAL, copy_fails=True), "the lost words", EDITOR, False)
    notice = from_delivery(result)
    assert notice is not None
    check(notice, "typing-failed", "copying failed too", '"the lost words"')


def test_a_paste_the_window_did_not_take() -> None:
    notice = from_delivery(deliver(Desk(EDITOR, paste_taken=False), "hi", EDITOR, False, strategy="paste"))
    assert notice is not None
    check(notice, "typing-failed", "did not take the pasted text", "Try again")


def test_text_typed_needs_no_notice() -> None:
    assert from_delivery(deliver(Desk(EDITOR), "hi", EDITOR, False, strategy="paste")) is None
    assert from_delivery(DeliveryResult("nothing", 0.0)) is None


def test_typing_failed_from_the_coordinator() -> None:
    check(from_engine_error("typing", "could not type into the window"), "typing-failed", "Paste it yourself")
    check(from_exception(InjectionError("wtype failed: exit status 1")), "typing-failed", "Wtype failed")


# Transcription.


def test_a_failed_transcription_keeps_its_advice() -> None:
    kept = Path(tempfile.gettempdir()) / "utterance-0007.wav"
    message = f"transcription failed: boom; the audio is kept at {kept}, run `perch transcribe {kept}` to try again"
    notice = from_engine_error("transcription", message)
    check(notice, "transcription-failed", f"`perch transcribe {kept}`")
    assert notice.message.count("try again") == 1
    other = from_engine_error("transcription", message.replace("0007", "0008"))
    assert other.key != notice.key  # each utterance counts
    check(from_exception(TranscriptionError("the encoder ran out of memory")), "transcription-failed", "Try again")


# Hotkeys and settings.


def test_hotkey_problems() -> None:
    nowhere = choose_backend({}, "linux").problem()
    assert nowhere is not None
    notice = from_hotkey_problem(nowhere)
    check(notice, "hotkeys-unavailable", "bind `perch ptt press`")
    assert notice.message.count("tray icon") == 0  # it already said what to do
    with tempfile.TemporaryDirectory() as runtime:
        portal = PortalBackend({"WAYLAND_DISPLAY": "wayland-9", "XDG_RUNTIME_DIR": runtime}).problem()
    assert portal is not None
    check(from_hotkey_problem(portal), "hotkeys-unavailable", "Bind keys in your desktop's settings")
    bad = raised(lambda: parse_hotkey("Ctrl+Nope"))
    check(
        from_hotkey_problem(f"The push-to-talk hotkey cannot be used: {bad}"),
        "hotkeys-unavailable",
        "unknown key 'Nope'",
        "Choose another hotkey in Settings",
    )
    lost = from_hotkey_problem("the X11 connection closed; global hotkeys stopped working")
    check(lost, "hotkeys-unavailable", "tray icon")


def test_settings_problems(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"sound_cues": 5}))
    store = SettingsStore(path)
    store.load()
    (problem,) = store.problems
    check(from_settings_problem(problem), "settings-reset", '"sound_cues"', "Open Settings")
    path.write_text("{ not json")
    store.load()
    (broken,) = store.problems
    notice = from_settings_problem(broken)
    check(notice, "settings-reset", "moved to")
    assert notice.key != from_settings_problem(problem).key


def test_anything_else() -> None:
    notice = from_exception(RuntimeError("the disk is full"))
    check(notice, "other", "RuntimeError: the disk is full", "The log has the details")
    check(from_exception(MemoryError()), "other", "ran out of memory", "int8")
    check(from_engine_error("overload", "the engine cannot keep up"), "other", "Close other busy programs")


# Everything at once: each source's own message, through the engine-error path the app uses.


def _mic_error(*args: Any) -> str:
    return str(raised(lambda: Microphone("hw:2", stream_factory=FailingStream(*args)).start(print, print)))


def _model_error(model: str, quantization: str = "fp32") -> str:
    return str(raised(lambda: resolve_model_dir(model, quantization)))  # type: ignore[arg-type]


TABLE: list[tuple[str, Callable[[], str], str]] = [
    ("microphone", lambda: NO_MICROPHONE, "no-microphone"),
    ("microphone", lambda: str(raised(lambda: choose_input([PULSE], "Yeti"))), "no-microphone"),
    ("microphone", lambda: _mic_error("Error opening InputStream: Device unavailable", -9985), "no-microphone"),
    ("microphone", lambda: _mic_error("Error opening InputStream: Invalid sample rate", -9997), "no-microphone"),
    ("microphone", lambda: _mic_error("Error opening InputStream: Permission denied", -9999), "microphone-permission"),
    (
        "device-lost",
        lambda: "The microphone 'x' stopped delivering audio (no audio arrived for 0.6 s).",
        "microphone-lost",
    ),
    ("model", lambda: _model_error(V3), "model-missing"),
    ("model", lambda: _model_error("/no/such/folder"), "model-missing"),
    ("model", lambda: "MemoryError", "model-failed"),
    ("transcription", lambda: "transcription failed: the model is not loaded (MemoryError)", "transcription-failed"),
    ("typing", lambda: "could not type into the window", "typing-failed"),
    ("overload", lambda: "the engine cannot keep up", "other"),
    ("something-new", lambda: "a problem nobody foresaw", "other"),
]


@pytest.mark.parametrize(
    ("kind", "message", "expected"), TABLE, ids=[f"{k}-{e}-{i}" for i, (k, _, e) in enumerate(TABLE)]
)
def test_engine_errors(models_home: Path, kind: str, message: Callable[[], str], expected: str) -> None:
    text = message()
    notice = from_engine_error(kind, text)
    check(notice, expected)
    assert " ".join(text.split()).rstrip(".")[1:] in notice.message  # what happened is kept, word for word
    assert len(notice.message) > len(text) or _says_what_to_do(text)


def _says_what_to_do(text: str) -> bool:
    return any(verb in text.lower() for verb in ("connect", "check", "run `", "try again", "choose", "install"))


# The gate.


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_gate_lets_a_repeat_through_only_after_a_minute() -> None:
    clock = Clock()
    gate = NoticeGate(clock=clock)
    lost = from_engine_error(
        "device-lost", "The microphone 'USB' stopped delivering audio (no audio arrived for 0.6 s)."
    )
    flapped = from_engine_error(
        "device-lost", "The microphone 'USB' stopped delivering audio (the audio stream stopped)."
    )
    missing = from_exception(ModelNotFoundError("model directory /x does not exist"))
    assert gate.allow(lost)
    clock.now += 5
    assert not gate.allow(flapped)  # the same problem again
    assert gate.allow(missing)  # another one
    clock.now += 54.9
    assert not gate.allow(lost)
    clock.now += 0.2  # a minute after the first
    assert gate.allow(lost)
    assert not gate.allow(missing)


def test_the_gate_can_forget() -> None:
    clock = Clock()
    gate = NoticeGate(seconds=10, clock=clock)
    lost = from_engine_error("device-lost", "The microphone stopped delivering audio.")
    model = from_engine_error("model", "model directory /x does not exist")
    assert gate.allow(lost) and gate.allow(model)
    gate.forget(["microphone-lost"])  # the microphone came back
    assert gate.allow(lost) and not gate.allow(model)
    gate.forget()
    assert gate.allow(lost) and gate.allow(model)
