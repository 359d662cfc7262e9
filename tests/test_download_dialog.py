"""The first-run download dialog and its background runner, against a local stand-in for the Hugging Face hub."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from app.gui.download_dialog import (
    FirstRunDialog,
    format_bytes,
    format_speed,
    format_time_left,
    needs_download,
    progress_text,
)
from app.gui.download_task import ModelDownload, RateMeter, Throttle, seconds_left
from stt import hub
from stt.catalog import CATALOG, DEFAULT_MODEL, get_spec, variant_size
from stt.modelstore import marker_path, model_dir
from tests.screenshots import save_screenshot

from .hub_server import MIB, TINY_NAME, HubServer, closed_port_endpoint, tiny_repo, tiny_spec

ROOT = Path(__file__).resolve().parents[1]
V3 = "parakeet-tdt-0.6b-v3"
V2 = "parakeet-tdt-0.6b-v2"
REPOS = {V3: "perch-tests/v3-onnx", V2: "perch-tests/v2-onnx"}
DATA = "encoder-model.onnx.data"
FP32 = ["config.json", "vocab.txt", "encoder-model.onnx", DATA, "decoder_joint-model.onnx"]
INT8 = ["config.json", "vocab.txt", "encoder-model.int8.onnx", "decoder_joint-model.int8.onnx"]
FIRST_PIECE = 10 * MIB
"""huggingface_hub hands a transfer over in 10 MiB pieces: what a cut after 11 MiB has written."""
WAIT_MS = 10_000


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A local hub serving tiny stand-ins of both Parakeet repos, which the catalog points at."""
    with HubServer({repo: tiny_repo() for repo in REPOS.values()}) as local_hub:
        monkeypatch.setenv("HF_ENDPOINT", local_hub.endpoint)
        monkeypatch.setenv("PERCH_MODELS_DIR", str(tmp_path / "models"))
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        for name, repo in REPOS.items():
            monkeypatch.setitem(CATALOG, name, replace(tiny_spec(repo), name=name))
        yield local_hub


Make = Callable[..., FirstRunDialog]


@pytest.fixture
def make_dialog(qtbot: QtBot) -> Iterator[Make]:
    """Builds dialogs that are closed, and whose downloads have stopped, when the test ends."""
    dialogs: list[FirstRunDialog] = []

    def make(cuda_available: bool = False, **kwargs: str) -> FirstRunDialog:
        dialog = FirstRunDialog(cuda_available, **kwargs)  # type: ignore[arg-type]
        qtbot.addWidget(dialog)
        dialog.show()
        dialogs.append(dialog)
        return dialog

    yield make
    for dialog in dialogs:
        dialog.download.cancel()
        assert dialog.download.wait(WAIT_MS / 1000)


def _files(name: str) -> set[str]:
    directory = model_dir(name)
    return {path.name for path in directory.iterdir() if path.is_file()} if directory.is_dir() else set()


def _assert_variant(name: str, names: list[str], quantization: str) -> None:
    directory = model_dir(name)
    for file in names:
        assert (directory / file).read_bytes() == tiny_repo()[file], file
    assert hub.is_downloaded(name, quantization)  # type: ignore[arg-type]


def _part(name: str) -> Path:
    return model_dir(name) / ".partial"


def _part_sizes(name: str) -> list[int]:
    return [path.stat().st_size for path in sorted(_part(name).glob(f"{DATA}.*.part"))]


def _click(button: QWidget) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


# The whole download.


def test_a_download_shows_rising_progress_and_ends_with_model_ready(
    server: HubServer, qtbot: QtBot, make_dialog: Make
) -> None:
    dialog = make_dialog(cuda_available=True)
    assert dialog.chosen_model == V3 and dialog.chosen_quantization == "fp32"
    assert needs_download(V3, "fp32")
    seen: list[tuple[int, int]] = []
    lines: list[str] = []
    dialog.download.progress.connect(lambda done, total, *_: seen.append((done, total)))
    dialog.download.progress.connect(lambda *_: lines.append(dialog.status_label.text()))

    with qtbot.waitSignal(dialog.model_ready, timeout=WAIT_MS) as ready:
        _click(dialog.download_button)
        assert not dialog.download_button.isEnabled()
        assert dialog.cancel_button.isVisible() and dialog.progress_bar.isVisible()
    assert ready.args == [V3, "fp32"]

    total = sum(len(tiny_repo()[name]) for name in FP32)
    assert len(seen) >= 2
    assert all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[0][0] < seen[-1][0] == total
    assert lines[-1].startswith(f"{format_bytes(total)} of {format_bytes(total)}")
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    _assert_variant(V3, FP32, "fp32")
    assert _files(V3) == {*FP32, ".perch-fp32.json"}
    assert not needs_download(V3, "fp32")
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.isVisible()


@pytest.mark.parametrize(("name", "quantization"), [(V3, "int8"), (V2, "int8"), (V2, "fp32")])
def test_each_choice_downloads_that_variant_of_that_model(
    server: HubServer, qtbot: QtBot, make_dialog: Make, name: str, quantization: str
) -> None:
    dialog = make_dialog(cuda_available=False)
    _click(dialog.model_buttons[name])
    _click(dialog.variant_buttons[quantization])  # type: ignore[index]
    with qtbot.waitSignal(dialog.model_ready, timeout=WAIT_MS) as ready:
        _click(dialog.download_button)
    assert ready.args == [name, quantization]
    names = INT8 if quantization == "int8" else FP32
    _assert_variant(name, names, quantization)
    assert _files(name) == {*names, f".perch-{quantization}.json"}
    other = V2 if name == V3 else V3
    assert not model_dir(other).exists()
    fetched = {request.path for request in server.requests if request.method == "GET"}
    assert fetched and all(REPOS[name] in path for path in fetched)


def test_an_existing_download_is_ready_at_once(server: HubServer, qtbot: QtBot, make_dialog: Make) -> None:
    hub.download(V2, "int8")
    seen = len(server.requests)
    dialog = make_dialog(name=V2, quantization="int8")
    with qtbot.waitSignal(dialog.model_ready, timeout=WAIT_MS) as ready:
        _click(dialog.download_button)
    assert ready.args == [V2, "int8"]
    assert len(server.requests) == seen


# Cancel and resume.


def test_cancel_keeps_the_partial_file_and_download_resumes_it(
    server: HubServer, qtbot: QtBot, make_dialog: Make
) -> None:
    # The transfer of the big file breaks after its first piece; huggingface_hub waits a second before trying
    # again, which is when Cancel is pressed.
    server.drop_at[DATA] = 11 * MIB
    dialog = make_dialog(cuda_available=True)
    ready: list[tuple[str, str]] = []
    dialog.model_ready.connect(lambda name, quantization: ready.append((name, quantization)))
    _click(dialog.download_button)
    qtbot.waitUntil(lambda: _part_sizes(V3) == [FIRST_PIECE], timeout=WAIT_MS)
    with qtbot.waitSignal(dialog.download.cancelled, timeout=WAIT_MS):
        _click(dialog.cancel_button)
        assert dialog.status_label.text() == "Stopping the download…"

    assert not ready
    assert not marker_path(V3, "fp32").exists()
    assert not hub.is_downloaded(V3, "fp32")
    assert not (model_dir(V3) / DATA).exists()
    assert _part_sizes(V3) == [FIRST_PIECE]
    status = dialog.status_label.text()
    assert status.startswith("Download stopped at ") and "Press Download to resume it" in status
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isVisible()
    assert dialog.isVisible() and dialog.variant_buttons["int8"].isEnabled()

    server.requests.clear()
    with qtbot.waitSignal(dialog.model_ready, timeout=WAIT_MS) as done:
        _click(dialog.download_button)
    assert done.args == [V3, "fp32"]
    assert [request.range for request in server.gets(DATA)] == [f"bytes={FIRST_PIECE}-"]
    assert not server.gets("encoder-model.onnx")
    _assert_variant(V3, FP32, "fp32")
    assert not _part(V3).exists()


def test_closing_during_a_download_stops_it(server: HubServer, qtbot: QtBot, make_dialog: Make) -> None:
    server.drop_at[DATA] = 11 * MIB
    dialog = make_dialog(cuda_available=True)
    ready: list[tuple[str, str]] = []
    dialog.model_ready.connect(lambda name, quantization: ready.append((name, quantization)))
    _click(dialog.download_button)
    qtbot.waitUntil(lambda: _part_sizes(V3) == [FIRST_PIECE], timeout=WAIT_MS)
    with qtbot.waitSignal(dialog.download.cancelled, timeout=WAIT_MS):
        _click(dialog.close_button)
        assert not dialog.isVisible()
    assert dialog.result() == QDialog.DialogCode.Rejected
    assert not ready and not marker_path(V3, "fp32").exists()
    assert _part_sizes(V3) == [FIRST_PIECE]


def test_the_runner_refuses_a_second_download_and_stops_when_destroyed(server: HubServer, qtbot: QtBot) -> None:
    server.drop_at[DATA] = 11 * MIB
    runner = ModelDownload()
    runner.start(V3, "fp32")
    with pytest.raises(RuntimeError, match="already running"):
        runner.start(V3, "int8")
    qtbot.waitUntil(lambda: _part_sizes(V3) == [FIRST_PIECE], timeout=WAIT_MS)
    destroyed: list[bool] = []
    runner.destroyed.connect(lambda: destroyed.append(True))
    runner.deleteLater()
    qtbot.waitUntil(lambda: bool(destroyed), timeout=WAIT_MS)
    assert runner.wait(WAIT_MS / 1000)
    assert not marker_path(V3, "fp32").exists()
    assert _part_sizes(V3) == [FIRST_PIECE]


# When the hub cannot be reached.


def _fail_download(qtbot: QtBot, dialog: FirstRunDialog) -> None:
    with qtbot.waitSignal(dialog.download.failed, timeout=WAIT_MS):
        _click(dialog.download_button)


class _UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_an_unreachable_hub_explains_how_to_place_the_files_by_hand(
    server: HubServer, qtbot: QtBot, make_dialog: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = closed_port_endpoint()
    monkeypatch.setenv("HF_ENDPOINT", unreachable)
    dialog = make_dialog(cuda_available=False)
    _fail_download(qtbot, dialog)

    panel = dialog.problem
    assert panel.isVisible() and panel.by_hand.isVisible()
    assert not dialog.progress_bar.isVisible() and not dialog.cancel_button.isVisible()
    assert panel.headline.text() == "Perch cannot reach the Hugging Face hub."
    assert panel.message.text().startswith(f"Cannot reach the Hugging Face hub to download {V3} (")
    assert "Connect to the internet and press Download" in panel.next_step.text()
    folder = model_dir(V3)
    assert panel.folder.text() == str(folder)
    listed = [line.split()[0] for line in panel.files.text().splitlines()]
    assert listed == INT8
    assert f"{unreachable}/{REPOS[V3]}/tree/main" in panel.source.text()
    assert dialog.download_button.isEnabled() and panel.check_button.isEnabled()

    _click(panel.copy_button)
    assert QGuiApplication.clipboard().text() == str(folder)
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")  # type: ignore[arg-type]
    try:
        _click(panel.open_button)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [url.toLocalFile() for url in catcher.urls] == [str(folder)]
    assert folder.is_dir()

    # The instructions follow the choice.
    _click(dialog.model_buttons[V2])
    _click(dialog.variant_buttons["fp32"])
    assert panel.folder.text() == str(model_dir(V2))
    assert [line.split()[0] for line in panel.files.text().splitlines()] == FP32
    assert REPOS[V2] in panel.source.text()


def test_offline_mode_explains_itself_and_asks_nothing_of_the_network(
    server: HubServer, qtbot: QtBot, make_dialog: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dialog = make_dialog(cuda_available=True)
    _fail_download(qtbot, dialog)
    panel = dialog.problem
    assert panel.headline.text().startswith("Offline mode is on (HF_HUB_OFFLINE is set)")
    assert panel.by_hand.isVisible()
    assert DATA in panel.files.text()
    assert not server.requests


def test_other_failures_say_to_try_again_without_by_hand_steps(
    server: HubServer, qtbot: QtBot, make_dialog: Make
) -> None:
    server.corrupt.add("encoder-model.int8.onnx")
    dialog = make_dialog(cuda_available=False)
    _fail_download(qtbot, dialog)
    panel = dialog.problem
    assert panel.headline.text() == "The download did not finish."
    assert "does not match its sha256 hash" in panel.message.text()
    assert panel.next_step.text() == "Press Download to try again; it resumes where it stopped."
    assert not panel.by_hand.isVisible()
    server.corrupt.clear()
    with qtbot.waitSignal(dialog.model_ready, timeout=WAIT_MS):
        _click(dialog.download_button)


def test_files_placed_by_hand_are_found_by_check_again(
    server: HubServer, qtbot: QtBot, make_dialog: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dialog = make_dialog(cuda_available=False)
    _fail_download(qtbot, dialog)
    panel = dialog.problem

    with qtbot.waitSignal(dialog.download.failed, timeout=WAIT_MS):
        _click(panel.check_button)
    assert panel.feedback.text().startswith(f"Not complete yet: missing {', '.join(INT8)} in {model_dir(V3)}")
    assert panel.check_button.isEnabled()

    directory = model_dir(V3)
    directory.mkdir(parents=True, exist_ok=True)
    for name in INT8:
        (directory / name).write_bytes(tiny_repo()[name])
    damaged = bytearray(tiny_repo()["decoder_joint-model.int8.onnx"])
    damaged[7] ^= 1
    (directory / "decoder_joint-model.int8.onnx").write_bytes(bytes(damaged))
    with qtbot.waitSignal(dialog.download.failed, timeout=WAIT_MS):
        _click(panel.check_button)
    assert "decoder_joint-model.int8.onnx is damaged" in panel.feedback.text()
    assert not marker_path(V3, "int8").exists()

    (directory / "decoder_joint-model.int8.onnx").write_bytes(tiny_repo()["decoder_joint-model.int8.onnx"])
    with qtbot.waitSignal(dialog.model_ready, timeout=WAIT_MS) as ready:
        _click(panel.check_button)
    assert ready.args == [V3, "int8"]
    assert hub.is_downloaded(V3, "int8") and not needs_download(V3, "int8")
    assert not server.requests


# Choices offered.


def test_the_suggested_variant_and_the_sizes_come_from_the_catalog(make_dialog: Make, qtbot: QtBot) -> None:
    cpu = make_dialog(cuda_available=False)
    assert cpu.chosen_model == DEFAULT_MODEL and cpu.chosen_quantization == "int8"
    v3 = get_spec(V3)
    assert cpu.variant_buttons["int8"].text() == (
        f"int8 — smaller; recommended on the CPU — {variant_size(v3, 'int8') / 1e9:.2f} GB"
    )
    assert cpu.variant_buttons["fp32"].text() == "fp32 — full precision; recommended with an NVIDIA GPU — 2.55 GB"
    assert cpu.model_buttons[V3].text() == "Parakeet TDT v3 — 25 European languages"
    assert "English only" in cpu.model_buttons[V2].text()
    _click(cpu.model_buttons[V2])
    assert cpu.variant_buttons["int8"].text().endswith(f"{variant_size(get_spec(V2), 'int8') / 1e9:.2f} GB")
    assert cpu.hint.text() == "No usable NVIDIA GPU was found: int8 is the better choice here."

    gpu = make_dialog(cuda_available=True)
    assert gpu.chosen_quantization == "fp32"
    assert gpu.hint.text() == "This computer has a usable NVIDIA GPU: fp32 is the better choice here."

    chosen = make_dialog(cuda_available=True, name=V2, quantization="int8")
    assert chosen.chosen_model == V2 and chosen.chosen_quantization == "int8"
    assert make_dialog(name="/some/folder").chosen_model == DEFAULT_MODEL


def test_another_catalog_model_is_offered_when_named(
    make_dialog: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CATALOG, TINY_NAME, tiny_spec())
    dialog = make_dialog(name=TINY_NAME)
    assert list(dialog.model_buttons) == [V3, V2, TINY_NAME]
    assert dialog.chosen_model == TINY_NAME
    assert dialog.variant_buttons["int8"].text().endswith("— 130 kB")


def test_needs_download(server: HubServer, tmp_path: Path) -> None:
    assert not needs_download(str(tmp_path), "fp32")
    assert not needs_download("no-such-model", "int8")
    assert needs_download(V3, "int8")
    hub.download(V3, "int8")
    assert not needs_download(V3, "int8")
    assert needs_download(V3, "fp32")
    (model_dir(V3) / "vocab.txt").write_bytes(b"")
    assert needs_download(V3, "int8")  # damaged: downloading again repairs it
    directory = model_dir(V2)
    directory.mkdir(parents=True)
    for name in INT8:
        (directory / name).write_bytes(tiny_repo()[name])
    assert not needs_download(V2, "int8")  # placed by hand, as the engine accepts


# Progress text and arithmetic.


def test_sizes_speeds_and_time_left_read_naturally() -> None:
    assert format_bytes(0) == "0 bytes"
    assert format_bytes(999) == "999 bytes"
    assert format_bytes(1_000) == "1 kB"
    assert format_bytes(999_400) == "999 kB"
    assert format_bytes(999_600) == "1 MB"
    assert format_bytes(312_400_000) == "312 MB"
    assert format_bytes(999_600_000) == "1.00 GB"
    assert format_bytes(2_554_000_000) == "2.55 GB"
    assert format_speed(850_000) == "850 kB/s"
    assert format_speed(24_460_000) == "24.5 MB/s"
    assert format_speed(999_960_000) == "1.00 GB/s"
    assert format_time_left(0.2) == "about 1 s left"
    assert format_time_left(7.1) == "about 8 s left"
    assert format_time_left(14.6) == "about 15 s left"
    assert format_time_left(57.4) == "about 55 s left"
    assert format_time_left(58) == "about 1 min left"
    assert format_time_left(150) == "about 3 min left"
    assert format_time_left(3569) == "about 59 min left"
    assert format_time_left(3590) == "about 1 h left"
    assert format_time_left(4_980) == "about 1 h 25 min left"
    assert progress_text(312_000_000, 671_000_000, 24_500_000, 14.7) == (
        "312 MB of 671 MB — 24.5 MB/s — about 15 s left"
    )
    assert progress_text(10_000_000, 2_554_000_000, 0.0, -1.0) == "10 MB of 2.55 GB"
    assert progress_text(671_000_000, 671_000_000, 24_500_000, 0.0) == "671 MB of 671 MB — 24.5 MB/s"


def test_the_speed_is_averaged_over_recent_seconds() -> None:
    meter = RateMeter(window_s=5.0, min_span_s=0.5)
    assert meter.add(0.0, 1_000_000) == 0.0  # a resumed download starts its count here
    assert meter.add(0.2, 3_000_000) == 0.0
    assert meter.add(1.0, 11_000_000) == pytest.approx(10e6)
    for second in range(2, 11):
        meter.add(float(second), 11_000_000 + (second - 1) * 2_000_000)
    assert meter.add(11.0, 31_000_000) == pytest.approx(2e6)  # the early burst has left the window
    assert meter.add(12.0, 0) == 0.0  # started over
    assert seconds_left(40, 100, 20.0) == 3.0
    assert seconds_left(40, 100, 0.0) == -1.0


def test_progress_updates_are_thinned_to_ten_a_second() -> None:
    throttle = Throttle(interval_s=0.1)
    times = [0.0, 0.03, 0.06, 0.1, 0.15, 0.21, 0.22]
    passed = [t for t in times if throttle.due(t, 1, 10)]
    assert passed == [0.0, 0.1, 0.21]
    assert throttle.due(0.23, 10, 10)  # the end always gets through


# The README screenshot.


def test_screenshot_mid_download(
    qtbot: QtBot, make_dialog: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renders the dialog while a download runs; PERCH_SCREENSHOTS=1 refreshes docs/screenshots/first-run.png."""
    # A hub that accepts the connection and never answers keeps the dialog downloading while it is drawn.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("PERCH_MODELS_DIR", str(tmp_path / "models"))
        dialog = make_dialog(cuda_available=False)
        _click(dialog.download_button)
        total = variant_size(get_spec(V3), "int8")
        dialog.show_progress(312_000_000, total, 24_500_000.0, 14.7)
        assert dialog.status_label.text() == "312 MB of 670 MB — 24.5 MB/s — about 15 s left"
        dialog.adjustSize()
        save_screenshot(dialog, "first-run.png", tmp_path)
        dialog.download.cancel()
        dialog.reject()
