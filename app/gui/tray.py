"""The tray icon (or, without a system tray, a small control window with the same actions)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QPushButton, QSystemTrayIcon, QVBoxLayout, QWidget

log = logging.getLogger("perch.tray")

MenuBuilder = Callable[[QMenu], None]


class Tray(QObject):
    """Shows the state, toggles dictation on a left click, and opens a menu built fresh each time."""

    def __init__(self, icon: QIcon, build_menu: MenuBuilder, on_click: Callable[[], None]) -> None:
        super().__init__()
        self._build_menu = build_menu
        self._on_click = on_click
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self._rebuild)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon = QSystemTrayIcon(icon)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.window: ControlWindow | None = None
        if not self.available:
            log.warning(
                "no system tray is available (on GNOME, install the AppIndicator extension); "
                "showing a control window instead"
            )
            self.window = ControlWindow(build_menu, on_click)

    def show(self) -> None:
        """Put the icon in the tray (or show the control window)."""
        self._rebuild()
        if self.window is not None:
            self.window.show()
        else:
            self.icon.show()

    def set_state(self, icon: QIcon, tooltip: str) -> None:
        """New icon and tooltip."""
        self.icon.setIcon(icon)
        self.icon.setToolTip(tooltip)
        if self.window is not None:
            self.window.set_state(icon, tooltip)

    def notify(self, title: str, message: str, error: bool = False) -> None:
        """A desktop notification from the tray."""
        kind = QSystemTrayIcon.MessageIcon.Warning if error else QSystemTrayIcon.MessageIcon.Information
        if self.available:
            self.icon.showMessage(title, message, kind, 8000)
        log.log(logging.WARNING if error else logging.INFO, "%s: %s", title, message)

    def hide(self) -> None:
        """Remove the icon."""
        self.icon.hide()
        if self.window is not None:
            self.window.hide()

    def _rebuild(self) -> None:
        self.menu.clear()
        for submenu in self.menu.findChildren(QMenu):
            submenu.deleteLater()  # clear() keeps the submenus of the last build alive
        self._build_menu(self.menu)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # Qt reports the second of two quick clicks as a double click, not a second Trigger: each click counts.
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self._on_click()


class ControlWindow(QWidget):
    """Where there is no system tray: the state and a button per menu action."""

    def __init__(self, build_menu: MenuBuilder, on_click: Callable[[], None]) -> None:
        super().__init__()
        self.setWindowTitle("Perch")
        self._build_menu = build_menu
        self._layout = QVBoxLayout(self)
        self._toggle = QPushButton("Start / stop dictation")
        self._toggle.clicked.connect(on_click)
        self._layout.addWidget(self._toggle)
        self._menu = QMenu(self)
        self._buttons: list[QPushButton] = []

    def set_state(self, icon: QIcon, tooltip: str) -> None:
        """Show the state in the title and icon."""
        self.setWindowIcon(icon)
        self.setWindowTitle(tooltip.splitlines()[0] if tooltip else "Perch")
        self._toggle.setIcon(icon)

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        """Rebuild the buttons from the menu's actions."""
        for button in self._buttons:
            button.deleteLater()
        self._buttons.clear()
        self._menu.clear()
        self._build_menu(self._menu)
        for action in self._menu.actions():
            if action.isSeparator() or action.menu() is not None:
                continue
            self._buttons.append(self._button_for(action))
        super().showEvent(event)  # type: ignore[arg-type]

    def _button_for(self, action: QAction) -> QPushButton:
        button = QPushButton(action.text().replace("&", ""))
        button.setEnabled(action.isEnabled())
        button.clicked.connect(action.trigger)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._layout.addWidget(button)
        return button
