"""Every table of the pipeline, declared once, with its grain (the gold ones in `common/tables_gold.py`).

Table names appear as strings only here. `gold_*` tables are a public contract
with Power BI users: add columns, never rename or drop one without a migration
note in docs/. Timestamps: `*_utc` columns hold naive UTC; the others hold the
center's local wall-clock time (naive), which is what an analyst reads.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from common.table_types import ID as _ID
from common.table_types import NAME as _NAME
from common.table_types import metadata

# --- bronze: source rows as received (mapped to canonical names, typed), append-only -----------------

# One row per load of one source (a file, or one incremental SQL query).
bronze_load_log = Table(
    "bronze_load_log", metadata,
    Column("load_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("source_kind", String(10), nullable=False),       # cdr | interval | daily
    Column("source_name", String(500), nullable=False),      # file path or "sql:<hash of query>"
    Column("content_sha256", String(64)),                     # files: the same content is never loaded twice
    Column("rows_read", Integer, nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("rows_duplicate", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("watermark", String(40)),                          # SQL sources: newest start_time loaded
    Column("loaded_at", DateTime, nullable=False),
    Column("status", String(20), nullable=False),             # loaded | skipped (a file that could not be read)
    Column("message", Text),                                  # skipped: why, naming the file and the fix
)

# One row per call leg as exported by the ACD (a transfer adds legs; a redial is a new call).
bronze_cdr = Table(
    "bronze_cdr", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("source_row", Integer, nullable=False),            # 1-based data row in the file (header excluded)
    Column("row_hash", String(32), nullable=False),           # 128-bit hash of the row's source values
    Column("call_id", _ID, nullable=False),
    Column("queue", _NAME, nullable=False),
    Column("start_time", DateTime, nullable=False),
    Column("start_time_utc", DateTime, nullable=False),
    Column("start_date", Date, nullable=False),               # local date of start_time: the unit of rebuilds
    Column("answer_time", DateTime),
    Column("end_time", DateTime),
    Column("outcome", String(20), nullable=False),            # answered | abandoned | short_abandon | other
    Column("outcome_raw", String(100)),
    Column("handle_seconds", Float),
    Column("wait_seconds", Float),
    Column("customer_id", _ID),
    Column("caller_id", _ID),
    Column("agent_id", _ID),
    Column("parent_call_id", _ID),
    Column("channel", String(50)),
    UniqueConstraint("row_hash", name="uq_bronze_cdr_row_hash"),
    Index("ix_bronze_cdr_start_date", "start_date"),
    Index("ix_bronze_cdr_call_id", "call_id"),                # a re-export's older rows of a call (moved_calls)
)

# One row per queue per reported interval, as exported by the ACD's interval report.
bronze_interval = Table(
    "bronze_interval", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("source_row", Integer, nullable=False),
    Column("row_hash", String(32), nullable=False),
    Column("queue", _NAME, nullable=False),
    Column("interval_start", DateTime, nullable=False),
    Column("interval_start_utc", DateTime, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("offered", Float, nullable=False),
    Column("handled", Float),
    Column("abandoned", Float),
    Column("aht_seconds", Float),
    UniqueConstraint("row_hash", name="uq_bronze_interval_row_hash"),
    Index("ix_bronze_interval_start_date", "start_date"),
)

# One row per queue per local date, as exported by a WFM tool's daily totals (source.kind daily or daily_history).
bronze_daily = Table(
    "bronze_daily", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("source_row", Integer, nullable=False),
    Column("row_hash", String(32), nullable=False),
    Column("queue", _NAME, nullable=False),
    Column("date", Date, nullable=False),
    Column("offered", Float, nullable=False),
    Column("handled", Float),
    Column("abandoned", Float),
    Column("aht_seconds", Float),
    UniqueConstraint("row_hash", name="uq_bronze_daily_row_hash"),
    Index("ix_bronze_daily_date", "date"),
)

# One row per source row that could not be used, with why; never silently dropped.
bronze_rejects = Table(
    "bronze_rejects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("source_row", Integer),
    Column("reason", Text, nullable=False),
    Column("raw", Text),
    Column("row_hash", String(32), nullable=False),           # the same bad row in the same source is kept once
    UniqueConstraint("row_hash", name="uq_bronze_rejects_row_hash"),
)

# --- silver: cleaned, attributed, on a complete calendar ------------------------------------------------

# One row per customer contact: transfer legs and true redials collapsed into their first touch.
silver_calls = Table(
    "silver_calls", metadata,
    Column("contact_id", _ID, nullable=False),
    Column("queue", _NAME, nullable=False),
    Column("start_time", DateTime, nullable=False),
    Column("start_time_utc", DateTime, nullable=False),
    Column("date", Date, nullable=False),
    Column("interval_start", DateTime, nullable=False),
    Column("interval_start_utc", DateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("handle_seconds", Float),
    Column("wait_seconds", Float),
    Column("customer_id", _ID),
    Column("caller_id", _ID),
    Column("legs", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("is_open_hours", Boolean, nullable=False),
    Column("is_holiday", Boolean, nullable=False),
    Column("holiday_name", _NAME),
    Column("counts_as_offered", Boolean, nullable=False),
    Index("ix_silver_calls_date", "date"),
)

# One row per queue per interval of the configured length, every interval of every day (closed ones too).
silver_interval = Table(
    "silver_interval", metadata,
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("date", Date, nullable=False),
    Column("offered", Float, nullable=False),
    Column("handled", Float),
    Column("abandoned", Float),
    Column("short_abandoned", Float),
    Column("offered_outside_hours", Float, nullable=False),
    Column("aht_seconds", Float),
    Column("is_open", Boolean, nullable=False),
    Index("ix_silver_interval_date", "date"),
)

# One row per queue per local date, every date (closed ones too).
silver_daily = Table(
    "silver_daily", metadata,
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("offered", Float, nullable=False),
    Column("handled", Float),
    Column("abandoned", Float),
    Column("short_abandoned", Float),
    Column("offered_outside_hours", Float, nullable=False),
    Column("aht_seconds", Float),
    Column("is_open", Boolean, nullable=False),
    Column("is_holiday", Boolean, nullable=False),
    Column("holiday_name", _NAME),
    # 'daily': built from a daily-totals export (source.kind daily / daily_history; no silver_interval rows that
    # day); null: from the intervals or CDRs of source:.
    Column("source_kind", String(10)),
)

# One row per local date that silver was built for: what bronze held then, so the next run rebuilds only changed days.
silver_day_state = Table(
    "silver_day_state", metadata,
    Column("date", Date, primary_key=True),
    Column("bronze_rows", Integer, nullable=False),
    Column("bronze_max_load_id", Integer, nullable=False),
    Column("run_id", String(32), nullable=False),
)

# One row per check per run (per queue where a check is per queue).
data_quality_checks = Table(
    "data_quality_checks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("step", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("check_name", String(60), nullable=False),
    Column("severity", String(10), nullable=False),           # info | warning | critical
    Column("passed", Boolean, nullable=False),
    Column("queue", _NAME),
    Column("value", Float),
    Column("threshold", Float),
    Column("detail", Text, nullable=False),
    Column("checked_at", DateTime, nullable=False),
)

# One row per step run.
pipeline_runs = Table(
    "pipeline_runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("step", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(20), nullable=False),             # running | success | failed | skipped
    Column("rows_written", Integer),
    Column("message", Text),
    Column("overrides", Text),                                # JSON list of the run's --set KEY=VALUE; NULL: none
    Column("pipeline_version", String(20)),                   # wfm-forecast version that ran (NULL before 0.5.0)
)

# --- gold: what Power BI reads (public contract), declared in their own module --------------------------------------
from common.tables_gold import (  # noqa: E402  (after the bronze/silver tables: the same metadata, in this order)
    gold_dim_customer_behavior,
    model_registry,
    gold_forecast_daily,
    gold_forecast_members,
    gold_forecast_interval,
    gold_staffing_interval,
    gold_forecast_intraday,
    gold_staffing_daily,
    gold_queue_patience,
    gold_service_delivered,
    gold_forecast_accuracy,
    gold_forecast_accuracy_summary,
    gold_alerts,
)
from common.tables_capacity import (  # noqa: E402
    gold_capacity_drivers,
    gold_capacity_plan,
    gold_scenarios,
    scenario_twin,
)

# Step 3's scenario rows (3_forecast.py --scenario NAME): the published tables' columns plus `scenario`.
gold_scenario_forecast_daily = scenario_twin(gold_forecast_daily)
gold_scenario_staffing_interval = scenario_twin(gold_staffing_interval)
gold_scenario_staffing_daily = scenario_twin(gold_staffing_daily)
