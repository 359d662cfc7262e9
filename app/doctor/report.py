"""The results as text (the terminal, the copied report) and as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

from app.doctor.checks import Check, worst

FIX_INDENT = "    "


def check_lines(check: Check, *, width: int, details: bool) -> list[str]:
    """One check: the mark, name and summary; the fix under a warning or failure; details when asked."""
    lines = [f"{check.mark} {check.name.ljust(width)}  {check.summary}"]
    if details:
        lines += [f"{FIX_INDENT}· {line}" for line in check.details]
    if check.fix and check.status in ("warn", "fail"):
        for number, paragraph in enumerate(check.fix.splitlines()):
            prefix = "→ " if number == 0 else "  "
            lines.append(f"{FIX_INDENT}{prefix}{paragraph}")
    return lines


def format_report(checks: Sequence[Check], *, details: bool = False, header: str = "") -> str:
    """Plain text: one line per check, fixes indented below, and a closing verdict."""
    width = max((len(check.name) for check in checks), default=0)
    lines = [header] if header else []
    for check in checks:
        lines += check_lines(check, width=width, details=details)
    lines.append(verdict(checks))
    return "\n".join(lines) + "\n"


def verdict(checks: Sequence[Check]) -> str:
    """The last line of a report."""
    counts = {status: sum(1 for c in checks if c.status == status) for status in ("fail", "warn")}
    state = worst(checks)
    if state == "ok":
        return "Everything Perch needs works."
    parts = [
        f"{counts['fail']} failed" if counts["fail"] else "",
        f"{counts['warn']} with warnings" if counts["warn"] else "",
    ]
    return f"{' and '.join(p for p in parts if p)}: see the → lines for what to do."


def to_json(checks: Sequence[Check]) -> str:
    """`{"ok": bool, "status": worst, "checks": [...]}`, indented."""
    return json.dumps(
        {"ok": worst(checks) != "fail", "status": worst(checks), "checks": [c.to_dict() for c in checks]},
        indent=2,
        ensure_ascii=False,
    )
