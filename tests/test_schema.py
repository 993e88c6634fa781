"""Schema migration: a database made by an older version gains the nullable columns a newer version declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text
from sqlalchemy.dialects import mssql, postgresql, sqlite

from common import schema, tables
from common.errors import DataError


def _old_pipeline_runs(url: str) -> None:
    """pipeline_runs as an older version made it: without `message` (a nullable column declared today)."""
    keep = [c for c in tables.pipeline_runs.columns if c.name != "message"]
    old = Table("pipeline_runs", MetaData(), *(c._copy() for c in keep))
    engine = create_engine(url)
    old.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO pipeline_runs (run_id, step, as_of, started_at, status) "
                          "VALUES ('r1', '0_load_bronze', '2025-03-10', '2025-03-10 02:00:00', 'success')"))
    engine.dispose()


def test_an_older_database_gains_the_new_nullable_column_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _old_pipeline_runs(url)
    engine = create_engine(url)
    schema.ensure_schema(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("pipeline_runs")}
    assert "message" in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT run_id, message FROM pipeline_runs")).all() == [("r1", None)]
    schema.ensure_schema(engine)  # a second run finds nothing to add
    with engine.connect() as conn:
        assert schema.missing_columns(conn) == []


def test_an_older_bronze_table_gains_the_call_id_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    schema.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_bronze_cdr_call_id"))  # as a version before issue 14 made it
        assert [i.name for i in schema.missing_indexes(conn)] == ["ix_bronze_cdr_call_id"]
    schema.ensure_schema(engine)
    assert "ix_bronze_cdr_call_id" in {i["name"] for i in inspect(engine).get_indexes("bronze_cdr")}
    with engine.connect() as conn:
        assert schema.missing_indexes(conn) == []


def test_a_missing_column_that_cannot_be_null_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    keep = [c for c in tables.pipeline_runs.columns if c.name != "status"]
    engine = create_engine(url)
    Table("pipeline_runs", MetaData(), *(c._copy() for c in keep)).metadata.create_all(engine)
    with pytest.raises(DataError, match="pipeline_runs lacks column status"):
        schema.ensure_schema(engine)


@pytest.mark.parametrize("dialect,expected", [
    (sqlite.dialect(), "ALTER TABLE t ADD COLUMN note VARCHAR(10)"),
    (postgresql.dialect(), "ALTER TABLE t ADD COLUMN note VARCHAR(10)"),
    (mssql.dialect(), "ALTER TABLE t ADD note VARCHAR(10) NULL"),
], ids=lambda v: getattr(v, "name", ""))
def test_add_column_compiles_for_every_backend(dialect, expected: str) -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("note", String(10)))
    assert str(schema.AddColumn(table, table.c.note).compile(dialect=dialect)) == expected
