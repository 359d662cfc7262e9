"""Model catalog, downloads from a local hub, and the `perch models` command."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from app.commands import models as models_cli
from stt import hub
from stt.catalog import CATALOG, DEFAULT_MODEL, QUANTIZATIONS, get_spec, variant_size
from stt.errors import DownloadError, ModelFileError, ModelNotFoundError

from .hub_server import MIB, TINY_NAME, TINY_REPO, HubServer, closed_port_endpoint, tiny_repo, tiny_spec

ROOT = Path(__file__).resolve().parents[1]
DATA = "encoder-model.onnx.data"
FP32 = ["config.json", "vocab.txt", "encoder-model.onnx", DATA, "decoder_joint-model.onnx"]
INT8 = ["config.json", "vocab.txt", "encoder-model.int8.onnx", "decoder_joint-model.int8.onnx"]
# http_get hands the file over in 10 MiB pieces, so a transfer cut after 11 MiB has written exactly this much.
FIRST_PIECE = 10 * MIB

Progress = list[tuple[int, int]]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A local hub serving the tiny repo, with Perch's and huggingface_hub's folders under tmp_path."""
    with HubServer({TINY_REPO: tiny_repo()}) as local_hub:
        monkeypatch.setenv("HF_ENDPOINT", local_hub.endpoint)
        monkeypatch.setenv("PERCH_MODELS_DIR", str(tmp_path / "models"))
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setitem(CATALOG, TINY_NAME, tiny_spec())
        yield local_hub


def _model_dir(tmp_path: Path) -> Path:
    return tmp_path / "models" / TINY_NAME


def _entries(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


def _assert_files(directory: Path, names: list[str]) -> None:
    repo = tiny_repo()
    for name in names:
        assert (directory / name).read_bytes() == repo[name], name


def _part_files(directory: Path) -> list[Path]:
    return sorted((directory / ".partial").glob("*.part"))


def test_catalog_has_both_parakeet_models_with_the_published_files() -> None:
    assert DEFAULT_MODEL == "parakeet-tdt-0.6b-v3"
    for name in ("parakeet-tdt-0.6b-v3", "parakeet-tdt-0.6b-v2"):
        spec = get_spec(name)
        assert spec.repo_id == f"istupakov/{name}-onnx"
        assert [f.name for f in spec.files["fp32"]] == FP32
        assert [f.name for f in spec.files["int8"]] == INT8
        for quantization in QUANTIZATIONS:
            assert variant_size(spec, quantization) == sum(f.approx_size for f in spec.files[quantization])
    v3_int8 = {f.name: f for f in get_spec("parakeet-tdt-0.6b-v3").files["int8"]}
    assert v3_int8["encoder-model.int8.onnx"].size == 652_183_999
    assert v3_int8["config.json"].sha256 is not None
    assert 2.4e9 < variant_size(get_spec("parakeet-tdt-0.6b-v2"), "fp32") < 2.6e9


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError, match=r"known models: parakeet-tdt-0\.6b-v3, parakeet-tdt-0\.6b-v2"):
        get_spec("whisper")


def test_download_writes_exactly_the_variant_and_reports_progress(server: HubServer, tmp_path: Path) -> None:
    progress: Progress = []
    path = hub.download(TINY_NAME, "fp32", progress=lambda done, total: progress.append((done, total)))

    directory = _model_dir(tmp_path)
    assert path == directory
    assert _entries(directory) == {*FP32, ".perch-fp32.json"}
    _assert_files(directory, FP32)
    total = sum(len(tiny_repo()[name]) for name in FP32)
    assert progress[0] == (0, total)
    assert progress[-1] == (total, total)
    assert all(t == total for _, t in progress)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert hub.is_downloaded(TINY_NAME, "fp32")
    assert not hub.is_downloaded(TINY_NAME, "int8")
    marker = json.loads((directory / ".perch-fp32.json").read_text())
    assert marker["files"][DATA]["size"] == len(tiny_repo()[DATA])
    # The catalog's hash, and the hub's sha256 ETag of a large file, were both checked.
    assert marker["files"]["config.json"]["sha256"]
    assert marker["files"][DATA]["sha256"]
    assert not server.gets("nemo128.onnx")


def test_a_complete_download_is_not_repeated(server: HubServer) -> None:
    hub.download(TINY_NAME, "int8")
    seen = len(server.requests)
    progress: Progress = []
    hub.download(TINY_NAME, "int8", progress=lambda done, total: progress.append((done, total)))
    assert len(server.requests) == seen
    assert progress and progress[-1][0] == progress[-1][1]


def test_a_dropped_connection_is_resumed_in_the_same_call(server: HubServer, tmp_path: Path) -> None:
    server.drop_at[DATA] = 11 * MIB
    hub.download(TINY_NAME, "fp32")
    assert [r.range for r in server.gets(DATA)] == [None, f"bytes={FIRST_PIECE}-"]
    _assert_files(_model_dir(tmp_path), FP32)


def test_an_interrupted_download_leaves_no_marker_and_the_next_one_resumes(server: HubServer, tmp_path: Path) -> None:
    server.drop_at[DATA] = 11 * MIB
    server.outage_after_drop = True
    with pytest.raises(DownloadError, match="cannot reach the Hugging Face hub to download tiny-tdt"):
        hub.download(TINY_NAME, "fp32")
    directory = _model_dir(tmp_path)
    assert not hub.is_downloaded(TINY_NAME, "fp32")
    assert not (directory / ".perch-fp32.json").exists()
    assert not (directory / DATA).exists()
    assert [p.stat().st_size for p in _part_files(directory)] == [FIRST_PIECE]

    server.outage = False
    server.requests.clear()
    progress: Progress = []
    hub.download(TINY_NAME, "fp32", progress=lambda done, total: progress.append((done, total)))
    assert [r.range for r in server.gets(DATA)] == [f"bytes={FIRST_PIECE}-"]
    assert not server.gets("encoder-model.onnx")
    _assert_files(directory, FP32)
    assert hub.is_downloaded(TINY_NAME, "fp32")
    assert _entries(directory) == {*FP32, ".perch-fp32.json"}
    assert progress[0][0] > FIRST_PIECE
    assert progress[-1][0] == progress[-1][1]


def test_ctrl_c_leaves_no_marker_and_the_next_download_resumes(server: HubServer, tmp_path: Path) -> None:
    before_data = sum(len(tiny_repo()[name]) for name in FP32[:3])

    def interrupt(done: int, total: int) -> None:
        if done > before_data + FIRST_PIECE:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hub.download(TINY_NAME, "fp32", progress=interrupt)
    directory = _model_dir(tmp_path)
    assert not hub.is_downloaded(TINY_NAME, "fp32")
    assert [p.stat().st_size for p in _part_files(directory)] == [FIRST_PIECE]

    server.requests.clear()
    hub.download(TINY_NAME, "fp32")
    assert [r.range for r in server.gets(DATA)] == [f"bytes={FIRST_PIECE}-"]
    _assert_files(directory, FP32)


def test_force_downloads_every_file_again(server: HubServer, tmp_path: Path) -> None:
    hub.download(TINY_NAME, "int8")
    server.requests.clear()
    hub.download(TINY_NAME, "int8", force=True)
    assert all(len(server.gets(name)) == 1 for name in INT8)
    _assert_files(_model_dir(tmp_path), INT8)
    assert hub.is_downloaded(TINY_NAME, "int8")


def test_a_damaged_file_is_reported_and_only_it_is_fetched_again(server: HubServer, tmp_path: Path) -> None:
    hub.download(TINY_NAME, "fp32")
    directory = _model_dir(tmp_path)
    with (directory / DATA).open("r+b") as handle:
        handle.truncate(1000)
    assert not hub.is_downloaded(TINY_NAME, "fp32")
    assert hub.verify(TINY_NAME, "fp32") == [f"{DATA} is 1000 bytes instead of {len(tiny_repo()[DATA])}"]
    with pytest.raises(ModelFileError, match="--force"):
        hub.resolve_model_dir(TINY_NAME, "fp32")

    server.requests.clear()
    hub.download(TINY_NAME, "fp32")
    assert [name for name in FP32 if server.gets(name)] == [DATA]
    _assert_files(directory, FP32)
    assert hub.verify(TINY_NAME, "fp32") == []


def test_verify_finds_a_changed_byte(server: HubServer, tmp_path: Path) -> None:
    hub.download(TINY_NAME, "int8")
    path = _model_dir(tmp_path) / "encoder-model.int8.onnx"
    data = bytearray(path.read_bytes())
    data[5] ^= 1
    path.write_bytes(bytes(data))
    assert hub.is_downloaded(TINY_NAME, "int8")  # sizes only
    assert hub.verify(TINY_NAME, "int8") == ["encoder-model.int8.onnx does not match its sha256 hash"]


def test_offline_mode_uses_a_complete_copy_and_explains_a_missing_one(
    server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.download(TINY_NAME, "int8")
    seen = len(server.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    directory = _model_dir(tmp_path)
    assert hub.download(TINY_NAME, "int8") == directory
    assert hub.resolve_model_dir(TINY_NAME, "int8") == directory
    with pytest.raises(DownloadError) as caught:
        hub.download(TINY_NAME, "fp32")
    message = str(caught.value)
    assert "offline mode is on (HF_HUB_OFFLINE)" in message
    assert "perch models download tiny-tdt --quantization fp32" in message
    assert str(directory) in message and DATA in message
    assert len(server.requests) == seen


def test_offline_mode_set_before_import(server: HubServer, tmp_path: Path) -> None:
    hub.download(TINY_NAME, "int8")
    seen = len(server.requests)
    script = (
        "import json\n"
        "from huggingface_hub import constants\n"
        "from stt import catalog, hub\n"
        "from tests.hub_server import TINY_NAME, tiny_spec\n"
        "catalog.CATALOG[TINY_NAME] = tiny_spec()\n"
        "out = {'hf_offline': constants.HF_HUB_OFFLINE}\n"
        "out['int8'] = str(hub.download(TINY_NAME, 'int8'))\n"
        "out['resolved'] = str(hub.resolve_model_dir(TINY_NAME, 'int8'))\n"
        "try:\n"
        "    hub.download(TINY_NAME, 'fp32')\n"
        "except Exception as exc:\n"
        "    out['fp32'] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    directory = str(_model_dir(tmp_path))
    assert out["hf_offline"] is True
    assert out["int8"] == out["resolved"] == directory
    assert out["fp32"].startswith("DownloadError: offline mode is on")
    assert len(server.requests) == seen


def test_offline_mode_does_not_accept_a_damaged_download(
    server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.download(TINY_NAME, "fp32")
    (_model_dir(tmp_path) / DATA).write_bytes(b"x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match=f"{DATA} is 1 bytes instead of {len(tiny_repo()[DATA])}"):
        hub.download(TINY_NAME, "fp32")
    assert not hub.is_downloaded(TINY_NAME, "fp32")


def test_files_placed_by_hand_are_used_and_adopted_offline(
    server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _model_dir(tmp_path)
    directory.mkdir(parents=True)
    with pytest.raises(ModelNotFoundError) as caught:
        hub.resolve_model_dir(TINY_NAME, "int8")
    assert str(caught.value) == (
        "model tiny-tdt (int8) is not downloaded; run `perch models download tiny-tdt --quantization int8`, "
        f"or place its files ({', '.join(INT8)}) in {directory}"
    )
    for name in INT8:
        (directory / name).write_bytes(tiny_repo()[name])
    assert hub.resolve_model_dir(TINY_NAME, "int8") == directory
    assert not hub.is_downloaded(TINY_NAME, "int8")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.download(TINY_NAME, "int8")
    assert hub.is_downloaded(TINY_NAME, "int8")
    assert not server.requests


def test_an_unreachable_hub_gives_one_clear_line(
    server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    with pytest.raises(DownloadError) as caught:
        hub.download(TINY_NAME, "int8")
    message = str(caught.value)
    assert message.startswith("cannot reach the Hugging Face hub to download tiny-tdt (")
    assert "connect to the internet and run `perch models download tiny-tdt --quantization int8`" in message
    assert f"place the files by hand in {_model_dir(tmp_path)} ({', '.join(INT8)})" in message
    assert "\n" not in message
    assert not hub.is_downloaded(TINY_NAME, "int8")


def test_a_missing_repo_is_reported(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CATALOG, TINY_NAME, tiny_spec("perch-tests/gone"))
    with pytest.raises(
        DownloadError,
        match=r"refused to serve tiny-tdt from perch-tests/gone \(HTTP 404 Repository not found from 127\.0\.0\.1\)",
    ):
        hub.download(TINY_NAME, "int8")


def test_a_catalog_hash_mismatch_fails_without_marker(
    server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {"decoder_joint-model.int8.onnx": "0" * 64}
    monkeypatch.setitem(CATALOG, TINY_NAME, tiny_spec(**bad))
    with pytest.raises(ModelFileError, match=r"decoder_joint-model\.int8\.onnx was downloaded but does not match"):
        hub.download(TINY_NAME, "int8")
    directory = _model_dir(tmp_path)
    assert not hub.is_downloaded(TINY_NAME, "int8")
    assert not (directory / ".perch-int8.json").exists()
    assert not (directory / "decoder_joint-model.int8.onnx").exists()
    assert not _part_files(directory)


def test_bytes_that_differ_from_the_hub_hash_are_rejected(server: HubServer, tmp_path: Path) -> None:
    server.corrupt.add("encoder-model.int8.onnx")
    with pytest.raises(ModelFileError, match=r"encoder-model\.int8\.onnx was downloaded but does not match"):
        hub.download(TINY_NAME, "int8")
    assert not hub.is_downloaded(TINY_NAME, "int8")
    server.corrupt.clear()
    hub.download(TINY_NAME, "int8")
    _assert_files(_model_dir(tmp_path), INT8)


def test_resolve_model_dir(server: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert hub.resolve_model_dir(str(folder), "int8") == folder
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'nope'.*known models: parakeet-tdt-0\.6b-v3"):
        hub.resolve_model_dir("nope", "fp32")
    with pytest.raises(ModelNotFoundError, match="is not downloaded"):
        hub.resolve_model_dir(TINY_NAME, "int8")
    hub.download(TINY_NAME, "int8")
    assert hub.resolve_model_dir(TINY_NAME, "int8") == _model_dir(tmp_path)


def test_list_models_and_remove(server: HubServer, tmp_path: Path) -> None:
    hub.download(TINY_NAME, "int8")
    statuses = {(s.name, s.quantization): s for s in hub.list_models()}
    assert set(statuses) == {(name, q) for name in CATALOG for q in QUANTIZATIONS}
    tiny = statuses[(TINY_NAME, "int8")]
    assert tiny.downloaded and tiny.path == _model_dir(tmp_path)
    assert tiny.approx_size == sum(len(tiny_repo()[name]) for name in INT8)
    assert not statuses[(TINY_NAME, "fp32")].downloaded
    assert not statuses[(DEFAULT_MODEL, "fp32")].downloaded

    assert hub.remove(TINY_NAME) == _model_dir(tmp_path)
    assert not _model_dir(tmp_path).exists()
    assert not hub.is_downloaded(TINY_NAME, "int8")
    with pytest.raises(ModelNotFoundError, match="is not downloaded"):
        hub.remove(TINY_NAME)
    with pytest.raises(ModelNotFoundError, match="not a model name"):
        hub.remove("../x")


def test_the_official_client_accepts_the_local_hub(server: HubServer, tmp_path: Path) -> None:
    for name in ("config.json", "encoder-model.int8.onnx"):
        path = hf_hub_download(
            TINY_REPO, name, local_dir=tmp_path / "plain", cache_dir=tmp_path / "cache", endpoint=server.endpoint
        )
        assert Path(path).read_bytes() == tiny_repo()[name]


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="perch")
    models_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", *argv])
    return int(args.func(args))


def test_cli_download_verify_list_remove(server: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("download", TINY_NAME, "--quantization", "int8") == 0
    out, err = capsys.readouterr()
    assert "tiny-tdt (int8) is ready in" in out
    lines = err.splitlines()
    assert lines[0].startswith("tiny-tdt (int8):   0.0%")
    assert lines[-1].startswith("tiny-tdt (int8): 100.0%")
    assert "MB/s" in lines[-1]

    assert _cli("download", TINY_NAME, "--quantization", "int8") == 0
    assert "already downloaded" in capsys.readouterr().out

    assert _cli("verify", TINY_NAME, "--quantization", "int8") == 0
    assert capsys.readouterr().out == "tiny-tdt (int8): OK\n"

    assert _cli("list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "QUANTIZATION", "SIZE", "DOWNLOADED", "PATH"]
    assert any(row.split()[:5] == [TINY_NAME, "int8", "130", "kB", "yes"] for row in table)
    assert any(row.split()[:5] == [DEFAULT_MODEL, "fp32", "2.55", "GB", "no"] for row in table)
    assert _cli() == 0
    assert capsys.readouterr().out.splitlines() == table

    assert _cli("remove", TINY_NAME) == 0
    assert capsys.readouterr().out.startswith("removed ")


def test_cli_failures_are_one_line_with_exit_1(
    server: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli("verify", TINY_NAME, "--device", "cpu") == 1  # auto weights on the CPU: int8
    err = capsys.readouterr().err
    assert err == (
        "perch: error: tiny-tdt (int8) is not usable: not downloaded; "
        "run `perch models download tiny-tdt --quantization int8`\n"
    )
    assert _cli("download", "nope") == 1
    assert capsys.readouterr().err.startswith("perch: error: unknown model 'nope'; known models:")
    assert _cli("remove", TINY_NAME) == 1
    assert capsys.readouterr().err.startswith("perch: error: model tiny-tdt is not downloaded")
    hub.download(TINY_NAME, "int8")
    (tmp_path / "models" / TINY_NAME / "vocab.txt").write_bytes(b"")
    assert _cli("verify", TINY_NAME, "--quantization", "int8") == 1
    assert capsys.readouterr().err == (
        "perch: error: tiny-tdt (int8) is not usable: vocab.txt is 0 bytes instead of 340; "
        "run `perch models download tiny-tdt --quantization int8 --force`\n"
    )

    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    assert _cli("download", TINY_NAME) == 1
    err = capsys.readouterr().err
    assert err.startswith("perch: error: cannot reach the Hugging Face hub to download tiny-tdt")
    assert err.count("\n") == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_on_a_terminal_and_prints_deciles_elsewhere() -> None:
    terminal = _Terminal()
    bar = models_cli.ProgressBar(terminal, "m")
    for done in (0, 50 * MIB, 100 * MIB):
        bar(done, 100 * MIB)
    bar.close()
    text = terminal.getvalue()
    assert text.startswith("\rm:   0.0%") and text.endswith("\n") and text.count("\n") == 1
    assert "m: 100.0%  104.9/104.9 MB" in text

    log = io.StringIO()
    bar = models_cli.ProgressBar(log, "m")
    for done in range(0, 101, 5):
        bar(done, 100)
    bar.close()
    lines = log.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}.0%" for p in range(0, 101, 10)]
