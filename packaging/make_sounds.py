"""Write Perch's sound cues (resources/sounds/*.wav): short chimes synthesised from sine partials.

Run `python packaging/make_sounds.py` to rewrite them, or `--out DIR` to write elsewhere. The output depends only
on the numbers below, so running it again gives the same samples.
"""

from __future__ import annotations

import argparse
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 48000
PEAK_DBFS = -12.0
ATTACK_S = 0.004
RELEASE_S = 0.015
OUT = Path(__file__).resolve().parents[1] / "resources" / "sounds"

Signal = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Note:
    """One struck note: when it starts, its pitch, how long it sounds and how fast it fades."""

    start_s: float
    hz: float
    length_s: float
    decay_s: float
    partials: Sequence[tuple[int, float]] = ((1, 1.0), (2, 0.16), (3, 0.05))
    """(multiple of `hz`, relative level) pairs; the upper ones also fade faster."""
    level: float = 1.0


# A rising fifth for start, the same falling for stop, and two low, slightly falling blips for an error.
CUES: dict[str, tuple[Note, ...]] = {
    "start": (Note(0.0, 587.33, 0.070, 0.040), Note(0.048, 880.00, 0.080, 0.045)),
    "stop": (Note(0.0, 880.00, 0.070, 0.040), Note(0.048, 587.33, 0.080, 0.045)),
    "error": (
        Note(0.0, 293.66, 0.045, 0.030, ((1, 1.0), (2, 0.35), (3, 0.15))),
        Note(0.062, 261.63, 0.048, 0.030, ((1, 1.0), (2, 0.35), (3, 0.15))),
    ),
}


def _ramp(n: int) -> Signal:
    """Half a raised cosine from 0 up to (but excluding) 1, over n samples."""
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)


def render(note: Note) -> Signal:
    """The note alone: partials under a gentle attack, an exponential fade and a release to exactly zero."""
    n = round(note.length_s * RATE)
    t = np.arange(n) / RATE
    tone = np.zeros(n)
    for multiple, level in note.partials:
        tone += level * np.sin(2 * np.pi * note.hz * multiple * t) * np.exp(-t * multiple / note.decay_s)
    envelope = np.ones(n)
    attack, release = round(ATTACK_S * RATE), round(RELEASE_S * RATE)
    envelope[:attack] = _ramp(attack)
    envelope[n - release :] = np.cos(0.5 * np.pi * np.arange(1, release + 1) / release) ** 2  # ends on 0
    return note.level * tone * envelope


def synthesise(notes: Sequence[Note]) -> npt.NDArray[np.int16]:
    """Mix the notes, take out any DC, scale to PEAK_DBFS and round to 16-bit samples."""
    end = max(round(note.start_s * RATE) + round(note.length_s * RATE) for note in notes)
    mix = np.zeros(end)
    for note in notes:
        begin = round(note.start_s * RATE)
        sound = render(note)
        mix[begin : begin + len(sound)] += sound
    # The mean comes out as a slow Hann-shaped swell (a few hertz, inaudible) that is zero at both ends.
    swell = np.hanning(end)
    mix -= mix.sum() / swell.sum() * swell
    mix *= 10 ** (PEAK_DBFS / 20) / np.abs(mix).max()
    return np.round(mix * 32767).astype(np.int16)


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> None:
    """16-bit mono PCM at RATE."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write into ({OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, notes in CUES.items():
        samples = synthesise(notes)
        write_wav(args.out / f"{name}.wav", samples)
        print(f"{args.out / f'{name}.wav'}: {len(samples) / RATE * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
