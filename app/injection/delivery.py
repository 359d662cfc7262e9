"""The focus rule: text goes only into the window where dictation started, otherwise to the clipboard."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from app.injection.spacing import TypingMemory, leading_space
from app.injection.timing import PASTE_TIMEOUT_S
from app.injection.types import DeliveryResult, InjectionError, Method, Outcome, Typist, WindowRef

if TYPE_CHECKING:
    from app.settings import TypingStrategy

log = logging.getLogger("perch.injection")


def deliver(
    typist: Typist,
    text: str,
    started_in: WindowRef | None,
    any_focus: bool,
    *,
    strategy: TypingStrategy = "auto",
    memory: TypingMemory | None = None,
) -> DeliveryResult:
    """Type or paste `text` into the focused window if it is the one dictation started in, else copy it.

    `started_in` is `typist.focused_window()` from when dictation started (None when unknown); `any_focus`
    types into whatever has the focus now. With `memory` (smart spacing) a space is put before text that
    continues what was typed last into the same window. Never raises for a failed delivery: the text is
    copied and the result says why.
    """
    start = time.perf_counter()

    def result(
        method: Outcome, out: str, window: WindowRef | None, reason: str = "", ok: bool = True
    ) -> DeliveryResult:
        return DeliveryResult(method, time.perf_counter() - start, out, window, reason, ok)

    def copied(window: WindowRef | None, reason: str) -> DeliveryResult:
        try:
            typist.copy(text)
        except Exception as exc:
            reason = f"{reason}; copying failed too: {exc}"
            return result("nothing", text, window, reason)
        return result("copied", text, window, reason)

    if not text:
        return result("nothing", text, None)
    if strategy == "clipboard":
        return copied(None, "typing is set to clipboard only")
    try:
        problem = typist.problem()
    except Exception as exc:
        problem = str(exc)
    if problem is not None:
        return copied(None, problem)
    try:
        window = typist.focused_window()
    except Exception as exc:
        return copied(None, str(exc))
    if not any_focus and started_in is not None and window != started_in:
        where = f"to {window}" if window is not None else "away"
        return copied(window, f"the focus moved from {started_in} {where} during dictation")
    out = leading_space(memory.previous(window), text) + text if memory is not None else text
    method: Method = strategy if strategy in ("type", "paste") else typist.auto_method(out, window)
    try:
        if method == "type":
            try:
                typist.type_text(out)
                outcome = result("typed", out, window)
            except InjectionError as exc:
                log.warning("could not type into %s (%s); pasting instead", window, exc)
                method = "paste"
        if method == "paste":
            taken = typist.paste(out)
            note = "" if taken else f"it did not fetch the clipboard within {PASTE_TIMEOUT_S:g} s"
            outcome = result("pasted", out, window, note, taken)
    except InjectionError as exc:
        log.warning("could not paste into %s: %s", window, exc)
        return copied(window, str(exc))
    except Exception as exc:  # a failure of the typist itself must not lose the text
        log.exception("delivering text into %s failed", window)
        return copied(window, f"typing failed: {exc}")
    if memory is not None:
        memory.remember(window, out)
    return outcome
