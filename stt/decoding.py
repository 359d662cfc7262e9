"""Greedy Token-and-Duration Transducer decoding, NeMo's rules, over any joint step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from stt.boost.tree import Boost

S = TypeVar("S")

DEFAULT_DURATIONS = (0, 1, 2, 3, 4)
MAX_SYMBOLS_PER_FRAME = 10


class JointStep(Protocol[S]):
    """One prediction-net + joint evaluation.

    Given an encoder frame index, the last emitted token (blank at the start) and the prediction-net
    state, return the raw joint logits (tokens incl. blank, then durations) and the state after
    consuming that token.
    """

    def __call__(self, frame: int, last_token: int, state: S) -> tuple[npt.NDArray[np.float32], S]: ...


@dataclass
class StepTrace:
    """One decode step, for debugging."""

    frame: int
    token: int
    duration: int
    probability: float


@dataclass
class DecoderState(Generic[S]):
    """What carries over between calls: prediction-net state, last token, frames to skip."""

    state: S
    last_token: int
    frame_offset: int = 0
    boost_state: int = 0
    """Where the phrase-boosting tree stands (its root at the start of an utterance)."""


@dataclass
class Hypothesis:
    """Emitted tokens with their frame, duration (frames) and softmax probability."""

    ids: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)


def _token_probability(token_logits: npt.NDArray[np.float32], best: int) -> float:
    shifted = token_logits - token_logits[best]
    return float(1.0 / np.exp(shifted, dtype=np.float64).sum())


def greedy_tdt(
    step: JointStep[S],
    num_frames: int,
    start: DecoderState[S],
    *,
    blank_id: int,
    durations: Sequence[int] = DEFAULT_DURATIONS,
    max_symbols: int = MAX_SYMBOLS_PER_FRAME,
    trace: Callable[[StepTrace], None] | None = None,
    boost: Boost | None = None,
) -> tuple[Hypothesis, DecoderState[S]]:
    """Decode frames [start.frame_offset, num_frames) greedily.

    Each step takes the argmax over the token slice (incl. blank) and over the duration slice. A
    token updates the state and the last token; a blank does not. Time advances by the duration,
    a blank of duration 0 by one frame, and after `max_symbols` tokens on one frame by one frame.
    The returned state continues decoding on the next chunk of frames; its `frame_offset` is how
    far the last duration ran past this chunk.

    With `boost`, a step whose argmax is not blank re-chooses among the non-blank tokens by `logit + α ·
    tree score` (NeMo's phrase boosting): blank against non-blank and the duration are never changed, and
    the tree state advances on emitted tokens only.
    """
    hyp = Hypothesis()
    token_width = blank_id + 1
    state, last_token, t = start.state, start.last_token, start.frame_offset
    boost_state = start.boost_state
    on_frame = 0
    while t < num_frames:
        logits, next_state = step(t, last_token, state)
        token_logits = logits[:token_width]
        token = int(token_logits.argmax())
        duration = durations[int(logits[token_width:].argmax())]
        if token == blank_id:
            if trace is not None:
                trace(StepTrace(t, token, duration, _token_probability(token_logits, token)))
            t += max(duration, 1)
            on_frame = 0
            continue
        if boost is not None:
            token = boost.choose(token_logits[:blank_id], boost_state)
            boost_state = boost.tree.arcs(boost_state).next_state(token)
        probability = _token_probability(token_logits, token)
        if trace is not None:
            trace(StepTrace(t, token, duration, probability))
        hyp.ids.append(token)
        hyp.frames.append(t)
        hyp.durations.append(duration)
        hyp.probabilities.append(probability)
        state, last_token = next_state, token
        if duration > 0:
            t += duration
            on_frame = 0
        else:
            on_frame += 1
            if on_frame >= max_symbols:
                t += 1
                on_frame = 0
    return hyp, DecoderState(state, last_token, t - num_frames, boost_state)
