"""`perch bench --startup`: start-up time and memory of `perch transcribe` beside onnx-asr, each in a fresh process."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PEER = """
import sys, time
started = time.perf_counter()
import onnx_asr, onnxruntime as ort, soundfile
directory, quantization, clip = sys.argv[1], sys.argv[2], sys.argv[3]
options = ort.SessionOptions()
loading = time.perf_counter()
model = onnx_asr.load_model(
    "nemo-conformer-tdt", directory, quantization=None if quantization == "fp32" else quantization,
    sess_options=options, providers=["CPUExecutionProvider"],
)
loaded = time.perf_counter()
audio, rate = soundfile.read(clip, dtype="float32")
model.recognize(audio, sample_rate=rate)
print(f"load {loaded - loading:.3f}", flush=True)
"""
"""onnx-asr as a user would run it: default session options, the CPU, load then one recognition."""

_LOAD = re.compile(r"load (\d+\.\d+) s, warm-up (\d+\.\d+) s")


@dataclass
class Run:
    """One process: wall time from exec to exit, model load (+ warm-up, for Perch), peak RSS."""

    wall_s: float
    ready_s: float
    peak_rss_mb: float


@dataclass
class StartupReport:
    """Runs of each kind, in the order they were made (alternating)."""

    quantization: str
    first: list[Run] = field(default_factory=list)
    later: list[Run] = field(default_factory=list)
    peer: list[Run] = field(default_factory=list)
    cache_bytes: int = 0
    model_bytes: int = 0
    peer_note: str = ""


def _peak_mb(command: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Run a child and return (wall, its own peak RSS in MiB, stdout, stderr)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the largest of all children so far).
    out_file, err_file = process.stdout, process.stderr
    assert out_file is not None and err_file is not None
    out, err = out_file.read(), err_file.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{' '.join(command[:4])} … failed: {last}")
    return wall, usage.ru_maxrss / 1024, out, err


def _folder_bytes(folder: Path) -> int:
    """Disk the folder takes: links (hard or symbolic) to files that live elsewhere are not counted."""
    return sum(
        p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_nlink == 1
    )


def run_startup_bench(
    model: Path, quantization: str, clip: Path, *, rounds: int = 3, with_peer: bool = True
) -> StartupReport:
    """Per round: `perch transcribe CLIP` on an empty cache (as after a download), again on the cache that run
    left, then onnx-asr loading the same files; every run a new process, so nothing is shared but the OS's
    file cache (warmed by an untimed run of each first)."""
    report = StartupReport(quantization)
    names = (
        ("encoder-model.int8.onnx",) if quantization == "int8" else ("encoder-model.onnx", "encoder-model.onnx.data")
    )
    report.model_bytes = sum((model / name).stat().st_size for name in names if (model / name).is_file())
    perch = [sys.executable, "-m", "app", "transcribe", str(clip), "--model", str(model)]
    perch += ["--quantization", quantization, "--device", "cpu", "--debug"]
    peer = [sys.executable, "-c", PEER, str(model), quantization, str(clip)]
    with tempfile.TemporaryDirectory(prefix="perch-startbench-") as scratch:
        base = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        for index in range(rounds + 1):
            cache = Path(scratch) / f"cache{index}"
            env = dict(base, XDG_CACHE_HOME=str(cache))
            runs: list[tuple[list[Run], list[str]]] = [(report.first, perch), (report.later, perch)]
            if with_peer:
                runs.append((report.peer, peer))
            for kind, command in runs:
                try:
                    wall, rss, out, err = _peak_mb(command, env)
                except RuntimeError as exc:
                    if command is peer:
                        report.peer_note = str(exc)
                        with_peer = False
                        continue
                    raise
                if command is peer:
                    ready = float(out.split("load ")[-1])
                else:
                    found = _LOAD.search(err)
                    ready = float(found[1]) + float(found[2]) if found else float("nan")
                if index > 0:  # round 0 only warms the OS's file cache
                    kind.append(Run(wall, ready, rss))
                if kind is report.first:
                    _wait_for_cache(cache)
            report.cache_bytes = _folder_bytes(cache)
    return report


def _wait_for_cache(cache: Path, timeout: float = 30.0) -> None:
    """What the first run writes in the background may outlive it by a moment; wait until the folder is still."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        size = _folder_bytes(cache) if cache.exists() else 0
        if size == last:
            return
        last = size
        time.sleep(0.5)


def format_startup_report(report: StartupReport) -> str:
    """A table with medians and ratios to onnx-asr."""

    def median(runs: list[Run], key: str) -> float:
        return statistics.median(getattr(r, key) for r in runs) if runs else float("nan")

    peer_ready = median(report.peer, "ready_s")
    peer_wall = median(report.peer, "wall_s")
    peer_rss = max((r.peak_rss_mb for r in report.peer), default=float("nan"))
    lines = [
        f"start-up, {report.quantization}, CPU, {len(report.later)} rounds (medians; peak RSS: the largest run)",
        "| run | wall s | model ready s | ready / onnx-asr load | wall / onnx-asr | peak RSS MiB | RSS / onnx-asr |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in (("Perch, first (empty cache)", report.first), ("Perch, later", report.later)):
        ready, wall = median(runs, "ready_s"), median(runs, "wall_s")
        rss = max((r.peak_rss_mb for r in runs), default=float("nan"))
        lines.append(
            f"| {name} | {wall:.2f} | {ready:.2f} | {ready / peer_ready:.2f} | {wall / peer_wall:.2f} "
            f"| {rss:.0f} | {rss / peer_rss:.2f} |"
        )
    if report.peer:
        lines.append(f"| onnx-asr | {peer_wall:.2f} | {peer_ready:.2f} (load) | 1 | 1 | {peer_rss:.0f} | 1 |")
    else:
        lines.append(f"onnx-asr not run: {report.peer_note or 'asked not to'}")
    share = report.cache_bytes / report.model_bytes if report.model_bytes else 0.0
    lines.append(
        f"cache on disk after the first run: {report.cache_bytes / 1e6:.1f} MB "
        f"({100 * share:.1f}% of the encoder's {report.model_bytes / 1e6:.0f} MB)"
    )
    return "\n".join(lines)
