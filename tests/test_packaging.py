"""The wheel carries every package and the resources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("app", "stt")
        for init in (ROOT / top).rglob("__init__.py")
    }
    found |= {"perch_resources"} | {
        "perch_resources." + d.name for d in (ROOT / "resources").iterdir() if d.is_dir() and not d.name.startswith("_")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A wheel and an sdist built from the source tree, as `python -m build` makes them."""
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("src") / "perch"
    # A copy, so that build leftovers never land in the working tree.
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", "build", "dist", "*.egg-info", ".git", "__pycache__", ".*_cache"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_holds_the_code_and_resources_and_no_tests(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    from app import __version__

    assert wheel.name.startswith(f"perch_dictation-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for resource in ("icons/perch-idle.svg", "sounds/start.wav", "vad/silero_vad_16k_sequence.onnx", "vad/LICENSE"):
        assert f"perch_resources/{resource}" in names
    assert "app/cli.py" in names and "stt/engine.py" in names and "stt/py.typed" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert not [name for name in names if name.startswith(("tests/", "packaging/", "docs/"))]
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert f"Version: {__version__}" in text and "Provides-Extra: cuda" in text and "Provides-Extra: dev" in text


def test_the_sdist_builds_the_same_version(built: tuple[Path, Path]) -> None:
    _, sdist = built
    from app import __version__

    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    root = f"perch_dictation-{__version__}"
    assert f"{root}/pyproject.toml" in names and f"{root}/resources/vad/LICENSE" in names


def test_version_comes_from_one_place() -> None:
    from app import __version__

    done = subprocess.run(
        [sys.executable, "-m", "app", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == f"perch {__version__}"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and config["project"]["dynamic"] == ["version"]
