"""Holds clipboard contents that the typing check put back, after the check's own process has ended.

On X11 the clipboard lives in the program that owns it: once the typing check has taken the clipboard, the
person's contents survive the check only if some program keeps serving them. `python -m
app.doctor.clipboard_keeper` reads `{"display": NAME, "formats": {TARGET: [TYPE, FORMAT, BASE64]}}` from stdin,
takes the clipboard with exactly those bytes, prints `owned`, and then either hands them to a clipboard manager
(where one runs) or keeps serving them until another program copies something, as xclip does.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

POLL_S = 0.5


def encode(display: str, formats: Mapping[str, Any]) -> bytes:
    """The stdin payload for a snapshot's formats (`ClipData` values)."""
    payload = {
        "display": display,
        "formats": {
            name: [data.type, data.format, base64.b64encode(data.data).decode()] for name, data in formats.items()
        },
    }
    return json.dumps(payload).encode()


def main() -> int:
    """Take the clipboard, then keep it until someone else takes it."""
    import Xlib.display
    import Xlib.error
    from Xlib import X

    from app.injection import ClipData, X11Clipboard

    payload = json.loads(sys.stdin.buffer.read())
    display_name = str(payload["display"])
    formats = {
        str(name): ClipData(str(kind), int(size), base64.b64decode(data))
        for name, (kind, size, data) in payload["formats"].items()
    }
    clipboard = X11Clipboard(display_name)
    clipboard.offer(formats)
    watch = Xlib.display.Display(display_name)
    selection = watch.intern_atom("CLIPBOARD")
    mine = watch.get_selection_owner(selection)
    print("owned", flush=True)
    sys.stdout.close()
    try:
        if watch.get_selection_owner(watch.intern_atom("CLIPBOARD_MANAGER")) == X.NONE:
            while watch.get_selection_owner(selection) == mine:
                time.sleep(POLL_S)
    except (Xlib.error.ConnectionClosedError, OSError):
        return 0
    finally:
        clipboard.close()  # hands the contents to a clipboard manager while we still own them
    return 0


if __name__ == "__main__":
    sys.exit(main())
