"""The history window offscreen, on a real History in a temporary folder with real WAV files."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMenu, QMessageBox
from pytestqt.qtbot import QtBot

from app.gui import history_format as fmt
from app.gui.history_model import Column
from app.gui.history_window import PAGE_SIZE, SEARCH_DELAY_MS, HistoryWindow
from app.history import History, HistoryEntry
from app.launch import LaunchSettings
from app.settings import SettingsStore
from app.vocabulary_add import add_to_vocabulary
from app.vocabulary_settings import VocabularyEntry
from stt.audio import load_audio, write_wav
from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

ROOT = Path(__file__).resolve().parents[1]
NOW = time.time()
HOUR = 3600.0


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    store = History(tmp_path / "history.sqlite3")
    yield store
    store.close()


@pytest.fixture(scope="module")
def recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "int8"), RuntimeOptions(device="cpu"))


@pytest.fixture(scope="module")
def read_speech(recognizer: Recognizer) -> Callable[[Path], str]:
    """What the app hands the window as `retranscribe`: the recogniser run on a recording."""
    return lambda path: recognizer.transcribe(load_audio(path)).text


@pytest.fixture
def hello_wav(words_model: Path, speech_file: Callable[[str], Path], tmp_path: Path) -> Path:
    """A recording of real speech, "hello world" (words the 20-word model knows)."""
    return Path(shutil.copy(speech_file("hello world"), tmp_path / "utterance-1.wav"))


def wav(path: Path, seconds: float = 0.5) -> Path:
    """A real 16 kHz WAV file of a quiet tone."""
    t = np.arange(int(16000 * seconds), dtype=np.float32) / 16000
    write_wav(path, (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return path


class Typed:
    """A `type_text` callback that notes what it typed and how the window stood at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, bool]] = []
        self.window: HistoryWindow | None = None

    def __call__(self, text: str) -> None:
        assert self.window is not None
        self.calls.append((text, self.window.isActiveWindow(), self.window.isMinimized() or self.window.isHidden()))


def no_model(path: Path) -> str:
    raise AssertionError(f"no re-transcription expected here ({path})")


@pytest.fixture
def open_window(qtbot: QtBot, history: History) -> Iterator[Callable[..., HistoryWindow]]:
    made: list[HistoryWindow] = []

    def _open(
        retranscribe: Callable[[Path], str] = no_model,
        type_text: Callable[[str], None] | None = None,
        retention: tuple[int, int] = (0, 20),
    ) -> HistoryWindow:
        window = HistoryWindow(history, type_text=type_text or Typed(), retranscribe=retranscribe, retention=retention)
        qtbot.addWidget(window)
        made.append(window)
        if isinstance(type_text, Typed):
            type_text.window = window
        window.show()
        settle(qtbot, window)
        return window

    yield _open
    for window in made:
        window.shutdown()


def settle(qtbot: QtBot, window: HistoryWindow, timeout: int = 10000) -> None:
    """Wait until the window's database and model work is done and delivered."""
    qtbot.waitUntil(lambda: not window.busy, timeout=timeout)


def cell(window: HistoryWindow, row: int, column: Column, role: int = Qt.ItemDataRole.DisplayRole) -> object:
    return window.model.index(row, column).data(role)


def texts(window: HistoryWindow) -> list[str]:
    return [e.text for e in window.model.entries]


def click_row(
    qtbot: QtBot, window: HistoryWindow, row: int, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:
    rect = window.table.visualRect(window.model.index(row, Column.TEXT))
    QTest.mouseClick(window.table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def add(history: History, text: str, hours_ago: float, **fields: object) -> int:
    return history.add(text=text, created=NOW - hours_ago * HOUR, **fields)  # type: ignore[arg-type]


# Listing.


def test_lists_newest_first_with_every_column(open_window: Callable[..., HistoryWindow], history: History) -> None:
    add(history, "the oldest one", 30, duration_s=2.0, stop_to_typed_ms=90.0, model="words-tdt", device="cpu")
    long_text = "Dear Sam,\nthanks for the notes. " + "More words follow here. " * 40
    add(history, long_text, 2, duration_s=75.4, stop_to_final_ms=140.0, stop_to_typed_ms=1480.0,
        model="parakeet-tdt-0.6b-v3", device="cuda")  # fmt: skip
    add(history, "", 1, status="failed", error="the speech model stopped")
    window = open_window()

    assert window.history is history
    assert [e.text for e in window.model.entries] == ["", long_text, "the oldest one"]
    assert window.count.text() == "3 dictations"
    assert [window.model.headerData(c, Qt.Orientation.Horizontal) for c in Column] == [
        "Time", "Length", "Text", "Latency", "Model", "Status"
    ]  # fmt: skip
    # The long entry: one line in the row, all of it in the tooltip.
    row = 1
    assert cell(window, row, Column.TIME) == fmt.when(NOW - 2 * HOUR)
    assert cell(window, row, Column.DURATION) == "1:15"
    shown = cell(window, row, Column.TEXT)
    assert isinstance(shown, str) and "\n" not in shown and shown.startswith("Dear Sam, thanks for the notes.")
    assert shown.endswith("…") and len(shown) <= fmt.ONE_LINE_LIMIT
    tooltip = cell(window, row, Column.TEXT, Qt.ItemDataRole.ToolTipRole)
    assert isinstance(tooltip, str) and "More words follow here. " * 40 in tooltip
    assert cell(window, row, Column.LATENCY) == "1.5 s"
    assert cell(window, row, Column.MODEL) == "parakeet-tdt-0.6b-v3 · CUDA"
    assert cell(window, row, Column.STATUS) == ""
    assert cell(window, 2, Column.LATENCY) == "90 ms"
    assert cell(window, 2, Column.MODEL) == "words-tdt · CPU"
    # The failed one is marked and says why.
    assert cell(window, 0, Column.STATUS) == "⚠ Failed"
    assert cell(window, 0, Column.TEXT) == "No text: the speech model stopped"
    assert cell(window, 0, Column.LATENCY) == "–"


def test_detail_pane_shows_the_whole_text(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    text = "First line.\nSecond line with <b>angle brackets</b> & more."
    add(history, text, 0.1, duration_s=3.25, stop_to_typed_ms=180.0, model="words-tdt", device="cpu")
    window = open_window()
    assert "Select a dictation" in window.detail.meta.text()
    click_row(qtbot, window, 0)
    assert window.detail.text.toPlainText() == text
    meta = window.detail.meta.text()
    assert "3.2 s of speech" in meta and "typed 180 ms after you stopped" in meta and "words-tdt on CPU" in meta
    assert window.detail.banner.isHidden()


def test_a_selection_in_the_text_is_added_to_the_vocabulary(qtbot: QtBot, history: History, tmp_path: Path) -> None:
    launch = LaunchSettings(SettingsStore(tmp_path / "settings.json"))
    add(history, "Ask Ada\nLovelace about the Kubernetes cluster.", 0.1)
    window = HistoryWindow(
        history,
        type_text=Typed(),
        retranscribe=no_model,
        add_to_vocabulary=lambda text: add_to_vocabulary(launch, text),
    )
    qtbot.addWidget(window)
    window.show()
    settle(qtbot, window)
    click_row(qtbot, window, 0)
    text = window.detail.text
    assert window.detail.add_to_vocabulary.isVisible() and not window.detail.add_to_vocabulary.isEnabled()

    def select(start: str, end: str) -> None:
        cursor = text.textCursor()
        plain = text.toPlainText()
        cursor.setPosition(plain.index(start))
        cursor.setPosition(plain.index(end) + len(end), QTextCursor.MoveMode.KeepAnchor)
        text.setTextCursor(cursor)

    def open_menu() -> tuple[QMenu, QAction]:
        text.customContextMenuRequested.emit(text.cursorRect().center())
        menus = [m for m in text.findChildren(QMenu) if m.isVisible()]
        assert len(menus) == 1
        found = [a for a in menus[0].actions() if a.text() == "Add to vocabulary"]
        assert len(found) == 1 and "Copy" in " ".join(a.text() for a in menus[0].actions())
        return menus[0], found[0]

    menu, action = open_menu()
    assert not action.isEnabled()  # nothing selected
    menu.close()
    select("Ada", "Lovelace")
    menu, action = open_menu()
    assert action.isEnabled()
    action.trigger()
    menu.close()
    assert launch.current().vocabulary.phrases == (VocabularyEntry("Ada Lovelace"),)
    assert SettingsStore(launch.store.path).load().vocabulary.phrases == (VocabularyEntry("Ada Lovelace"),)
    assert window.notice.text() == "Added “Ada Lovelace” to the vocabulary; it applies from the next dictation."

    QTest.mouseClick(window.detail.add_to_vocabulary, Qt.MouseButton.LeftButton)
    assert window.notice.text() == "“Ada Lovelace” is already in the vocabulary."
    select("Kubernetes", "Kubernetes")
    assert window.detail.add_to_vocabulary.isEnabled()
    QTest.mouseClick(window.detail.add_to_vocabulary, Qt.MouseButton.LeftButton)
    assert [e.text for e in launch.current().vocabulary.phrases] == ["Ada Lovelace", "Kubernetes"]
    window.shutdown()
    launch.close()


def test_search_is_debounced_and_ignores_case_and_accents(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    add(history, "Viele Grüße aus KÖLN", 3)
    add(history, "hello world", 2)
    add(history, "Say HELLO again", 1)
    window = open_window()
    QTest.keyClicks(window.search, "hello")
    assert len(window.model.entries) == 3  # nothing yet: the search waits for typing to pause
    started = time.monotonic()
    qtbot.waitUntil(lambda: len(window.model.entries) == 2)
    assert time.monotonic() - started >= SEARCH_DELAY_MS / 1000 * 0.5
    assert texts(window) == ["Say HELLO again", "hello world"]
    assert window.count.text() == "2 found in 3 dictations"

    for query in ("grüsse", "GRÜSSE", "köln"):
        window.search.setText(query)
        qtbot.waitUntil(lambda: texts(window) == ["Viele Grüße aus KÖLN"])
    window.search.setText("nothing like this")
    qtbot.waitUntil(lambda: window.model.entries == [])
    assert window.count.text() == "0 found in 3 dictations"
    window.search.clear()
    qtbot.waitUntil(lambda: len(window.model.entries) == 3)
    assert window.count.text() == "3 dictations"


class ThreadNotingHistory(History):
    """A real History that notes which threads read it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.readers: set[str] = set()

    def search(self, query: str, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        self.readers.add(threading.current_thread().name)
        return super().search(query, limit, offset)


def test_reads_happen_off_the_gui_thread(qtbot: QtBot, tmp_path: Path) -> None:
    store = ThreadNotingHistory(tmp_path / "threads.sqlite3")
    store.add(text="hello")
    window = HistoryWindow(store, type_text=Typed(), retranscribe=no_model)
    qtbot.addWidget(window)
    settle(qtbot, window)
    window.search.setText("hel")
    qtbot.waitUntil(lambda: window.count.text() == "1 found in 1 dictation")
    window.shutdown()
    store.close()
    assert store.readers and threading.current_thread().name not in store.readers
    assert all(name.startswith("perch-history-view") for name in store.readers)


def test_more_rows_load_when_scrolled_to_the_end(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    total = 2 * PAGE_SIZE + 50
    for i in range(total):
        history.add(text=f"entry {i}", created=NOW - (total - i))
    window = open_window()
    assert len(window.model.entries) == PAGE_SIZE
    assert window.count.text() == f"{total} dictations"
    for expected in (2 * PAGE_SIZE, total):
        window.table.scrollToBottom()
        qtbot.waitUntil(lambda expected=expected: len(window.model.entries) == expected)  # type: ignore[misc]
    assert texts(window) == [f"entry {i}" for i in reversed(range(total))]
    assert not window.model.canFetchMore()

    # Searching pages too, and says when more matches are yet to load.
    window.search.setText("entry 1")
    qtbot.waitUntil(lambda: window.count.text() == f"{PAGE_SIZE}+ found in {total} dictations")
    window.table.scrollToBottom()
    matches = [f"entry {i}" for i in reversed(range(total)) if "entry 1" in f"entry {i}"]
    qtbot.waitUntil(lambda: texts(window) == matches)
    assert window.count.text() == f"{len(matches)} found in {total} dictations"


# Copying and typing.


def test_copy_puts_the_exact_text_on_the_clipboard(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    text = "Grüße — ½ <b>not bold</b> &amp;\ttab\nnext line  "
    add(history, text, 1)
    window = open_window()
    QGuiApplication.clipboard().setText("before")
    click_row(qtbot, window, 0)
    QTest.keyClick(window.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == text
    QGuiApplication.clipboard().setText("before")
    QTest.mouseClick(window.buttons[window.copy_action], Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == text


def test_copy_of_several_joins_them_with_newlines_in_the_order_shown(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    for i, word in enumerate(["one", "two", "three", "four"]):
        add(history, word, 4 - i)
    add(history, "", 0.5, status="failed", error="no microphone")
    window = open_window()
    assert texts(window) == ["", "four", "three", "two", "one"]
    click_row(qtbot, window, 3)
    click_row(qtbot, window, 1, Qt.KeyboardModifier.ControlModifier)
    click_row(qtbot, window, 0, Qt.KeyboardModifier.ControlModifier)  # the failed one: nothing to copy
    assert window.detail.meta.text() == "3 dictations selected."
    assert not window.type_action.isEnabled() and not window.retranscribe_action.isEnabled()
    QTest.keyClick(window.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "four\ntwo"
    assert window.notice.text() == "Copied 2 dictations."


def test_type_again_waits_for_the_window_to_step_aside(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    add(history, "older", 2)
    add(history, "type me again", 1)
    typed = Typed()
    window = open_window(type_text=typed)
    window.activateWindow()
    click_row(qtbot, window, 0)
    QTest.mouseClick(window.buttons[window.type_action], Qt.MouseButton.LeftButton)
    assert typed.calls == []  # never at once: the focus has to leave first
    qtbot.waitUntil(lambda: typed.calls != [], timeout=3000)
    assert typed.calls == [("type me again", False, True)]


# Re-transcribing.


def test_retranscribe_stores_the_new_text(
    open_window: Callable[..., HistoryWindow],
    history: History,
    qtbot: QtBot,
    read_speech: Callable[[Path], str],
    hello_wav: Path,
) -> None:
    entry_id = add(history, "hollow word", 1, audio_path=hello_wav, model="words-tdt", device="cpu")
    add(history, "something else", 2)
    window = open_window(retranscribe=read_speech)
    click_row(qtbot, window, 0)
    assert window.retranscribe_action.isEnabled()
    QTest.mouseClick(window.buttons[window.retranscribe_action], Qt.MouseButton.LeftButton)
    assert cell(window, 0, Column.STATUS) == "Re-transcribing…"
    assert not window.retranscribe_action.isEnabled()
    settle(qtbot, window)

    stored = history.get(entry_id)
    assert stored is not None
    assert (stored.text, stored.status, stored.previous_text) == ("hello world", "retranscribed", "hollow word")
    assert texts(window) == ["hello world", "something else"]
    assert cell(window, 0, Column.STATUS) == "↻ Re-transcribed"
    assert window.selected_entries()[0].id == entry_id
    assert window.detail.text.toPlainText() == "hello world"
    assert window.detail.previous.text() == "Before re-transcription: hollow word"
    assert window.notice.text() == "Re-transcribed."


def test_a_failed_dictation_can_be_retranscribed_into_text(
    open_window: Callable[..., HistoryWindow],
    history: History,
    qtbot: QtBot,
    read_speech: Callable[[Path], str],
    hello_wav: Path,
) -> None:
    entry_id = add(history, "", 1, audio_path=hello_wav, status="failed", error="the speech model ran out of memory")
    window = open_window(retranscribe=read_speech)
    click_row(qtbot, window, 0)
    assert window.detail.banner.isVisibleTo(window)
    assert "the speech model ran out of memory" in window.detail.problem.text()
    assert window.detail.retranscribe.isVisibleTo(window)
    QTest.mouseClick(window.detail.retranscribe, Qt.MouseButton.LeftButton)
    settle(qtbot, window)

    stored = history.get(entry_id)
    assert stored is not None
    assert (stored.text, stored.status, stored.error) == ("hello world", "retranscribed", None)
    assert cell(window, 0, Column.TEXT) == "hello world"
    assert window.detail.banner.isHidden()
    assert window.type_action.isEnabled() and window.copy_action.isEnabled()


@pytest.mark.parametrize("status", ["ok", "failed"])
def test_a_failed_retranscription_leaves_the_entry_alone(
    open_window: Callable[..., HistoryWindow],
    history: History,
    qtbot: QtBot,
    read_speech: Callable[[Path], str],
    status: str,
) -> None:
    broken = history.path.parent / "utterance-3.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00 this is no audio")
    text, error = ("kept as it was", None) if status == "ok" else ("", "the microphone was unplugged")
    entry_id = add(history, text, 1, audio_path=broken, status=status, error=error)
    before = history.get(entry_id)
    window = open_window(retranscribe=read_speech)
    click_row(qtbot, window, 0)
    window.retranscribe_action.trigger()
    settle(qtbot, window)

    assert history.get(entry_id) == before
    assert broken.exists()
    message = window.notice.text()
    assert message.startswith("Re-transcribing failed:") and str(broken) in message and "try again" in message
    assert window.detail.problem.text() == message and window.detail.banner.isVisibleTo(window)
    assert cell(window, 0, Column.STATUS) == ("⚠ Re-transcription failed" if status == "ok" else "⚠ Failed")
    assert window.retranscribe_action.isEnabled()  # it may be tried again


def test_retranscribe_is_off_when_the_recording_is_gone(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot, tmp_path: Path
) -> None:
    gone = wav(tmp_path / "gone.wav")
    add(history, "", 1, audio_path=gone, status="failed", error="the model was not loaded")
    add(history, "fine", 2, audio_path=wav(tmp_path / "here.wav"))
    gone.unlink()
    window = open_window()
    click_row(qtbot, window, 1)
    assert window.retranscribe_action.isEnabled() and window.buttons[window.retranscribe_action].isEnabled()
    click_row(qtbot, window, 0)
    assert not window.retranscribe_action.isEnabled()
    assert not window.buttons[window.retranscribe_action].isEnabled()
    assert "cannot be transcribed again" in window.detail.problem.text()
    assert not window.detail.retranscribe.isVisibleTo(window)


# Deleting, folders, new entries, retention.


def confirm(qtbot: QtBot, window: HistoryWindow, answer: str) -> None:
    def shown() -> list[QMessageBox]:
        return [b for b in window.findChildren(QMessageBox) if b.isVisible()]

    qtbot.waitUntil(lambda: len(shown()) == 1)
    box = shown()[0]
    assert "cannot be undone" in box.text()
    button = next(b for b in box.buttons() if b.text().replace("&", "") == answer)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def test_delete_asks_then_removes_the_rows_and_their_recordings(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot, tmp_path: Path
) -> None:
    files = [wav(tmp_path / f"utterance-{i}.wav") for i in range(3)]
    for i, file in enumerate(files):
        add(history, f"entry {i}", 3 - i, audio_path=file)
    window = open_window()
    click_row(qtbot, window, 0)
    QTest.keyClick(window.table, Qt.Key.Key_Delete)
    confirm(qtbot, window, "Cancel")
    settle(qtbot, window)
    assert history.count() == 3 and all(f.exists() for f in files)

    QTest.keyClick(window.table, Qt.Key.Key_Delete)
    confirm(qtbot, window, "Delete")
    qtbot.waitUntil(lambda: texts(window) == ["entry 1", "entry 0"])
    assert not files[2].exists() and files[0].exists() and files[1].exists()
    assert window.count.text() == "2 dictations"

    click_row(qtbot, window, 0)
    click_row(qtbot, window, 1, Qt.KeyboardModifier.ControlModifier)
    QTest.mouseClick(window.buttons[window.delete_action], Qt.MouseButton.LeftButton)
    confirm(qtbot, window, "Delete")
    qtbot.waitUntil(lambda: texts(window) == [])
    assert history.count() == 0 and not any(f.exists() for f in files)
    assert not window.delete_action.isEnabled()


class UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def catch(self, url: QUrl) -> None:
        self.urls.append(url)


def test_open_audio_folder_opens_the_recordings_folder(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot, tmp_path: Path
) -> None:
    add(history, "with audio", 1, audio_path=wav(tmp_path / "recordings" / "utterance-9.wav"))
    add(history, "without audio", 2)
    window = open_window()
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "catch")  # type: ignore[arg-type]
    try:
        click_row(qtbot, window, 1)
        assert not window.folder_action.isEnabled()
        click_row(qtbot, window, 0)
        window.folder_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in catcher.urls] == [str(tmp_path / "recordings")]


def test_context_menu_offers_the_actions(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    add(history, "a dictation", 1)
    window = open_window()
    click_row(qtbot, window, 0)
    window.table.customContextMenuRequested.emit(window.table.visualRect(window.model.index(0, 0)).center())
    menu = window.findChild(QMenu)
    assert isinstance(menu, QMenu)
    assert [a.text() for a in menu.actions()] == ["Copy", "Type again", "Re-transcribe", "Delete…", "Open audio folder"]
    assert [a.isEnabled() for a in menu.actions()] == [True, True, False, True, False]
    menu.close()


def test_a_new_dictation_appears_and_the_selection_stays(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot
) -> None:
    chosen = add(history, "chosen", 2)
    add(history, "other", 3)
    window = open_window()
    click_row(qtbot, window, 0)
    add(history, "brand new", 0)
    window.entry_added()
    qtbot.waitUntil(lambda: texts(window)[0] == "brand new")
    assert [e.id for e in window.selected_entries()] == [chosen]
    assert window.table.currentIndex().row() == 1
    assert window.count.text() == "3 dictations"

    # Hidden, it catches up when shown again.
    window.hide()
    add(history, "while hidden", 0)
    window.entry_added()
    settle(qtbot, window)
    assert texts(window)[0] == "brand new"
    window.show()
    qtbot.waitUntil(lambda: texts(window)[0] == "while hidden")
    assert [e.id for e in window.selected_entries()] == [chosen]


def test_retention_footer_and_applying_it(
    open_window: Callable[..., HistoryWindow], history: History, qtbot: QtBot, tmp_path: Path
) -> None:
    old = wav(tmp_path / "old.wav")
    recent = [wav(tmp_path / f"recent-{i}.wav") for i in range(3)]
    add(history, "from last year", 24 * 365, audio_path=old)
    for i, file in enumerate(recent):
        add(history, f"recent {i}", 3 - i, audio_path=file)
    window = open_window()
    assert window.retention.text() == "History kept forever; 20 recordings"
    window.apply_retention(30, 1)
    assert window.retention.text() == "History kept 30 days; 1 recording"
    qtbot.waitUntil(lambda: texts(window) == ["recent 2", "recent 1", "recent 0"])
    assert not old.exists() and [f.exists() for f in recent] == [False, False, True]
    with pytest.raises(ValueError, match="0 or more"):
        window.apply_retention(-1, 20)


# Formatting.


def test_times_lengths_and_latencies_read_naturally() -> None:
    noon = datetime(2024, 3, 14, 12, 0).timestamp()
    at = datetime(2024, 3, 14, 9, 5).timestamp()
    assert fmt.when(at, now=noon) == "09:05"
    assert fmt.when(at - 86400, now=noon) == "Yesterday 09:05"
    assert fmt.when((datetime(2024, 3, 14, 9, 5) - timedelta(days=3)).timestamp(), now=noon).endswith(" 09:05")
    assert fmt.when(datetime(2024, 1, 2, 8, 0).timestamp(), now=noon) == f"2 {datetime(2024, 1, 2):%b} 08:00"
    assert fmt.when(datetime(2022, 1, 2, 8, 0).timestamp(), now=noon) == f"2 {datetime(2022, 1, 2):%b %Y} 08:00"
    assert [fmt.duration_text(s) for s in (0, 3.24, 59.9, 65.0, 3600)] == ["–", "3.2 s", "59.9 s", "1:05", "60:00"]
    assert [fmt.latency_text(ms) for ms in (None, 42.4, 999, 1480)] == ["–", "42 ms", "999 ms", "1.5 s"]
    assert fmt.count_text(1234, 100, True, searching=False) == "1,234 dictations"
    assert fmt.count_text(1, 1, False, searching=False) == "1 dictation"
    assert fmt.count_text(1234, 100, True, searching=True) == "100+ found in 1,234 dictations"
    assert fmt.retention_text(0, 20) == "History kept forever; 20 recordings"
    assert fmt.retention_text(30, 0) == "History kept 30 days; no recordings"
    assert fmt.one_line("a\n\n b\tc ") == "a b c"


# The README's picture.


def test_renders_a_varied_history(qtbot: QtBot, history: History, tmp_path: Path) -> None:
    """Renders made-up entries of every kind (the README's picture comes from a real run:
    tests/screenshots_app.py)."""
    samples = [
        ("Can we move the design review to Thursday afternoon? Tuesday is packed.", 0.3, 3.1, 162.0, "ok"),
        ("Remind me to send the invoice to Marta before Friday.", 0.9, 2.4, 141.0, "ok"),
        ("", 1.6, 4.0, None, "failed"),
        ("The build is green again; the flaky test was waiting on a timer.", 5.0, 4.8, 188.0, "retranscribed"),
        ("Thanks for the notes. I'll fold them into the draft tonight and send it round tomorrow.", 26, 6.2,
         205.0, "ok"),
        ("Buy oat milk, coffee beans and batteries for the kitchen clock.", 50, 3.7, 150.0, "ok"),
    ]  # fmt: skip
    for i, (text, hours, seconds, latency, status) in enumerate(samples):
        add(history, text, hours, duration_s=seconds, stop_to_final_ms=None if latency is None else latency - 30,
            stop_to_typed_ms=latency, model="parakeet-tdt-0.6b-v3", device="cuda" if i % 3 else "cpu",
            status=status, error="the speech model ran out of GPU memory" if status == "failed" else None,
            audio_path=wav(tmp_path / f"utterance-{i}.wav", 0.1))  # fmt: skip
    window = HistoryWindow(history, type_text=Typed(), retranscribe=no_model, retention=(30, 20))
    qtbot.addWidget(window)
    window.resize(960, 560)
    window.show()
    settle(qtbot, window)
    click_row(qtbot, window, 2)
    image = window.grab()
    assert not image.isNull() and image.save(str(tmp_path / "history.png"))
    window.shutdown()
