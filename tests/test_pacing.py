"""Partials by their real cost: encoder speed, the preset a machine affords, and steps within the CPU budget."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from stt.dictation import Dictation, DictationOptions
from stt.engine import Recognizer
from stt.events import Final
from stt.modelfiles import ModelFiles
from stt.pacing import EncoderCost, Pacer, best_plan, plan
from stt.runtime import RuntimeOptions
from stt.streaming import PRESETS
from stt.worker import EngineWorker, WorkerOptions

from .conftest import Speak
from .live import HandSource, Recorder, silence

SLOW = EncoderCost(fixed=0.11, per_second=0.125)
"""The real-size int8 model on a busy 2-core machine."""
FAST = EncoderCost(fixed=0.005, per_second=0.01)
"""A GPU or a fast desktop."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_encoder_cost_is_a_line_through_two_measured_lengths() -> None:
    clock = FakeClock()

    def encode(seconds: float) -> None:
        clock.now += 0.05 + 0.1 * seconds

    cost = EncoderCost.measure(encode, clock=clock)
    assert cost.fixed == pytest.approx(0.05) and cost.per_second == pytest.approx(0.1)
    assert cost.of(3.0) == pytest.approx(0.35)
    # A busier machine shows in the runs that follow.
    slower = cost.updated(2.0, 0.05 + 0.3 * 2.0)
    assert cost.per_second < slower.per_second < 0.3


def test_a_plan_keeps_partials_within_the_budget() -> None:
    for preset in PRESETS.values():
        for cost in (SLOW, FAST):
            p = plan(preset, cost, 0.5)
            assert p.period >= preset.chunk * 0.08 - 1e-9
            assert p.step_cost / p.period <= 0.5 + 1e-3
            assert p.latency >= p.period + preset.right * 0.08


def test_a_slow_machine_gets_the_economy_preset_and_a_fast_one_the_lowest_latency() -> None:
    presets = list(PRESETS.values())
    assert best_plan(presets, SLOW, 0.5).preset.name == "economy"
    assert best_plan(presets, FAST, 0.5).preset.name == "low"
    # On the slow machine the fixed presets re-encode so much that a word would wait far longer.
    assert plan(PRESETS["quality"], SLOW, 0.5).latency > 2 * best_plan(presets, SLOW, 0.5).latency


def test_pacer_spaces_steps_by_their_cost() -> None:
    clock = FakeClock()
    pacer = Pacer(0.5, clock)
    assert pacer.wait() == 0
    pacer.took(0.3)
    assert pacer.wait() == pytest.approx(0.3)
    clock.now += 0.2
    assert pacer.wait() == pytest.approx(0.1)
    pacer.reset()
    assert pacer.wait() == 0
    quarter = Pacer(0.25, clock)
    quarter.took(0.1)
    assert quarter.wait() == pytest.approx(0.3)


class TimedRecognizer:
    """The words model with every encoder call's start and end recorded."""

    def __init__(self, recognizer: Recognizer) -> None:
        self._recognizer = recognizer
        self.calls: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self._recognizer, name)

    def encode(
        self, samples: npt.NDArray[np.float32], run_options: ort.RunOptions | None = None
    ) -> tuple[npt.NDArray[np.float32], int]:
        started = time.monotonic()
        result = self._recognizer.encode(samples, run_options)
        with self._lock:
            self.calls.append((started, time.monotonic(), len(samples)))
        return result


def test_the_worker_paces_partial_steps(words_model: Path, speak: Speak) -> None:
    recognizer = TimedRecognizer(Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu")))
    events = Recorder()
    budget = 0.25
    options = WorkerOptions(partials="low", realtime_budget=budget)
    worker = EngineWorker(lambda: recognizer, events, options)  # type: ignore[arg-type, return-value]
    worker.start()
    source = HandSource(block=640)
    dictation = Dictation(source, worker, events, DictationOptions(mode="ptt"))
    try:
        dictation.open()
        dictation.start()
        speech = np.concatenate([speak("one two three four five six seven eight nine zero"), silence(0.3)])
        for i in range(0, len(speech), 640):
            source.push(speech[i : i + 640])
            time.sleep(0.04)  # real time
        released = time.monotonic()
        dictation.stop()
        final = events.wait_for(Final)[0]
    finally:
        dictation.close()
        worker.close()
    assert final.text == "one two three four five six seven eight nine zero"
    steps = [c for c in recognizer.calls if c[2] <= PRESETS["low"].window_samples and c[1] < released]
    assert len(steps) >= 5
    for (began, ended, _), (following, _, _) in itertools.pairwise(steps):
        # After each step, the next waited at least three times its encoder time (budget 0.25).
        assert following - ended >= (ended - began) * (1 / budget - 1) - 0.002
