"""Write packaging/windows/perch.ico: Perch's idle tray icon (resources/icons/perch-idle.svg) in Windows' sizes.

Run `python packaging/windows/make_icon.py` (Qt draws the SVG offscreen; nothing else is needed) to rewrite it, or
`--out FILE` to write elsewhere. The sizes below 256 are stored as 32-bit bitmaps with an alpha channel, which
every Windows tool reads; 256 is stored as PNG, the form Windows uses for its largest icons.
"""

from __future__ import annotations

import argparse
import os
import struct
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parents[2]
SVG = ROOT / "resources" / "icons" / "perch-idle.svg"
OUT = Path(__file__).resolve().parent / "perch.ico"
SIZES = (16, 24, 32, 48, 64, 256)
PNG_FROM = 256
"""Entries this large or larger are PNG; smaller ones are bitmaps."""


def render(svg: Path, size: int, margin: float = 0.0) -> QImage:
    """The SVG drawn into a transparent `size` x `size` image (straight alpha), `margin` of the side left empty."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not an SVG image Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    inset = size * margin
    renderer.render(painter, QRectF(inset, inset, size - 2 * inset, size - 2 * inset))
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_bytes(image: QImage) -> bytes:
    """The image encoded as PNG."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise OSError(f"Qt could not encode a PNG: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


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
    out.write_bytes(ico_bytes([render(svg, size) for size in sorted(sizes)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=SVG, help="source image (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="icon file to write (default: %(default)s)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication.instance() or QGuiApplication([])
    write_icon(args.out, args.svg)
    del app
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sizes {', '.join(map(str, SIZES))})")


if __name__ == "__main__":
    main()
