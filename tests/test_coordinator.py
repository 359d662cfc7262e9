"""The dictation state machine as a pure function: every input in every state."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.coordinator import (
    Action,
    Cancel,
    CancelCapture,
    CaptureFailed,
    Ending,
    EngineIdle,
    FinalText,
    Input,
    ModelFailed,
    ModelLoaded,
    ModelLoading,
    Notify,
    Phase,
    Press,
    Release,
    StartCapture,
    Started,
    State,
    StopCapture,
    Toggle,
    Typed,
    TypeText,
    TypingFailed,
    UtteranceFailed,
    ending,
    step,
)


def run(events: Sequence[Input], state: State | None = None) -> tuple[State, list[Action]]:
    state = state or State()
    actions: list[Action] = []
    for event in events:
        state, more = step(state, event)
        actions += more
    return state, actions


READY = run([ModelLoaded()])[0]


def test_push_to_talk_round_trip() -> None:
    state, actions = run([Press(), Started(1)], READY)
    assert state.phase is Phase.RECORDING and actions == [StartCapture()]
    state, actions = run([Release()], state)
    assert state.phase is Phase.TRANSCRIBING and actions == [StopCapture()]
    state, actions = run([FinalText(1, "hello world")], state)
    assert state.phase is Phase.TYPING and actions == [TypeText(1, "hello world")]
    state, actions = run([Typed(1)], state)
    assert state.phase is Phase.IDLE and actions == [] and state == READY


def test_phases_from_the_start() -> None:
    assert State().phase is Phase.LOADING
    assert READY.phase is Phase.IDLE
    failed, actions = run([ModelFailed("the model file is corrupt")])
    assert failed.phase is Phase.ERROR and actions == [Notify("model", "the model file is corrupt")]
    assert run([ModelLoading()], failed)[0].phase is Phase.LOADING


def test_double_press_and_key_repeat_are_one_press() -> None:
    state, actions = run([Press(), Press(), Started(1), Press()], READY)
    assert actions == [StartCapture()]
    state, actions = run([Release(), Release()], state)
    assert actions == [StopCapture()]


def test_release_without_press_does_nothing() -> None:
    assert run([Release()], READY) == (READY, [])


def test_press_and_release_before_the_model_is_ready() -> None:
    state, actions = run([Press(), Started(1), Release()])
    assert actions == [StartCapture(), StopCapture()]
    assert state.phase is Phase.TRANSCRIBING  # the audio waits for the model
    state, actions = run([ModelLoaded(), FinalText(1, "yes")], state)
    assert actions == [TypeText(1, "yes")]


def test_model_failure_refuses_new_recordings_and_says_why() -> None:
    state, _ = run([ModelFailed("no model: run perch models download")])
    state, actions = run([Press()], state)
    assert not state.capturing and actions == [Notify("model", "no model: run perch models download")]


def test_model_failure_while_transcribing_leaves_the_wait_to_the_engine() -> None:
    state, _ = run([Press(), Started(1), Release(), ModelFailed("broken")])
    assert state.phase is Phase.TRANSCRIBING
    state, actions = run([UtteranceFailed(1, "transcription failed; audio kept at x.wav")], state)
    assert state.phase is Phase.ERROR
    assert actions == [Notify("transcription", "transcription failed; audio kept at x.wav")]


def test_press_while_transcribing_starts_the_next_utterance() -> None:
    state, _ = run([Press(), Started(1), Release()], READY)
    state, actions = run([Press(), Started(2)], state)
    assert state.phase is Phase.RECORDING and actions == [StartCapture()]
    state, actions = run([FinalText(1, "one")], state)
    assert actions == [TypeText(1, "one")] and state.phase is Phase.RECORDING
    state, actions = run([Typed(1), Release(), FinalText(2, "two"), Typed(2)], state)
    assert [a for a in actions if isinstance(a, TypeText)] == [TypeText(2, "two")]
    assert state.phase is Phase.IDLE


def test_texts_are_typed_in_the_order_spoken() -> None:
    state, _ = run([Press(), Started(1), Release(), Press(), Started(2), Release()], READY)
    state, actions = run([FinalText(2, "second")], state)
    assert actions == []  # the first is still being transcribed
    state, actions = run([FinalText(1, "first")], state)
    assert actions == [TypeText(1, "first")]
    state, actions = run([Typed(1)], state)
    assert actions == [TypeText(2, "second")]


def test_no_speech_ends_quietly() -> None:
    state, actions = run([Press(), Started(1), Release(), EngineIdle()], READY)
    assert state.phase is Phase.IDLE and actions == [StartCapture(), StopCapture()]


def test_cancel_while_recording() -> None:
    state, actions = run([Press(), Started(1), Cancel()], READY)
    assert state.phase is Phase.IDLE and actions == [StartCapture(), CancelCapture()]
    state, actions = run([FinalText(1, "should not be typed")], state)
    assert actions == [] and state.phase is Phase.IDLE and not state.dropped


def test_cancel_while_transcribing_drops_the_final() -> None:
    state, _ = run([Press(), Started(1), Release(), Cancel()], READY)
    assert state.phase is Phase.IDLE
    state, actions = run([FinalText(1, "dropped")], state)
    assert actions == []


def test_cancel_while_typing_lets_the_typing_finish() -> None:
    state, _ = run([Press(), Started(1), Release(), FinalText(1, "a")], READY)
    state, actions = run([Cancel()], state)
    assert state.phase is Phase.TYPING and actions == []
    assert run([Typed(1)], state)[0].phase is Phase.IDLE


def test_toggle_mode_and_tray_click() -> None:
    state, actions = run([Toggle(), Started(1)], READY)
    assert state.phase is Phase.RECORDING and actions == [StartCapture()]
    assert run([Release()], state)[1] == []  # a key release does not stop a toggled recording
    state, actions = run([Toggle()], state)
    assert actions == [StopCapture()] and state.phase is Phase.TRANSCRIBING


def test_hands_free_finals_arrive_while_listening() -> None:
    state, _ = run([Toggle(), Started(1), FinalText(1, "first"), Typed(1), Started(2), FinalText(2, "second")], READY)
    assert state.phase is Phase.RECORDING  # still listening
    assert state.typing == 2


def test_failures_are_notified_and_recover() -> None:
    state, actions = run([Press(), Started(1), Release(), UtteranceFailed(1, "engine failed")], READY)
    assert state.phase is Phase.IDLE and actions[-1] == Notify("transcription", "engine failed")
    typing_failed: list[Input] = [Press(), Started(2), Release(), FinalText(2, "x"), TypingFailed(2, "clipboard")]
    state, actions = run(typing_failed, READY)
    assert state.phase is Phase.IDLE and actions[-1] == Notify("typing", "clipboard")
    state, actions = run([Press(), CaptureFailed("no microphone")], READY)
    assert state.phase is Phase.IDLE and actions[-1] == Notify("microphone", "no microphone")


@pytest.mark.parametrize(
    "prefix",
    [
        [],
        [ModelLoaded()],
        [ModelFailed("x")],
        [ModelLoaded(), Press(), Started(1)],
        [ModelLoaded(), Press(), Started(1), Release()],
        [ModelLoaded(), Press(), Started(1), Release(), FinalText(1, "t")],
    ],
)
def test_every_input_in_every_state_is_handled(prefix: list[Input]) -> None:
    base, _ = run(prefix)
    inputs: list[Input] = [
        ModelLoading(),
        ModelLoaded(),
        ModelFailed("m"),
        Press(),
        Release(),
        Toggle(),
        Cancel(),
        Started(7),
        FinalText(7, "z"),
        FinalText(1, "t"),
        UtteranceFailed(1, "f"),
        EngineIdle(),
        Typed(1),
        TypingFailed(1, "c"),
        CaptureFailed("mic"),
    ]
    for event in inputs:
        state, actions = step(base, event)
        assert isinstance(state.phase, Phase)
        assert all(not isinstance(a, TypeText) or a.text for a in actions)


def endings(events: Sequence[Input], state: State | None = None) -> list[Ending | None]:
    """How each step ended an utterance (None where it ended none)."""
    state = state or State()
    found: list[Ending | None] = []
    for event in events:
        after, _ = step(state, event)
        found.append(ending(state, event, after))
        state = after
    return found


def test_how_an_utterance_ended() -> None:
    typed: list[Input] = [Press(), Started(1), Release(), FinalText(1, "a"), Typed(1)]
    assert endings(typed, READY) == [None, None, None, None, Ending("typed")]
    clipboard: list[Input] = [Press(), Started(1), Release(), FinalText(1, "a"), TypingFailed(1, "no typist")]
    assert endings(clipboard, READY)[-1] == Ending("clipboard", "no typist")
    assert endings([Press(), Started(1), Cancel()], READY)[-1] == Ending("cancelled")
    assert endings([Press(), Started(1), Release(), Cancel()], READY)[-1] == Ending("cancelled")
    assert endings([Press(), Started(1), Release(), EngineIdle()], READY)[-1] == Ending("no speech")
    assert endings([Press(), Started(1), Release(), FinalText(1, "")], READY)[-1] == Ending("no speech")
    failed = endings([Press(), Started(1), Release(), UtteranceFailed(1, "engine failed")], READY)
    assert failed[-1] == Ending("failed", "engine failed")
    assert endings([Press(), Started(1), CaptureFailed("unplugged")], READY)[-1] == Ending("failed", "unplugged")
    # Hands-free: stopped between utterances, after one was typed.
    hands_free: list[Input] = [Toggle(), Started(1), FinalText(1, "a"), Typed(1), Toggle()]
    assert endings(hands_free, READY)[-2:] == [Ending("typed"), Ending("stopped")]
    # A press let go of before the pipeline opened an utterance.
    assert endings([Press(), Release()], READY)[-1] == Ending("stopped")


def test_steps_that_end_nothing() -> None:
    assert endings([Cancel(), EngineIdle(), Release(), CaptureFailed("no microphone")], READY) == [None] * 4
    # Cancel while typing: the text being typed is finished.
    assert endings([Press(), Started(1), Release(), FinalText(1, "a"), Cancel()], READY)[-1] is None
    # The final of a cancelled utterance, and an engine that goes idle after it.
    assert endings([Press(), Started(1), Cancel(), FinalText(1, ""), EngineIdle()], READY)[-2:] == [None, None]
    assert endings([ModelLoading(), ModelFailed("broken"), ModelLoaded()]) == [None] * 3
