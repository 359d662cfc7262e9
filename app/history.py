"""Dictation history in SQLite: what was said, how fast it arrived, and where its audio lies."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from app.files import aside_name
from stt import paths
from stt.events import Final

log = logging.getLogger("perch.history")

FILE_NAME = "history.sqlite3"
STATUSES = ("ok", "failed", "retranscribed")
DAY_S = 86400.0

_COLUMNS = (
    "id, created, duration_s, text, stop_to_final_ms, stop_to_typed_ms, model, device, audio_path, status, error,"
    " previous_text, source_path"
)

# Each step takes the database from version i to i + 1; `user_version` records how many have run.
# Steps are lists of single statements (executescript would commit the surrounding transaction).
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created REAL NOT NULL,
            duration_s REAL NOT NULL DEFAULT 0,
            text TEXT NOT NULL DEFAULT '',
            previous_text TEXT,
            stop_to_final_ms REAL,
            stop_to_typed_ms REAL,
            model TEXT NOT NULL DEFAULT '',
            device TEXT NOT NULL DEFAULT '',
            audio_path TEXT,
            status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed', 'retranscribed')),
            error TEXT
        )
        """,
        "CREATE INDEX entries_created ON entries (created)",
        "CREATE INDEX entries_audio_path ON entries (audio_path) WHERE audio_path IS NOT NULL",
    ),
    # A transcribed file: its own path, which retention and deletion never touch (audio_path stays NULL).
    ("ALTER TABLE entries ADD COLUMN source_path TEXT",),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def default_path() -> Path:
    """Where the history lives: `<user data>/history.sqlite3`."""
    return paths.data_dir() / FILE_NAME


@dataclass(frozen=True)
class HistoryEntry:
    """One dictated utterance as stored; times are UNIX seconds, latencies in ms."""

    id: int
    created: float
    duration_s: float
    text: str
    stop_to_final_ms: float | None
    stop_to_typed_ms: float | None
    model: str
    device: str
    audio_path: str | None
    status: str
    error: str | None
    previous_text: str | None = None
    """The text before the last re-transcription, if there was one."""
    source_path: str | None = None
    """For a transcribed file, the file (Perch never deletes it); None for dictation."""

    @property
    def input_path(self) -> str | None:
        """The audio to transcribe again: the recording, or the transcribed file."""
        return self.audio_path or self.source_path


class NewEntry(TypedDict):
    """Keyword arguments of `History.add` taken from a finished utterance."""

    text: str
    duration_s: float
    stop_to_final_ms: float | None
    stop_to_typed_ms: float | None
    model: str
    device: str
    audio_path: str | None


def entry_from_final(final: Final, *, model: str, device: str, duration_s: float) -> NewEntry:
    """The `add` arguments for an engine `Final` (use as `history.add(**entry_from_final(...))`)."""
    timings = final.timings
    typed = None if timings.typed_at is None else (timings.typed_at - timings.stopped_at) * 1000
    return NewEntry(
        text=final.text,
        duration_s=duration_s,
        stop_to_final_ms=timings.stop_to_final_ms,
        stop_to_typed_ms=typed,
        model=model,
        device=device,
        audio_path=None if final.audio is None else str(final.audio),
    )


def _fold(text: str | None) -> str:
    """Case-folded text for case-insensitive matching beyond ASCII (ß matches SS, Ü matches ü)."""
    return "" if text is None else text.casefold()


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")


def _entry(row: tuple[Any, ...]) -> HistoryEntry:
    return HistoryEntry(*row)  # _COLUMNS lists the columns in field order


class History:
    """The dictation history; one connection shared by all threads behind a lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.problems: list[str] = []
        """Messages for the user about the database (it was damaged and set aside, and so on)."""
        self._lock = threading.Lock()
        self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------------

    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=5.0)
        conn.create_function("perch_fold", 1, _fold, deterministic=True)
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect(str(self.path))
        try:
            damage = self._damage(conn)
            if damage is not None:
                conn.close()
                conn = self._replace_damaged(damage)
            self._configure(conn)
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _damage(conn: sqlite3.Connection) -> str | None:
        """Why the database cannot be trusted, or None when it is sound (or new)."""
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.OperationalError:
            raise  # locked, unreadable, out of space: not damage, so the file is left alone
        except sqlite3.DatabaseError as exc:
            return str(exc)
        if rows == [("ok",)]:
            return None
        return "; ".join(str(r[0]) for r in rows[:3]) or "integrity check failed"

    def _replace_damaged(self, reason: str) -> sqlite3.Connection:
        """Move a damaged database (and its journal files) aside, never deleting it, and start anew."""
        aside = aside_name(self.path)
        try:
            self.path.rename(aside)
            for suffix in ("-wal", "-shm", "-journal"):
                extra = self.path.with_name(self.path.name + suffix)
                if extra.exists():
                    extra.rename(aside.with_name(aside.name + suffix))
        except OSError as exc:
            message = (
                f"The history database {self.path} is damaged ({reason}) and could not be moved aside ({exc}); "
                "history is kept in memory only until Perch restarts."
            )
            log.error("%s", message)
            self.problems.append(message)
            return self._connect(":memory:")
        message = (
            f"The history database was damaged ({reason}). It was moved to {aside} and a new, empty history "
            "was started."
        )
        log.error("%s", message)
        self.problems.append(message)
        return self._connect(str(self.path))

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() not in ("wal", "memory"):
            log.warning("history database is in %s journal mode (WAL is not available here)", mode)
        conn.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            message = (
                f"The history database was written by a newer Perch (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); it is used as it is."
            )
            log.warning("%s", message)
            self.problems.append(message)
            return
        while version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated between the read above and this transaction.
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version < SCHEMA_VERSION:
                    for statement in _MIGRATIONS[version]:
                        conn.execute(statement)
                    version += 1
                    conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            log.info("history database at schema version %d", version)

    # -- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, under the lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Iterable[object] = ()) -> list[HistoryEntry]:
        with self._lock:
            rows = self._conn.execute(sql, tuple(params)).fetchall()
        return [_entry(row) for row in rows]

    def _unreferenced(self, candidates: Iterable[str]) -> list[str]:
        """Those audio paths no remaining row points at (call under the lock)."""
        return [
            p
            for p in dict.fromkeys(candidates)
            if self._conn.execute("SELECT 1 FROM entries WHERE audio_path = ? LIMIT 1", (p,)).fetchone() is None
        ]

    @staticmethod
    def _remove_files(files: Iterable[str]) -> None:
        for name in files:
            try:
                Path(name).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not delete recording %s: %s", name, exc)

    # -- public ----------------------------------------------------------------------------------

    def add(
        self,
        *,
        text: str,
        duration_s: float = 0.0,
        stop_to_final_ms: float | None = None,
        stop_to_typed_ms: float | None = None,
        model: str = "",
        device: str = "",
        audio_path: str | Path | None = None,
        status: str = "ok",
        error: str | None = None,
        created: float | None = None,
        source_path: str | Path | None = None,
    ) -> int:
        """Store an utterance (or a transcribed file, with `source_path`); `created` defaults to now. Returns
        its id."""
        _check_status(status)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO entries (created, duration_s, text, stop_to_final_ms, stop_to_typed_ms, model, device,"
                " audio_path, status, error, source_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time() if created is None else created,
                    duration_s,
                    text,
                    stop_to_final_ms,
                    stop_to_typed_ms,
                    model,
                    device,
                    None if audio_path is None else str(audio_path),
                    status,
                    error,
                    None if source_path is None else str(source_path),
                ),
            )
            entry_id = cursor.lastrowid
        assert entry_id is not None
        return entry_id

    def get(self, entry_id: int) -> HistoryEntry | None:
        """The entry with this id, if it exists."""
        found = self._read(f"SELECT {_COLUMNS} FROM entries WHERE id = ?", (entry_id,))
        return found[0] if found else None

    def recent(self, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        """Entries newest first, `limit` of them after skipping `offset`."""
        return self._read(
            f"SELECT {_COLUMNS} FROM entries ORDER BY created DESC, id DESC LIMIT ? OFFSET ?", (limit, offset)
        )

    def search(self, query: str, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        """Entries whose text contains `query`, ignoring case (Unicode-aware), newest first."""
        if not query:
            return self.recent(limit, offset)
        # instr() on case-folded text: a plain substring test, so % and _ need no escaping, and folding
        # in Python handles non-ASCII case, which SQLite's LIKE and lower() do not.
        return self._read(
            f"SELECT {_COLUMNS} FROM entries WHERE instr(perch_fold(text), ?) > 0"
            " ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
            (_fold(query), limit, offset),
        )

    def set_typed(self, entry_id: int, stop_to_typed_ms: float) -> bool:
        """Record how long the text took to be typed after the stop; False if there is no such entry."""
        with self._write() as conn:
            cursor = conn.execute("UPDATE entries SET stop_to_typed_ms = ? WHERE id = ?", (stop_to_typed_ms, entry_id))
        return cursor.rowcount > 0

    def replace_text(self, entry_id: int, text: str, status: str = "retranscribed") -> bool:
        """New text for an entry (a re-transcription); the old text moves to `previous_text`, any error is cleared."""
        _check_status(status)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE entries SET previous_text = CASE WHEN text = ? THEN previous_text ELSE text END,"
                " text = ?, status = ?, error = NULL WHERE id = ?",
                (text, text, status, entry_id),
            )
        return cursor.rowcount > 0

    def mark_failed(self, entry_id: int, error: str) -> bool:
        """Mark an entry failed with the reason; its text and audio stay."""
        with self._write() as conn:
            cursor = conn.execute("UPDATE entries SET status = 'failed', error = ? WHERE id = ?", (error, entry_id))
        return cursor.rowcount > 0

    def delete(self, entry_id: int, delete_audio: bool = True) -> bool:
        """Remove an entry and, if asked, its audio file; False if there was no such entry."""
        with self._write() as conn:
            row = conn.execute("SELECT audio_path FROM entries WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            orphans = self._unreferenced([row[0]]) if delete_audio and row[0] else []
        self._remove_files(orphans)
        return True

    def apply_retention(self, keep_days: int, keep_audio: int) -> None:
        """Delete entries (and their audio) older than `keep_days` (0: keep forever); drop the audio of
        successful entries beyond the newest `keep_audio` that have audio. Failed entries keep theirs."""
        if keep_days < 0 or keep_audio < 0:
            raise ValueError(f"keep_days and keep_audio must be 0 or more, got {keep_days} and {keep_audio}")
        with self._write() as conn:
            released: list[str] = []
            if keep_days > 0:
                cutoff = time.time() - keep_days * DAY_S
                released += [
                    r[0]
                    for r in conn.execute(
                        "SELECT audio_path FROM entries WHERE created < ? AND audio_path IS NOT NULL", (cutoff,)
                    )
                ]
                conn.execute("DELETE FROM entries WHERE created < ?", (cutoff,))
            surplus = conn.execute(
                "SELECT id, audio_path FROM entries WHERE status != 'failed' AND audio_path IS NOT NULL"
                " ORDER BY created DESC, id DESC LIMIT -1 OFFSET ?",
                (keep_audio,),
            ).fetchall()
            conn.executemany("UPDATE entries SET audio_path = NULL WHERE id = ?", [(r[0],) for r in surplus])
            released += [r[1] for r in surplus]
            orphans = self._unreferenced(released)
        self._remove_files(orphans)

    def count(self) -> int:
        """How many entries there are."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        """Close the database; the object is unusable afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
