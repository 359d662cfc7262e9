"""Settings ▸ Other apps: the OpenAI-compatible API that lets programs on this computer use Perch's model."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from app.gui.settings_form import Page
from app.service.token import load_or_create_token, replace_token
from app.settings import SERVICE_PORT_RANGE, Settings

INTRO = (
    "Programs on this computer can transcribe with Perch's model through an OpenAI-compatible API; they need the token."
)


def service_address(port: int) -> str:
    """The base URL other programs are given."""
    return f"http://127.0.0.1:{port}/v1"


class ServicePage(Page):
    """The on/off switch, the port, the address to use, and the token with Copy and Regenerate."""

    token_replaced = Signal()
    """Regenerate wrote a new token: the running service must take it up."""

    def __init__(self) -> None:
        super().__init__("other-apps", "Other apps", INTRO)
        self.enabled = self.check_box(
            "service_enabled",
            "Let other apps use Perch",
            "Serves the model dictation uses to programs on this computer only (127.0.0.1); nothing leaves it.",
        )
        self.port = self.number(
            "service_port", "Port", *SERVICE_PORT_RANGE, "The TCP port the API listens on, on this computer only."
        )
        self.port.valueChanged.connect(self._show_address)
        self.check_box(
            "service_wyoming",
            "Also serve Home Assistant (Wyoming, port 10300)",
            "Home Assistant's speech-to-text protocol, on this computer only. It has no token: any program here "
            "can use it.",
        )
        self.address = QLabel()
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.add_row("Address", self.address, "Give programs this as their OpenAI base URL.")

        self.token = QLineEdit(load_or_create_token())
        self.token.setReadOnly(True)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_token)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.clicked.connect(self.regenerate_token)
        token_box = QWidget()
        row = QHBoxLayout(token_box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.token, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.regenerate_button)
        self.add_row(
            "Token",
            token_box,
            "Programs send it as their API key. Regenerate makes a new one; programs with the old one are refused.",
        )

    def refresh(self, settings: Settings) -> None:
        self._show_address(settings.service_port)

    def _show_address(self, port: int) -> None:
        self.address.setText(service_address(port))

    def copy_token(self) -> None:
        """Put the token on the clipboard."""
        QGuiApplication.clipboard().setText(self.token.text())

    def regenerate_token(self) -> None:
        """Write a new token and show it (still masked)."""
        try:
            self.token.setText(replace_token())
        except OSError as exc:
            self.set_problem("token", f"A new token could not be written: {exc}")
            return
        self.set_problem("token", "")
        self.token_replaced.emit()
