"""The dictation state machine: every hotkey, tray click, engine event and typing result goes through `step`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Literal


class Phase(enum.Enum):
    """What the tray shows."""

    LOADING = "loading"
    IDLE = "idle"
    RECORDING = "recording"
    TRANSCRIBING = "transcribing"
    TYPING = "typing"
    ERROR = "error"


# Inputs.


@dataclass(frozen=True)
class ModelLoading:
    """A model (re)load began."""


@dataclass(frozen=True)
class ModelLoaded:
    """The model is ready."""


@dataclass(frozen=True)
class ModelFailed:
    """The model could not be loaded."""

    message: str


@dataclass(frozen=True)
class Press:
    """Push-to-talk key down."""


@dataclass(frozen=True)
class Release:
    """Push-to-talk key up."""


@dataclass(frozen=True)
class Toggle:
    """Toggle key, tray click or `perch toggle`: start when stopped, stop when started."""


@dataclass(frozen=True)
class Cancel:
    """Drop the utterance being recorded, and any final not yet typed."""


@dataclass(frozen=True)
class Started:
    """The pipeline opened utterance `utterance` (it follows a start, or speech in hands-free mode)."""

    utterance: int


@dataclass(frozen=True)
class FinalText:
    """The final text of an utterance."""

    utterance: int
    text: str


@dataclass(frozen=True)
class UtteranceFailed:
    """Transcription of an utterance failed; its audio is kept."""

    utterance: int
    message: str


@dataclass(frozen=True)
class EngineIdle:
    """The engine has nothing in flight: utterances still waiting had no speech."""


@dataclass(frozen=True)
class Typed:
    """The text of an utterance was typed."""

    utterance: int


@dataclass(frozen=True)
class TypingFailed:
    """Typing failed; the text went to the clipboard instead."""

    utterance: int
    message: str


@dataclass(frozen=True)
class CaptureFailed:
    """The microphone could not be opened or was lost."""

    message: str


Input = (
    ModelLoading
    | ModelLoaded
    | ModelFailed
    | Press
    | Release
    | Toggle
    | Cancel
    | Started
    | FinalText
    | UtteranceFailed
    | EngineIdle
    | Typed
    | TypingFailed
    | CaptureFailed
)

# Outputs.


@dataclass(frozen=True)
class StartCapture:
    """Begin an utterance (or hands-free listening)."""


@dataclass(frozen=True)
class StopCapture:
    """End the utterance; the final follows."""


@dataclass(frozen=True)
class CancelCapture:
    """Drop the utterance being recorded."""


@dataclass(frozen=True)
class TypeText:
    """Type an utterance's final text into the window that had focus when it began."""

    utterance: int
    text: str


@dataclass(frozen=True)
class Notify:
    """Tell the person something, as a tray notification; `kind` classifies it."""

    kind: str
    message: str


Action = StartCapture | StopCapture | CancelCapture | TypeText | Notify


@dataclass(frozen=True)
class State:
    """Everything the coordinator knows; the phase follows from it."""

    model_ready: bool = False
    model_error: str | None = None
    capturing: bool = False
    held: bool = False
    """Capture was started by the push-to-talk key (so its release stops it)."""
    utterance: int | None = None
    waiting: tuple[int, ...] = ()
    """Stopped utterances whose final has not been typed yet, oldest first."""
    ready: tuple[tuple[int, str], ...] = ()
    """Finals that arrived while another was being typed."""
    typing: int | None = None
    dropped: frozenset[int] = field(default_factory=frozenset)

    @property
    def phase(self) -> Phase:
        """The state as the tray shows it."""
        if self.capturing:
            return Phase.RECORDING
        if self.typing is not None:
            return Phase.TYPING
        if self.waiting:
            return Phase.TRANSCRIBING
        if self.model_error is not None:
            return Phase.ERROR
        if not self.model_ready:
            return Phase.LOADING
        return Phase.IDLE


def step(state: State, event: Input) -> tuple[State, list[Action]]:
    """The next state and what to do; never raises, whatever arrives in whatever state."""
    if isinstance(event, ModelLoading):
        return replace(state, model_ready=False, model_error=None), []
    if isinstance(event, ModelLoaded):
        return replace(state, model_ready=True, model_error=None), []
    if isinstance(event, ModelFailed):
        return replace(state, model_ready=False, model_error=event.message), [Notify("model", event.message)]
    if isinstance(event, Press):
        return _start(state, held=True)
    if isinstance(event, Release):
        return _stop(state) if state.capturing and state.held else (state, [])
    if isinstance(event, Toggle):
        return _stop(state) if state.capturing else _start(state, held=False)
    if isinstance(event, Cancel):
        return _cancel(state)
    if isinstance(event, Started):
        if not state.capturing:
            return state, []
        return replace(state, utterance=event.utterance), []
    if isinstance(event, FinalText):
        return _final(state, event.utterance, event.text)
    if isinstance(event, UtteranceFailed):
        state = _forget(state, event.utterance)
        return _next_typing(state, [Notify("transcription", event.message)])
    if isinstance(event, EngineIdle):
        # Utterances still waiting ended without speech: nothing to type for them.
        return replace(state, waiting=tuple(u for u in state.waiting if u == state.typing)), []
    if isinstance(event, Typed):
        return _next_typing(_forget(state, event.utterance), [])
    if isinstance(event, TypingFailed):
        return _next_typing(_forget(state, event.utterance), [Notify("typing", event.message)])
    # CaptureFailed
    return replace(state, capturing=False, held=False, utterance=None), [Notify("microphone", event.message)]


def _start(state: State, *, held: bool) -> tuple[State, list[Action]]:
    if state.capturing:
        return state, []  # a repeated press, or key auto-repeat
    if state.model_error is not None:
        return state, [Notify("model", state.model_error)]
    # Recording may start before the model is ready: the audio waits for it.
    return replace(state, capturing=True, held=held, utterance=None), [StartCapture()]


def _stop(state: State) -> tuple[State, list[Action]]:
    waiting = state.waiting
    if state.utterance is not None and state.utterance not in waiting:
        waiting = (*waiting, state.utterance)
    return replace(state, capturing=False, held=False, utterance=None, waiting=waiting), [StopCapture()]


def _cancel(state: State) -> tuple[State, list[Action]]:
    actions: list[Action] = []
    dropped = set(state.dropped)
    if state.capturing:
        actions.append(CancelCapture())
        if state.utterance is not None:
            dropped.add(state.utterance)
    # Finals not yet typed are dropped too; text already being typed is finished.
    dropped.update(u for u in state.waiting if u != state.typing)
    waiting = tuple(u for u in state.waiting if u == state.typing)
    new = replace(
        state, capturing=False, held=False, utterance=None, waiting=waiting, ready=(), dropped=frozenset(dropped)
    )
    return new, actions


def _final(state: State, utterance: int, text: str) -> tuple[State, list[Action]]:
    if utterance in state.dropped:
        return replace(state, dropped=state.dropped - {utterance}), []
    waiting = state.waiting if utterance in state.waiting else (*state.waiting, utterance)
    if utterance == state.utterance and state.capturing:
        # Hands-free: the utterance ended by itself while listening goes on.
        state = replace(state, utterance=None)
    state = replace(state, waiting=waiting, ready=(*state.ready, (utterance, text)))
    return _next_typing(state, [])


def _forget(state: State, utterance: int) -> State:
    return replace(
        state,
        waiting=tuple(u for u in state.waiting if u != utterance),
        ready=tuple(r for r in state.ready if r[0] != utterance),
        typing=None if state.typing == utterance else state.typing,
    )


def _next_typing(state: State, actions: list[Action]) -> tuple[State, list[Action]]:
    """Type the oldest ready final when nothing is being typed, in the order the utterances were spoken."""
    if state.typing is not None or not state.ready:
        return state, actions
    ready = sorted(state.ready)
    utterance, text = ready[0]
    # Wait for an earlier utterance still being transcribed, so that texts never arrive out of order.
    if any(u < utterance for u in state.waiting):
        return state, actions
    if not text:
        return _next_typing(_forget(state, utterance), actions)
    return replace(state, typing=utterance, ready=tuple(ready[1:])), [*actions, TypeText(utterance, text)]


# How a step ended an utterance, for the caption's state line.

EndingKind = Literal["typed", "clipboard", "cancelled", "no speech", "stopped", "failed"]


@dataclass(frozen=True)
class Ending:
    """How an utterance (or a recording) ended."""

    kind: EndingKind
    message: str = ""
    """Why, for `clipboard` and `failed`."""


def ending(before: State, event: Input, after: State) -> Ending | None:
    """How the step from `before` to `after` on `event` ended an utterance or a recording; None when it ended none."""
    others = tuple(u for u in before.waiting if u != before.typing)
    if isinstance(event, Typed) and event.utterance == before.typing:
        return Ending("typed")
    if isinstance(event, TypingFailed) and event.utterance == before.typing:
        return Ending("clipboard", event.message)
    if isinstance(event, UtteranceFailed):
        return Ending("failed", event.message)
    if isinstance(event, CaptureFailed):
        return Ending("failed", event.message) if before.capturing else None
    if isinstance(event, Cancel):
        return Ending("cancelled") if before.capturing or others else None
    if isinstance(event, EngineIdle):
        return Ending("no speech") if others else None
    if isinstance(event, FinalText):
        return Ending("no speech") if not event.text and event.utterance not in before.dropped else None
    if isinstance(event, (Release, Toggle)) and before.capturing and not after.capturing:
        # Stopped before any utterance opened (hands-free between utterances, or a very short press).
        return Ending("stopped") if before.utterance is None else None
    return None
