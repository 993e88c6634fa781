"""Table declarations: DDL that every supported backend accepts, names that need no quoting in any of them."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import mssql, postgresql, sqlite
from sqlalchemy.dialects.mssql.base import RESERVED_WORDS as MSSQL_RESERVED
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS as POSTGRES_RESERVED
from sqlalchemy.schema import CreateIndex, CreateTable

from common import tables


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect(), mssql.dialect()], ids=lambda d: d.name)
def test_every_table_compiles_for_every_backend(dialect) -> None:
    for table in tables.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert table.name in ddl
        for index in table.indexes:
            assert index.name in str(CreateIndex(index).compile(dialect=dialect))


def test_no_table_or_column_name_is_a_reserved_word_or_too_long() -> None:
    # Power BI users write SQL by hand: a name like `rule` (reserved in SQL Server) would need [brackets] everywhere.
    for table in tables.metadata.sorted_tables:
        for name in [table.name, *(c.name for c in table.columns)]:
            assert name == name.lower() and name.isidentifier(), name
            assert name not in MSSQL_RESERVED and name not in POSTGRES_RESERVED, f"{table.name}.{name} is reserved"
            assert len(name) <= 63, name  # PostgreSQL's identifier limit


def test_gold_tables_keep_their_public_columns() -> None:
    # A contract with Power BI: these columns may gain siblings but never disappear or change name.
    expected = {
        "gold_forecast_daily": {"run_id", "forecast_origin", "queue", "date", "horizon_day", "p10", "p50", "p90",
                                "method", "model_version", "fallback_reason"},
        "gold_forecast_interval": {"run_id", "forecast_origin", "queue", "interval_start", "p10", "p50", "p90",
                                   "aht_seconds"},
        "gold_staffing_interval": {"run_id", "forecast_origin", "queue", "interval_start", "volume_p10", "volume_p50",
                                   "volume_p90", "aht_seconds", "workload_minutes", "agents_p10", "agents_p50",
                                   "agents_p90", "staff_p10", "staff_p50", "staff_p90", "service_level_p50",
                                   "occupancy_p50"},
        "gold_dim_customer_behavior": {"customer_id", "segment", "segment_label", "features"},
    }
    for name, columns in expected.items():
        assert columns <= set(tables.metadata.tables[name].columns.keys()), name
