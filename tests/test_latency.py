"""Latency bookkeeping: percentiles over utterances, typed times filled in later."""

from __future__ import annotations

import logging

import pytest

from stt.events import Final, UtteranceTimings
from stt.latency import LatencyLog


def final(utterance: int, stop: float, ready: float, engine_ms: float) -> Final:
    return Final(utterance, "x", [], [], UtteranceTimings(stop, ready, engine_ms, engine_ms))


def test_percentiles_and_typed(caplog: pytest.LogCaptureFixture) -> None:
    log = LatencyLog()
    assert log.format() == "no utterances"
    caplog.set_level(logging.INFO, logger="perch.latency")
    for i in range(1, 21):
        log.add_final(final(i, 100.0 + i, 100.0 + i + i / 1000, i / 2))
    log.add_typed(3, 103.010)
    log.add_typed(99, 1.0)  # unknown utterance: ignored
    summary = log.summary()
    assert summary["utterances"] == 20
    assert summary["stop_to_final_ms_p50"] == pytest.approx(10.5, abs=0.06)
    assert summary["stop_to_final_ms_p95"] == pytest.approx(19.05, abs=0.06)
    assert summary["overhead_ms_p50"] == pytest.approx(5.25, abs=0.06)
    assert summary["stop_to_typed_ms_p50"] == pytest.approx(10.0, abs=0.06)
    assert "p50" in caplog.text and "over 20" in caplog.text
    assert "stop → typed" in log.format()
