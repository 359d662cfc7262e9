"""Settings ▸ Vocabulary offscreen on a real settings file: phrases edited in place, searched, imported and
exported, the strength, replacements with snippets, and Try it on real recordings with the real engine worker."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractItemView, QFileDialog, QLineEdit, QTableView
from pytestqt.qtbot import QtBot

from app.gui.settings_dialog import DEBOUNCE_MS, SettingsDialog
from app.gui.trial_window import TrialSources, TrialWindow
from app.gui.vocabulary_lists import PhraseModel, ReplacementModel
from app.gui.vocabulary_page import NEAR_LIMIT, VocabularyPage
from app.history import History
from app.settings import SettingsStore
from app.vocabulary_settings import ReplacementEntry, VocabularyEntry, VocabularySettings
from app.vocabulary_trial import Comparison
from stt.audio import write_wav
from stt.boost.phrases import MAX_PHRASES, Phrase, read_phrase_file
from stt.engine import SAMPLE_RATE, Recognizer
from stt.events import Event
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions
from stt.worker import EngineWorker, WorkerOptions
from tests import boost_benefit as bb
from tests.screenshots import save_screenshot

from .conftest import Speak

SAVED = DEBOUNCE_MS * 10
"""How long to wait for a debounced save."""
CTRL = Qt.KeyboardModifier.ControlModifier
TRIED = 120_000
"""How long a trial of a few recordings may take on a slow CPU."""


@pytest.fixture
def store(tmp_path: Path) -> SettingsStore:
    return SettingsStore(tmp_path / "settings.json")


def open_page(qtbot: QtBot, store: SettingsStore, trial: TrialSources | None = None) -> VocabularyPage:
    dialog = SettingsDialog(store, trial)
    qtbot.addWidget(dialog)
    dialog.show_page("vocabulary")
    dialog.show()
    assert dialog.current_page() is dialog.vocabulary_page
    return dialog.vocabulary_page


def stored(store: SettingsStore) -> VocabularySettings:
    """The vocabulary as the file holds it now."""
    return SettingsStore(store.path).load().vocabulary if store.path.exists() else VocabularySettings()


def wait_stored(qtbot: QtBot, store: SettingsStore, check: Callable[[VocabularySettings], bool]) -> None:
    qtbot.waitUntil(lambda: check(stored(store)), timeout=SAVED)


def edit_cell(qtbot: QtBot, view: QTableView, row: int, column: int, text: str) -> None:
    """Type `text` into the in-place editor open on a cell and press Enter."""
    field = view.indexWidget(view.model().index(row, column))
    assert isinstance(field, QLineEdit)
    QTest.keyClick(field, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(field, text)
    QTest.keyClick(field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.state() != QAbstractItemView.State.EditingState, timeout=5000)


def toggle(view: QTableView, row: int, column: int) -> None:
    """Tick or untick a check box cell with the keyboard."""
    view.setCurrentIndex(view.model().index(row, column))
    QTest.keyClick(view, Qt.Key.Key_Space)


def shown_phrases(page: VocabularyPage) -> list[str]:
    return [str(page.proxy.index(row, PhraseModel.TEXT).data()) for row in range(page.proxy.rowCount())]


def choose_file(page: VocabularyPage, path: Path) -> None:
    """Pick `path` in the file dialog the page opened."""
    dialog = page.findChild(QFileDialog)
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()
    dialog.selectFile(str(path))
    dialog.accept()


# Phrases.


def test_phrases_are_added_edited_searched_and_removed(qtbot: QtBot, store: SettingsStore) -> None:
    page = open_page(qtbot, store)
    assert page.count.text() == "0 phrases"
    for row, text in enumerate(["Kubernetes", "  Ada   Lovelace ", "PySide"]):
        QTest.mouseClick(page.add_phrase, Qt.MouseButton.LeftButton)
        edit_cell(qtbot, page.phrase_view, row, PhraseModel.TEXT, text)
    expected = (VocabularyEntry("Kubernetes"), VocabularyEntry("Ada Lovelace"), VocabularyEntry("PySide"))
    wait_stored(qtbot, store, lambda v: v.phrases == expected)
    assert page.count.text() == "3 phrases"

    toggle(page.phrase_view, 1, PhraseModel.STRONGER)
    wait_stored(qtbot, store, lambda v: v.phrases[1] == VocabularyEntry("Ada Lovelace", stronger=True))

    page.phrase_view.setCurrentIndex(page.proxy.index(0, PhraseModel.TEXT))
    QTest.keyClick(page.phrase_view, Qt.Key.Key_F2)
    edit_cell(qtbot, page.phrase_view, 0, PhraseModel.TEXT, "Kubernetes operator")
    wait_stored(qtbot, store, lambda v: v.phrases[0].text == "Kubernetes operator")

    QTest.keyClicks(page.search, "LOVE")
    assert shown_phrases(page) == ["Ada Lovelace"] and page.count.text() == "1 of 3 phrases"
    page.phrase_view.selectRow(0)
    QTest.mouseClick(page.remove_phrase, Qt.MouseButton.LeftButton)
    left = (VocabularyEntry("Kubernetes operator"), VocabularyEntry("PySide"))
    wait_stored(qtbot, store, lambda v: v.phrases == left)
    assert shown_phrases(page) == []
    page.search.clear()
    assert shown_phrases(page) == ["Kubernetes operator", "PySide"]

    # An added row left empty goes away and saves nothing.
    QTest.mouseClick(page.add_phrase, Qt.MouseButton.LeftButton)
    field = page.phrase_view.indexWidget(page.proxy.index(2, PhraseModel.TEXT))
    assert isinstance(field, QLineEdit)
    QTest.keyClick(field, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: page.phrase_view.state() != QAbstractItemView.State.EditingState, timeout=5000)
    assert shown_phrases(page) == ["Kubernetes operator", "PySide"]
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert data["vocabulary"]["phrases"] == [
        {"text": "Kubernetes operator", "stronger": False},
        {"text": "PySide", "stronger": False},
    ]


def test_changes_saved_elsewhere_show_on_the_page(qtbot: QtBot, store: SettingsStore) -> None:
    page = open_page(qtbot, store)
    vocabulary = VocabularySettings((VocabularyEntry("Perch", True),), 4.5, (ReplacementEntry("sign off", "Bye"),))
    store.save(replace(store.current, vocabulary=vocabulary))
    assert shown_phrases(page) == ["Perch"]
    assert page.phrases.index(0, PhraseModel.STRONGER).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert page.strength.value() == 9 and page.strength_reading.text() == "4.5"
    assert page.replacements.index(0, ReplacementModel.SPOKEN).data() == "sign off"
    assert page.vocabulary() == vocabulary


def test_renders_the_page(qtbot: QtBot, store: SettingsStore, tmp_path: Path) -> None:
    names = ["Kubernetes", "Ada Lovelace", "PySide6", "Zoë Kravitz", "Perch", "onnxruntime", "Sjöberg", "TDT"]
    phrases = tuple(VocabularyEntry(name, stronger=name in ("Ada Lovelace", "Sjöberg")) for name in names)
    replacements = (ReplacementEntry("perch dot app", "perch.app"), ReplacementEntry("sign off", "Best,\nAda"))
    store.save(replace(store.current, vocabulary=VocabularySettings(phrases, 3.0, replacements)))
    page = open_page(qtbot, store)
    assert page.count.text() == "8 phrases" and page.problem_text() == ""
    save_screenshot(page.window(), "vocabulary.png", tmp_path)


def test_the_count_warns_near_the_limit(qtbot: QtBot, store: SettingsStore) -> None:
    many = tuple(VocabularyEntry(f"name {n}") for n in range(NEAR_LIMIT))
    store.save(replace(store.current, vocabulary=VocabularySettings(many)))
    page = open_page(qtbot, store)
    assert page.count.text() == f"{NEAR_LIMIT:,} phrases"
    assert f"at most {MAX_PHRASES:,}" in page.problem_text() and "\n" not in page.problem_text()
    assert page.add_phrase.isEnabled()


# Import and export.


def test_import_skips_blank_and_comment_lines_and_export_writes_one_per_line(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    store.save(replace(store.current, vocabulary=VocabularySettings((VocabularyEntry("PySide", True),))))
    page = open_page(qtbot, store)
    source = tmp_path / "names.txt"
    source.write_text(
        "# People\n\nAda   Lovelace\n  \nKubernetes\n# tools\nPySide\nKubernetes\nZoë\n", encoding="utf-8"
    )
    QTest.mouseClick(page.import_button, Qt.MouseButton.LeftButton)
    choose_file(page, source)
    expected = (VocabularyEntry("PySide", True), *(VocabularyEntry(t) for t in ("Ada Lovelace", "Kubernetes", "Zoë")))
    wait_stored(qtbot, store, lambda v: v.phrases == expected)
    assert page.file_note.text() == "Imported 3 of the 4 phrases in names.txt (the others were in the list already)."
    assert page.problem_text() == ""

    target = tmp_path / "out" / "exported.txt"
    target.parent.mkdir()
    QTest.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    choose_file(page, target)
    qtbot.waitUntil(lambda: target.exists() and not page.busy, timeout=5000)
    assert target.read_bytes() == "PySide\nAda Lovelace\nKubernetes\nZoë\n".encode()
    assert [p.text for p in read_phrase_file(target)] == [e.text for e in expected]
    assert page.file_note.text() == f"Exported 4 phrases to {target}."


def test_a_file_that_is_not_utf8_changes_nothing(qtbot: QtBot, store: SettingsStore, tmp_path: Path) -> None:
    store.save(replace(store.current, vocabulary=VocabularySettings((VocabularyEntry("PySide"),))))
    before = store.path.read_bytes()
    page = open_page(qtbot, store)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Kubernetes\nZoë\n".encode("latin-1"))
    page.import_file(latin1)
    qtbot.waitUntil(lambda: not page.busy, timeout=5000)
    message = page.problem_text()
    assert message.startswith("Not imported: ") and "line 2 is not UTF-8" in message and "\n" not in message
    assert shown_phrases(page) == ["PySide"]
    assert store.path.read_bytes() == before

    page.import_file(tmp_path / "missing.txt")
    qtbot.waitUntil(lambda: "not found" in page.problem_text(), timeout=5000)
    assert shown_phrases(page) == ["PySide"] and store.path.read_bytes() == before


# Strength and replacements.


def test_the_strength_saves(qtbot: QtBot, store: SettingsStore) -> None:
    page = open_page(qtbot, store)
    assert page.strength.value() == 6 and page.strength_reading.text() == "3 (default)"
    assert "chosen by measurement" in " ".join(label.text() for label in page.findChildren(type(page.count)))
    page.strength.setValue(13)
    wait_stored(qtbot, store, lambda v: v.strength == 6.5)
    assert page.strength_reading.text() == "6.5"
    page.strength.setValue(0)
    wait_stored(qtbot, store, lambda v: v.strength == 0.0)
    assert page.strength_reading.text() == "Off"


def test_replacements_with_a_snippet_round_trip(qtbot: QtBot, store: SettingsStore) -> None:
    page = open_page(qtbot, store)
    page.tabs.setCurrentIndex(1)
    QTest.mouseClick(page.add_replacement, Qt.MouseButton.LeftButton)
    edit_cell(qtbot, page.replacement_view, 0, ReplacementModel.SPOKEN, "perch  dot app")
    page.written.setFocus()
    QTest.keyClicks(page.written, "perch.app")
    QTest.mouseClick(page.add_replacement, Qt.MouseButton.LeftButton)
    edit_cell(qtbot, page.replacement_view, 1, ReplacementModel.SPOKEN, "sign off")
    assert page.written.toPlainText() == ""
    QTest.keyClicks(page.written, "Best,")
    QTest.keyClick(page.written, Qt.Key.Key_Return)
    QTest.keyClicks(page.written, "Ada")
    toggle(page.replacement_view, 1, ReplacementModel.CASE)
    expected = (ReplacementEntry("perch dot app", "perch.app"), ReplacementEntry("sign off", "Best,\nAda", True))
    wait_stored(qtbot, store, lambda v: v.replacements == expected)
    assert page.replacements.index(1, ReplacementModel.WRITTEN).data() == "Best, ⏎ Ada"

    page.replacement_view.selectRow(0)
    assert page.written.toPlainText() == "perch.app"
    QTest.mouseClick(page.remove_replacement, Qt.MouseButton.LeftButton)
    wait_stored(qtbot, store, lambda v: v.replacements == expected[1:])
    assert not page.written.isEnabled()


def test_reset_keeps_the_vocabulary(qtbot: QtBot, store: SettingsStore) -> None:
    vocabulary = VocabularySettings((VocabularyEntry("Perch"),), 5.0, (ReplacementEntry("a", "b"),))
    store.save(replace(store.current, mode="toggle", vocabulary=vocabulary))
    page = open_page(qtbot, store)
    dialog = page.window()
    assert isinstance(dialog, SettingsDialog)
    dialog.reset_to_defaults()
    assert stored(store) == vocabulary and store.current.mode == "ptt"
    assert page.vocabulary() == vocabulary


# Try it.


@pytest.fixture(scope="module")
def noisy_speech(speak: Speak) -> list[bb.Utterance]:
    """Dictation of the words model's words under loud noise, half of it holding a phrase worth boosting."""
    return [replace(u, audio=bb.with_noise(u.audio, 0.0, index)) for index, u in enumerate(bb.corpus(speak, 6, seed=2))]


@pytest.fixture
def worker(words_model: Path) -> Iterator[EngineWorker]:
    """The real engine worker, boosting a vocabulary of its own."""
    events: list[Event] = []
    engine = EngineWorker(
        lambda: Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu")),
        events.append,
        WorkerOptions(partials="off", vocabulary=(Phrase("hello world"),)),
    )
    engine.start()
    engine.ready.wait(60)
    yield engine
    engine.close()


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    store = History(tmp_path / "history.sqlite3")
    yield store
    store.close()


def record(history: History, folder: Path, utterances: list[bb.Utterance]) -> None:
    """History entries with their recordings, oldest first."""
    for index, utterance in enumerate(utterances):
        path = folder / f"utterance-{index}.wav"
        write_wav(path, utterance.audio)
        history.add(
            text=" ".join(utterance.words),
            duration_s=len(utterance.audio) / SAMPLE_RATE,
            audio_path=path,
            created=1_700_000_000 + index,
        )


def run_trial(qtbot: QtBot, page: VocabularyPage) -> TrialWindow:
    QTest.mouseClick(page.try_button, Qt.MouseButton.LeftButton)
    window = page.trial_window
    assert window is not None and window.isVisible()
    qtbot.waitUntil(lambda: not window.running, timeout=TRIED)
    return window


def test_try_it_shows_what_the_list_changes(
    qtbot: QtBot,
    store: SettingsStore,
    worker: EngineWorker,
    history: History,
    noisy_speech: list[bb.Utterance],
) -> None:
    folder = history.path.parent
    record(history, folder, noisy_speech)
    history.add(text="typed from a file that is gone", audio_path=folder / "gone.wav", created=1_800_000_000)
    history.add(text="no recording kept", created=1_800_000_001)
    vocabulary = VocabularySettings(tuple(VocabularyEntry(t) for t in bb.TARGETS), 3.0)
    store.save(replace(store.current, vocabulary=vocabulary))
    recognizer = worker.recognizer
    assert recognizer is not None and recognizer.boost is not None
    own_boost = recognizer.boost
    dictating = [True]
    page = open_page(qtbot, store, TrialSources(lambda: worker, lambda: history, lambda: dictating[0]))

    QTest.mouseClick(page.try_button, Qt.MouseButton.LeftButton)
    window = page.trial_window
    assert window is not None
    qtbot.waitUntil(lambda: window.status.text() == "Waiting for the dictation to finish…", timeout=5000)
    assert all(row.result is None for row in window.rows)
    dictating[0] = False
    qtbot.waitUntil(lambda: not window.running, timeout=TRIED)

    newest_first = list(reversed(noisy_speech))
    assert [row.recording.path.name for row in window.rows] == [f"utterance-{i}.wav" for i in range(5, -1, -1)]
    changed = window.changed_rows()
    assert changed, [row.result for row in window.rows]
    for row, utterance in zip(window.rows, newest_first, strict=True):
        assert row.result is not None and not isinstance(row.result, str)
        if row in changed:  # only where a listed phrase was said, and nearer to what was said
            errors = [bb._edits(utterance.words, text.split()) for text in (row.result.before, row.result.after)]
            assert utterance.target is not None and errors[1] < errors[0], (utterance.words, row.result)
    assert f"{len(changed)} of 6 recordings come out differently" in window.status.text()
    html = window.table.toHtml()
    assert "changed" in html and "<s>" not in html  # marks show as formatting, not as tags
    assert recognizer.boost is own_boost and worker.recognizer is recognizer


def test_try_it_applies_the_replacements(
    qtbot: QtBot, store: SettingsStore, worker: EngineWorker, history: History, speak: Speak
) -> None:
    recording = history.path.parent / "hello.wav"
    write_wav(recording, speak("hello world"))
    history.add(text="hello world", duration_s=1.0, audio_path=recording)
    vocabulary = VocabularySettings(replacements=(ReplacementEntry("hello world", "Hello,\nworld!"),))
    store.save(replace(store.current, vocabulary=vocabulary))
    window = run_trial(qtbot, open_page(qtbot, store, TrialSources(lambda: worker, lambda: history)))
    assert [row.result for row in window.rows] == [Comparison("hello world", "Hello,\nworld!")]
    assert window.status.text() == "1 of 1 recording come out differently with this vocabulary."


def test_try_it_without_recordings_or_history(
    qtbot: QtBot, store: SettingsStore, worker: EngineWorker, history: History
) -> None:
    history.add(text="no recording kept")
    page = open_page(qtbot, store, TrialSources(lambda: worker, lambda: history))
    window = run_trial(qtbot, page)
    assert window.status.text().startswith("No recordings yet") and window.rows == []

    off = open_page(qtbot, store, TrialSources(lambda: worker, lambda: None))
    assert run_trial(qtbot, off).status.text().startswith("History is turned off")


def test_try_it_when_the_model_did_not_load(qtbot: QtBot, store: SettingsStore, history: History) -> None:
    def fail() -> Recognizer:
        raise OSError("no such model folder")

    engine = EngineWorker(fail, lambda _event: None)
    engine.start()
    engine.ready.wait(10)
    try:
        page = open_page(qtbot, store, TrialSources(lambda: engine, lambda: history))
        window = run_trial(qtbot, page)
        assert window.status.text() == (
            "The model is not loaded (no such model folder), so nothing can be transcribed yet."
        )
    finally:
        engine.close()


def test_try_it_is_off_outside_the_app(qtbot: QtBot, store: SettingsStore) -> None:
    page = open_page(qtbot, store)
    assert not page.try_button.isEnabled() and "running app" in page.try_button.toolTip()
