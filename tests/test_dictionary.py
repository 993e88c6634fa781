"""The data dictionary is generated from the declarations: the committed file matches the code, no column is
undocumented, and the UTC bookkeeping times say so."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import mssql, postgresql
from sqlalchemy.schema import SetColumnComment, SetTableComment

from common import db, dictionary, tables
from tests.conftest import REPO


def test_the_committed_dictionary_is_what_the_code_generates() -> None:
    committed = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == dictionary.render(), "docs/data-dictionary.md is stale: run python -m common.dictionary"


def test_every_table_view_and_column_has_a_description() -> None:
    assert dictionary.missing_descriptions() == []


def test_a_column_without_a_description_is_named_and_the_command_fails(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(tables.gold_alerts.c.metric, "comment", None)
    assert dictionary.missing_descriptions() == ["gold_alerts.metric", "v_alerts_recent.metric"]
    assert dictionary.main(["--output", str(tmp_path / "dd.md")]) == 1
    assert "gold_alerts.metric" in capsys.readouterr().err
    assert not (tmp_path / "dd.md").exists()


def test_check_fails_on_a_stale_file_and_passes_once_written(tmp_path, capsys) -> None:
    target = tmp_path / "dd.md"
    target.write_text("# Data dictionary\n(old)\n", encoding="utf-8")
    assert dictionary.main(["--check", "--output", str(target)]) == 1
    assert "differs from the code" in capsys.readouterr().err
    assert dictionary.main(["--output", str(target)]) == 0
    assert dictionary.main(["--check", "--output", str(target)]) == 0


def test_pipeline_runs_times_are_utc_and_sqlite_dates_text_in_the_dictionary() -> None:
    rows = {e.name: e for e in dictionary.table_entries(tables.pipeline_runs)}
    assert rows["started_at"].tz == rows["finished_at"].tz == "UTC"
    assert rows["as_of"].tz == "local date" and rows["as_of"].type == "DATE (SQLite: TEXT)"
    interval = {e.name: e for e in dictionary.table_entries(tables.silver_interval)}
    assert (interval["interval_start"].tz, interval["interval_start_utc"].tz) == ("local", "UTC")
    assert dictionary.table_entries(tables.silver_interval)[2].type == "DATETIME (SQLite: TEXT)"


def test_view_columns_taken_from_a_table_keep_its_description_and_unit() -> None:
    view = next(v for v in dictionary.views.VIEWS if v.name == "v_forecast_vs_actual_daily")
    rows = {e.name: e for e in dictionary.view_entries(view)}
    assert rows["p50"].description == tables.gold_forecast_daily.c.p50.comment and rows["p50"].unit == "calls"
    assert rows["is_open"].nullable and rows["actual"].nullable  # outer join: no actual yet for the future
    assert not rows["volume_p50"].nullable and rows["in_band"].type == "INTEGER"


@pytest.mark.parametrize("dialect", [postgresql.dialect(), mssql.dialect()], ids=lambda d: d.name)
def test_every_description_compiles_as_a_catalogue_comment(dialect) -> None:
    # create_all writes the descriptions into the catalogue of servers that keep comments (SQL Server: extended
    # properties, which need the schema name a connected server reports).
    dialect.default_schema_name, dialect.supports_comments = "dbo", True
    for table in tables.metadata.tables.values():
        assert table.name in str(SetTableComment(table).compile(dialect=dialect))
        for column in table.columns:
            sql = str(SetColumnComment(column).compile(dialect=dialect))
            assert column.comment.replace("'", "''") in sql.replace("%%", "%"), sql


@pytest.mark.postgres
def test_a_postgresql_database_holds_the_descriptions_as_written(postgres_url) -> None:
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    column = tables.gold_capacity_plan.c.supply_fte_p10  # an apostrophe and a percent sign
    with engine.connect() as conn:
        got = conn.execute(text("SELECT col_description('gold_capacity_plan'::regclass, ordinal_position) "
                                "FROM information_schema.columns WHERE table_name = 'gold_capacity_plan' "
                                "AND column_name = 'supply_fte_p10'")).scalar()
    engine.dispose()
    assert got == column.comment and "'" in got and "%" in got
