"""Write packaging/windows/perch.ico: Perch's idle tray icon (resources/icons/perch-idle.svg) in Windows' sizes.

Run `python packaging/windows/make_icon.py` (Qt draws the SVG offscreen; nothing else is needed) to rewrite it, or
`--out FILE` to write elsewhere. The sizes below 256 are stored as 32-bit bitmaps with an alpha channel, which
every Windows tool reads; 256 is stored as PNG, the form Windows uses for its largest icons.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # packaging/, for the shared drawing code
from icon_render import SVG, gui_application, png_bytes, render

OUT = Path(__file__).resolve().parent / "perch.ico"
SIZES = (16, 24, 32, 48, 64, 256)
PNG_FROM = 256
"""Entries this large or larger are PNG; smaller ones are bitmaps."""


def dib_bytes(image: QImage) -> bytes:
    """The image as an icon bitmap: a BITMAPINFOHEADER, BGRA rows bottom-up, then the 1-bit transparency mask."""
    width, height = image.width(), image.height()
    rows = np.frombuffer(bytes(image.constBits()), np.uint8).reshape(height, image.bytesPerLine())
    pixels = rows[:, : 4 * width][::-1]  # ARGB32 is B, G, R, A in memory: the bitmap's byte order
    mask = np.packbits(pixels[:, 3::4] == 0, axis=1)
    mask = np.pad(mask, ((0, 0), (0, -mask.shape[1] % 4)))
    # The height counts the colour rows and the mask rows together.
    header = struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, 32, 0, pixels.size, 0, 0, 0, 0)
    return header + pixels.tobytes() + mask.tobytes()


def ico_bytes(images: list[QImage]) -> bytes:
    """An ICO file holding the images, smallest first."""
    entries = [(image.width(), png_bytes(image) if image.width() >= PNG_FROM else dib_bytes(image)) for image in images]
    offset = 6 + 16 * len(entries)
    directory = struct.pack("<HHH", 0, 1, len(entries))
    for size, data in entries:
        side = size if size < 256 else 0  # 0 stands for 256
        directory += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return directory + b"".join(data for _, data in entries)


def write_icon(out: Path, svg: Path = SVG, sizes: tuple[int, ...] = SIZES) -> None:
    """Render `svg` at `sizes` and write the ICO file (a Qt GUI application must exist)."""
    straight = [render(svg, size).convertToFormat(QImage.Format.Format_ARGB32) for size in sorted(sizes)]
    out.write_bytes(ico_bytes(straight))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=SVG, help="source image (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="icon file to write (default: %(default)s)")
    args = parser.parse_args()
    app = gui_application()
    write_icon(args.out, args.svg)
    del app
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sizes {', '.join(map(str, SIZES))})")


if __name__ == "__main__":
    main()
