"""A private PulseAudio daemon with a null sink whose monitor is the default microphone.

Sound played into the sink with `paplay` comes back through PortAudio's ALSA "pulse" and "default"
devices (the ALSA PulseAudio plugin from libasound2-plugins), so a machine without a sound card can
test real capture. A test module gets the `pulse_mic` fixture with
`from tests.pulse import pulse_mic_fixture  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SINK = "perch_test_sink"
SOURCE = f"{SINK}.monitor"
SINK_RATE = 48000


def _tied(command: list[str]) -> list[str]:
    """The command set to get SIGTERM when the test process dies, so that no daemon outlives a killed run."""
    return ["setpriv", "--pdeathsig", "TERM", "--", *command] if shutil.which("setpriv") else command


class PulseMic:
    """Handle on the running daemon: play into the sink, remove and restore it."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.sink_module: str | None = None
        self._warm: subprocess.Popen[bytes] | None = None

    def pactl(self, *args: str) -> str:
        """Run pactl against this daemon and return its output."""
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def play(self, path: str | os.PathLike[str]) -> None:
        """Play a sound file into the sink and return when it has been played."""
        subprocess.run(["paplay", f"--device={SINK}", str(path)], env=self.env, check=True, timeout=60)

    def play_async(self, path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start playing a sound file into the sink; wait on the returned process."""
        return subprocess.Popen(["paplay", f"--device={SINK}", str(path)], env=self.env)

    def add_sink(self) -> None:
        """Load the null sink, make its monitor the default source and keep it rendering."""
        self.sink_module = self.pactl(
            "load-module", "module-null-sink", f"sink_name={SINK}", f"rate={SINK_RATE}", "channels=2"
        ).strip()
        self.pactl("set-default-sink", SINK)
        self.pactl("set-default-source", SOURCE)
        # An idle null sink renders in 2 s chunks, so a new recorder would wait up to 2 s for its first
        # block; a low-latency recorder that stays connected keeps it rendering every few milliseconds.
        # Its first bytes still take up to 2 s: wait for them, so that the tests need not.
        self._warm = subprocess.Popen(
            _tied(["parec", "--raw", "--latency-msec=10", f"--device={SOURCE}"]),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        rendering = threading.Event()
        threading.Thread(target=_discard, args=(self._warm, rendering), name="parec-drain", daemon=True).start()
        if not rendering.wait(5):
            raise RuntimeError(f"the null sink {SINK} did not start rendering within 5 s")

    def suspend(self, suspended: bool) -> None:
        """Suspend or resume the sink: its monitor stops delivering without going away."""
        self.pactl("suspend-sink", SINK, "1" if suspended else "0")

    def remove_sink(self) -> None:
        """Unload the null sink: every stream recording from it loses its device."""
        if self.sink_module is not None:
            self.pactl("unload-module", self.sink_module)
            self.sink_module = None
        self._stop_warm()

    def _stop_warm(self) -> None:
        if self._warm is not None:
            self._warm.terminate()
            try:
                self._warm.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._warm.kill()
                self._warm.wait()
            self._warm = None


def _discard(process: subprocess.Popen[bytes], rendering: threading.Event) -> None:
    """Read and drop what the keep-warm recorder writes; set `rendering` at its first bytes."""
    assert process.stdout is not None
    while process.stdout.read(4096):
        rendering.set()


def _missing() -> str | None:
    """Why the daemon cannot run here, with the package to install; None when it can."""
    for tool in ("pulseaudio", "pactl", "paplay", "parec"):
        if shutil.which(tool) is None:
            package = "pulseaudio" if tool == "pulseaudio" else "pulseaudio-utils"
            return f"{tool} is not installed (apt-get install {package})"
    if ctypes.util.find_library("portaudio") is None:
        return "PortAudio is not installed (apt-get install libportaudio2)"
    return None


def _wait_ready(daemon: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            pytest.fail(f"pulseaudio exited with {daemon.returncode}: {log.read_text(errors='replace')[-2000:]}")
        done = subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=10, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"pulseaudio did not answer within 15 s: {log.read_text(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session", name="pulse_mic")
def pulse_mic_fixture() -> Iterator[PulseMic]:
    """A private PulseAudio daemon for the test session; the default microphone hears its null sink."""
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    # A short folder under /tmp: unix socket paths are limited to about 100 characters.
    folder = Path(tempfile.mkdtemp(prefix="perch-pulse-"))
    socket = folder / "native"
    (folder / "runtime").mkdir()
    (folder / "state").mkdir()
    (folder / "home").mkdir()
    client_conf = folder / "client.conf"
    client_conf.write_text("autospawn = no\n")
    script = folder / "default.pa"
    script.write_text(f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket}\n")
    pulse_env = {
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_RUNTIME_PATH": str(folder / "runtime"),
        "PULSE_STATE_PATH": str(folder / "state"),
        "PULSE_CLIENTCONFIG": str(client_conf),
        "PULSE_COOKIE": str(folder / "cookie"),
    }
    env = {**os.environ, **pulse_env}
    log = folder / "pulseaudio.log"
    with log.open("wb") as log_file:
        daemon = subprocess.Popen(
            _tied(
                [
                    "pulseaudio",
                    "--daemonize=no",
                    "--system=no",
                    "-n",
                    f"--file={script}",
                    "--disallow-exit",
                    "--exit-idle-time=-1",
                    "--use-pid-file=no",
                    "--realtime=no",
                    "--high-priority=no",
                    "--log-target=stderr",
                ]
            ),
            env={**env, "HOME": str(folder / "home"), "XDG_CONFIG_HOME": str(folder / "home")},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    mic = PulseMic(folder, env)
    try:
        _wait_ready(daemon, env, log)
        mic.add_sink()
        with pytest.MonkeyPatch.context() as patch:
            for key, value in pulse_env.items():
                patch.setenv(key, value)
            _require_pulse_input()
            yield mic
    finally:
        with contextlib.suppress(Exception):
            mic.remove_sink()
        _stop(daemon)
        shutil.rmtree(folder, ignore_errors=True)


def _require_pulse_input() -> None:
    """Skip unless PortAudio lists the ALSA "pulse" input (the ALSA pulse plugin is installed)."""
    from stt.errors import MicrophoneError
    from stt.microphone import list_input_devices

    try:
        names = [d.name for d in list_input_devices()]
    except MicrophoneError as exc:
        pytest.skip(str(exc))
    if "pulse" not in names:
        pytest.skip(
            f"PortAudio does not list the ALSA 'pulse' input (it lists {names}): "
            "apt-get install libasound2-plugins for the ALSA PulseAudio plugin"
        )
