"""A private D-Bus session bus that knows no services but the ones a test gives it.

A test module gets the `session_bus` fixture with `from tests.dbus_session import session_bus_fixture  # noqa: F401`;
`private_session_bus` starts further buses, optionally with a folder of D-Bus service files to activate.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  {services}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def private_session_bus(folder: Path, service_dir: Path | None = None) -> Iterator[str]:
    """A dbus-daemon listening in `folder` (ended with the test process where setpriv exists); its address.

    Unlike `dbus-daemon --session`, it activates nothing from the system's service folders, so a portal installed
    on the machine cannot answer in place of a test's fake.
    """
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (apt-get install dbus-daemon)")
    folder.mkdir(parents=True, exist_ok=True)
    services = f"<servicedir>{service_dir}</servicedir>" if service_dir is not None else ""
    config = folder / "bus.conf"
    config.write_text(CONFIG.format(socket=folder / "bus", services=services), encoding="utf-8")
    command = ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"]
    if shutil.which("setpriv"):
        command = ["setpriv", "--pdeathsig", "TERM", "--", *command]
    daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert daemon.stdout is not None
    address = daemon.stdout.readline().decode().strip()
    try:
        assert address, "dbus-daemon did not start"
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        daemon.stdout.close()


@pytest.fixture(name="session_bus")
def session_bus_fixture(tmp_path: Path) -> Iterator[str]:
    """A private D-Bus session bus with no services; its address."""
    with private_session_bus(tmp_path / "dbus") as address:
        yield address
