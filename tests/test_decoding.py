"""Greedy TDT decoding against a scripted joint: every rule of NeMo's greedy TDT."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from stt.decoding import DecoderState, Hypothesis, StepTrace, greedy_tdt

BLANK = 4  # tokens 0..3, blank 4, then durations 0..4
WIDTH = BLANK + 1 + 5


def logits(token: int, duration: int, margin: float = 5.0) -> npt.NDArray[np.float32]:
    row = np.zeros(WIDTH, dtype=np.float32)
    row[token] = margin
    row[BLANK + 1 + duration] = margin
    return row


@dataclass
class ScriptedJoint:
    """Returns scripted (token, duration) per call; the state is the tuple of tokens consumed."""

    script: list[tuple[int, int]]
    calls: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)

    def __call__(
        self, frame: int, last_token: int, state: tuple[int, ...]
    ) -> tuple[npt.NDArray[np.float32], tuple[int, ...]]:
        self.calls.append((frame, last_token, state))
        token, duration = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else (BLANK, 1)
        return logits(token, duration), (*state, last_token)


State = tuple[int, ...]


def decode(
    joint: ScriptedJoint, frames: int, start: DecoderState[State] | None = None
) -> tuple[Hypothesis, DecoderState[State]]:
    initial: DecoderState[State] = start or DecoderState((), BLANK)
    return greedy_tdt(joint, frames, initial, blank_id=BLANK)


def test_starts_from_blank_and_initial_state() -> None:
    joint = ScriptedJoint([(BLANK, 1)])
    decode(joint, 1)
    assert joint.calls[0] == (0, BLANK, ())


def test_state_and_last_token_change_only_on_tokens() -> None:
    joint = ScriptedJoint([(2, 0), (BLANK, 1), (3, 1), (BLANK, 1)])
    hyp, _ = decode(joint, 3)
    assert hyp.ids == [2, 3]
    # After token 2: the state is the one returned with it; the blank leaves both alone.
    assert joint.calls[1] == (0, 2, (BLANK,))
    assert joint.calls[2] == (1, 2, (BLANK,))
    assert joint.calls[3] == (2, 3, (BLANK, 2))


def test_time_advances_by_duration() -> None:
    joint = ScriptedJoint([(1, 3), (2, 2), (BLANK, 4)])
    hyp, _ = decode(joint, 12)
    assert [c[0] for c in joint.calls[:3]] == [0, 3, 5]
    assert hyp.frames == [0, 3] and hyp.durations == [3, 2]
    assert joint.calls[3][0] == 9


def test_blank_with_duration_zero_advances_one_frame() -> None:
    joint = ScriptedJoint([(BLANK, 0), (BLANK, 0), (1, 1)])
    hyp, _ = decode(joint, 4)
    assert [c[0] for c in joint.calls[:3]] == [0, 1, 2]
    assert hyp.frames == [2]


def test_at_most_ten_symbols_per_frame_then_one_frame_on() -> None:
    joint = ScriptedJoint([(1, 0)] * 25)
    hyp, _ = decode(joint, 3)
    assert hyp.frames == [0] * 10 + [1] * 10 + [2] * 5
    assert hyp.durations == [0] * 25


def test_tenth_symbol_with_a_duration_moves_by_that_duration_only() -> None:
    joint = ScriptedJoint([(1, 0)] * 9 + [(2, 2), (3, 1)])
    hyp, _ = decode(joint, 5)
    assert hyp.frames[:11] == [0] * 10 + [2]


def test_stops_at_encoded_length_and_reports_overshoot() -> None:
    joint = ScriptedJoint([(1, 4), (2, 4)])
    hyp, end = decode(joint, 6)
    assert hyp.frames == [0, 4]
    assert end.frame_offset == 2 and end.last_token == 2
    assert len(joint.calls) == 2


def test_zero_frames_decodes_nothing() -> None:
    joint = ScriptedJoint([])
    hyp, _ = decode(joint, 0)
    assert hyp.ids == [] and joint.calls == []


def test_continues_from_a_carried_state() -> None:
    joint = ScriptedJoint([(3, 1)])
    hyp, _ = decode(joint, 5, DecoderState((7,), 2, frame_offset=2))
    assert joint.calls[0] == (2, 2, (7,))
    assert hyp.frames[0] == 2


def test_argmax_over_separate_slices_and_softmax_probability() -> None:
    row = np.array([0.0, 2.0, 1.0, 0.5, 1.9, 9.0, 0.0, 0.0, 0.0, 3.0], dtype=np.float32)
    calls = iter([row])

    def step(frame: int, last_token: int, state: int) -> tuple[npt.NDArray[np.float32], int]:
        return next(calls, logits(BLANK, 4)), state

    start: DecoderState[int] = DecoderState(0, BLANK)
    hyp, _ = greedy_tdt(step, 1, start, blank_id=BLANK)
    token_logits = row[: BLANK + 1].astype(np.float64)
    expected = np.exp(token_logits[1]) / np.exp(token_logits).sum()
    assert hyp.ids == [1]
    assert hyp.durations == [0]  # duration slice argmax is index 0 (9.0), not the token slice
    assert hyp.probabilities[0] == pytest.approx(expected, rel=1e-6)


def test_trace_sees_every_step() -> None:
    joint = ScriptedJoint([(1, 0), (BLANK, 2)])
    seen: list[StepTrace] = []
    start: DecoderState[State] = DecoderState((), BLANK)
    greedy_tdt(joint, 2, start, blank_id=BLANK, trace=seen.append)
    assert [(s.frame, s.token, s.duration) for s in seen] == [(0, 1, 0), (0, BLANK, 2)]
