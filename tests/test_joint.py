"""The joint runner: windows of frames where they serve the decoder's next visits, single frames where not,
with the same logits either way."""

from __future__ import annotations

import numpy as np
import pytest

from stt import joint
from stt.engine import Recognizer
from stt.joint import WINDOW, JointRunner
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

from .modelgen import ModelDims, build_model


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Recognizer:
    folder = build_model(tmp_path_factory.mktemp("joint"), ModelDims(enc_dim=64, pred_hidden=32, vocab_size=40))
    return Recognizer(ModelFiles.locate(folder, "fp32"), RuntimeOptions(device="cpu", cache_optimized=False))


def runner(recognizer: Recognizer) -> JointRunner:
    fresh = JointRunner(recognizer._decoder, recognizer.shape, "cpu", WINDOW)
    fresh.set_frames(np.random.default_rng(0).normal(0, 1, (recognizer.shape.encoder_channels, 40)).astype(np.float32))
    return fresh


def test_a_frame_has_the_same_logits_from_a_window_and_alone(recognizer: Recognizer) -> None:
    wide, single = runner(recognizer), runner(recognizer)
    single._width = 1
    single._window = 1  # never switches
    for frame in (0, 5, 33, 39):
        for last_token in (recognizer.vocab.blank_id, 3):
            a, _ = wide(frame, last_token, wide.reset_state())
            b, _ = single(frame, last_token, single.reset_state())
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_single_frames_when_every_visit_emits_and_windows_when_blanks_run(recognizer: Recognizer) -> None:
    run = runner(recognizer)
    state, token = run.reset_state(), recognizer.vocab.blank_id
    for frame in range(40):  # a token on every frame: a window never serves the next visit
        _, state = run(frame, token, state)
        token = (token + 1) % recognizer.vocab.blank_id
    assert run._width == 1
    state = run.reset_state()
    for _ in range(20):  # blanks only: every later visit lies in the window of the last call
        for frame in range(0, 40, 2):
            run(frame, token, state)
    assert run._width == WINDOW


def test_tokens_do_not_depend_on_the_choice(recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch) -> None:
    audio = np.random.default_rng(3).normal(0, 0.1, 16000 * 8).astype(np.float32)
    adaptive = recognizer.transcribe(audio).token_ids
    for cost in (1e-6, 1e6):  # windows always, single frames always
        monkeypatch.setattr(joint, "WINDOW_COST", cost)
        recognizer._joint._width = WINDOW if cost < 1 else 1
        assert recognizer.transcribe(audio).token_ids == adaptive
