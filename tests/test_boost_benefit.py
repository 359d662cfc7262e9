"""Boosting helps where it should: on noisy espeak-ng dictation, the default strength finds more of the boosted
phrases that were said, inserts almost none that were not, and leaves the other words no worse."""

from __future__ import annotations

from pathlib import Path

import pytest

from stt.boost.phrases import DEFAULT_STRENGTH
from stt.engine import Recognizer
from stt.modelfiles import ModelFiles
from stt.runtime import RuntimeOptions

from . import boost_benefit as bb
from .conftest import Speak


@pytest.fixture(scope="module")
def recognizer(words_model: Path) -> Recognizer:
    return Recognizer(ModelFiles.locate(words_model, "fp32"), RuntimeOptions(device="cpu"))


@pytest.mark.parametrize(("snr", "gain"), [(2.0, 0.05), (0.0, 0.1)])
def test_the_default_strength_helps(recognizer: Recognizer, speak: Speak, snr: float, gain: float) -> None:
    utterances = bb.corpus(speak, 48, seed=1)
    plain = bb.score(recognizer, utterances, 0.0, snr)
    boosted = bb.score(recognizer, utterances, DEFAULT_STRENGTH, snr)
    assert boosted.recall >= plain.recall + gain, (plain, boosted)
    assert boosted.false_insertions <= 0.01, boosted
    assert boosted.other_wer <= plain.other_wer + 0.005, (plain, boosted)


def test_a_clean_recording_is_unchanged(recognizer: Recognizer, speak: Speak) -> None:
    utterances = bb.corpus(speak, 16, seed=2)
    assert bb.score(recognizer, utterances, DEFAULT_STRENGTH, 30.0) == bb.Scores(1.0, 0.0, 0.0)
