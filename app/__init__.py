"""Perch, the desktop dictation app."""

__version__ = "0.1.0"
