"""Typing: each way this desktop offers of getting text into a window, tried live on a window of Perch's own.

The test window (`app.doctor.probe_window`) runs in a process of its own, takes the focus, and reports what its
text field holds. Each strategy goes through the same `deliver` the app uses, with the focus rule on, so the
test text can only ever land in the test window. The clipboard is saved first and put back at the end.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from app.doctor.checks import Check
from app.doctor.clipboard_guard import ClipboardGuard, WaylandClipboardGuard, X11ClipboardGuard
from app.doctor.context import DoctorContext
from app.doctor.fixes import install_command
from app.doctor.probe import Probe, ProbeError
from app.doctor.session import detect_desktop
from app.injection import (
    ClipboardOnlyTypist,
    InjectionError,
    PortalTypist,
    Typist,
    WindowRef,
    WtypeTypist,
    X11Typist,
    YdotoolTypist,
    choose_typist,
    deliver,
)
from app.injection.types import DeliveryResult

log = logging.getLogger("perch.doctor")

TEST_TEXT = "Perch ✓ Grüße 42"
"""Typed and read back: plain letters, Latin letters beyond ASCII, a symbol no layout has, digits."""
READ_BACK_S = 3.0
FOCUS_WAIT_S = 3.0

NAMES = {"type": "Typing (keystrokes)", "paste": "Typing (paste)", "clipboard": "Clipboard"}


@dataclass
class Plan:
    """What to test on this desktop and with what."""

    typist: Typist
    guard: ClipboardGuard
    strategies: list[str]
    how: dict[str, str]
    """Strategy → how it works here, for the summary ("XTEST keystrokes")."""
    platform_plugin: str | None = None
    """The Qt platform of the test window ("xcb" where only X11 windows can be typed into)."""
    display: str = ""
    """The X11 display for focus handling; empty elsewhere."""
    findings: list[Check] = field(default_factory=list)
    """Results known before anything is typed (a missing tool, a strategy that does not apply)."""


def typing_fix(desktop_key: str) -> str:
    """What to install so that Perch can type on this Wayland desktop (`gnome`, `kde`, `sway`, `hyprland`, …)."""
    wtype = (
        f"install wtype and wl-clipboard ({install_command('wtype')} and {install_command('wl-clipboard')}), "
        "then restart Perch"
    )
    ydotool = (
        f"install ydotool and wl-clipboard ({install_command('ydotool')} and {install_command('wl-clipboard')}), "
        "and start its daemon, ydotoold, which needs write access to /dev/uinput (run it as a system service, "
        "or add a udev rule giving your user that access); then restart Perch"
    )
    if desktop_key in ("sway", "hyprland"):
        return f"Typing on {desktop_key.capitalize()} needs wtype: {wtype}."
    if desktop_key in ("gnome", "kde"):
        return f"GNOME and KDE do not let wtype type, so Perch uses ydotool there: {ydotool}."
    return f"On wlroots desktops (Sway, Hyprland, river, labwc, niri): {wtype}. Elsewhere: {ydotool}."


def make_plan(context: DoctorContext) -> Plan:
    """The typist the app would use, set up so that all clipboard work goes through a guard."""
    env = context.environ
    chosen = choose_typist("auto", environ=env, platform=context.platform)
    if isinstance(chosen, X11Typist):
        display = chosen.display_name
        guard = X11ClipboardGuard(display, env, context.python)
        typist = X11Typist(display, clipboard=guard.clipboard)
        how = {"type": "XTEST keystrokes", "paste": "the clipboard and Ctrl+V", "clipboard": "copy only"}
        plan = Plan(typist, guard, ["type", "paste", "clipboard"], how, "xcb", display)
        problem = typist.problem()
        if problem is not None:
            fix = (
                "Perch types through the X server's XTEST extension: enable it, or use an X server that has it."
                if "XTEST" in problem
                else "Check that the X server answers (`xdpyinfo`) and that DISPLAY names it."
            )
            for strategy in ("type", "paste"):
                plan.findings.append(Check(NAMES[strategy], "fail", problem, (), fix))
            plan.strategies = ["clipboard"]
        return plan
    if isinstance(chosen, YdotoolTypist):
        how = {"paste": "wl-copy and Ctrl+V through ydotool", "clipboard": "copy only (wl-copy)"}
        plan = Plan(chosen, WaylandClipboardGuard(), ["paste", "clipboard"], how)
        plan.findings.append(
            Check(
                NAMES["type"],
                "skip",
                "ydotool types US-layout key positions, so Perch always pastes with it",
                (),
            )
        )
        return plan
    if isinstance(chosen, WtypeTypist):
        how = {"type": "wtype keystrokes", "paste": "wl-copy and Ctrl+V through wtype", "clipboard": "copy only"}
        return Plan(chosen, WaylandClipboardGuard(), ["type", "paste", "clipboard"], how)
    if isinstance(chosen, PortalTypist):
        # The portal maps keysyms through the active layout and drops what it lacks, so dictation pastes
        # anything but ASCII; opening the session shows the desktop's remote-control prompt once.
        how = {"paste": "wl-copy and Ctrl+V through the RemoteDesktop portal", "clipboard": "copy only (wl-copy)"}
        plan = Plan(chosen, WaylandClipboardGuard(), ["paste", "clipboard"], how)
        plan.findings.append(
            Check(
                NAMES["type"],
                "skip",
                "the RemoteDesktop portal types ASCII only; other text is pasted (allow remote control when the "
                "desktop asks)",
                (),
            )
        )
        return plan
    if isinstance(chosen, ClipboardOnlyTypist):
        return _clipboard_only_plan(context, chosen)
    how = {"type": f"{chosen.name} keystrokes", "paste": f"{chosen.name} paste"}
    plan = Plan(chosen, ClipboardGuard(), ["type", "paste"], how)
    plan.findings.append(
        Check(NAMES["clipboard"], "skip", "copy-only is not tried here, so your clipboard stays as is")
    )
    return plan


def _clipboard_only_plan(context: DoctorContext, chosen: ClipboardOnlyTypist) -> Plan:
    """No way to type: say why and what to install, and still try copying."""
    env = context.environ
    fix = typing_fix(detect_desktop(env).key)
    failed = Check("Typing", "fail", f"Perch cannot type here: {chosen.reason}", (), fix)
    how = {"clipboard": "copy only"}
    if env.get("WAYLAND_DISPLAY") and shutil.which("wl-copy"):
        plan = Plan(chosen, WaylandClipboardGuard(), ["clipboard"], how)
    elif env.get("DISPLAY"):
        guard = X11ClipboardGuard(env["DISPLAY"], env, context.python)
        typist = ClipboardOnlyTypist(chosen.reason, guard.copy, env)
        plan = Plan(typist, guard, ["clipboard"], how)  # the focus matters only to Wayland windows here
    else:
        plan = Plan(chosen, ClipboardGuard(), [], how)
        plan.findings.append(
            Check(
                NAMES["clipboard"],
                "fail",
                "wl-copy is missing, so Perch cannot even leave the text on the clipboard",
                (),
                install_command("wl-clipboard"),
            )
        )
    plan.findings.insert(0, failed)
    return plan


def check_typing(context: DoctorContext) -> Iterator[Check]:
    """One result per strategy, each from text typed into the test window and read back."""
    env = context.environ
    if context.platform.startswith("linux") and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        yield Check(
            "Typing",
            "skip",
            "no X11 or Wayland display here, so typing cannot be tested",
            (),
            "Run `perch doctor` in a terminal of your desktop session (not over SSH) to test typing.",
        )
        return
    plan = make_plan(context)
    yield from plan.findings
    if not plan.strategies:
        return
    settings = context.effective_settings()
    details = (f"typist: {plan.typist.name}", f"typing in Settings: {settings.typing_strategy}")
    try:
        yield from _run_plan(context, plan, details)
    finally:
        plan.typist.close()
        plan.guard.close()


def _run_plan(context: DoctorContext, plan: Plan, details: tuple[str, ...]) -> Iterator[Check]:
    try:
        plan.guard.save()
    except InjectionError as exc:
        for strategy in plan.strategies:
            yield Check(NAMES[strategy], "fail", f"the clipboard cannot be read: {exc}", details, _fix(plan, strategy))
        return
    replacing = [s for s in plan.strategies if s != "type"]
    strategies = plan.strategies
    if not plan.guard.complete and replacing:
        reason = (
            "your clipboard holds something that could not be saved in time (a large image, say), so tests that "
            "replace it are skipped and nothing of it is lost"
        )
        for strategy in replacing:
            yield Check(NAMES[strategy], "skip", reason, details)
        strategies = [s for s in strategies if s == "type"]
        if not strategies:
            return
    previous = _focused(plan.typist)
    restored = False
    try:
        try:
            probe = Probe(context.environ, context.python, plan.platform_plugin)
        except ProbeError as exc:
            for strategy in strategies:
                yield Check(NAMES[strategy], "fail", str(exc), details, _probe_fix(str(exc)))
            return
        with probe:
            started_in, problem = _focus_probe(plan, probe)
            if problem:
                for strategy in strategies:
                    yield Check(
                        NAMES[strategy],
                        "fail",
                        problem,
                        details,
                        "The window manager kept the focus elsewhere, so nothing was typed. Run the check again "
                        "and leave the keyboard alone, or click the “Perch typing test” window when it appears.",
                    )
                return
            for strategy in strategies:
                try:
                    if strategy == "clipboard":
                        check = _try_clipboard(plan, probe, details)
                        restored = True
                        check = _with_detail(check, plan.guard.restore(TEST_TEXT))
                    else:
                        check = _try_typing(plan, probe, strategy, started_in, details)
                except (ProbeError, InjectionError) as exc:
                    check = Check(NAMES[strategy], "fail", str(exc), details, _fix(plan, strategy))
                yield check
    finally:
        if not restored:
            try:
                plan.guard.restore(TEST_TEXT)
            except Exception:
                log.exception("putting the clipboard back failed")
        if plan.display and previous is not None:
            from app.doctor.x11_focus import activate

            activate(plan.display, previous.id)


def _focused(typist: Typist) -> WindowRef | None:
    try:
        return typist.focused_window()
    except Exception:
        return None


def _focus_probe(plan: Plan, probe: Probe) -> tuple[WindowRef | None, str]:
    """Give the test window the focus; the window reference for the focus rule, or why it did not work."""
    if plan.display:
        from app.doctor.x11_focus import activate

        for attempt in range(2):
            deadline = time.monotonic() + (1.0 if attempt == 0 else FOCUS_WAIT_S)
            while time.monotonic() < deadline:
                window = _focused(plan.typist)
                if window is not None and window.id == probe.window:
                    return window, ""
                time.sleep(0.02)
            activate(plan.display, probe.window)
        return None, "the test window did not get the keyboard focus"
    if not probe.wait_active(FOCUS_WAIT_S):
        return None, "the test window did not get the keyboard focus"
    window = _focused(plan.typist)
    if window is not None and window.id not in (probe.window, probe.pid):
        return None, f"the keyboard focus is on {window}, not on the test window"
    return window, ""


def _try_typing(
    plan: Plan, probe: Probe, strategy: str, started_in: WindowRef | None, details: tuple[str, ...]
) -> Check:
    """Type or paste the test text with the focus rule on, then compare what the window holds."""
    name, how = NAMES[strategy], plan.how[strategy]
    text = TEST_TEXT
    probe.clear()
    if not probe.wait_active(1.0):
        return Check(name, "fail", "the test window lost the keyboard focus, so nothing was typed", details)
    result = deliver(plan.typist, text, started_in, False, strategy="type" if strategy == "type" else "paste")
    if not result.delivered:
        return Check(name, "fail", f"{how}: nothing was typed: {result.reason}", details, _fix(plan, strategy))
    got = probe.wait_text(text, READ_BACK_S)
    seconds = result.seconds
    facts = (*details, f"sent {text!r}, the window holds {got!r}")
    if strategy == "type" and result.method == "pasted":
        return Check(
            name,
            "warn",
            f"{how} failed, and Perch pasted instead ({'it arrived' if got == text else 'it did not arrive either'})",
            facts,
            _fix(plan, strategy),
            seconds=seconds,
        )
    if not result.confirmed:
        return Check(name, "fail", f"{how}: {result.reason}", facts, _fix(plan, strategy), seconds=seconds)
    if got != text:
        return Check(
            name,
            "fail",
            f"{how}: the window received {got!r} instead of {text!r}",
            facts,
            _fix(plan, strategy),
            seconds=seconds,
        )
    return Check(name, "ok", f"{how}: “{text}” arrived exactly, in {_ms(seconds)}", facts, seconds=seconds)


def _try_clipboard(plan: Plan, probe: Probe, details: tuple[str, ...]) -> Check:
    """Copy the test text as clipboard-only dictation does, and read it back through the test window."""
    name, how = NAMES["clipboard"], plan.how["clipboard"]
    result: DeliveryResult = deliver(plan.typist, TEST_TEXT, None, True, strategy="clipboard")
    if result.method != "copied":
        return Check(name, "fail", f"copying failed: {result.reason}", details, _fix(plan, "clipboard"))
    deadline = time.monotonic() + READ_BACK_S
    got = probe.clipboard()
    while got != TEST_TEXT and time.monotonic() < deadline:
        time.sleep(0.05)
        got = probe.clipboard()
    facts = (*details, f"copied {TEST_TEXT!r}, another program reads {got!r}")
    if got != TEST_TEXT:
        return Check(
            name,
            "fail",
            f"another program read {got!r} from the clipboard instead of {TEST_TEXT!r}",
            facts,
            _fix(plan, "clipboard"),
            seconds=result.seconds,
        )
    return Check(
        name,
        "ok",
        f"{how}: “{TEST_TEXT}” reached the clipboard, in {_ms(result.seconds)}",
        facts,
        seconds=result.seconds,
    )


def _fix(plan: Plan, strategy: str) -> str:
    """What to do when a strategy did not work."""
    typist = plan.typist
    if isinstance(typist, X11Typist):
        if strategy == "type":
            return (
                "Characters beyond your keyboard layout are typed through spare keys, which some programs misread. "
                "Set Typing to “paste” in Settings to send text through the clipboard instead."
            )
        if strategy == "paste":
            return (
                "The window did not take the text from the clipboard: a clipboard manager or another tool may be "
                "holding on to it. Set Typing to “type” in Settings to send keystrokes instead."
            )
        return "Check that no clipboard tool is stuck (restart your clipboard manager), then run the check again."
    if isinstance(typist, (WtypeTypist, YdotoolTypist)):
        problem = typist.problem()
        if problem:
            return f"{problem}: {install_command('wl-clipboard')}"
        if strategy == "type":
            return "Set Typing to “paste” in Settings to send text through the clipboard instead."
        return (
            "Some windows take a moment longer to read the clipboard; set Typing to “type” in Settings, or run "
            "the check again."
        )
    return "Run the check again; if it keeps failing, set Typing to “clipboard” in Settings and paste yourself."


def _probe_fix(problem: str) -> str:
    if "sudo " in problem:
        return problem[problem.index("sudo ") :]
    return "Check that windows can open on this display (for example run `xdpyinfo` or start any Qt program)."


def _with_detail(check: Check, line: str) -> Check:
    return replace(check, details=(*check.details, line)) if line else check


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
