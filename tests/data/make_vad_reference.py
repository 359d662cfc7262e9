"""Regenerate vad_clip.wav and vad_reference_probs.npy with the Silero project's own ONNX wrapper.

The wrapper needs torch, which Perch never installs, so run this from a separate environment that has torch,
numpy and onnxruntime, with the silero-vad 6.2.3 wheel unpacked on PYTHONPATH (espeak-ng must be installed):

    PYTHONPATH=/path/to/unpacked/silero_vad-6.2.3 /path/to/torch-env/bin/python tests/data/make_vad_reference.py

The clip is espeak-ng speech with pauses, faint deterministic noise and a stretch of exact digital silence.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
MODEL = HERE / "silero_vad.onnx"  # the wheel's one-frame model, which the wrapper runs
CLIP = HERE / "vad_clip.wav"
PROBS = HERE / "vad_reference_probs.npy"
RATE = 16000
FRAME = 512


def speak(text: str, folder: Path) -> npt.NDArray[np.float32]:
    """espeak-ng speech at 16 kHz (resampled from its native rate in the frequency domain)."""
    path = folder / "phrase.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(path), text], check=True)
    with wave.open(str(path)) as file:
        native = file.getframerate()
        pcm = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2").astype(np.float64) / 32768
    length = round(len(pcm) * RATE / native)
    spectrum = np.fft.rfft(pcm)[: length // 2 + 1]
    resampled: npt.NDArray[np.float32] = (np.fft.irfft(spectrum, length) * (length / len(pcm))).astype(np.float32)
    return resampled


def make_clip() -> npt.NDArray[np.float32]:
    """About 8 s: lead-in, three phrases, a noisy gap, digital silence, tail."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first = speak("hello world", folder)
        second = speak("seven three five, two nine", folder)
        third = speak("yes. no. stop. go.", folder)
    gap = np.zeros(int(0.6 * RATE), np.float32)
    lead, tail = np.zeros(int(0.4 * RATE), np.float32), np.zeros(int(0.5 * RATE), np.float32)
    noisy = np.concatenate([lead, first, gap, second])
    noisy = 0.5 * noisy / np.abs(noisy).max()
    noisy += np.random.default_rng(1234).normal(0.0, 0.002, len(noisy)).astype(np.float32)
    silent = np.zeros(RATE, np.float32)
    last = np.concatenate([0.5 * third / np.abs(third).max(), tail])
    last += np.random.default_rng(4321).normal(0.0, 0.002, len(last)).astype(np.float32)
    return np.concatenate([noisy, silent, last]).astype(np.float32)


def write_pcm16(path: Path, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Write 16-bit mono PCM and return the samples exactly as a reader decodes them (int16 / 32768)."""
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
        file.writeframes(pcm.tobytes())
    decoded: npt.NDArray[np.float32] = (pcm / 32768).astype(np.float32)
    return decoded


def reference_probabilities(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Frame-by-frame probabilities from silero_vad.utils_vad.OnnxWrapper (last frame zero-padded)."""
    import torch
    from silero_vad.utils_vad import OnnxWrapper

    model = OnnxWrapper(str(MODEL), force_onnx_cpu=True)
    whole = model.audio_forward(torch.from_numpy(samples), RATE)[0].numpy()
    model.reset_states()
    padded = np.pad(samples, (0, -len(samples) % FRAME))
    stepped = [float(model(torch.from_numpy(padded[i : i + FRAME]), RATE)) for i in range(0, len(padded), FRAME)]
    if not np.array_equal(whole, np.array(stepped, dtype=np.float32)):
        sys.exit("audio_forward and the frame-by-frame call disagree")
    result: npt.NDArray[np.float32] = whole.astype(np.float32)
    return result


def main() -> None:
    samples = write_pcm16(CLIP, make_clip())
    probs = reference_probabilities(samples)
    np.save(PROBS, probs)
    print(f"{CLIP.name}: {len(samples) / RATE:.2f} s, {CLIP.stat().st_size} bytes; {PROBS.name}: {len(probs)} frames")


if __name__ == "__main__":
    main()
