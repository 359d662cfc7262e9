"""Perch's speech engine: Parakeet-TDT from ONNX, with no GUI dependency."""

from stt.errors import PerchError

__all__ = ["PerchError"]
