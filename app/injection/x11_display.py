"""X11 connections and windows: opening a display, logging X errors, finding the focused client window and
reading its title and class."""

from __future__ import annotations

import logging
from typing import Any

from app.injection.types import InjectionError

log = logging.getLogger("perch.injection")


def _open_display(name: str) -> Any:
    try:
        import Xlib.display
        import Xlib.error
    except ImportError as exc:
        raise InjectionError("typing on X11 needs python-xlib (pip install python-xlib)") from exc
    try:
        return Xlib.display.Display(name or None)
    except (Xlib.error.DisplayError, OSError) as exc:
        raise InjectionError(f"cannot open the X11 display {name}: {exc}") from exc


def _log_x_error(error: Any, request: Any) -> None:
    log.debug("X error: %s", error)


def _has_property(display: Any, window: Any, name: str) -> bool:
    from Xlib import X

    return window.get_property(display.intern_atom(name), X.AnyPropertyType, 0, 0) is not None


def _client_window(display: Any, window: Any) -> Any:
    """The window itself or its nearest ancestor with WM_STATE; else a WM_STATE child of the top-level frame."""
    top = window
    current = window
    while True:
        if _has_property(display, current, "WM_STATE"):
            return current
        tree = current.query_tree()
        parent = tree.parent
        if not parent or isinstance(parent, int) or parent.id == tree.root.id:
            top = current
            break
        current = parent
    found = _find_client_below(display, top, depth=3)
    return found if found is not None else top


def _find_client_below(display: Any, window: Any, depth: int) -> Any:
    if depth == 0:
        return None
    for child in window.query_tree().children:
        if _has_property(display, child, "WM_STATE"):
            return child
    for child in window.query_tree().children:
        found = _find_client_below(display, child, depth - 1)
        if found is not None:
            return found
    return None


def _window_title(display: Any, window: Any) -> str:
    from Xlib import X, Xatom

    prop = window.get_property(display.intern_atom("_NET_WM_NAME"), X.AnyPropertyType, 0, 1024)
    if prop is not None and prop.format == 8:
        return bytes(prop.value).decode("utf-8", "replace")
    prop = window.get_property(Xatom.WM_NAME, X.AnyPropertyType, 0, 1024)
    if prop is not None and prop.format == 8:
        return bytes(prop.value).decode("latin-1")
    return ""


def _wm_class(window: Any) -> tuple[str, ...]:
    from Xlib import X, Xatom

    prop = window.get_property(Xatom.WM_CLASS, X.AnyPropertyType, 0, 1024)
    if prop is None or prop.format != 8:
        return ()
    return tuple(part.decode("latin-1") for part in bytes(prop.value).split(b"\0") if part)
