"""Replacements and snippets: whole words, case-insensitive by default, with the replaced span's times."""

from __future__ import annotations

from stt.boost.replacements import Replacement, apply_replacements, replace_partial
from stt.results import Word


def words_of(text: str) -> list[Word]:
    return [Word(w, float(i), i + 0.5, 0.9) for i, w in enumerate(text.split())]


def test_a_spoken_form_becomes_the_written_one_with_its_times() -> None:
    text = "Visit Perch dot app today."
    done = apply_replacements(text, words_of(text), [Replacement("perch dot app", "perch.app")])
    assert done.text == "Visit perch.app today."
    (span,) = done.spans
    assert (span.spoken, span.written, span.start, span.end) == ("Perch dot app", "perch.app", 1.0, 3.5)


def test_whole_words_only_and_case_when_asked() -> None:
    rule = Replacement("cat", "dog")
    assert apply_replacements("concatenate the cat", [], [rule]).text == "concatenate the dog"
    strict = Replacement("API", "A.P.I.", case_sensitive=True)
    assert apply_replacements("api and API", [], [strict]).text == "api and A.P.I."


def test_punctuation_next_to_the_words_stays() -> None:
    text = "Send it to perch dot app, please."
    assert apply_replacements(text, words_of(text), [Replacement("perch dot app", "perch.app")]).text == (
        "Send it to perch.app, please."
    )


def test_snippets_are_multi_line_and_longer_forms_win() -> None:
    rules = [Replacement("sign", "✍"), Replacement("sign off", "Best wishes,\nAda")]
    text = "Thanks again sign off"
    done = apply_replacements(text, words_of(text), rules)
    assert done.text == "Thanks again Best wishes,\nAda"
    assert [s.spoken for s in done.spans] == ["sign off"]


def test_a_written_form_is_never_replaced_again() -> None:
    rules = [Replacement("one", "two"), Replacement("two", "three")]
    assert apply_replacements("one two", [], rules).text == "two three"


def test_nothing_to_do() -> None:
    assert apply_replacements("hello", [], []).text == "hello"
    assert apply_replacements("", [], [Replacement("a", "b")]).spans == []
    assert apply_replacements("hello", [], [Replacement("  ", "x")]).text == "hello"


def test_replaced_partials_keep_their_settled_part() -> None:
    rules = [Replacement("perch dot app", "perch.app")]
    assert replace_partial("go to perch dot app now", 19, rules) == ("go to perch.app now", 15)
    assert replace_partial("go to perch dot", 5, rules) == ("go to perch dot", 5)
    assert replace_partial("text", 4, []) == ("text", 4)
