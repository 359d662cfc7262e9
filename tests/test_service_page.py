"""Settings ▸ Other apps: the address follows the port, and the token can be copied and regenerated."""

from __future__ import annotations

import stat
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from app.gui.settings_dialog import SettingsDialog
from app.service.token import token_path
from app.settings import SettingsStore

SAVED = 3000


def test_page_shows_the_controls_and_the_address(qtbot: QtBot, tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show_page("other apps")
    page = dialog.service_page
    assert dialog.current_page() is page
    assert page.enabled.text() == "Let other apps use Perch" and not page.enabled.isChecked()
    assert page.port.value() == 8737
    assert page.address.text() == "http://127.0.0.1:8737/v1"
    page.port.setValue(9123)
    assert page.address.text() == "http://127.0.0.1:9123/v1"
    qtbot.waitUntil(lambda: store.current.service_port == 9123, timeout=SAVED)
    assert page.token.echoMode() == QLineEdit.EchoMode.Password


def test_copy_and_regenerate_the_token(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = SettingsDialog(SettingsStore(tmp_path / "settings.json"))
    qtbot.addWidget(dialog)
    page = dialog.service_page
    token = token_path().read_text(encoding="utf-8").strip()
    assert page.token.text() == token

    page.copy_button.click()
    assert QGuiApplication.clipboard().text() == token

    with qtbot.waitSignal(page.token_replaced, timeout=1000):
        page.regenerate_button.click()
    new = token_path().read_text(encoding="utf-8").strip()
    assert new and new != token and page.token.text() == new
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    page.copy_button.click()
    assert QGuiApplication.clipboard().text() == new
