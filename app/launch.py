"""The settings the running app uses: the stored ones, with command-line choices on top until they change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.settings import Settings, SettingsStore


class LaunchSettings:
    """`SettingsStore` plus overrides (`perch --model …`, `--mode …`) that hold until that setting is changed.

    A person who starts `perch --device cpu` and later picks CUDA in the settings gets CUDA: a saved change to
    a setting drops its override.
    """

    def __init__(self, store: SettingsStore, overrides: dict[str, Any] | None = None) -> None:
        self.store = store
        self._overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
        self._lock = threading.Lock()
        self._unsubscribe = store.subscribe(self._saved)

    def current(self) -> Settings:
        """The settings in effect now."""
        with self._lock:
            overrides = dict(self._overrides)
        return replace(self.store.current, **overrides)

    def update(self, **changes: Any) -> None:
        """Save changed settings; the command-line choices for them no longer hold."""
        with self._lock:
            for key in changes:
                self._overrides.pop(key, None)
        self.store.save(replace(self.store.current, **changes))

    def subscribe(self, callback: Callable[[Settings, Settings], None]) -> Callable[[], None]:
        """Call `callback(old, new)` with the settings in effect before and after each save."""
        previous = [self.current()]

        def changed(_old: Settings, _new: Settings) -> None:
            new = self.current()
            old, previous[0] = previous[0], new
            callback(old, new)

        return self.store.subscribe(changed)

    def _saved(self, old: Settings, new: Settings) -> None:
        with self._lock:
            for key in list(self._overrides):
                if getattr(old, key) != getattr(new, key):
                    del self._overrides[key]

    def close(self) -> None:
        """Stop following the store."""
        self._unsubscribe()
