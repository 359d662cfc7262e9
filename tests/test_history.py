"""The dictation history store: entries, search, retention, damaged files, threads."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.history import (
    SCHEMA_VERSION,
    History,
    HistoryEntry,
    default_path,
    entry_from_final,
)
from stt import paths
from stt.events import Final, UtteranceTimings

DAY = 86400.0


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    store = History(tmp_path / "history.sqlite3")
    yield store
    store.close()


def make_wav(path: Path, seconds: float = 0.1) -> Path:
    """A short silent 16 kHz mono WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * int(16000 * seconds))
    return path


def test_add_and_get_round_trip(history: History) -> None:
    entry_id = history.add(
        text="hello world",
        duration_s=1.5,
        stop_to_final_ms=120.0,
        model="parakeet-tdt-0.6b-v3",
        device="cuda",
        audio_path=Path("/tmp/a.wav"),
        created=1_700_000_000.0,
    )
    assert history.get(entry_id) == HistoryEntry(
        id=entry_id,
        created=1_700_000_000.0,
        duration_s=1.5,
        text="hello world",
        stop_to_final_ms=120.0,
        stop_to_typed_ms=None,
        model="parakeet-tdt-0.6b-v3",
        device="cuda",
        audio_path="/tmp/a.wav",
        status="ok",
        error=None,
        previous_text=None,
    )
    assert history.get(entry_id + 1000) is None
    assert history.count() == 1


def test_add_defaults_created_to_now_and_checks_status(history: History) -> None:
    before = time.time()
    entry = history.get(history.add(text="x"))
    assert entry is not None
    assert before <= entry.created <= time.time()
    with pytest.raises(ValueError, match="status"):
        history.add(text="x", status="great")


def test_recent_is_newest_first_with_paging(history: History) -> None:
    ids = [history.add(text=f"entry {i}", created=1000.0 + i) for i in range(5)]
    # Same timestamp: the later insert counts as newer.
    tie = history.add(text="tie", created=1004.0)
    assert [e.id for e in history.recent()] == [tie, *reversed(ids)]
    assert [e.text for e in history.recent(limit=2)] == ["tie", "entry 4"]
    assert [e.text for e in history.recent(limit=2, offset=2)] == ["entry 3", "entry 2"]
    assert history.recent(limit=10, offset=10) == []


def test_search_ignores_case_and_treats_wildcards_literally(history: History) -> None:
    history.add(text="Hello World", created=1.0)
    history.add(text="I am 100% sure", created=2.0)
    history.add(text="rename snake_case names", created=3.0)
    history.add(text="snakeXcase is not it", created=4.0)
    history.add(text="Viele Grüße aus KÖLN", created=5.0)
    history.add(text="say hello again", created=6.0)

    def texts(query: str) -> list[str]:
        return [e.text for e in history.search(query)]

    assert texts("HELLO") == ["say hello again", "Hello World"]
    assert texts("%") == ["I am 100% sure"]
    assert texts("0%") == ["I am 100% sure"]
    assert texts("_") == ["rename snake_case names"]
    assert texts("e_c") == ["rename snake_case names"]
    assert texts("grüße") == ["Viele Grüße aus KÖLN"]
    assert texts("GRÜSSE") == ["Viele Grüße aus KÖLN"]
    assert texts("köln") == ["Viele Grüße aus KÖLN"]
    assert texts("nothing like this") == []
    assert texts("'; DROP TABLE entries; --") == []
    assert len(texts("")) == 6
    assert len(history.search("e", limit=2)) == 2


def test_set_typed(history: History) -> None:
    entry_id = history.add(text="typed", stop_to_final_ms=80.0)
    assert history.set_typed(entry_id, 95.5)
    entry = history.get(entry_id)
    assert entry is not None
    assert entry.stop_to_typed_ms == 95.5
    assert entry.stop_to_final_ms == 80.0
    assert not history.set_typed(entry_id + 1, 1.0)


def test_replace_text_keeps_the_previous_text(history: History) -> None:
    entry_id = history.add(text="wreck a nice beach")
    assert history.replace_text(entry_id, "recognise speech")
    entry = history.get(entry_id)
    assert entry is not None
    assert (entry.text, entry.previous_text, entry.status) == (
        "recognise speech",
        "wreck a nice beach",
        "retranscribed",
    )
    # The same text again does not overwrite what came before it.
    history.replace_text(entry_id, "recognise speech")
    entry = history.get(entry_id)
    assert entry is not None
    assert entry.previous_text == "wreck a nice beach"
    assert history.search("beach") == []
    assert not history.replace_text(entry_id + 1, "nothing")
    with pytest.raises(ValueError, match="status"):
        history.replace_text(entry_id, "x", status="bogus")


def test_mark_failed_then_retranscribe_clears_error(history: History) -> None:
    entry_id = history.add(text="")
    assert history.mark_failed(entry_id, "CUDA out of memory")
    entry = history.get(entry_id)
    assert entry is not None
    assert (entry.status, entry.error) == ("failed", "CUDA out of memory")
    history.replace_text(entry_id, "now it worked")
    entry = history.get(entry_id)
    assert entry is not None
    assert (entry.status, entry.error, entry.text, entry.previous_text) == (
        "retranscribed",
        None,
        "now it worked",
        "",
    )
    assert not history.mark_failed(entry_id + 1, "x")


def test_delete_removes_audio_when_asked(history: History, tmp_path: Path) -> None:
    gone = make_wav(tmp_path / "rec" / "gone.wav")
    kept = make_wav(tmp_path / "rec" / "kept.wav")
    first = history.add(text="one", audio_path=gone)
    second = history.add(text="two", audio_path=kept)
    third = history.add(text="three")

    assert history.delete(first)
    assert history.get(first) is None
    assert not gone.exists()

    assert history.delete(second, delete_audio=False)
    assert history.get(second) is None
    assert kept.exists()

    assert history.delete(third)  # no audio at all
    assert not history.delete(third)
    assert history.count() == 0


def test_delete_tolerates_missing_audio_and_shared_paths(history: History, tmp_path: Path) -> None:
    shared = make_wav(tmp_path / "shared.wav")
    a = history.add(text="a", audio_path=shared)
    b = history.add(text="b", audio_path=shared)
    missing = history.add(text="c", audio_path=tmp_path / "never-written.wav")
    history.delete(a)
    assert shared.exists(), "another entry still points at it"
    history.delete(b)
    assert not shared.exists()
    assert history.delete(missing)


def test_retention_by_days(history: History, tmp_path: Path) -> None:
    now = time.time()
    old_audio = make_wav(tmp_path / "old.wav")
    old_failed_audio = make_wav(tmp_path / "old-failed.wav")
    new_audio = make_wav(tmp_path / "new.wav")
    history.add(text="forty days ago", created=now - 40 * DAY, audio_path=old_audio)
    history.add(text="failed long ago", created=now - 31 * DAY, audio_path=old_failed_audio, status="failed")
    history.add(text="twenty days ago", created=now - 20 * DAY)
    history.add(text="today", created=now, audio_path=new_audio)

    history.apply_retention(keep_days=0, keep_audio=100)
    assert history.count() == 4

    history.apply_retention(keep_days=30, keep_audio=100)
    assert [e.text for e in history.recent()] == ["today", "twenty days ago"]
    assert not old_audio.exists()
    assert not old_failed_audio.exists()
    assert new_audio.exists()

    history.apply_retention(keep_days=10, keep_audio=100)
    assert [e.text for e in history.recent()] == ["today"]


def test_retention_by_audio_count_spares_failed(history: History, tmp_path: Path) -> None:
    wavs = [make_wav(tmp_path / f"ok{i}.wav") for i in range(4)]
    failed_wav = make_wav(tmp_path / "bad-failed.wav")
    ids = [history.add(text=f"ok {i}", created=100.0 + i, audio_path=w) for i, w in enumerate(wavs)]
    failed = history.add(text="", created=50.0, audio_path=failed_wav, status="failed", error="boom")
    no_audio = history.add(text="no audio", created=200.0)  # newest, but has nothing to keep

    history.apply_retention(keep_days=0, keep_audio=2)
    assert history.count() == 6
    assert [w.exists() for w in wavs] == [False, False, True, True]
    for entry_id, wav in zip(ids, wavs, strict=True):
        entry = history.get(entry_id)
        assert entry is not None
        assert entry.audio_path == (str(wav) if wav.exists() else None)
    entry = history.get(failed)
    assert entry is not None
    assert entry.audio_path == str(failed_wav)
    assert failed_wav.exists()
    assert history.get(no_audio) is not None

    history.apply_retention(keep_days=0, keep_audio=0)
    assert not any(w.exists() for w in wavs)
    assert failed_wav.exists()

    with pytest.raises(ValueError, match="0 or more"):
        history.apply_retention(keep_days=-1, keep_audio=0)
    with pytest.raises(ValueError, match="0 or more"):
        history.apply_retention(keep_days=0, keep_audio=-1)


def test_retranscribed_entries_count_as_successful(history: History, tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "re.wav")
    entry_id = history.add(text="first", audio_path=wav, created=1.0)
    history.replace_text(entry_id, "second")
    history.add(text="newer", audio_path=make_wav(tmp_path / "newer.wav"), created=2.0)
    history.apply_retention(keep_days=0, keep_audio=1)
    assert not wav.exists()


def test_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    original = b"this is certainly not SQLite\n" * 200
    path.write_bytes(original)
    with History(path) as history:
        assert len(history.problems) == 1
        assert "damaged" in history.problems[0]
        assert history.count() == 0
        history.add(text="fresh start")
        assert history.count() == 1
    asides = list(tmp_path.glob("history.sqlite3.corrupt-*"))
    assert len(asides) == 1
    assert asides[0].name.startswith("history.sqlite3.corrupt-")
    stamp = asides[0].name.removeprefix("history.sqlite3.corrupt-")
    time.strptime(stamp, "%Y%m%d-%H%M%S")
    assert str(asides[0]) in history.problems[0]
    assert asides[0].read_bytes() == original


def test_damaged_pages_are_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with History(path) as history:
        for i in range(300):
            history.add(text=f"entry number {i} " * 5)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[2 * page : 3 * page] = b"\xab" * page
    path.write_bytes(bytes(data))

    with History(path) as history:
        assert history.problems and "damaged" in history.problems[0]
        assert history.count() == 0
    asides = [p for p in tmp_path.glob("history.sqlite3.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(asides) == 1
    assert asides[0].read_bytes() == bytes(data)


def test_second_damage_in_the_same_second_gets_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    for _ in range(2):
        path.write_bytes(b"garbage" * 100)
        History(path).close()
    assert len(list(tmp_path.glob("history.sqlite3.corrupt-*"))) == 2


def test_sound_database_reports_no_problems(history: History) -> None:
    assert history.problems == []


def test_concurrent_adds_from_threads(history: History) -> None:
    ids: list[int] = []
    ids_lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                entry_id = history.add(text=f"thread {n} item {i}")
                with ids_lock:
                    ids.append(entry_id)
                if i % 10 == 0:
                    history.recent(limit=5)
                    history.search("item")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 200
    assert history.count() == 200
    assert len(history.search("thread 3 item", limit=1000)) == 50


def test_default_path_is_under_xdg_data_home() -> None:
    path = default_path()
    assert path == paths.data_dir() / "history.sqlite3"
    assert path.is_relative_to(Path(os.environ["XDG_DATA_HOME"]))
    history = History()
    try:
        assert history.path == path
        assert path.is_file()
    finally:
        history.close()
        for extra in path.parent.glob("history.sqlite3*"):
            extra.unlink()


def test_schema_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    History(path).close()
    conn = sqlite3.connect(path)
    try:
        assert SCHEMA_VERSION >= 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "history.sqlite3"
    History(path).close()
    assert path.is_file()


def test_newer_schema_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    History(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with History(path) as history:
        assert any("newer" in p for p in history.problems)
        history.add(text="still works")
        assert history.count() == 1
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_reopening_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with History(path) as history:
        first = history.add(text="kept across restarts", model="m", device="cpu")
    with History(path) as history:
        assert history.problems == []
        assert history.count() == 1
        entry = history.get(first)
        assert entry is not None
        assert entry.text == "kept across restarts"
        second = history.add(text="and one more")
        assert second > first


def test_entry_from_final(history: History, tmp_path: Path) -> None:
    audio = make_wav(tmp_path / "utt.wav")
    timings = UtteranceTimings(stopped_at=10.0, final_at=10.25, last_segment_ms=40.0, engine_ms=90.0)
    final = Final(utterance=3, text="Good morning.", words=[], segments=[], timings=timings, audio=audio)
    fields = entry_from_final(final, model="parakeet", device="cuda", duration_s=2.5)
    assert fields == {
        "text": "Good morning.",
        "duration_s": 2.5,
        "stop_to_final_ms": pytest.approx(250.0),
        "stop_to_typed_ms": None,
        "model": "parakeet",
        "device": "cuda",
        "audio_path": str(audio),
    }
    entry = history.get(history.add(**fields))
    assert entry is not None
    assert (entry.text, entry.audio_path, entry.status) == ("Good morning.", str(audio), "ok")
    assert entry.stop_to_final_ms == pytest.approx(250.0)

    typed = UtteranceTimings(stopped_at=10.0, final_at=10.2, last_segment_ms=0.0, engine_ms=50.0, typed_at=10.3)
    no_audio = Final(utterance=4, text="x", words=[], segments=[], timings=typed)
    fields = entry_from_final(no_audio, model="m", device="cpu", duration_s=0.5)
    assert fields["audio_path"] is None
    assert fields["stop_to_typed_ms"] == pytest.approx(300.0)
