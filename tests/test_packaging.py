"""A non-editable wheel carries the target profiles and calibration recipes: no source checkout needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_is_listed_in_pyproject():
    """pyproject.toml lists the packages (so targets/ and calibration/ can be mapped into the wheel): a new
    subpackage missing from the list would be missing from the wheel."""
    st = _pyproject()["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "edgelstm").rglob("__init__.py")}
    assert found <= set(st["packages"]), sorted(found - set(st["packages"]))
    for pkg, folder in st["package-dir"].items():
        assert pkg in st["packages"] and (ROOT / folder).is_dir()


@pytest.fixture(scope="module")
def wheel(edgelstm_wheel) -> Path:
    """The session's wheel (conftest), built once from a copy of the source tree."""
    return edgelstm_wheel


def test_wheel_contains_every_target_and_recipe(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pkg in (("targets", "_targets"), ("calibration", "_calibration")):
        for p in (ROOT / folder).iterdir():
            assert f"edgelstm/{pkg}/{p.name}" in names, p.name


def test_installed_wheel_finds_targets_and_recipes(wheel, tmp_path):
    """A fresh virtualenv (no system site-packages) with click, numpy and the wheel only, run from an empty
    folder so the checkout cannot be imported: targets list and load, the default recipe loads, the CLI names
    the installed targets."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    deps = _pyproject()["project"]["dependencies"]
    for args in (deps, ["--no-deps", str(wheel)]):
        r = subprocess.run(pip + args, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import json, edgelstm\n"
        "from edgelstm.targets.profile import TARGET_DIR, load_target, target_names\n"
        "from edgelstm.export.calibrate import load_recipe\n"
        "t = load_target('coral-edgetpu'); r = load_recipe('default')\n"
        "print(json.dumps({'package': edgelstm.__file__, 'dir': str(TARGET_DIR), 'names': target_names(),"
        " 'coral': [t.quantization, t.io], 'recipe': [r.windows, r.source], 'small': load_recipe('small').windows}))"
    )
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=work, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    site = str(venv)
    assert got["package"].startswith(site) and got["dir"].startswith(site)
    assert got["names"] == sorted(p.stem for p in (ROOT / "targets").glob("*.toml"))
    assert got["coral"] == ["int8", "int8"]
    assert got["recipe"][0] == 200 and got["recipe"][1].endswith("edgelstm/_calibration/default.toml")
    assert got["small"] == 40
    cli = [str(venv / "bin" / "edgelstm"), "check", str(work / "model.tflite"), "--target", "toaster"]
    r = subprocess.run(cli, capture_output=True, text=True, cwd=work, env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == f"Error: unknown target 'toaster'; choose one of {', '.join(got['names'])}"


def test_license_is_the_apache_2_0_text_pyproject_names():
    text = (ROOT / "LICENSE").read_text()
    assert _pyproject()["project"]["license"] == {"text": "Apache-2.0"}
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text


def test_every_relative_link_in_the_docs_resolves_inside_the_checkout():
    """A clone has only this repository: README and docs/ link nothing outside it (e.g. ../shared/)."""
    import re

    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", md.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (md.parent / target).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), (md.name, target)
