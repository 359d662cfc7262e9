"""Uploaded audio recognised on the engine worker, one encoder-sized segment per job; a job in progress gives
way to a dictation final (and runs again after it), so dictation never waits behind a request."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from stt.boost.phrases import DEFAULT_STRENGTH, Phrase, compile_vocabulary
from stt.boost.tree import Boost
from stt.engine import SAMPLE_RATE, Recognizer, TranscriptBuilder
from stt.errors import ModelError
from stt.longform import segment_stream
from stt.results import Transcript
from stt.worker import EngineWorker

T = TypeVar("T")


@dataclass(frozen=True)
class _Keep:
    """Leave the recogniser's own boost as it is."""


KEEP = _Keep()
BoostChoice = Boost | _Keep | None
"""A run's boost: a compiled one, none at all, or `KEEP`."""


class WorkerTranscriber:
    """Transcribes requests through an `EngineWorker` (the model is not thread-safe: every run goes through it)."""

    def __init__(self, worker: EngineWorker, model_name: str) -> None:
        self.worker = worker
        self.model_name = model_name

    @property
    def loaded(self) -> bool:
        """Whether the model is ready for requests."""
        return self.worker.ready.is_set() and self.worker.recognizer is not None

    async def segments(
        self, samples: npt.NDArray[np.float32], vocabulary: Sequence[str] = ()
    ) -> AsyncIterator[tuple[Transcript, int]]:
        """Each segment's transcript with the sample where it ends; `vocabulary` is boosted for this request only."""
        recognizer = self.worker.recognizer
        if recognizer is None:
            raise ModelError(f"the model is not loaded ({self.worker.load_error or 'still loading'})")
        boost: BoostChoice = KEEP
        if vocabulary:
            boost = await self._run(functools.partial(compile_boost, tuple(vocabulary)))
        max_samples = int(recognizer.max_segment_seconds * SAMPLE_RATE)
        for start, piece in segment_stream([samples], max_samples):
            part = await self._run_yielding(functools.partial(recognize_with, piece, start / SAMPLE_RATE, boost))
            yield part, start + len(piece)

    async def transcribe(self, samples: npt.NDArray[np.float32], vocabulary: Sequence[str] = ()) -> Transcript:
        """The whole transcript of 16 kHz mono samples."""
        started = time.perf_counter()
        builder: TranscriptBuilder | None = None
        async for part, covered in self.segments(samples, vocabulary):
            builder = builder or TranscriptBuilder(part.device)
            builder.add(part, covered)
        assert builder is not None  # segment_stream always yields at least one piece
        return builder.finish(started)

    async def preview(self, samples: npt.NDArray[np.float32]) -> Transcript | None:
        """A quick transcript of audio still arriving (a partial), run only when the engine has nothing else
        waiting; None when it is busy, or the run failed or gave way to other work."""
        if self.worker.pending():
            return None
        work = functools.partial(recognize_with, samples, 0.0, KEEP)
        try:
            return await asyncio.wrap_future(self.worker.submit_yielding(work, redo=False))
        except Exception:
            return None

    async def _run(self, work: Callable[[Recognizer], T]) -> T:
        return await asyncio.wrap_future(self.worker.submit(work))

    async def _run_yielding(self, work: Callable[[Recognizer, ort.RunOptions], T]) -> T:
        return await asyncio.wrap_future(self.worker.submit_yielding(work))


def compile_boost(texts: tuple[str, ...], recognizer: Recognizer) -> Boost | None:
    phrases = [Phrase(text, where=f"vocabulary entry {i}") for i, text in enumerate(texts, start=1)]
    return compile_vocabulary(phrases, recognizer.phrase_tokenizer().encode, DEFAULT_STRENGTH).boost


def recognize_with(
    samples: npt.NDArray[np.float32],
    offset: float,
    boost: BoostChoice,
    recognizer: Recognizer,
    run_options: ort.RunOptions | None = None,
) -> Transcript:
    """One segment with the request's boost, restoring the recogniser's own afterwards (dictation's vocabulary)."""
    if isinstance(boost, _Keep):
        return recognizer.transcribe_segment(samples, offset, run_options)
    saved = recognizer.boost
    recognizer.boost = boost
    try:
        return recognizer.transcribe_segment(samples, offset, run_options)
    finally:
        recognizer.boost = saved
