"""Perch as a local speech service: the OpenAI-compatible HTTP API on loopback, behind one security guard (no Qt)."""
