"""The frozen `perch` executable: the same command line as the installed `perch` script.

Parts of Perch start helper processes as `sys.executable -m app.<module>` (the typing-test window and the
clipboard keeper of `perch doctor`). In a bundle `sys.executable` is this program, so it answers `-m MODULE ARGS`
for Perch's own modules by running that module as `__main__`, the way Python would.
"""

from __future__ import annotations

import runpy
import sys

OWN_PACKAGES = ("app", "stt")


def _module_to_run(argv: list[str]) -> str | None:
    """The module named by a leading `-m MODULE` when it belongs to Perch; None otherwise."""
    if len(argv) >= 2 and argv[0] == "-m" and argv[1].split(".")[0] in OWN_PACKAGES:
        return argv[1]
    return None


def main() -> int:
    """Run `perch ARGS`, or `-m MODULE ARGS` for one of Perch's modules."""
    module = _module_to_run(sys.argv[1:])
    if module is not None:
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from app.cli import main as perch

    return perch()


if __name__ == "__main__":
    sys.exit(main())
