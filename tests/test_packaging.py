"""Packaging: one version everywhere, the same pins in pyproject.toml and the requirements files, every step installed."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from common import __version__, db, tables
from tests.conftest import REPO

STEP_SCRIPTS = sorted(p.stem for p in REPO.glob("[0-9]*.py"))


def _pins(path: Path) -> set[str]:
    """`name==version` lines of a requirements file (following -r), comments and spaces removed."""
    pins = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= _pins(path.parent / line[3:].strip())
        elif line:
            pins.add(line.replace(" ", ""))
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_pyproject_pins_exactly_what_the_requirements_files_pin() -> None:
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    runtime = set(project["dependencies"]) | set(extras["postgres"]) | set(extras["mssql"])
    assert runtime == _pins(REPO / "requirements.txt")
    # The test suite runs the REST API too: requirements-test.txt also pins the api extra.
    tested = runtime | set(extras["test"]) | set(extras["api"])
    assert tested == _pins(REPO / "requirements-test.txt")
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", pin) for pin in tested)


def test_the_version_is_one_release_number_and_steps_print_it() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    assert f"## {__version__}" in (REPO / "CHANGELOG.md").read_text()
    done = subprocess.run([sys.executable, "3_forecast.py", "--version"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"3_forecast.py (wfm-forecast {__version__})"


def test_a_step_records_the_version_it_ran_in_pipeline_runs(config_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(config_path.parent)
    assert importlib.import_module("0_load_bronze").main(["--config", str(config_path), "--as-of", "2025-03-10"]) == 0
    with db.make_engine(f"sqlite:///{config_path.parent / 'data' / 'wfm.db'}").connect() as conn:
        runs = db.read_table(conn, tables.pipeline_runs)
    assert runs[["step", "status", "pipeline_version"]].values.tolist() == [["0_load_bronze", "success", __version__]]


def test_every_numbered_step_is_installed_as_a_module_and_a_command() -> None:
    setup_py = (REPO / "setup.py").read_text()
    listed = re.search(r"STEPS = \[(.*?)\]", setup_py, re.S).group(1).replace('"', "").replace(" ", "").split(",")
    assert sorted(listed) == STEP_SCRIPTS
    commands = _pyproject()["project"]["scripts"]
    targets = {target.split(":")[1] for target in commands.values()}
    entry = importlib.import_module("common.entrypoints")
    called = set(re.findall(r'_command\("([^"]+)"\)', Path(entry.__file__).read_text()))
    assert set(STEP_SCRIPTS) <= called
    assert all(callable(getattr(entry, name)) for name in targets)
    assert all(callable(importlib.import_module(step).main) for step in STEP_SCRIPTS)


def test_pip_builds_a_wheel_with_the_steps_the_package_and_the_commands(tmp_path: Path) -> None:
    # Built from a copy of what the wheel needs: pip builds in the source tree (build/, *.egg-info).
    source = tmp_path / "source"
    shutil.copytree(REPO / "common", source / "common", ignore=shutil.ignore_patterns("__pycache__"))  # templates too
    for name in ["pyproject.toml", "setup.py", "LICENSE", "README.md", *(f"{step}.py" for step in STEP_SCRIPTS)]:
        shutil.copy2(REPO / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    if done.returncode and "No matching distribution found for setuptools" in done.stderr:
        pytest.skip("pip cannot fetch the build backend (setuptools>=77): no package index reachable")
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("wfm_forecast-*.whl")
    assert wheel.name.startswith(f"wfm_forecast-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"{step}.py" for step in STEP_SCRIPTS} <= names
    assert {"common/__init__.py", "common/cli.py", "common/entrypoints.py", "common/templates/report.html.j2",
            "common/templates/report.txt.j2"} <= names
    entry_points = zipfile.ZipFile(wheel).read(f"wfm_forecast-{__version__}.dist-info/entry_points.txt").decode()
    assert "wfm-forecast = common.entrypoints:forecast" in entry_points
    assert "wfm-api = common.entrypoints:api" in entry_points and "common/api.py" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
