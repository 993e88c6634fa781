"""SQL Server: pyodbc only for mssql URLs, and every statement the pipeline runs compiles for the mssql dialect.

No SQL Server runs here, so the statements are captured from a real run on SQLite (a `before_execute` listener
gets each Core statement) and compiled with SQLAlchemy's mssql dialect: a construct SQL Server lacks fails to
compile, and the bound parameters of each statement are counted against SQL Server's limit of 2100. The same
capture shows what training reads from silver (only the columns it needs, which matters on a remote server).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, insert
from sqlalchemy.dialects import mssql
from sqlalchemy.sql import ClauseElement, Delete, Insert, Select, Update
from sqlalchemy.sql.ddl import ExecutableDDLElement

from common import db, tables
from common.demo import demo_legs, write_demo_csvs
from tests.conftest import CDR_HEADER, REPO, write_config


def _need_pyodbc() -> None:
    """Skip without the unixODBC library on a developer machine; under CI (env CI) that is an error instead."""
    import os

    try:
        import pyodbc  # noqa: F401
    except ImportError as exc:  # a missing libodbc.so.2 is an ImportError, not a missing module
        if os.environ.get("CI"):
            pytest.fail(f"pyodbc cannot be imported under CI ({exc}): .ci/run must install libodbc2")
        pytest.skip(f"pyodbc needs the unixODBC library ({exc}); enable with: apt-get install libodbc2")

MSSQL_MAX_PARAMETERS = 2100
AS_OF = date(2025, 3, 10)
SQLSERVER_URL = ("mssql+pyodbc://wfm:secret@sqlhost.example:1433/wfm"
                 "?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes")

# A subprocess: this test process may have imported pyodbc already (test below).
_NO_PYODBC = r"""
import importlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import common
for module in pkgutil.iter_modules(common.__path__):
    importlib.import_module("common." + module.name)
for script in ("0_load_bronze", "1_build_silver", "1_5_segment_customers", "2_train", "3_forecast", "4_evaluate",
               "5_report"):
    importlib.import_module(script)
argv = ["--config", sys.argv[2], "--as-of", "2025-03-11", "--log-level", "ERROR", "--workers", "0"]
assert importlib.import_module("0_load_bronze").main(argv) == 0
assert importlib.import_module("1_build_silver").main(argv) == 0
print("pyodbc" in sys.modules, "sqlalchemy.dialects.mssql" in sys.modules)
"""


def test_importing_everything_and_running_on_sqlite_never_imports_pyodbc(tmp_path: Path) -> None:
    config = write_config(tmp_path, validation__completeness_min_share=0.0)
    (tmp_path / "inbox" / "day.csv").write_text(
        CDR_HEADER + "A1,,Support,2025-03-10 09:00:00,,,ANSWERED,5,120,C1,+461,,voice\n")
    done = subprocess.run([sys.executable, "-c", _NO_PYODBC, str(REPO), str(config)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "False"]


def test_an_mssql_url_gets_a_pyodbc_engine_with_fast_executemany() -> None:
    _need_pyodbc()
    engine = db.make_engine(SQLSERVER_URL)  # connects lazily: no server needed to build it
    assert (engine.dialect.name, engine.dialect.driver) == ("mssql", "pyodbc")
    assert engine.dialect.fast_executemany is True
    assert "secret" not in db.safe_url(engine)


@pytest.fixture(scope="module")
def pipeline_statements(tmp_path_factory) -> list[tuple[str, ClauseElement]]:
    """(script, statement) for every Core statement one night of the pipeline (steps 0..5, a promotion, a backtest)
    runs on SQLite."""
    root = tmp_path_factory.mktemp("mssql_capture")
    config = write_config(root, validation__completeness_min_share=0.0, training__min_history_days=28,
                          training__backtest_origins=1, training__calibration_origins=0,
                          training__params={"n_estimators": 10, "min_data_in_leaf": 5})
    write_demo_csvs(demo_legs(AS_OF - timedelta(days=75), AS_OF - timedelta(days=1), seed=3, scale=0.03),
                    root / "inbox", malformed_rows=2)
    captured: list[tuple[str, ClauseElement]] = []
    running = [""]

    def capture(conn, clauseelement, multiparams, params, execution_options) -> None:
        captured.append((running[0], clauseelement))

    def run(script: str, *extra: str) -> None:
        running[0] = script
        code = importlib.import_module(script).main(["--config", str(config), "--as-of", AS_OF.isoformat(),
                                                     "--log-level", "ERROR", *extra])
        assert code == 0, script

    event.listen(Engine, "before_execute", capture)
    try:
        run("0_load_bronze", "--workers", "0")
        run("1_build_silver", "--workers", "0")
        run("1_5_segment_customers")
        run("2_train")
        with db.make_engine(f"sqlite:///{root / 'data' / 'wfm.db'}").connect() as conn:
            version = db.read_table(conn, tables.model_registry, columns=["version"])["version"].item()
        run("2_train", "--promote", version)
        run("3_forecast")
        run("4_evaluate")
        run("4_evaluate", "--backtest", "--origins", "1")
        run("5_report", "--no-email")
    finally:
        event.remove(Engine, "before_execute", capture)
    return captured


def test_every_statement_the_pipeline_runs_compiles_for_sql_server(pipeline_statements) -> None:
    statements = [s for _, s in pipeline_statements]
    kinds = {type(s).__name__ for s in statements}
    assert {"Select", "Insert", "Update", "Delete"} <= kinds, kinds  # the capture saw the pipeline's writes too
    written = {s.table.name for s in statements if isinstance(s, Insert | Update | Delete)}
    assert {"pipeline_runs", "silver_calls", "model_registry", "gold_forecast_daily", "gold_alerts"} <= written
    dialect = mssql.dialect()
    for statement in statements:
        # Text SQL would be one backend's dialect, unchecked; only Core statements (and the schema's DDL) are allowed.
        assert isinstance(statement, Select | Insert | Update | Delete | ExecutableDDLElement), \
            f"not a Core statement, cannot be checked for SQL Server: {statement}"
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        sql = compiled.string.upper()
        assert "OR IGNORE" not in sql and "ON CONFLICT" not in sql and " LIMIT " not in sql, sql
        n = 0 if isinstance(statement, ExecutableDDLElement) else len(compiled.params)
        assert n <= MSSQL_MAX_PARAMETERS, f"{n} parameters: {sql[:200]}"


def test_bulk_inserts_sql_server_uses_compile_for_every_table() -> None:
    # SQL Server takes the generic bulk path of db.insert_frame / insert_ignoring_duplicates: an executemany of
    # insert(table), and existing-key lookups 1000 keys at a time (SQLite and PostgreSQL use their own fast paths,
    # which the capture above cannot see).
    dialect = mssql.dialect()
    for table in tables.metadata.sorted_tables:
        assert f"INSERT INTO {table.name}" in str(insert(table).compile(dialect=dialect))
    lookup = db.existing_keys_statement(tables.bronze_cdr, "row_hash", [f"{i:032x}" for i in range(1000)])
    compiled = lookup.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert len(compiled.params) == 1000 <= MSSQL_MAX_PARAMETERS


def test_training_reads_only_the_silver_daily_columns_it_needs(pipeline_statements) -> None:
    silver = {"silver_calls", "silver_interval", "silver_daily"}
    reads = [s for script, s in pipeline_statements if script == "2_train" and isinstance(s, Select)
             and {t.name for t in s.get_final_froms()} & silver]
    assert reads, "2_train read nothing from silver"
    for statement in reads:
        assert {t.name for t in statement.get_final_froms()} == {"silver_daily"}
        assert set(statement.selected_columns.keys()) <= {"queue", "date", "offered", "is_open", "is_holiday"}
        assert statement.whereclause is not None  # only days before the as-of


def _readme_sqlserver_urls() -> list[str]:
    import re

    return re.findall(r"mssql\+pyodbc://[^\s`\"]+", (REPO / "README.md").read_text())


def test_the_readme_sql_server_urls_give_odbc_driver_18_connection_strings(tmp_path: Path, monkeypatch) -> None:
    _need_pyodbc()
    urls = _readme_sqlserver_urls()
    assert len(urls) == 2, urls  # SQL login (password from password_env) and Windows authentication
    monkeypatch.setenv("WFM_DB_PASSWORD", "p@ss;word")
    config = write_config(tmp_path, database__url=urls[0], database__password_env="WFM_DB_PASSWORD")
    from common.config import load_config

    engine = db.make_engine(load_config(config).database_url)
    (odbc,), _ = engine.dialect.create_connect_args(engine.url)
    # What pyodbc would be handed: the driver by name, encryption on, the secret from the environment, braced
    # because it holds a ';' (which would otherwise end the attribute).
    assert odbc.startswith("DRIVER={ODBC Driver 18 for SQL Server};Server=sqlhost,1433;Database=wfm;UID=wfm;")
    assert "PWD={p@ss;word}" in odbc and "Encrypt=yes" in odbc and "TrustServerCertificate=no" in odbc
    trusted = db.make_engine(urls[1])
    (odbc,), _ = trusted.dialect.create_connect_args(trusted.url)
    assert "Trusted_Connection=Yes" in odbc and "UID" not in odbc and "PWD" not in odbc
