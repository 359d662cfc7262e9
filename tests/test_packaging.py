"""The wheel carries every package and the resources."""

from __future__ import annotations

import sys

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
