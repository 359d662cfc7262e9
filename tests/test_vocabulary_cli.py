"""`--vocabulary FILE` and `--boost-strength` on the command line: what a person gets for good and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_cli import perch


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, speech_file: object) -> Path:
    path: Path = speech_file("seven three five")  # type: ignore[operator]
    return path


# The words model's vocabulary is whole words, not SentencePiece BPE: Perch says how it splits phrases then.
TOKENIZER_NOTE = "vocabulary phrases are split by longest match"


def transcribe(words_model: Path, clip: Path, *args: str) -> tuple[int, str, str]:
    done = perch("transcribe", str(clip), "--model", str(words_model), "--device", "cpu", *args)
    return done.returncode, done.stdout, done.stderr


def own_warnings(err: str) -> list[str]:
    """stderr's lines less the note on the words model's tokenizer."""
    lines = err.splitlines()
    assert all(line.startswith(("perch: warning: ", "perch: error: ")) for line in lines), err
    return [line for line in lines if TOKENIZER_NOTE not in line]


def test_json_reports_the_vocabulary(words_model: Path, clip: Path, tmp_path: Path) -> None:
    phrases = tmp_path / "words.txt"
    phrases.write_text("# names\n\nseven three\n  hello   world \n", encoding="utf-8")
    code, out, err = transcribe(words_model, clip, "--vocabulary", str(phrases), "--format", "json")
    assert code == 0 and own_warnings(err) == [] and TOKENIZER_NOTE in err
    record = json.loads(out)
    assert record["vocabulary"] == {"phrases": 2, "strength": 3.0} and record["text"] == "seven three five"
    code, out, _ = transcribe(
        words_model, clip, "--vocabulary", str(phrases), "--boost-strength", "6", "--format", "json"
    )
    assert code == 0 and json.loads(out)["vocabulary"] == {"phrases": 2, "strength": 6.0}
    code, out, _ = transcribe(words_model, clip, "--format", "json")
    assert code == 0 and "vocabulary" not in json.loads(out)


@pytest.mark.parametrize(
    ("content", "strength", "expected"),
    [
        (b"", None, "holds no phrases"),
        (b"# only a comment\n\n", None, "holds no phrases"),
        (b"seven\n\xff\xfe broken\n", None, "line 2 is not UTF-8"),
        (b"seven\n", "-1", "a number of 0 or more"),
        (b"seven\n", "strong", "a number of 0 or more"),
        (b"seven\n", "nan", "a number of 0 or more"),
        ("\n".join(f"phrase {i}" for i in range(100_000)).encode(), None, "has 100,000 phrases"),
    ],
)
def test_bad_input_is_one_line(
    words_model: Path, clip: Path, tmp_path: Path, *, content: bytes, strength: str | None, expected: str
) -> None:
    phrases = tmp_path / "words.txt"
    phrases.write_bytes(content)
    extra = ("--boost-strength", strength) if strength is not None else ()
    code, out, err = transcribe(words_model, clip, "--vocabulary", str(phrases), *extra)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("perch: error: ") and expected in err, err


def test_a_missing_file_and_a_strength_alone(words_model: Path, clip: Path, tmp_path: Path) -> None:
    code, _, err = transcribe(words_model, clip, "--vocabulary", str(tmp_path / "none.txt"))
    assert code == 1 and "not found" in err and err.count("\n") == 1
    code, _, err = transcribe(words_model, clip, "--boost-strength", "2")
    assert code == 1 and "needs phrases" in err


def test_a_phrase_the_model_cannot_spell_is_a_warning_naming_its_line(
    words_model: Path, clip: Path, tmp_path: Path
) -> None:
    phrases = tmp_path / "words.txt"
    phrases.write_text("seven three\n\u200b\u200b\n", encoding="utf-8")
    code, out, err = transcribe(words_model, clip, "--vocabulary", str(phrases))
    assert code == 0 and out.strip() == "seven three five"
    (warning,) = own_warnings(err)
    assert warning.startswith("perch: warning: ") and "line 2" in warning and "left out" in warning


def test_replacements_from_the_settings(words_model: Path, clip: Path, tmp_path: Path) -> None:
    import dataclasses

    from app.settings import SettingsStore
    from app.vocabulary_settings import ReplacementEntry, VocabularySettings

    config = tmp_path / "config"
    store = SettingsStore(config / "perch" / "settings.json")
    rules = (ReplacementEntry("seven three", "73"),)
    store.save(dataclasses.replace(store.current, vocabulary=VocabularySettings(replacements=rules)))
    env = {"XDG_CONFIG_HOME": str(config)}
    base = ("transcribe", str(clip), "--model", str(words_model), "--device", "cpu")
    done = perch(*base, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "73 five"
    record = json.loads(perch(*base, "--format", "json", env=env).stdout)
    assert record["text"] == "seven three five" and [w["word"] for w in record["words"]][:2] == ["seven", "three"]
    (span,) = record["replaced"]["spans"]
    assert record["replaced"]["text"] == "73 five" and (span["spoken"], span["written"]) == ("seven three", "73")
    seven, three = record["words"][0], record["words"][1]
    assert (span["start_s"], span["end_s"]) == (seven["start_s"], three["end_s"])
