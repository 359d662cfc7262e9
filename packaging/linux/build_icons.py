"""Render Perch's app icon into a hicolor icon theme tree: PNGs from 16 to 512 pixels plus the scalable SVG.

    python packaging/linux/build_icons.py OUT_DIR

writes OUT_DIR/hicolor/<N>x<N>/apps/<app id>.png for every size and OUT_DIR/hicolor/scalable/apps/<app id>.svg.
The source is resources/icons/perch-idle.svg, drawn with Qt's SVG renderer on the offscreen platform, so no
display is needed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

APP_ID = "io.github.perch.Perch"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # packaging/, for the shared drawing code
from icon_render import SVG as SOURCE  # noqa: E402
from icon_render import gui_application, png_bytes, render  # noqa: E402


def build(out: Path, svg: Path = SOURCE, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Write the whole hicolor tree under `out`; the files written."""
    gui_application()
    written = []
    for size in sizes:
        target = out / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png_bytes(render(svg, size)))
        written.append(target)
    scalable = out / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, scalable)
    written.append(scalable)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: the output folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder that receives hicolor/")
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
