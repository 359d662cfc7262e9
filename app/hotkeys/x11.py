"""X11: passive key grabs on the root window through python-xlib, read on an event thread.

Each hotkey is grabbed with XGrabKey for every keycode that carries its keysym, once per combination of the lock
modifiers (Caps Lock, Num Lock, Scroll Lock), so that it works whichever locks are on. When the hotkey is pressed
the X server turns the grab into an active keyboard grab that lasts until that key is released, whatever the
modifiers do; so the release of the key always reaches us, also when Ctrl went up first (see `app.hotkeys.base`
for the rule). While the grab is active every key goes to Perch: other keys typed while push-to-talk is held
are swallowed.

Auto-repeat: a held key normally makes the server send a KeyRelease and a KeyPress with the same time stamp
every repeat interval. The backend asks XKB for "detectable auto-repeat" (XkbSetDetectableAutoRepeat, sent as
the raw XkbPerClientFlags request, which python-xlib has no wrapper for): the server then sends only the repeated
KeyPress events, which `PressTracker` swallows. Where XKB is missing it falls back to recognising the pattern: a
KeyRelease of a held key that is followed at once by a KeyPress of the same keycode with the same time stamp is
a repeat, and both are dropped.

When the keyboard mapping changes (another layout, xmodmap) the grabs move to the keys that now carry the
hotkeys' keysyms. Under XWayland these grabs see only keys typed while an X11 window has the focus.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import threading
import time
from collections import deque
from typing import Any

from app.hotkeys.base import Action, Callback, PressTracker, bindings
from app.hotkeys.keys import Hotkey

log = logging.getLogger("perch.hotkeys")

REPEAT_PEEK_S = 0.03
"""Without detectable auto-repeat: how long a release of a held key waits for the KeyPress that would make it an
auto-repeat pair (the server sends both at once, so this only delays real releases in that fallback)."""

REMAP_SETTLE_S = 0.1
"""After a keymap change, how long to wait for the rest of it (xmodmap sends one change per line) before the
hotkeys are grabbed again."""

XKB_USE_CORE_KBD = 0x0100
XKB_PCF_DETECTABLE_AUTO_REPEAT = 1 << 0
XKB_NEW_KEYBOARD_NOTIFY, XKB_MAP_NOTIFY = 1 << 0, 1 << 1
XKB_KEYMAP_CHANGES = 0x07
"""XkbKeyTypesMask | XkbKeySymsMask | XkbModifierMapMask."""


@functools.cache
def _xkb_requests() -> tuple[Any, Any, Any]:
    """XkbUseExtension, XkbPerClientFlags and XkbSelectEvents as python-xlib requests (XKBproto.h layouts)."""
    from Xlib.protocol import rq

    class UseExtension(rq.ReplyRequest):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"),
            rq.Opcode(0),
            rq.RequestLength(),
            rq.Card16("wanted_major"),
            rq.Card16("wanted_minor"),
        )
        _reply = rq.Struct(
            rq.ReplyCode(),
            rq.Bool("supported"),
            rq.Card16("sequence_number"),
            rq.Card32("length"),
            rq.Card16("server_major"),
            rq.Card16("server_minor"),
            rq.Pad(20),
        )

    class PerClientFlags(rq.ReplyRequest):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"),
            rq.Opcode(21),
            rq.RequestLength(),
            rq.Card16("device_spec"),
            rq.Pad(2),
            rq.Card32("change"),
            rq.Card32("value"),
            rq.Card32("ctrls_to_change"),
            rq.Card32("auto_ctrls"),
            rq.Card32("auto_ctrl_values"),
        )
        _reply = rq.Struct(
            rq.ReplyCode(),
            rq.Card8("device_id"),
            rq.Card16("sequence_number"),
            rq.Card32("length"),
            rq.Card32("supported"),
            rq.Card32("value"),
            rq.Card32("auto_ctrls"),
            rq.Card32("auto_ctrl_values"),
            rq.Pad(8),
        )

    class SelectEvents(rq.Request):  # type: ignore[misc]
        _request = rq.Struct(
            rq.Card8("opcode"),
            rq.Opcode(1),
            rq.RequestLength(),
            rq.Card16("device_spec"),
            rq.Card16("affect_which"),
            rq.Card16("clear"),
            rq.Card16("select_all"),
            rq.Card16("affect_map"),
            rq.Card16("map"),
        )

    return UseExtension, PerClientFlags, SelectEvents


def enable_detectable_repeat(display: Any) -> int | None:
    """Ask the server to send auto-repeat as KeyPress events only, for this connection.

    When it agrees, the connection also selects XKB's keyboard and keymap change events (an XKB client gets no
    core MappingNotify); the XKB event code is returned, else None.
    """
    import Xlib.error

    info = display.query_extension("XKEYBOARD")
    if info is None:
        return None
    use_extension, per_client_flags, select_events = _xkb_requests()
    try:
        used = use_extension(display=display.display, opcode=info.major_opcode, wanted_major=1, wanted_minor=0)
        if not used.supported:
            return None
        flags = per_client_flags(
            display=display.display,
            opcode=info.major_opcode,
            device_spec=XKB_USE_CORE_KBD,
            change=XKB_PCF_DETECTABLE_AUTO_REPEAT,
            value=XKB_PCF_DETECTABLE_AUTO_REPEAT,
            ctrls_to_change=0,
            auto_ctrls=0,
            auto_ctrl_values=0,
        )
        if not flags.supported & flags.value & XKB_PCF_DETECTABLE_AUTO_REPEAT:
            return None
        select_events(
            display=display.display,
            opcode=info.major_opcode,
            device_spec=XKB_USE_CORE_KBD,
            affect_which=XKB_NEW_KEYBOARD_NOTIFY | XKB_MAP_NOTIFY,
            clear=0,
            select_all=XKB_NEW_KEYBOARD_NOTIFY,
            affect_map=XKB_KEYMAP_CHANGES,
            map=XKB_KEYMAP_CHANGES,
        )
        display.sync()
    except Xlib.error.XError as exc:
        log.debug("XKB detectable auto-repeat refused: %s", exc)
        return None
    return int(info.first_event)


def refresh_keymap(display: Any) -> None:
    """Reload python-xlib's copy of the whole keyboard mapping."""
    from Xlib import X
    from Xlib.protocol import event

    first, last = display.display.info.min_keycode, display.display.info.max_keycode
    change = event.MappingNotify(request=X.MappingKeyboard, first_keycode=first, count=last - first + 1)
    display.refresh_keyboard_mapping(change)


def _keycodes(display: Any, keysym_name: str) -> frozenset[int]:
    """The keycodes that type this keysym at a key's first level (any level when none does)."""
    from Xlib import XK

    keysym = XK.string_to_keysym(keysym_name)
    if not keysym:
        return frozenset()
    pairs = list(display.keysym_to_keycodes(keysym))
    first = frozenset(code for code, index in pairs if index in (0, 1))
    return first or frozenset(code for code, _ in pairs)


def _modifier_masks(display: Any) -> tuple[dict[str, int], list[int]]:
    """The mask of each hotkey modifier in the current modifier map, and the masks of the lock modifiers."""
    from Xlib import X

    mapping = [set(row) for row in display.get_modifier_mapping()]

    def mask_of(*names: str) -> int:
        codes: set[int] = set()
        for name in names:
            codes |= _keycodes(display, name)
        for index in range(3, 8):  # Mod1 … Mod5
            if codes & mapping[index]:
                return 1 << index
        return 0

    masks = {
        "ctrl": X.ControlMask,
        "shift": X.ShiftMask,
        "alt": mask_of("Alt_L", "Alt_R") or X.Mod1Mask,
        "super": mask_of("Super_L", "Super_R") or X.Mod4Mask,
    }
    locks = [X.LockMask, mask_of("Num_Lock"), mask_of("Scroll_Lock")]
    return masks, [m for m in dict.fromkeys(locks) if m and m not in masks.values()]


def lock_variants(locks: list[int]) -> list[int]:
    """Every combination of the lock masks, the empty one first."""
    variants = [0]
    for lock in locks:
        variants += [variant | lock for variant in variants]
    return variants


class X11Backend:
    """Global hotkeys on an X11 display (or XWayland, with the limit `limitation` names)."""

    name = "X11 key grab"

    def __init__(
        self, display: str | None = None, *, detectable_repeat: bool = True, limitation: str | None = None
    ) -> None:
        self.display_name = display
        self.limitation = limitation
        """Said with the problems of `register` when hotkeys were grabbed but will not work everywhere."""
        self._want_detectable = detectable_repeat
        self.detectable_repeat = False
        """Whether the server sends auto-repeat as KeyPress events only (else the fallback pattern is used)."""
        self._display: Any = None
        self._xkb_event: int | None = None
        self._wanted: dict[Action, Hotkey] = {}
        self._grabbed: dict[Action, tuple[frozenset[int], int]] = {}
        self._modifier_mask = 0
        self._variants: list[int] = [0]
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake: tuple[int, int] | None = None
        self._pushed_back: deque[Any] = deque()
        self._remap_at: float | None = None
        self._tracker: PressTracker | None = None
        self._on_problem: Callback | None = None

    @property
    def repeats(self) -> int:
        """Auto-repeat events swallowed since `start`."""
        return self._tracker.repeats if self._tracker is not None else 0

    def grabbed_keycodes(self) -> dict[str, frozenset[int]]:
        """The keycodes grabbed now for each hotkey (they follow keymap changes)."""
        return {action: codes for action, (codes, _mask) in dict(self._grabbed).items()}

    def _name(self) -> str:
        return self.display_name or os.environ.get("DISPLAY", "")

    def problem(self) -> str | None:
        """No python-xlib, no display, or a display that does not answer."""
        if self._display is not None:
            return None
        display, problem = self._open()
        if display is not None:
            display.close()
        return problem

    def _open(self) -> tuple[Any, str | None]:
        """A new connection to the display, or why there is none."""
        try:
            import Xlib.display
            import Xlib.error
        except ImportError:
            return None, "global hotkeys on X11 need python-xlib (pip install python-xlib)"
        name = self._name()
        if not name:
            return None, "there is no X11 display for global hotkeys (DISPLAY is not set)"
        try:
            return Xlib.display.Display(name), None
        except (Xlib.error.DisplayError, OSError) as exc:
            return None, f"cannot open the X11 display {name} for global hotkeys: {exc}"

    def register(self, ptt: Hotkey | None, toggle: Hotkey | None) -> list[str]:
        """Grab the hotkeys on the root window; a problem for each that is taken or missing from the layout."""
        if self._thread is not None:
            raise RuntimeError("stop() the hotkeys before registering others")
        self._close()
        chosen, problems = bindings(ptt, toggle)
        if not chosen:
            return problems
        display, problem = self._open()
        if problem is not None:
            return [*problems, problem]
        self._display = display
        self._xkb_event = enable_detectable_repeat(display) if self._want_detectable else None
        self.detectable_repeat = self._xkb_event is not None
        if not self.detectable_repeat:
            log.info("X11 hotkeys: no XKB detectable auto-repeat; recognising repeats by their time stamps")
        self._wanted = chosen
        problems += self._grab_all()
        if self.limitation and self._grabbed:
            problems.append(self.limitation)
        return problems

    def start(self, on_press: Callback, on_release: Callback, on_problem: Callback | None = None) -> None:
        """Read key events on a thread of its own; the callbacks run there."""
        if self._thread is not None:
            raise RuntimeError("the hotkeys are already started")
        self._tracker = PressTracker(on_press, on_release)
        self._on_problem = on_problem
        if self._display is None:
            return
        self._stopping.clear()
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="perch-hotkeys-x11", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the event thread (a press still held gets its release there), then ungrab and disconnect."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            if self._wake is not None:
                os.write(self._wake[1], b"x")
            thread.join(timeout=5)
            if thread.is_alive():
                log.warning("the X11 hotkey thread did not stop")
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        self._close()

    # Grabs.

    def _plan(self) -> tuple[dict[Action, tuple[frozenset[int], int]], list[str]]:
        """Keycodes and modifier mask for each wanted hotkey under the current keyboard mapping."""
        masks, locks = _modifier_masks(self._display)
        self._modifier_mask = 0
        for mask in masks.values():
            self._modifier_mask |= mask
        self._variants = lock_variants(locks)
        plan: dict[Action, tuple[frozenset[int], int]] = {}
        problems: list[str] = []
        for action, hotkey in self._wanted.items():
            codes = _keycodes(self._display, hotkey.keysym_name)
            if not codes:
                problems.append(f"{hotkey} cannot be used: the keyboard layout has no {hotkey.key} key")
                continue
            mask = 0
            for modifier in hotkey.modifiers:
                mask |= masks[modifier]
            plan[action] = (codes, mask)
        return plan, problems

    def _grab_all(self) -> list[str]:
        import Xlib.error
        from Xlib import X

        plan, problems = self._plan()
        root = self._display.screen().root
        for action, (codes, mask) in plan.items():
            catcher = Xlib.error.CatchError()
            for code in sorted(codes):
                for variant in self._variants:
                    root.grab_key(code, mask | variant, False, X.GrabModeAsync, X.GrabModeAsync, onerror=catcher)
            self._display.sync()
            error = catcher.get_error()
            if error is None:
                self._grabbed[action] = (codes, mask)
                continue
            self._ungrab(codes, mask)
            hotkey = self._wanted[action]
            if isinstance(error, Xlib.error.BadAccess):
                problems.append(f"{hotkey} is already taken by another program; choose another hotkey in the settings")
            else:
                problems.append(f"{hotkey} could not be grabbed: {error}")
        return problems

    def _ungrab(self, codes: frozenset[int], mask: int) -> None:
        import Xlib.error

        root = self._display.screen().root
        catcher = Xlib.error.CatchError()
        for code in codes:
            for variant in self._variants:
                root.ungrab_key(code, mask | variant, onerror=catcher)

    def _regrab_if_changed(self) -> None:
        """After a keyboard or modifier mapping change: grab the hotkeys' new keycodes, if they moved."""
        import Xlib.error

        plan, _ = self._plan()
        if plan == self._grabbed:
            return
        for codes, mask in self._grabbed.values():
            with contextlib.suppress(Xlib.error.XError):
                self._ungrab(codes, mask)
        self._grabbed = {}
        problems = self._grab_all()
        if problems and self._on_problem is not None:
            self._on_problem("; ".join(problems))

    def _close(self) -> None:
        """Ungrab everything and disconnect."""
        if self._display is not None:
            import Xlib.error

            with contextlib.suppress(Xlib.error.ConnectionClosedError, OSError):
                for codes, mask in self._grabbed.values():
                    self._ungrab(codes, mask)
                self._display.sync()
            with contextlib.suppress(Xlib.error.ConnectionClosedError, OSError):
                self._display.close()
        self._display = None
        self._grabbed = {}
        self._pushed_back.clear()
        self._remap_at = None

    # The event thread.

    def _run(self) -> None:
        import Xlib.error

        tracker = self._tracker
        assert tracker is not None and self._wake is not None
        try:
            fd = self._display.fileno()
            while not self._stopping.is_set():
                if self._remap_at is not None and time.monotonic() >= self._remap_at:
                    self._remap_at = None
                    self._regrab_if_changed()
                event = self._next_event()
                if event is None:
                    wait = None if self._remap_at is None else max(0.0, self._remap_at - time.monotonic())
                    select.select([fd, self._wake[0]], [], [], wait)
                    continue
                self._handle(event, tracker)
        except (Xlib.error.ConnectionClosedError, OSError) as exc:
            log.warning("X11 hotkeys: the connection closed: %s", exc)
            self._display = None
            self._grabbed = {}
            tracker.release_all()
            if self._on_problem is not None:
                self._on_problem("the X11 connection closed; global hotkeys stopped working")
        except Exception as exc:
            log.exception("X11 hotkeys failed")
            tracker.release_all()
            if self._on_problem is not None:
                self._on_problem(f"global hotkeys stopped working: {exc}")
        finally:
            tracker.release_all()

    def _next_event(self) -> Any:
        if self._pushed_back:
            return self._pushed_back.popleft()
        if self._display.pending_events():
            return self._display.next_event()
        return None

    def _handle(self, event: Any, tracker: PressTracker) -> None:
        from Xlib import X

        if event.type == X.KeyPress:
            tracker.down(event.detail, self._match(event.detail, event.state))
        elif event.type == X.KeyRelease:
            if not tracker.is_held(event.detail):
                return
            if not self.detectable_repeat and self._repeat_follows(event):
                tracker.down(event.detail, None)  # counted as a repeat
                return
            tracker.up(event.detail)
        elif event.type == X.MappingNotify:
            if event.request == X.MappingKeyboard:
                self._display.refresh_keyboard_mapping(event)
            if event.request in (X.MappingKeyboard, X.MappingModifier):
                self._remap_soon()
        elif event.type == self._xkb_event:  # XKB: a new keyboard or a keymap change
            refresh_keymap(self._display)
            self._remap_soon()

    def _remap_soon(self) -> None:
        if self._remap_at is None:
            self._remap_at = time.monotonic() + REMAP_SETTLE_S

    def _match(self, keycode: int, state: int) -> Action | None:
        """The hotkey this key completes with the modifiers in `state` (lock modifiers ignored)."""
        held = state & self._modifier_mask
        for action, (codes, mask) in self._grabbed.items():
            if keycode in codes and held == mask:
                return action
        return None

    def _repeat_follows(self, release: Any) -> bool:
        """Whether a KeyPress of the same key with the same time stamp follows (consumed), or not (kept)."""
        assert self._wake is not None
        deadline = time.monotonic() + REPEAT_PEEK_S
        following = self._next_event()
        while following is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([self._display.fileno()], [], [], remaining)
            following = self._next_event()
        from Xlib import X

        if following.type == X.KeyPress and following.detail == release.detail and following.time == release.time:
            return True
        self._pushed_back.appendleft(following)
        return False
