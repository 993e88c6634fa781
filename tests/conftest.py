"""Shared fixtures: a config file wired to a temporary SQLite database and inbox."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
# The header of config.yaml's default export mapping (the demo ACD export), for inline CSV fixtures.
CDR_COLUMNS = ("CallID,ParentCallID,Queue,StartTime,AnswerTime,EndTime,Result,WaitTime,HandleTime,CustomerID,"
               "CallerNumber,AgentID,Channel")
CDR_HEADER = CDR_COLUMNS + "\n"


def bench_script(file_name: str) -> ModuleType:
    """bench/<file_name> as a module, loaded once (bench/ is a folder of scripts, not a package)."""
    name = "bench_" + Path(file_name).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / file_name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def write_config(directory: Path, **sections) -> Path:
    """Write the repository's config.yaml with `sections` merged over it into `directory`, pointing at local data."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base["database"]["url"] = "sqlite:///data/wfm.db"
    base["source"]["csv_glob"] = "inbox/*.csv"
    for key, value in sections.items():
        node = base
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    (directory / "inbox").mkdir(exist_ok=True)
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The default config, with its database and inbox inside a temporary folder."""
    return write_config(tmp_path)


def write_csv(path: Path, text: str) -> Path:
    """Write CSV text with each line's indentation stripped (tests keep their fixtures inline, readable)."""
    path.write_text("".join(line.strip() + "\n" for line in text.strip().splitlines()), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A PostgreSQL server for the whole test session (skipped locally without the binaries; an error under CI)."""
    import os

    from tests.pg_server import postgres_server, server_bindir

    if server_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing under CI: .ci/run must install postgresql")
        pytest.skip("PostgreSQL server binaries not installed; enable with: apt-get install postgresql")
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin_url) -> str:
    """A fresh database on the session's PostgreSQL server."""
    from tests.pg_server import create_database

    return create_database(postgres_admin_url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> str:
    """Each backend in turn: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wfm.db'}"
    return request.getfixturevalue("postgres_url")
