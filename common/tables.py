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

from common.table_types import CALLS, SECONDS, UTC, describe_shared, metadata
from common.table_types import ID as _ID
from common.table_types import NAME as _NAME

# --- bronze: source rows as received (mapped to canonical names, typed), append-only -----------------

bronze_load_log = Table(
    "bronze_load_log", metadata,
    Column("load_id", Integer, primary_key=True, autoincrement=True, comment="load number, increasing"),
    Column("run_id", String(32), nullable=False),
    Column("source_kind", String(10), nullable=False, comment="cdr | interval | daily"),
    Column("source_name", String(500), nullable=False, comment='file path, or "sql:<hash of the query>"'),
    Column("content_sha256", String(64), comment="files: hash of the content (the same content is never loaded twice)"),
    Column("rows_read", Integer, nullable=False, comment="data rows read = loaded + duplicate + rejected",
           info={"unit": "rows"}),
    Column("rows_loaded", Integer, nullable=False, comment="rows new to bronze", info={"unit": "rows"}),
    Column("rows_duplicate", Integer, nullable=False, comment="rows bronze already held (same row hash)",
           info={"unit": "rows"}),
    Column("rows_rejected", Integer, nullable=False, comment="rows kept in bronze_rejects", info={"unit": "rows"}),
    Column("watermark", String(40), comment="SQL sources: the newest start_time loaded"),
    Column("loaded_at", DateTime, nullable=False, comment="when the load ran, UTC", info=UTC),
    Column("status", String(20), nullable=False, comment="loaded | skipped (a file that could not be read)"),
    Column("message", Text, comment="skipped: why, naming the file and the fix"),
    comment="One row per load of one source (a file, or one incremental SQL query).",
)

bronze_cdr = Table(
    "bronze_cdr", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="row number, increasing"),
    Column("load_id", Integer, nullable=False, comment="bronze_load_log.load_id of the load that added it"),
    Column("source_name", String(500), nullable=False, comment="the file (or SQL source) the row came from"),
    Column("source_row", Integer, nullable=False, comment="1-based data row in the file (header excluded)"),
    Column("row_hash", String(32), nullable=False, comment="128-bit hash of the row's source values (dedup key)"),
    Column("call_id", _ID, nullable=False, comment="the ACD's call id (several columns joined if configured)"),
    Column("queue", _NAME, nullable=False, comment="queue name as exported"),
    Column("start_time", DateTime, nullable=False, comment="when the leg started, local wall clock"),
    Column("start_time_utc", DateTime, nullable=False, comment="when the leg started, UTC"),
    Column("start_date", Date, nullable=False, comment="local date of start_time: the unit of silver rebuilds"),
    Column("answer_time", DateTime, comment="when an agent answered, local wall clock; NULL: not answered or unknown"),
    Column("end_time", DateTime, comment="when the leg ended, local wall clock"),
    Column("outcome", String(20), nullable=False, comment="answered | abandoned | short_abandon | other"),
    Column("outcome_raw", String(100), comment="the outcome as exported, before source.outcome_map"),
    Column("handle_seconds", Float, comment="talk + hold + wrap time", info=SECONDS),
    Column("wait_seconds", Float, comment="time in queue before answer or abandon", info=SECONDS),
    Column("customer_id", _ID, comment="customer id (ps_... when source.pseudonymize is on)"),
    Column("caller_id", _ID, comment="caller number (ps_... when source.pseudonymize is on)"),
    Column("agent_id", _ID, comment="agent who handled the leg"),
    Column("parent_call_id", _ID, comment="the leg this one was transferred from"),
    Column("channel", String(50), comment="voice, chat, ... as exported"),
    UniqueConstraint("row_hash", name="uq_bronze_cdr_row_hash"),
    Index("ix_bronze_cdr_start_date", "start_date"),
    Index("ix_bronze_cdr_call_id", "call_id"),                # a re-export's older rows of a call (moved_calls)
    comment="One row per call leg as exported by the ACD (a transfer adds legs; a redial is a new call).",
)

bronze_interval = Table(
    "bronze_interval", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="row number, increasing"),
    Column("load_id", Integer, nullable=False, comment="bronze_load_log.load_id of the load that added it"),
    Column("source_name", String(500), nullable=False, comment="the file (or SQL source) the row came from"),
    Column("source_row", Integer, nullable=False, comment="1-based data row in the file (header excluded)"),
    Column("row_hash", String(32), nullable=False, comment="128-bit hash of the row's source values (dedup key)"),
    Column("queue", _NAME, nullable=False, comment="queue name as exported"),
    Column("interval_start", DateTime, nullable=False),
    Column("interval_start_utc", DateTime, nullable=False),
    Column("start_date", Date, nullable=False, comment="local date of interval_start"),
    Column("offered", Float, nullable=False, comment="calls offered in the interval", info=CALLS),
    Column("handled", Float, comment="calls answered", info=CALLS),
    Column("abandoned", Float, comment="calls abandoned", info=CALLS),
    Column("aht_seconds", Float, comment="average handle time of the handled calls", info=SECONDS),
    UniqueConstraint("row_hash", name="uq_bronze_interval_row_hash"),
    Index("ix_bronze_interval_start_date", "start_date"),
    comment="One row per queue per reported interval, as exported by the ACD's interval report.",
)

bronze_daily = Table(
    "bronze_daily", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="row number, increasing"),
    Column("load_id", Integer, nullable=False, comment="bronze_load_log.load_id of the load that added it"),
    Column("source_name", String(500), nullable=False, comment="the file (or SQL source) the row came from"),
    Column("source_row", Integer, nullable=False, comment="1-based data row in the file (header excluded)"),
    Column("row_hash", String(32), nullable=False, comment="128-bit hash of the row's source values (dedup key)"),
    Column("queue", _NAME, nullable=False, comment="queue name as exported"),
    Column("date", Date, nullable=False),
    Column("offered", Float, nullable=False, comment="calls offered that day", info=CALLS),
    Column("handled", Float, comment="calls answered", info=CALLS),
    Column("abandoned", Float, comment="calls abandoned", info=CALLS),
    Column("aht_seconds", Float, comment="average handle time of the handled calls", info=SECONDS),
    UniqueConstraint("row_hash", name="uq_bronze_daily_row_hash"),
    Index("ix_bronze_daily_date", "date"),
    comment="One row per queue per local date, as exported by a WFM tool's daily totals (source.kind daily or "
            "daily_history).",
)

bronze_rejects = Table(
    "bronze_rejects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="row number, increasing"),
    Column("load_id", Integer, nullable=False, comment="bronze_load_log.load_id of the load that found it"),
    Column("source_name", String(500), nullable=False, comment="the file (or SQL source) the row came from"),
    Column("source_row", Integer, comment="1-based data row in the file; NULL: not a row (e.g. a cut-off line)"),
    Column("reason", Text, nullable=False, comment="why the row could not be used, naming the field and value"),
    Column("raw", Text, comment="the raw line (control characters escaped); deleted after "
                                "source.rejects_retention_days"),
    Column("row_hash", String(32), nullable=False,
           comment="hash of source and raw line: the same bad row is kept once"),
    UniqueConstraint("row_hash", name="uq_bronze_rejects_row_hash"),
    comment="One row per source row that could not be used, with why; never silently dropped.",
)

# --- silver: cleaned, attributed, on a complete calendar ------------------------------------------------

silver_calls = Table(
    "silver_calls", metadata,
    Column("contact_id", _ID, nullable=False, comment="call_id of the contact's first leg"),
    Column("queue", _NAME, nullable=False),
    Column("start_time", DateTime, nullable=False, comment="when the contact started, local wall clock"),
    Column("start_time_utc", DateTime, nullable=False, comment="when the contact started, UTC"),
    Column("date", Date, nullable=False, comment="local date of start_time"),
    Column("interval_start", DateTime, nullable=False, comment="start of the contact's interval, local wall clock"),
    Column("interval_start_utc", DateTime, nullable=False, comment="start of the contact's interval, UTC"),
    Column("outcome", String(20), nullable=False, comment="answered | abandoned | short_abandon | other"),
    Column("handle_seconds", Float, comment="handle time over the contact's legs", info=SECONDS),
    Column("wait_seconds", Float, comment="wait before the first answer or the abandon", info=SECONDS),
    Column("customer_id", _ID, comment="customer id (ps_... when source.pseudonymize is on)"),
    Column("caller_id", _ID, comment="caller number (ps_... when source.pseudonymize is on)"),
    Column("legs", Integer, nullable=False, comment="call legs collapsed into the contact (transfers)"),
    Column("attempts", Integer, nullable=False, comment="calls collapsed into it (redials within the window)"),
    Column("is_open_hours", Boolean, nullable=False, comment="started inside the queue's opening hours"),
    Column("is_holiday", Boolean, nullable=False, comment="started on a closed date of the centre"),
    Column("holiday_name", _NAME, comment="that closed date's name"),
    Column("counts_as_offered", Boolean, nullable=False,
           comment="counts in offered demand: in opening hours, answered or abandoned (not short_abandon or other)"),
    Index("ix_silver_calls_date", "date"),
    comment="One row per customer contact: transfer legs and true redials collapsed into their first touch.",
)

silver_interval = Table(
    "silver_interval", metadata,
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("date", Date, nullable=False, comment="local date of interval_start"),
    Column("offered", Float, nullable=False, comment="calls offered in opening hours (0 when closed)", info=CALLS),
    Column("handled", Float, comment="calls answered", info=CALLS),
    Column("abandoned", Float, comment="calls abandoned (short abandons excluded)", info=CALLS),
    Column("short_abandoned", Float, comment="abandons quicker than rules.short_abandon_seconds", info=CALLS),
    Column("offered_outside_hours", Float, nullable=False, comment="calls offered while the queue was closed",
           info=CALLS),
    Column("aht_seconds", Float, comment="average handle time of the handled calls", info=SECONDS),
    Column("is_open", Boolean, nullable=False, comment="the interval overlaps the queue's opening hours that day"),
    Index("ix_silver_interval_date", "date"),
    comment="One row per queue per interval of the configured length, every interval of every day (closed ones "
            "too).",
)

silver_daily = Table(
    "silver_daily", metadata,
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("offered", Float, nullable=False, comment="calls offered in opening hours that day: the forecast target",
           info=CALLS),
    Column("handled", Float, comment="calls answered", info=CALLS),
    Column("abandoned", Float, comment="calls abandoned (short abandons excluded)", info=CALLS),
    Column("short_abandoned", Float, comment="abandons quicker than rules.short_abandon_seconds", info=CALLS),
    Column("offered_outside_hours", Float, nullable=False, comment="calls offered while the queue was closed",
           info=CALLS),
    Column("aht_seconds", Float, comment="average handle time of the handled calls", info=SECONDS),
    Column("is_open", Boolean, nullable=False, comment="the queue was open that day (any open interval)"),
    Column("is_holiday", Boolean, nullable=False, comment="a closed date of the centre when the day was built"),
    Column("holiday_name", _NAME, comment="that closed date's name"),
    Column("source_kind", String(10), comment="daily: built from a daily-totals export (no silver_interval rows "
                                              "that day); NULL: from the intervals or CDRs"),
    comment="One row per queue per local date, every date (closed ones too).",
)

silver_day_state = Table(
    "silver_day_state", metadata,
    Column("date", Date, primary_key=True, comment="local date silver was built for"),
    Column("bronze_rows", Integer, nullable=False, comment="bronze rows of that date when built",
           info={"unit": "rows"}),
    Column("bronze_max_load_id", Integer, nullable=False, comment="newest bronze load of that date when built"),
    Column("run_id", String(32), nullable=False),
    comment="One row per local date silver was built for: what bronze held then, so the next run rebuilds only "
            "changed days.",
)

data_quality_checks = Table(
    "data_quality_checks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="row number, increasing"),
    Column("run_id", String(32), nullable=False),
    Column("step", String(40), nullable=False, comment="the step that checked (1_build_silver, 3_forecast, ...)"),
    Column("as_of", Date, nullable=False),
    Column("check_name", String(60), nullable=False, comment="completeness, volume_range, ... (README)"),
    Column("severity", String(10), nullable=False, comment="info | warning | critical"),
    Column("passed", Boolean, nullable=False, comment="the check passed"),
    Column("queue", _NAME, comment="the queue checked; NULL: the whole centre"),
    Column("value", Float, comment="the measured value (its unit depends on the check)"),
    Column("threshold", Float, comment="the limit it was held to"),
    Column("detail", Text, nullable=False, comment="what was found, in words, naming the day and queue"),
    Column("checked_at", DateTime, nullable=False, comment="when the check ran, UTC", info=UTC),
    comment="One row per check per run (per queue where a check is per queue).",
)

pipeline_runs = Table(
    "pipeline_runs", metadata,
    Column("run_id", String(32), primary_key=True, comment="the run's id (12 hex digits), stamped on its rows"),
    Column("step", String(40), nullable=False, comment="0_load_bronze, 1_build_silver, ... 5_report"),
    Column("as_of", Date, nullable=False, comment="the run's --as-of (local date)"),
    Column("started_at", DateTime, nullable=False, comment="when the step started, UTC (not local time)", info=UTC),
    Column("finished_at", DateTime, comment="when it ended, UTC (not local time); NULL: still running or killed",
           info=UTC),
    Column("status", String(20), nullable=False, comment="running | success | failed | skipped"),
    Column("rows_written", Integer, comment="rows the step wrote", info={"unit": "rows"}),
    Column("message", Text, comment="what the step did or why it failed (passwords masked)"),
    Column("overrides", Text, comment="JSON list of the run's --set KEY=VALUE; NULL: none"),
    Column("pipeline_version", String(20), comment="wfm-forecast version that ran (NULL before 0.5.0)"),
    comment="One row per step run.",
)

schema_views = Table(
    "schema_views", metadata,
    Column("view_name", String(63), primary_key=True, comment="a view of common/views.py"),
    Column("sql_sha256", String(64), nullable=False, comment="hash of the CREATE VIEW it was created with"),
    Column("created_at", DateTime, nullable=False, comment="when it was (re)created, UTC", info=UTC),
    comment="One row per view schema.ensure_views created: a view is recreated only when its SQL changed (a new "
            "version, or a column its table gained).",
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
from common.tables_dims import gold_dim_date, gold_dim_queue, gold_dim_queue_date  # noqa: E402

# Step 3's scenario rows (3_forecast.py --scenario NAME): the published tables' columns plus `scenario`.
gold_scenario_forecast_daily = scenario_twin(gold_forecast_daily)
gold_scenario_staffing_interval = scenario_twin(gold_staffing_interval)
gold_scenario_staffing_daily = scenario_twin(gold_staffing_daily)

describe_shared(metadata)
