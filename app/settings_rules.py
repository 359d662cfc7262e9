"""Reading settings values from JSON: each rule turns a value into a setting or raises ValueError."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Geometry = tuple[int, int, int, int]
"""Where a window sits: x, y, width, height in pixels."""


@dataclass(frozen=True)
class Rule:
    """How to read one setting: `parse` returns the value or raises ValueError; `expected` says what fits."""

    expected: str
    parse: Callable[[Any], Any]


def choice(choices: tuple[str, ...]) -> Rule:
    def parse(raw: Any) -> str:
        if isinstance(raw, str) and raw in choices:
            return raw
        raise ValueError

    return Rule("one of " + ", ".join(json.dumps(c) for c in choices), parse)


def boolean() -> Rule:
    def parse(raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        raise ValueError

    return Rule("true or false", parse)


def integer(low: int, high: int | None = None) -> Rule:
    def parse(raw: Any) -> int:
        if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= low and (high is None or raw <= high):
            return raw
        raise ValueError

    return Rule(f"a whole number from {low} to {high}" if high is not None else f"a whole number ≥ {low}", parse)


def number(low: float, high: float) -> Rule:
    def parse(raw: Any) -> float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and low <= raw <= high:
            return float(raw)
        raise ValueError

    return Rule(f"a number from {low:g} to {high:g}", parse)


def text(*, empty: bool) -> Rule:
    def parse(raw: Any) -> str:
        if isinstance(raw, str) and (empty or raw.strip()):
            return raw
        raise ValueError

    return Rule("text" if empty else "non-empty text", parse)


def device_name() -> Rule:
    def parse(raw: Any) -> str | None:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if isinstance(raw, str):
            return raw
        raise ValueError

    return Rule("a device name or null for the system default", parse)


def geometry() -> Rule:
    def parse(raw: Any) -> Geometry | None:
        if raw is None:
            return None
        if isinstance(raw, list) and len(raw) == 4 and all(type(v) is int for v in raw) and min(raw[2:]) > 0:
            return (raw[0], raw[1], raw[2], raw[3])
        raise ValueError

    return Rule("null or [x, y, width, height] in whole pixels with a positive size", parse)


def show(value: object) -> str:
    """A value as it would appear in the JSON file, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def json_kind(value: object) -> str:
    """`an array`, `a string`... for a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def read_group(
    cls: type[Any], rules: dict[str, Rule], data: Mapping[str, Any], prefix: str, problems: list[str]
) -> dict[str, Any]:
    defaults = cls()
    values: dict[str, Any] = {}
    for name, rule in rules.items():
        if name not in data:
            continue
        raw = data[name]
        try:
            values[name] = rule.parse(raw)
        except ValueError:
            problems.append(
                f'Setting "{prefix}{name}" has the value {show(raw)}, which is not {rule.expected}; '
                f"using {show(getattr(defaults, name))} instead."
            )
    return values
