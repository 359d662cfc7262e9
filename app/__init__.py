"""Perch, the desktop dictation app."""
