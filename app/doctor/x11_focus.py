"""Giving an X11 window the keyboard focus from outside it, the way a taskbar does."""

from __future__ import annotations

import contextlib

NET_ACTIVE_SOURCE_PAGER = 2
"""_NET_ACTIVE_WINDOW source indication of taskbars and pagers, which window managers obey."""


def activate(display_name: str, window: int) -> None:
    """Ask the window manager to focus `window`; without a window manager, set the input focus directly."""
    import Xlib.display
    import Xlib.error
    from Xlib import X, Xatom
    from Xlib.protocol import event

    try:
        display = Xlib.display.Display(display_name)
    except (Xlib.error.DisplayError, OSError):
        return
    try:
        root = display.screen().root
        active = display.intern_atom("_NET_ACTIVE_WINDOW")
        supported = root.get_full_property(display.intern_atom("_NET_SUPPORTED"), Xatom.ATOM)
        target = display.create_resource_object("window", window)
        if supported is not None and active in supported.value:
            message = event.ClientMessage(
                window=target,
                client_type=active,
                data=(32, [NET_ACTIVE_SOURCE_PAGER, X.CurrentTime, 0, 0, 0]),
            )
            root.send_event(message, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
        else:
            target.set_input_focus(X.RevertToParent, X.CurrentTime)
        display.sync()
    except Xlib.error.XError:
        pass  # the window went away meanwhile
    finally:
        with contextlib.suppress(Exception):
            display.close()
