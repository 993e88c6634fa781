"""The gold tables: what Power BI reads, a public contract (see `common/tables.py`, which re-exports them).

Add columns, never rename or drop one without a migration note in docs/migrations.md. Timestamps: `*_utc` columns
hold naive UTC; the others the center's local wall-clock time (naive).
"""

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Index, Integer, String, Table, Text

from common.table_types import AGENTS, CALLS, DAYS, FTE, HOURS, MINUTES, SECONDS, SHARE, UTC, metadata
from common.table_types import ID as _ID
from common.table_types import NAME as _NAME

# --- gold: what Power BI reads (public contract) --------------------------------------------------------

gold_dim_customer_behavior = Table(
    "gold_dim_customer_behavior", metadata,
    Column("run_id", String(32), nullable=False),
    Column("as_of", Date, nullable=False, comment="the segmentation run's as-of (local date)"),
    Column("customer_id", _ID, primary_key=True, comment="customer id (ps_... when source.pseudonymize is on)"),
    Column("segment", Integer, nullable=False, comment="segment number, stable across runs"),
    Column("segment_label", String(200), nullable=False, comment="the segment's readable label"),
    Column("features", Text, nullable=False, comment="JSON of the customer's behaviour features"),
    comment="One row per customer: the latest segmentation run's segment.",
)

model_registry = Table(
    "model_registry", metadata,
    Column("version", String(40), primary_key=True, comment="model version (folder under training.model_dir)"),
    Column("created_at", DateTime, nullable=False, comment="when it was trained, UTC", info=UTC),
    Column("data_hash", String(64), nullable=False, comment="hash of the training data"),
    Column("params", Text, nullable=False, comment="JSON of the training parameters"),
    Column("metrics", Text, nullable=False, comment="JSON of the backtest metrics (and the ensemble's weights)"),
    Column("feature_importance", Text, nullable=False, comment="JSON {feature: importance}"),
    Column("artifact_path", String(500), nullable=False, comment="folder of the model files"),
    Column("artifact_sha256", Text, nullable=False, comment="JSON {file name: sha256}, checked before use"),
    Column("status", String(20), nullable=False, comment="staging | production | archived"),
    Column("status_reason", Text, comment="why it has that status (promotion, rollback, refused)"),
    Column("promoted_at", DateTime, comment="when it became production, UTC", info=UTC),
    comment="One row per model version.",
)

gold_forecast_daily = Table(
    "gold_forecast_daily", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True, comment="the forecast local date"),
    Column("horizon_day", Integer, nullable=False, comment="days ahead of the origin (the origin's date is 1)",
           info=DAYS),
    Column("p10", Float, nullable=False, comment="calls offered: 10% quantile (90% chance of more)", info=CALLS),
    Column("p50", Float, nullable=False, comment="calls offered: median, the forecast", info=CALLS),
    Column("p90", Float, nullable=False, comment="calls offered: 90% quantile", info=CALLS),
    Column("method", String(20), nullable=False, comment="ensemble | lightgbm | seasonal_naive (the fallback)"),
    Column("model_version", String(40), comment="model_registry.version; NULL: seasonal naive"),
    Column("fallback_reason", Text, comment="why the queue got seasonal naive, in words; NULL: the model"),
    Column("intraday_profile", String(24),
           comment="profile that split the day: same_weekday | pooled_weekdays | same_weekday_long | smoothed | flat"),
    Column("intraday_profile_reason", Text, comment="why that profile split the day (closed days: NULL)"),
    comment="One row per forecast origin per queue per forecast date.",
)

gold_forecast_members = Table(
    "gold_forecast_members", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True, comment="the forecast local date"),
    Column("member", String(20), primary_key=True,
           comment="lightgbm | linear | same_weekday_mean | seasonal_naive | vendor"),
    Column("p50", Float, comment="the member's median calls offered; NULL: no forecast that day", info=CALLS),
    Column("weight", Float, nullable=False, comment="its weight that day (weights sum to 1 per queue and date)",
           info=SHARE),
    comment="One row per forecast origin per queue per forecast date per ensemble member (queues the ensemble "
            "forecast); p50 of gold_forecast_daily is the weighted sum before the guards.",
)

gold_forecast_interval = Table(
    "gold_forecast_interval", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("p10", Float, nullable=False, comment="calls offered in the interval: 10% quantile", info=CALLS),
    Column("p50", Float, nullable=False, comment="calls offered in the interval: median", info=CALLS),
    Column("p90", Float, nullable=False, comment="calls offered in the interval: 90% quantile", info=CALLS),
    Column("aht_seconds", Float, comment="forecast average handle time", info=SECONDS),
    comment="One row per forecast origin per queue per interval.",
)

gold_staffing_interval = Table(
    "gold_staffing_interval", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("volume_p10", Float, nullable=False, comment="calls offered: 10% quantile (gold_forecast_interval.p10)",
           info=CALLS),
    Column("volume_p50", Float, nullable=False, comment="calls offered: median (gold_forecast_interval.p50)",
           info=CALLS),
    Column("volume_p90", Float, nullable=False, comment="calls offered: 90% quantile (gold_forecast_interval.p90)",
           info=CALLS),
    Column("aht_seconds", Float, comment="forecast average handle time", info=SECONDS),
    Column("workload_minutes", Float, nullable=False, comment="volume_p50 x AHT", info=MINUTES),
    Column("agents_p10", Integer, nullable=False, comment="agents on the phones for volume_p10's targets", info=AGENTS),
    Column("agents_p50", Integer, nullable=False, comment="agents on the phones for volume_p50", info=AGENTS),
    Column("agents_p90", Integer, nullable=False, comment="agents on the phones for volume_p90", info=AGENTS),
    Column("staff_p10", Integer, nullable=False, comment="agents_p10 / (1 - shrinkage), rounded up", info=AGENTS),
    Column("staff_p50", Integer, nullable=False, comment="agents_p50 / (1 - shrinkage), rounded up: staff to schedule",
           info=AGENTS),
    Column("staff_p90", Integer, nullable=False, comment="agents_p90 / (1 - shrinkage), rounded up", info=AGENTS),
    Column("service_level_p50", Float, comment="expected share answered within target at agents_p50", info=SHARE),
    Column("occupancy_p50", Float, comment="expected agent occupancy at agents_p50", info=SHARE),
    # 0.6: why the number is what it is. Null on rows written before 0.6.
    Column("abandon_rate_p50", Float, comment="Erlang A's P(abandon) at agents_p50; NULL: Erlang C", info=SHARE),
    Column("agents_raw", Float, comment="agents_p50 / (1 - shrinkage), before rounding up", info=AGENTS),
    Column("staffing_model", String(10), comment="erlang_a | erlang_c"),
    Column("patience_seconds", Float, comment="mean patience Erlang A used; NULL: Erlang C", info=SECONDS),
    Column("target_service_level", Float, comment="service-level target (staffing.queues.<queue> or staffing.*)",
           info=SHARE),
    Column("target_answer_seconds", Float, comment="answer-time target of the service level", info=SECONDS),
    Column("target_max_occupancy", Float, comment="occupancy ceiling", info=SHARE),
    Column("target_asa_seconds", Float, comment="average-speed-of-answer target; NULL: none", info=SECONDS),
    Column("target_max_abandon_rate", Float, comment="abandon-rate ceiling; NULL: none", info=SHARE),
    Column("shrinkage", Float, comment="shrinkage applied (after shrinkage_by_month / _by_weekday)", info=SHARE),
    comment="One row per forecast origin per queue per interval: the staffing range.",
)

gold_forecast_intraday = Table(
    "gold_forecast_intraday", metadata,
    Column("run_id", String(32), nullable=False),
    Column("issued_at_utc", DateTime, primary_key=True, comment="the reforecast's --at, UTC"),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("issued_at", DateTime, nullable=False, comment="the reforecast's --at, local wall clock"),
    Column("forecast_date", Date, nullable=False, comment="local date of the interval (today or tomorrow)"),
    Column("interval_start", DateTime, nullable=False),
    Column("p10", Float, nullable=False, comment="calls offered in the interval: 10% quantile", info=CALLS),
    Column("p50", Float, nullable=False, comment="calls offered in the interval: median", info=CALLS),
    Column("p90", Float, nullable=False, comment="calls offered in the interval: 90% quantile", info=CALLS),
    Column("aht_seconds", Float, comment="forecast average handle time", info=SECONDS),
    Column("agents_p50", Integer, comment="agents on the phones for p50", info=AGENTS),
    Column("staff_p10", Integer, comment="staff for p10 (after shrinkage)", info=AGENTS),
    Column("staff_p50", Integer, comment="staff for p50 (after shrinkage)", info=AGENTS),
    Column("staff_p90", Integer, comment="staff for p90 (after shrinkage)", info=AGENTS),
    Column("projected_day_p50", Float, comment="today: observed so far + the reforecast rest of the day", info=CALLS),
    Column("nightly_day_p50", Float, comment="the nightly forecast of that day", info=CALLS),
    Column("observed_so_far", Float, comment="today's calls in the intervals ended by issued_at", info=CALLS),
    Column("share_so_far", Float, comment="the share of the day's volume normally in by then", info=SHARE),
    Column("method", String(40), nullable=False, comment="reforecast | reforecast_no_nightly | tomorrow_adjusted"),
    Index("ix_gold_forecast_intraday_date", "forecast_date"),
    comment="One row per intraday issue per queue per remaining interval (today's not yet ended, and tomorrow's "
            "after intraday.tomorrow_after); every issue is kept, so a day can be replayed.",
)

gold_staffing_daily = Table(
    "gold_staffing_daily", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True, comment="the forecast local date"),
    Column("volume_p50", Float, nullable=False, comment="calls offered that day: median", info=CALLS),
    Column("staff_hours_p10", Float, nullable=False, comment="sum of staff_p10 over the day's intervals x interval "
                                                             "hours", info=HOURS),
    Column("staff_hours_p50", Float, nullable=False, comment="the same for staff_p50", info=HOURS),
    Column("staff_hours_p90", Float, nullable=False, comment="the same for staff_p90", info=HOURS),
    Column("peak_staff_p10", Integer, nullable=False, comment="highest staff_p10 of any interval that day",
           info=AGENTS),
    Column("peak_staff_p50", Integer, nullable=False, comment="highest staff_p50 of any interval that day",
           info=AGENTS),
    Column("peak_staff_p90", Integer, nullable=False, comment="highest staff_p90 of any interval that day",
           info=AGENTS),
    Column("fte_p10", Float, comment="staff_hours_p10 / staffing.paid_hours_per_fte (NULL before 0.6)", info=FTE),
    Column("fte_p50", Float, comment="staff_hours_p50 / staffing.paid_hours_per_fte", info=FTE),
    Column("fte_p90", Float, comment="staff_hours_p90 / staffing.paid_hours_per_fte", info=FTE),
    comment="One row per forecast origin per queue per local date: the day's staffing range (from "
            "gold_staffing_interval).",
)

gold_queue_patience = Table(
    "gold_queue_patience", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("patience_seconds", Float, comment="mean patience Erlang A staffed with; NULL: Erlang C", info=SECONDS),
    Column("abandons", Integer, nullable=False, comment="offered calls abandoned in the window", info=CALLS),
    Column("calls", Integer, nullable=False, comment="offered calls answered or abandoned in the window", info=CALLS),
    Column("wait_seconds_total", Float, nullable=False, comment="every such caller's wait, answered or not",
           info=SECONDS),
    Column("window_days", Integer, nullable=False, comment="days of calls read (staffing.patience_days)", info=DAYS),
    Column("source", String(10), nullable=False,
           comment="estimated (abandons / seconds waited, >= staffing.min_abandons) | default "
                   "(staffing.default_patience_seconds) | none (Erlang C)"),
    comment="One row per forecast origin per queue: the mean patience step 3 staffed the queue with (Erlang A).",
)

gold_service_delivered = Table(
    "gold_service_delivered", metadata,
    Column("run_id", String(32), nullable=False),
    Column("queue", _NAME, primary_key=True),
    Column("interval_start_utc", DateTime, primary_key=True),
    Column("interval_start", DateTime, nullable=False),
    Column("date", Date, nullable=False, comment="local date of interval_start"),
    Column("offered", Integer, nullable=False, comment="calls offered", info=CALLS),
    Column("answered", Integer, nullable=False, comment="calls answered", info=CALLS),
    Column("answered_in_target", Integer, nullable=False, comment="calls answered within target_answer_seconds",
           info=CALLS),
    Column("abandoned", Integer, nullable=False, comment="calls abandoned", info=CALLS),
    Column("wait_seconds_answered", Float, comment="total wait of the answered calls", info=SECONDS),
    Column("target_answer_seconds", Float, comment="the queue's answer-time target", info=SECONDS),
    Column("target_service_level", Float, comment="the queue's service-level target", info=SHARE),
    Column("service_level", Float, comment="answered_in_target / offered", info=SHARE),
    Column("asa_seconds", Float, comment="average speed of answer: wait_seconds_answered / answered", info=SECONDS),
    Column("abandon_rate", Float, comment="abandoned / offered", info=SHARE),
    Index("ix_gold_service_delivered_date", "date"),
    comment="One row per queue per interval with offered calls: the service delivered (step 4, from silver_calls; "
            "the trailing evaluation.window_days are replaced each night). A day or week is "
            "sum(answered_in_target) / sum(offered).",
)

gold_forecast_accuracy = Table(
    "gold_forecast_accuracy", metadata,
    Column("run_id", String(32), nullable=False),
    Column("forecast_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("date", Date, primary_key=True, comment="the forecast local date"),
    Column("method", String(20), primary_key=True,
           comment="the stored forecast's (ensemble | lightgbm | seasonal_naive), naive_benchmark, or "
                   "backtest_lightgbm | backtest_naive (the track record; only the latest backtest is kept)"),
    Column("horizon_day", Integer, nullable=False, comment="days ahead of the origin", info=DAYS),
    Column("weekday", Integer, nullable=False, comment="0 = Monday .. 6 = Sunday"),
    Column("model_version", String(40), comment="model_registry.version; NULL: naive, or retrained per origin"),
    Column("actual", Float, nullable=False, comment="silver_daily.offered that day", info=CALLS),
    Column("p10", Float, nullable=False, comment="forecast calls offered: 10% quantile", info=CALLS),
    Column("p50", Float, nullable=False, comment="forecast calls offered: median", info=CALLS),
    Column("p90", Float, nullable=False, comment="forecast calls offered: 90% quantile", info=CALLS),
    Column("error", Float, nullable=False, comment="p50 - actual: positive = over-forecast", info=CALLS),
    Column("abs_error", Float, nullable=False, comment="|p50 - actual|", info=CALLS),
    Column("is_open", Boolean, nullable=False, comment="silver_daily.is_open: metrics use open days only"),
    Column("in_band", Boolean, nullable=False, comment="p10 <= actual <= p90"),
    Index("ix_gold_forecast_accuracy_date", "date"),
    comment="One row per forecast origin per queue per date per method: a forecast point next to its actual "
            "(step 4; backtests from 2_train.py or 4_evaluate.py --backtest).",
)

gold_forecast_accuracy_summary = Table(
    "gold_forecast_accuracy_summary", metadata,
    Column("run_id", String(32), nullable=False),
    Column("as_of", Date, primary_key=True),
    Column("scope", String(20), primary_key=True, comment="overall | queue | horizon_day | weekday | method"),
    Column("scope_value", _NAME, primary_key=True,
           comment="'all' (overall), the queue, the horizon day, the weekday ('0' = Monday) or the method"),
    Column("method", String(20), primary_key=True,
           comment="forecast (what was published) | naive_benchmark | backtest_lightgbm | backtest_naive"),
    Column("window_days", Integer, nullable=False,
           comment="origins in [as_of - window_days, as_of); backtest: the origins' span", info=DAYS),
    Column("n_days", Integer, nullable=False, comment="open forecast days scored (origin x queue x date)",
           info=DAYS),
    Column("wmape", Float, comment="sum |p50 - actual| / sum actual", info=SHARE),
    Column("mape", Float, comment="mean of |p50 - actual| / actual over days with calls", info=SHARE),
    Column("mae", Float, comment="mean |p50 - actual|", info=CALLS),
    Column("rmse", Float, comment="root mean squared error of p50", info=CALLS),
    Column("bias", Float, comment="sum(p50 - actual) / sum(actual): positive = over-forecast", info=SHARE),
    Column("total_volume_error", Float,
           comment="mean over origin x queue of |sum p50 - sum actual| / sum actual", info=SHARE),
    Column("pinball_p10", Float, comment="pinball loss of p10", info=CALLS),
    Column("pinball_p50", Float, comment="pinball loss of p50", info=CALLS),
    Column("pinball_p90", Float, comment="pinball loss of p90", info=CALLS),
    Column("coverage", Float, comment="share of actuals within p10..p90 (80% is calibrated)", info=SHARE),
    Column("wmape_naive", Float, comment="the naive benchmark's wMAPE on the same points", info=SHARE),
    Column("beats_naive", Boolean, comment="wmape below wmape_naive on the points both have; NULL on naive rows"),
    comment="One row per as-of per scope per scope value per method: accuracy over the origins of a trailing "
            "window.",
)

gold_alerts = Table(
    "gold_alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="alert number, increasing"),
    Column("run_id", String(32), nullable=False),
    Column("as_of", Date, nullable=False, comment="the night (or intraday day) the alert is about"),
    Column("created_at", DateTime, nullable=False, comment="when it was raised, UTC", info=UTC),
    Column("severity", String(10), nullable=False, comment="warning | critical"),
    Column("alert_rule", String(40), nullable=False, comment="the rule that fired (daily_mape, intraday_deviation, "
                                                             "...)"),
    Column("queue", _NAME, comment="the queue; NULL: the whole centre (e.g. data freshness)"),
    Column("metric", String(60), nullable=False, comment="what was measured"),
    Column("value", Float, comment="the measured value (unit per metric)"),
    Column("threshold", Float, comment="the limit it crossed"),
    Column("message", Text, nullable=False, comment="the alert in words, as in the email"),
    Index("ix_gold_alerts_as_of", "as_of"),
    comment="One row per alert per as-of (replaced per as-of).",
)
