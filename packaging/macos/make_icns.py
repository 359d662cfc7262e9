"""Write packaging/macos/perch.icns, the app icon of Perch.app, from resources/icons/perch-idle.svg.

Run `python packaging/macos/make_icns.py` on any system (Qt draws the SVG offscreen; `iconutil`, which exists only
on macOS, is not needed) to rewrite it, or `--out FILE` to write elsewhere. Every entry is a PNG, the form macOS
has read for all icon sizes since 10.7. The rounded tile is drawn 824 of 1024 pixels wide, the size of the tile in
Apple's app icon grid, so that Perch lines up with the other icons in Finder and Launchpad.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # packaging/, for the shared drawing code
from icon_render import SVG, gui_application, png_bytes, render

OUT = Path(__file__).resolve().parent / "perch.icns"
ENTRIES = (
    ("icp4", 16),
    ("icp5", 32),
    ("ic11", 32),  # 16 pt at 2x
    ("ic12", 64),  # 32 pt at 2x
    ("ic07", 128),
    ("ic13", 256),  # 128 pt at 2x
    ("ic08", 256),
    ("ic14", 512),  # 256 pt at 2x
    ("ic09", 512),
    ("ic10", 1024),  # 512 pt at 2x
)
"""The ICNS entry types written and the pixel size of each."""
TILE = 824 / 1024
"""The part of the icon's side that the rounded tile covers."""
SVG_TILE = 60 / 64
"""The part of the SVG's side that its rounded tile covers."""


def icns_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    """An ICNS file: the `icns` header, then each entry as type, length (header included) and data."""
    body = b"".join(kind.encode("ascii") + struct.pack(">I", 8 + len(data)) + data for kind, data in entries)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icns(out: Path, svg: Path = SVG) -> None:
    """Render `svg` at every entry's size and write the ICNS file (a Qt GUI application must exist)."""
    margin = (1 - TILE / SVG_TILE) / 2
    pngs = {size: png_bytes(render(svg, size, margin)) for size in {size for _, size in ENTRIES}}
    out.write_bytes(icns_bytes([(kind, pngs[size]) for kind, size in ENTRIES]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=SVG, help="source image (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="icon file to write (default: %(default)s)")
    args = parser.parse_args()
    app = gui_application()
    write_icns(args.out, args.svg)
    del app
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(ENTRIES)} entries)")


if __name__ == "__main__":
    main()
