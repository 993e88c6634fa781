"""Every table of the pipeline, declared once, with its grain.

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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

_ID = String(200)  # ids from ACD exports: long enough for joined keys ("AA0101|34536|990201")
_NAME = String(100)

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

# --- gold: what Power BI reads (public contract) --------------------------------------------------------

# One row per customer per segmentation run.
gold_dim_customer_behavior = Table(
    "gold_dim_customer_behavior", metadata,
    Column("run_id", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("customer_id", _ID, primary_key=True),
    Column("segment", Integer, nullable=False),
    Column("segment_label", String(200), nullable=False),
    Column("features", Text, nullable=False),                 # JSON of the customer's behaviour features
)

# One row per model version.
model_registry = Table(
    "model_registry", metadata,
    Column("version", String(40), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("data_hash", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("feature_importance", Text, nullable=False),
    Column("artifact_path", String(500), nullable=False),
    Column("artifact_sha256", Text, nullable=False),          # JSON {file name: sha256}
    Column("status", String(20), nullable=False),             # staging | production | archived
    Column("status_reason", Text),
    Column("promoted_at", DateTime),
)

# One row per forecast origin per queue per forecast date.
gold_forecast_daily = Table(
    "gold_forecast_daily", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("horizon_day", Integer, nullable=False),
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column("method", String(20), nullable=False),             # ensemble | lightgbm | seasonal_naive
    Column("model_version", String(40)),
    Column("fallback_reason", Text),
    Column("intraday_profile", String(24)),                 # same_weekday | pooled_weekdays | same_weekday_long | ...
    Column("intraday_profile_reason", Text),                # why that profile split the day (closed days: NULL)
)

# One row per forecast origin per queue per forecast date per ensemble member (queues the ensemble forecast): the
# member's p50 and its weight that day (weights sum to 1 per queue and date; p50 of gold_forecast_daily is the
# weighted sum before the guards). Members: lightgbm, linear, same_weekday_mean, seasonal_naive, vendor.
gold_forecast_members = Table(
    "gold_forecast_members", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("member", String(20), primary_key=True),
    Column("p50", Float),                                     # NULL: the member had no forecast that day
    Column("weight", Float, nullable=False),
)

# One row per forecast origin per queue per interval.
gold_forecast_interval = Table(
    "gold_forecast_interval", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column("aht_seconds", Float),
)

# One row per forecast origin per queue per interval: the staffing range.
gold_staffing_interval = Table(
    "gold_staffing_interval", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("volume_p10", Float, nullable=False),
    Column("volume_p50", Float, nullable=False),
    Column("volume_p90", Float, nullable=False),
    Column("aht_seconds", Float),
    Column("workload_minutes", Float, nullable=False),
    Column("agents_p10", Integer, nullable=False),
    Column("agents_p50", Integer, nullable=False),
    Column("agents_p90", Integer, nullable=False),
    Column("staff_p10", Integer, nullable=False),
    Column("staff_p50", Integer, nullable=False),
    Column("staff_p90", Integer, nullable=False),
    Column("service_level_p50", Float),
    Column("occupancy_p50", Float),
    # 0.6: why the number is what it is. Null on rows written before 0.6.
    Column("abandon_rate_p50", Float),                        # Erlang A's P(abandon) at agents_p50; null: Erlang C
    Column("agents_raw", Float),                              # agents_p50 / (1 - shrinkage), before rounding up
    Column("staffing_model", String(10)),                     # erlang_a | erlang_c
    Column("patience_seconds", Float),                        # mean patience Erlang A used; null: Erlang C
    Column("target_service_level", Float),                    # staffing.* or staffing.queues.<queue>.*
    Column("target_answer_seconds", Float),
    Column("target_max_occupancy", Float),
    Column("target_asa_seconds", Float),
    Column("target_max_abandon_rate", Float),
    Column("shrinkage", Float),                               # after shrinkage_by_month / _by_weekday
)

# One row per intraday issue per queue per remaining interval (today's not yet ended, and tomorrow's after
# intraday.tomorrow_after): the reforecast and its staffing. Every issue is kept, so a day can be replayed.
gold_forecast_intraday = Table(
    "gold_forecast_intraday", metadata,
    Column("run_id", String(32), nullable=False),
    Column("issued_at_utc", DateTime, primary_key=True),      # the reforecast's --at, naive UTC
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("issued_at", DateTime, nullable=False),            # the --at, local wall clock
    Column("forecast_date", Date, nullable=False),            # local date of the interval (today or tomorrow)
    Column("interval_start", DateTime, nullable=False),
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column("aht_seconds", Float),
    Column("agents_p50", Integer),
    Column("staff_p10", Integer),
    Column("staff_p50", Integer),
    Column("staff_p90", Integer),
    Column("projected_day_p50", Float),                       # today: observed so far + the reforecast rest
    Column("nightly_day_p50", Float),                         # the nightly forecast of that day
    Column("observed_so_far", Float),                         # today's calls in the intervals ended by issued_at
    Column("share_so_far", Float),                            # the share of today's volume normally in by then
    Column("method", String(40), nullable=False),             # reforecast | reforecast_no_nightly | tomorrow_adjusted
    Index("ix_gold_forecast_intraday_date", "forecast_date"),
)

# One row per forecast origin per queue per local date: the day's staffing range (from gold_staffing_interval).
gold_staffing_daily = Table(
    "gold_staffing_daily", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("volume_p50", Float, nullable=False),
    Column("staff_hours_p10", Float, nullable=False),         # sum of staff_pX over the day's intervals x interval hours
    Column("staff_hours_p50", Float, nullable=False),
    Column("staff_hours_p90", Float, nullable=False),
    Column("peak_staff_p10", Integer, nullable=False),         # highest staff_pX of any interval that day
    Column("peak_staff_p50", Integer, nullable=False),
    Column("peak_staff_p90", Integer, nullable=False),
    Column("fte_p10", Float),                                 # staff_hours_pX / staffing.paid_hours_per_fte (0.6)
    Column("fte_p50", Float),
    Column("fte_p90", Float),
)

# One row per forecast origin per queue: the mean patience step 3 staffed the queue with (Erlang A).
# source: estimated (abandons / seconds waited over staffing.patience_days, >= staffing.min_abandons abandons) |
# default (staffing.default_patience_seconds) | none (Erlang C).
gold_queue_patience = Table(
    "gold_queue_patience", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("patience_seconds", Float),
    Column("abandons", Integer, nullable=False),               # offered calls abandoned in the window
    Column("calls", Integer, nullable=False),                  # offered calls answered or abandoned in the window
    Column("wait_seconds_total", Float, nullable=False),       # every such caller's wait, answered or not
    Column("window_days", Integer, nullable=False),
    Column("source", String(10), nullable=False),
)

# One row per queue per interval with offered calls: the service delivered (step 4, from silver_calls; the trailing
# evaluation.window_days are replaced each night). A day or week is sum(answered_in_target) / sum(offered).
gold_service_delivered = Table(
    "gold_service_delivered", metadata,
    Column("run_id", String(32), nullable=False),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("date", Date, nullable=False),
    *(Column(c, Integer, nullable=False) for c in ("offered", "answered", "answered_in_target", "abandoned")),
    *(Column(c, Float) for c in ("wait_seconds_answered", "target_answer_seconds", "target_service_level",
                                 "service_level", "asa_seconds", "abandon_rate")),
    Index("ix_gold_service_delivered_date", "date"),
)

# One row per forecast origin per queue per date per method: a forecast point next to its actual (step 4).
# method: the stored forecast's (lightgbm | seasonal_naive), naive_benchmark (weekly seasonal naive recomputed
# at the origin), or backtest_lightgbm | backtest_naive (the track record: 2_train.py's backtest each training night,
# or 4_evaluate.py --backtest; only the latest backtest is kept; model_version null: retrained at every origin).
gold_forecast_accuracy = Table(
    "gold_forecast_accuracy", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True),
    Column("method", String(20), primary_key=True),
    Column("horizon_day", Integer, nullable=False),
    Column("weekday", Integer, nullable=False),               # 0 = Monday
    Column("model_version", String(40)),
    Column("actual", Float, nullable=False),                  # silver_daily.offered
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column("error", Float, nullable=False),                   # p50 - actual: positive = over-forecast
    Column("abs_error", Float, nullable=False),
    Column("is_open", Boolean, nullable=False),               # silver_daily.is_open: metrics use open days only
    Column("in_band", Boolean, nullable=False),               # p10 <= actual <= p90
    Index("ix_gold_forecast_accuracy_date", "date"),
)

# One row per as-of per scope per scope value per method: accuracy over the origins of a trailing window.
# scope: overall (scope_value 'all') | queue | horizon_day | weekday ('0' = Monday) | method (lightgbm | seasonal_naive).
# method: forecast (what was published) | naive_benchmark | backtest_lightgbm | backtest_naive.
gold_forecast_accuracy_summary = Table(
    "gold_forecast_accuracy_summary", metadata,
    Column("run_id", String(32), nullable=False),
    Column("as_of", Date, primary_key=True),
    Column("scope", String(20), primary_key=True),
    Column("scope_value", _NAME, primary_key=True),
    Column("method", String(20), primary_key=True),
    Column("window_days", Integer, nullable=False),           # origins in [as_of - window_days, as_of); backtest: origin span
    Column("n_days", Integer, nullable=False),                # open forecast days scored (origin x queue x date)
    Column("wmape", Float),
    Column("mape", Float),
    Column("mae", Float),
    Column("rmse", Float),
    Column("bias", Float),                                    # sum(p50 - actual) / sum(actual)
    Column("total_volume_error", Float),                      # mean over origin x queue of |sum p50 - sum actual| / sum actual
    Column("pinball_p10", Float),
    Column("pinball_p50", Float),
    Column("pinball_p90", Float),
    Column("coverage", Float),                                # share of actuals within p10..p90
    Column("wmape_naive", Float),                             # naive benchmark's wMAPE on the same points
    Column("beats_naive", Boolean),                           # wMAPE below it on the points both have; null on naive rows
)

# One row per alert per as-of (replaced per as-of). created_at is naive UTC, like every bookkeeping timestamp.
gold_alerts = Table(
    "gold_alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("severity", String(10), nullable=False),           # warning | critical
    Column("alert_rule", String(40), nullable=False),
    Column("queue", _NAME),                                   # null: the whole center (e.g. data freshness)
    Column("metric", String(60), nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("message", Text, nullable=False),
    Index("ix_gold_alerts_as_of", "as_of"),
)
