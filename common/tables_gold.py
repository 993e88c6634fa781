"""The gold tables: what Power BI reads, a public contract (see `common/tables.py`, which re-exports them).

Add columns, never rename or drop one without a migration note in docs/migrations.md. Timestamps: `*_utc` columns
hold naive UTC; the others the center's local wall-clock time (naive).
"""

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Index, Integer, String, Table, Text

from common.table_types import ID as _ID
from common.table_types import NAME as _NAME
from common.table_types import metadata

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
# method: the stored forecast's (ensemble | lightgbm | seasonal_naive), naive_benchmark (weekly seasonal naive recomputed
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
