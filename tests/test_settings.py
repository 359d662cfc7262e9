"""Settings: JSON round trip, defaults, damaged files set aside, per-value repair, migrations, subscribers."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, get_args

import pytest

import app.settings as settings_module
from app import settings_rules as rules
from app.settings import (
    DEVICE_CHOICES,
    FINAL_PASS_CHOICES,
    MODE_CHOICES,
    PARTIALS_PRESETS,
    SCHEMA_VERSION,
    CaptionSettings,
    Settings,
    SettingsStore,
    dictation_options,
    resolved_weights,
    runtime_options,
    worker_options,
)
from app.vocabulary_settings import ReplacementEntry, VocabularyEntry, VocabularySettings
from stt.boost.phrases import DEFAULT_STRENGTH
from stt.catalog import DEFAULT_MODEL
from stt.dictation import LIVE_VAD, MODES, DictationOptions
from stt.modelfiles import QUANTIZATIONS, Quantization
from stt.quantization import QUANTIZATION_CHOICES, QuantizationChoice
from stt.runtime import DEVICES, Device, RuntimeOptions
from stt.streaming import PRESETS
from stt.worker import FinalChoice, PartialsChoice, WorkerOptions

CHANGED = Settings(
    model="/models/my-model",
    quantization="int8",
    device="cuda",
    mode="handsfree",
    ptt_hotkey="Ctrl+Shift+F1",
    toggle_hotkey="",
    microphone="USB Microphone",
    vad_threshold=0.7,
    partials=False,
    partials_preset="quality",
    final_pass="streaming",
    typing_strategy="paste",
    type_into_any_focus=True,
    smart_spacing=False,
    caption=CaptionSettings(
        show=False, font_size=24, opacity=0.5, click_through=True, hide_when_idle=False, geometry=(-10, 20, 640, 90)
    ),
    preroll=False,
    sound_cues=False,
    history_enabled=False,
    history_keep_days=30,
    keep_recordings=0,
    start_at_login=True,
    service_enabled=True,
    service_port=9000,
    service_wyoming=True,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)


def _set_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


# Defaults and the dict form.


def test_defaults() -> None:
    settings = Settings()
    assert settings.schema_version == SCHEMA_VERSION == 1
    assert settings.model == DEFAULT_MODEL
    assert (settings.quantization, settings.device, settings.mode) == ("auto", "auto", "ptt")
    assert (settings.ptt_hotkey, settings.toggle_hotkey) == ("Ctrl+Alt+Space", "Ctrl+Alt+D")
    assert settings.microphone is None
    assert settings.vad_threshold == 0.5
    assert settings.partials and settings.partials_preset == "auto" and settings.final_pass == "full"
    assert settings.typing_strategy == "auto" and not settings.type_into_any_focus and settings.smart_spacing
    assert settings.caption == CaptionSettings(True, 18, 0.85, False, True, None)
    assert settings.preroll and settings.sound_cues and settings.history_enabled
    assert (settings.history_keep_days, settings.keep_recordings) == (0, 20)
    assert not settings.start_at_login
    assert (settings.service_enabled, settings.service_port, settings.service_wyoming) == (False, 8737, False)


def test_choices_match_the_engine() -> None:
    assert set(QUANTIZATION_CHOICES) == {"auto", *QUANTIZATIONS}
    assert DEVICE_CHOICES == DEVICES
    assert MODE_CHOICES == MODES
    assert set(PARTIALS_PRESETS) == {"auto", *PRESETS}
    assert {*PARTIALS_PRESETS, "off"} == set(get_args(PartialsChoice))
    assert set(FINAL_PASS_CHOICES) == set(get_args(FinalChoice))


def test_every_field_has_a_rule() -> None:
    names = {f.name for f in dataclasses.fields(Settings)} - {"schema_version", "caption", "vocabulary"}
    assert set(settings_module._RULES) == names
    assert set(settings_module._CAPTION_RULES) == {f.name for f in dataclasses.fields(CaptionSettings)}


def test_dict_round_trip() -> None:
    data = CHANGED.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["caption"]["geometry"] == [-10, 20, 640, 90]
    assert Settings.from_dict(data) == (CHANGED, [])
    assert Settings.from_dict(Settings().to_dict()) == (Settings(), [])


def test_missing_keys_take_defaults() -> None:
    settings, problems = Settings.from_dict({"mode": "toggle", "caption": {"font_size": 30}})
    assert problems == []
    assert settings == dataclasses.replace(
        Settings(), mode="toggle", caption=dataclasses.replace(CaptionSettings(), font_size=30)
    )
    assert Settings.from_dict({}) == (Settings(), [])


def test_unknown_keys_are_ignored() -> None:
    data = CHANGED.to_dict() | {"colour": "blue", "future_option": [1, 2]}
    data["caption"] = data["caption"] | {"shadow": True}
    assert Settings.from_dict(data) == (CHANGED, [])


def test_lenient_forms() -> None:
    settings, problems = Settings.from_dict(
        {"vad_threshold": 1 - 0.5, "keep_recordings": 5.0, "microphone": "  ", "caption": {"opacity": 1}}
    )
    assert problems == []
    assert settings.keep_recordings == 5 and isinstance(settings.keep_recordings, int)
    assert settings.microphone is None
    assert settings.caption.opacity == 1.0 and isinstance(settings.caption.opacity, float)


BAD_VALUES: list[tuple[str, Any]] = [
    ("model", ""),
    ("model", 3),
    ("quantization", "int4"),
    ("device", "rocm"),
    ("device", None),
    ("mode", "walkie-talkie"),
    ("ptt_hotkey", 42),
    ("toggle_hotkey", ["Ctrl", "D"]),
    ("microphone", 7),
    ("vad_threshold", 0.05),
    ("vad_threshold", 0.95),
    ("vad_threshold", "0.5"),
    ("vad_threshold", True),
    ("vad_threshold", float("nan")),
    ("partials", "yes"),
    ("partials", 1),
    ("partials_preset", "off"),
    ("final_pass", "none"),
    ("typing_strategy", "telepathy"),
    ("type_into_any_focus", None),
    ("smart_spacing", 0),
    ("preroll", "true"),
    ("sound_cues", {}),
    ("history_enabled", []),
    ("history_keep_days", -1),
    ("history_keep_days", 2.5),
    ("history_keep_days", False),
    ("keep_recordings", "20"),
    ("keep_recordings", -3),
    ("start_at_login", "no"),
    ("service_enabled", "on"),
    ("service_port", 80),
    ("service_port", 65536),
    ("service_port", "8737"),
    ("service_wyoming", 1),
]


@pytest.mark.parametrize(("key", "bad"), BAD_VALUES)
def test_bad_value_is_reported_and_replaced(key: str, bad: Any) -> None:
    data = CHANGED.to_dict()
    data[key] = bad
    settings, problems = Settings.from_dict(data)
    assert settings == dataclasses.replace(CHANGED, **{key: getattr(Settings(), key)})
    assert len(problems) == 1
    message = problems[0]
    assert f'"{key}"' in message
    assert rules.show(bad) in message
    assert f"using {rules.show(getattr(Settings(), key))} instead" in message
    assert "\n" not in message


BAD_CAPTION_VALUES: list[tuple[str, Any]] = [
    ("show", "on"),
    ("font_size", 2),
    ("font_size", 200),
    ("font_size", "18"),
    ("opacity", 0.1),
    ("opacity", 1.5),
    ("click_through", 1),
    ("hide_when_idle", None),
    ("geometry", [1, 2, 3]),
    ("geometry", [0, 0, 0, 100]),
    ("geometry", [0, 0, 100.5, 100]),
    ("geometry", "0,0,100,100"),
    ("geometry", [0, 0, True, 100]),
]


@pytest.mark.parametrize(("key", "bad"), BAD_CAPTION_VALUES)
def test_bad_caption_value_is_reported_and_replaced(key: str, bad: Any) -> None:
    data = CHANGED.to_dict()
    data["caption"][key] = bad
    settings, problems = Settings.from_dict(data)
    assert settings.caption == dataclasses.replace(CHANGED.caption, **{key: getattr(CaptionSettings(), key)})
    assert len(problems) == 1
    assert f'"caption.{key}"' in problems[0] and rules.show(bad) in problems[0]


def test_several_bad_values_each_reported() -> None:
    settings, problems = Settings.from_dict({"mode": 1, "device": "gpu", "caption": {"opacity": 9}, "partials": False})
    assert len(problems) == 3
    assert settings == dataclasses.replace(Settings(), partials=False)


def test_caption_that_is_not_an_object() -> None:
    data = CHANGED.to_dict() | {"caption": "big"}
    settings, problems = Settings.from_dict(data)
    assert settings == dataclasses.replace(CHANGED, caption=CaptionSettings())
    assert len(problems) == 1 and '"caption"' in problems[0] and '"big"' in problems[0]


@pytest.mark.parametrize("data", [None, [1, 2], "settings", 3])
def test_from_dict_with_something_else(data: object) -> None:
    settings, problems = Settings.from_dict(data)
    assert settings == Settings()
    assert len(problems) == 1


# The store.


def test_default_path_follows_xdg_config_home() -> None:
    store = SettingsStore()
    assert store.path.name == "settings.json"
    assert store.path.is_relative_to(Path(os.environ["XDG_CONFIG_HOME"]))


def test_save_and_load_round_trip(path: Path) -> None:
    SettingsStore(path).save(CHANGED)
    store = SettingsStore(path)
    assert store.load() == CHANGED
    assert store.problems == []
    assert json.loads(path.read_text(encoding="utf-8"))["schema_version"] == SCHEMA_VERSION


def test_missing_file_gives_defaults_and_writes_nothing(path: Path) -> None:
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert store.problems == []
    assert not path.parent.exists()


def test_corrupt_json_is_moved_aside(path: Path) -> None:
    original = b'{"mode": "toggle", \xff oops'
    _write(path, original)
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert not path.exists()
    [moved] = _set_aside(path)
    assert re.fullmatch(r"settings\.json\.corrupt-\d{8}-\d{6}", moved.name)
    assert moved.read_bytes() == original
    assert len(store.problems) == 1
    message = store.problems[0]
    assert "not valid JSON" in message and str(moved) in message and "default" in message
    assert "\n" not in message


def test_set_aside_files_are_never_overwritten(path: Path) -> None:
    for content in ("{", "[", "nope"):
        _write(path, content)
        store = SettingsStore(path)
        store.load()
        assert len(store.problems) == 1
    assert sorted(p.read_text() for p in _set_aside(path)) == sorted(["{", "[", "nope"])


@pytest.mark.parametrize(("content", "kind"), [("[1, 2]", "an array"), ('"x"', "a string"), ("null", "null")])
def test_json_that_is_not_an_object_is_moved_aside(path: Path, content: str, kind: str) -> None:
    _write(path, content)
    store = SettingsStore(path)
    assert store.load() == Settings()
    [moved] = _set_aside(path)
    assert moved.read_text() == content
    assert kind in store.problems[0] and str(moved) in store.problems[0]


def test_newer_schema_version_is_moved_aside(path: Path) -> None:
    content = json.dumps(CHANGED.to_dict() | {"schema_version": SCHEMA_VERSION + 1})
    _write(path, content)
    store = SettingsStore(path)
    assert store.load() == Settings()
    [moved] = _set_aside(path)
    assert moved.read_text() == content
    assert "newer version of Perch" in store.problems[0] and str(moved) in store.problems[0]


@pytest.mark.parametrize("version", ["1", 1.0, True, None])
def test_schema_version_that_is_not_a_whole_number_is_moved_aside(path: Path, version: object) -> None:
    _write(path, json.dumps({"schema_version": version}))
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert len(_set_aside(path)) == 1
    assert "schema_version" in store.problems[0]


def test_missing_schema_version_counts_as_the_first(path: Path) -> None:
    data = CHANGED.to_dict()
    del data["schema_version"]
    _write(path, json.dumps(data))
    store = SettingsStore(path)
    assert store.load() == CHANGED
    assert store.problems == []


def test_bad_values_are_reported_but_the_file_stays(path: Path) -> None:
    content = json.dumps(CHANGED.to_dict() | {"mode": "shout", "keep_recordings": -1, "extra": 1})
    _write(path, content)
    store = SettingsStore(path)
    settings = store.load()
    assert settings == dataclasses.replace(CHANGED, mode="ptt", keep_recordings=20)
    assert len(store.problems) == 2
    assert any('"mode"' in p and '"shout"' in p for p in store.problems)
    assert any('"keep_recordings"' in p and "-1" in p for p in store.problems)
    assert path.read_text() == content
    assert _set_aside(path) == []


def test_problems_reset_on_each_load(path: Path) -> None:
    _write(path, '{"mode": "shout"}')
    store = SettingsStore(path)
    store.load()
    assert len(store.problems) == 1
    store.save(Settings())
    store.load()
    assert store.problems == []


def test_save_creates_the_folder_and_leaves_no_temp_files(path: Path) -> None:
    store = SettingsStore(path)
    store.save(CHANGED)
    store.save(Settings())
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]
    assert SettingsStore(path).load() == Settings()


def test_failed_save_keeps_the_old_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SettingsStore(path)
    store.save(CHANGED)
    before = path.read_bytes()

    def broken_replace(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        store.save(Settings())
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]
    assert store.current == CHANGED


def test_save_rejects_invalid_settings(path: Path) -> None:
    store = SettingsStore(path)
    with pytest.raises(ValueError, match="vad_threshold"):
        store.save(dataclasses.replace(Settings(), vad_threshold=2.0))
    with pytest.raises(ValueError, match=r"caption\.font_size"):
        store.save(dataclasses.replace(Settings(), caption=CaptionSettings(font_size=0)))
    assert not path.exists()


def test_save_over_a_corrupt_file_sets_it_aside_first(path: Path) -> None:
    _write(path, "{broken")
    store = SettingsStore(path)
    store.save(CHANGED)
    [moved] = _set_aside(path)
    assert moved.read_text() == "{broken"
    assert SettingsStore(path).load() == CHANGED


# Migrations.


def test_migrations_run_in_order(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def one_to_two(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data["schema_version"])
        data["mode"] = {"hold": "ptt", "press": "toggle"}[data.pop("recording_style")]
        return data

    def two_to_three(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data["schema_version"])
        data["caption"] = {"font_size": data.pop("caption_font_size")}
        return data

    monkeypatch.setattr(settings_module, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(settings_module, "MIGRATIONS", {1: one_to_two, 2: two_to_three})
    content = json.dumps({"schema_version": 1, "recording_style": "press", "caption_font_size": 22})
    _write(path, content)
    store = SettingsStore(path)
    settings = store.load()
    assert calls == [1, 2]
    assert store.problems == []
    assert settings.mode == "toggle" and settings.caption.font_size == 22
    assert path.read_text() == content  # loading never rewrites the file


def test_migrated_values_are_still_checked(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(settings_module, "MIGRATIONS", {1: lambda data: data | {"device": "abacus"}})
    _write(path, json.dumps({"schema_version": 1}))
    store = SettingsStore(path)
    assert store.load().device == "auto"
    assert len(store.problems) == 1 and '"abacus"' in store.problems[0]


def test_version_without_a_migration_is_moved_aside(path: Path) -> None:
    _write(path, json.dumps({"schema_version": 0}))
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert len(_set_aside(path)) == 1
    assert "too old" in store.problems[0]


def test_failing_migration_is_moved_aside(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("recording_style")

    monkeypatch.setattr(settings_module, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(settings_module, "MIGRATIONS", {1: broken})
    _write(path, json.dumps({"schema_version": 1}))
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert len(_set_aside(path)) == 1
    assert "upgrading it from settings version 1 failed" in store.problems[0]


# Subscribers.


def test_subscribers_get_old_and_new(path: Path) -> None:
    store = SettingsStore(path)
    seen: list[tuple[Settings, Settings]] = []
    stop = store.subscribe(lambda old, new: seen.append((old, new)))
    store.save(CHANGED)
    newer = dataclasses.replace(CHANGED, mode="toggle")
    store.save(newer)
    assert seen == [(Settings(), CHANGED), (CHANGED, newer)]
    stop()
    store.save(Settings())
    assert len(seen) == 2
    assert store.current == Settings()


def test_old_value_comes_from_the_file(path: Path) -> None:
    SettingsStore(path).save(CHANGED)
    store = SettingsStore(path)
    seen: list[Settings] = []
    store.subscribe(lambda old, new: seen.append(old))
    store.save(Settings())
    assert seen == [CHANGED]


def test_failing_subscriber_does_not_stop_the_others(path: Path) -> None:
    store = SettingsStore(path)
    seen: list[Settings] = []

    def broken(old: Settings, new: Settings) -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    store.subscribe(lambda old, new: seen.append(new))
    store.save(CHANGED)
    assert seen == [CHANGED]
    assert SettingsStore(path).load() == CHANGED


# Engine options.


def test_dictation_options() -> None:
    assert dictation_options(Settings()) == DictationOptions(mode="ptt", preroll_ms=500, vad=LIVE_VAD)
    options = dictation_options(dataclasses.replace(Settings(), mode="handsfree", preroll=False, vad_threshold=0.7))
    assert options.mode == "handsfree" and options.preroll_ms == 0
    assert options.vad == dataclasses.replace(LIVE_VAD, threshold=0.7, exit_threshold=0.55)
    low = dictation_options(dataclasses.replace(Settings(), vad_threshold=0.1))
    assert low.vad.threshold == 0.1 and low.vad.exit_threshold == 0.01


def test_worker_options() -> None:
    assert worker_options(Settings()) == WorkerOptions(partials="auto", final="full")
    changed = dataclasses.replace(Settings(), partials_preset="quality", final_pass="streaming")
    assert worker_options(changed) == WorkerOptions(partials="quality", final="streaming")
    assert worker_options(dataclasses.replace(changed, partials=False)) == WorkerOptions(
        partials="off", final="streaming"
    )


def test_runtime_options() -> None:
    assert runtime_options(Settings()) == RuntimeOptions(device="auto")
    assert runtime_options(dataclasses.replace(Settings(), device="tensorrt")) == RuntimeOptions(device="tensorrt")


@pytest.mark.parametrize(
    ("quantization", "device", "cuda", "expected"),
    [
        ("auto", "auto", False, "int8"),
        ("auto", "auto", True, "fp32"),
        ("auto", "cuda", True, "fp32"),
        ("auto", "tensorrt", True, "fp32"),
        ("auto", "cpu", True, "int8"),
        ("auto", "cuda", False, "int8"),
        ("int8", "cuda", True, "int8"),
        ("fp32", "cpu", False, "fp32"),
    ],
)
def test_resolved_weights(quantization: QuantizationChoice, device: Device, cuda: bool, expected: Quantization) -> None:
    settings = dataclasses.replace(Settings(), quantization=quantization, device=device)
    assert resolved_weights(settings, cuda_available=cuda).quantization == expected


def test_vocabulary_round_trip_and_bad_entries() -> None:
    vocabulary = VocabularySettings(
        (VocabularyEntry("Okonkwo", stronger=True), VocabularyEntry("Kubernetes")),
        4.5,
        (ReplacementEntry("perch dot app", "perch.app"), ReplacementEntry("sign off", "Best,\nAda", True)),
    )
    settings = dataclasses.replace(Settings(), vocabulary=vocabulary)
    data = json.loads(json.dumps(settings.to_dict()))
    assert Settings.from_dict(data) == (settings, [])
    data["vocabulary"] = {
        "phrases": [{"text": "  Ada   Lovelace "}, {"text": ""}, "Babbage", {"text": "x", "stronger": "yes"}],
        "strength": 99,
        "replacements": [{"spoken": "a", "written": 3}, {"spoken": "b", "written": "B"}],
    }
    loaded, problems = Settings.from_dict(data)
    assert loaded.vocabulary == VocabularySettings(
        (VocabularyEntry("Ada Lovelace"),), DEFAULT_STRENGTH, (ReplacementEntry("b", "B"),)
    )
    assert len(problems) == 5 and all("vocabulary" in p for p in problems)
    assert Settings.from_dict({"vocabulary": "lots"})[0].vocabulary == VocabularySettings()
