"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temporary folder on a free loopback port.

Uses the server binaries of Debian's `postgresql` package (`.ci/run` installs it). When they are missing the
PostgreSQL tests are skipped with that reason on a developer machine, and fail under CI (env CI set), so a
CI run can never pass without having tested PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_bindir() -> Path | None:
    """Folder with initdb and pg_ctl, newest version first."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for folder in candidates:
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and Path(found).with_name("initdb").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; as root (CI), run it as the `postgres` user the package creates.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextmanager
def postgres_server(settings: dict[str, str] | None = None) -> Iterator[str]:
    """Start a server; yield an admin SQLAlchemy URL (database `postgres`); stop and delete it afterwards.

    `settings`: extra server parameters (`-c name=value`), e.g. a warehouse's memory settings for benchmarks.
    """
    bindir = server_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="wfm-pg-", dir="/tmp"))
    data = root / "data"
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    root.chmod(0o755)
    try:
        subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "wfm", "--auth=trust",
                                        "--encoding=UTF8", "--locale=C"]), check=True, capture_output=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        options += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                        str(root / "server.log"), "-w", "-t", "60", "start"]), check=True,
                       capture_output=True)
        yield f"postgresql+psycopg://wfm@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(admin_url: str) -> str:
    """A fresh, empty database on the server; its URL."""
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name
