"""The Depends line of Perch's .deb: the Debian packages providing what the bundle takes from the system.

    python packaging/linux/debian_depends.py BUNDLE_DIR

prints one comma-separated line. It reads the shared libraries that the bundle's ELF files name (objdump -p),
keeps those the bundle does not carry, asks dpkg which installed package holds each, and adds the lowest glibc
the bundle runs on (objdump -T) plus the packages Perch loads by name or reads data from. Run it on the Debian
release the .deb is for, after installing those packages (.ci/run's list has them all).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

LOADED_BY_NAME = ("libportaudio2", "xkb-data", "ca-certificates")
"""PortAudio (sounddevice finds it at run time), the keyboard layouts the bundled libxkbcommon reads, and the
certificates that model downloads are checked against."""
LIBRARY_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/")


def elf_files(root: Path) -> Iterator[Path]:
    """Every regular ELF file under `root`."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as file:
                if file.read(4) == b"\x7fELF":
                    yield path


def _objdump(flag: str, path: Path) -> str:
    return subprocess.run(["objdump", flag, str(path)], capture_output=True, text=True, check=False).stdout


def system_libraries(root: Path) -> dict[str, list[Path]]:
    """The libraries named by the bundle's files but not in it, each with the files that name it."""
    carried = {path.name for path in root.rglob("*")}
    found: dict[str, list[Path]] = {}
    for path in elf_files(root):
        for name in re.findall(r"^\s*NEEDED\s+(\S+)", _objdump("-p", path), re.MULTILINE):
            if name not in carried:
                found.setdefault(name, []).append(path)
    return found


def glibc_floor(root: Path) -> tuple[int, int]:
    """The newest glibc symbol version any of the bundle's files uses."""
    floor = (2, 17)
    for path in elf_files(root):
        for major, minor in re.findall(r"GLIBC_(\d+)\.(\d+)", _objdump("-T", path)):
            floor = max(floor, (int(major), int(minor)))
    return floor


def package_of(library: str) -> str:
    """The installed Debian package that holds `library` (a file name such as libEGL.so.1)."""
    done = subprocess.run(["dpkg-query", "-S", f"*/{library}"], capture_output=True, text=True, check=False)
    owners: set[str] = set()
    for line in done.stdout.splitlines():
        packages, _, path = line.partition(": ")
        if Path(path).name == library and path.startswith(LIBRARY_DIRS):
            owners.update(package.strip().split(":")[0] for package in packages.split(","))
    if not owners:
        raise LookupError(f"no installed package holds {library}: install the package that provides it")
    return sorted(owners)[0]


def depends(root: Path) -> list[str]:
    """The Depends entries, glibc first, then the rest sorted."""
    packages = {package_of(library) for library in system_libraries(root)} | set(LOADED_BY_NAME)
    packages.discard("libc6")
    major, minor = glibc_floor(root)
    return [f"libc6 (>= {major}.{minor})", *sorted(packages)]


def main(argv: list[str] | None = None) -> int:
    """Command line: the bundle folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="the PyInstaller one-folder app (dist/perch)")
    args = parser.parse_args(argv)
    try:
        print(", ".join(depends(args.bundle)))
    except LookupError as exc:
        print(f"debian_depends: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
