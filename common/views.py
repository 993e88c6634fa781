"""The views Power BI reads: the latest forecast and staffing, forecast vs actual, service vs target, recent alerts.

Each view is a SQLAlchemy Core SELECT over the declared tables, so one definition compiles for SQLite, PostgreSQL and
SQL Server (`common.view_sql` holds what they spell differently) and the data dictionary reads its columns from here.
Columns are listed from the table declarations, never `*`: a column a table gains changes the view's SQL, and
`schema.ensure_views` recreates a view whose SQL changed. Views never read another view, so they can be dropped and
created in any order.

"Latest" is the newest `forecast_origin` of gold_forecast_daily per queue and local date: for a future date the last
night's forecast, for a past date the last forecast issued before it (`horizon_day` says how far ahead); the interval
and staffing views take that origin's rows. Where tables name one quantity
differently, the view adds the consistent name beside the original: `volume_p10/p50/p90` (calls offered) next to a
forecast table's `p10/p50/p90`, and `date` (the local date) on interval rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Boolean, Float, Integer, and_, case, cast, func, literal, null, select
from sqlalchemy.sql import ColumnElement, Join, Select

from common import tables
from common.tables_capacity import PUBLISHED
from common.view_sql import days_between, local_date

ALERT_DAYS = 14  # v_alerts_recent: the as-of dates of the last two weeks
# Computed view columns that are never NULL (for the data dictionary): a local date of a NOT NULL datetime, aliases of
# NOT NULL quantiles, the day's method, sums of NOT NULL counts, the alerts' age.
NOT_NULL_DERIVED = frozenset({"date", "method", "volume_p10", "volume_p50", "volume_p90", "offered", "answered",
                              "answered_in_target", "abandoned", "days_ago"})


@dataclass(frozen=True)
class View:
    """A view: its name, grain (key columns), what one row is, its SELECT, and the docs of the columns it derives
    (a column taken from a table keeps that column's description). `nullable`: taken columns that an outer join can
    leave NULL."""

    name: str
    key: tuple[str, ...]
    doc: str
    query: Select
    derived: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # column -> (description, unit)
    nullable: frozenset[str] = frozenset()


def _volume_aliases(t) -> list[ColumnElement]:  # noqa: ANN001 - a Table or a subquery with p10/p50/p90
    return [t.c[q].label(f"volume_{q}") for q in ("p10", "p50", "p90")]


VOLUME_DOCS = {f"volume_{q}": (f"same as {q}: the consistent name of the forecast's {q} offered calls across views",
                               "calls") for q in ("p10", "p50", "p90")}


def _latest(table, day: ColumnElement) -> Join:  # noqa: ANN001 - a Table with forecast_origin and queue
    """`table` joined to the newest forecast_origin of gold_forecast_daily per queue and local `day`: only the rows
    of that origin remain. One origin decides for every latest view, so they agree (a day's intervals and staffing
    are the day's forecast's); the small daily table finds it, the big interval tables are entered by their key
    (forecast_origin, queue), about 7 times faster on SQLite than grouping the interval table itself."""
    d = tables.gold_forecast_daily
    newest = (select(d.c.queue, d.c.date, func.max(d.c.forecast_origin).label("forecast_origin"))
              .group_by(d.c.queue, d.c.date).subquery("newest"))
    return table.join(newest, and_(table.c.forecast_origin == newest.c.forecast_origin,
                                   table.c.queue == newest.c.queue, day == newest.c.date))


def forecast_daily_latest() -> Select:
    t = tables.gold_forecast_daily
    return select(*t.c, *_volume_aliases(t)).select_from(_latest(t, t.c.date))


def forecast_interval_latest() -> Select:
    t, d = tables.gold_forecast_interval, tables.gold_forecast_daily
    day = local_date(t.c.interval_start)
    on = and_(d.c.forecast_origin == t.c.forecast_origin, d.c.queue == t.c.queue, d.c.date == day)
    return (select(*t.c, day.label("date"), d.c.method, *_volume_aliases(t))
            .select_from(_latest(t, day).join(d, on)))


def staffing_interval_latest() -> Select:
    t = tables.gold_staffing_interval
    day = local_date(t.c.interval_start)
    return select(*t.c, day.label("date")).select_from(_latest(t, day))


def staffing_daily_latest() -> Select:
    t = tables.gold_staffing_daily
    return select(*t.c).select_from(_latest(t, t.c.date))


def _versus(forecast, actual: ColumnElement) -> list[ColumnElement]:  # noqa: ANN001 - a subquery with p10..p90
    """actual, error (p50 - actual: positive = over-forecast), abs_error, in_band (1 if p10 <= actual <= p90);
    NULL while the actual is unknown."""
    unknown = actual.is_(None)
    in_band = case((unknown, null()), (and_(forecast.c.p10 <= actual, actual <= forecast.c.p90), literal(1)),
                   else_=literal(0))
    return [actual.label("actual"), (forecast.c.p50 - actual).label("error"),
            func.abs(forecast.c.p50 - actual, type_=Float).label("abs_error"), cast(in_band, Integer).label("in_band")]


VERSUS_DOCS = {
    "actual": ("calls offered that day or interval (silver); NULL while not yet known (today and the future)", "calls"),
    "error": ("p50 - actual: positive = over-forecast (as gold_forecast_accuracy.error)", "calls"),
    "abs_error": ("|p50 - actual|", "calls"),
    "in_band": ("1 if p10 <= actual <= p90, 0 if not, NULL while the actual is unknown", "flag 0/1"),
}


def forecast_vs_actual_daily() -> Select:
    f, s, d = forecast_daily_latest().subquery("f"), tables.silver_daily, tables.gold_dim_queue_date
    is_open = func.coalesce(s.c.is_open, d.c.is_open, type_=Boolean)  # past days as built, forecast days as planned
    return (select(*(f.c[c] for c in ("forecast_origin", "queue", "date", "horizon_day", "method", "model_version",
                                      "p10", "p50", "p90", "volume_p10", "volume_p50", "volume_p90")),
                   is_open.label("is_open"), *_versus(f, s.c.offered))
            .select_from(f.outerjoin(s, and_(s.c.queue == f.c.queue, s.c.date == f.c.date))
                         .outerjoin(d, and_(d.c.queue == f.c.queue, d.c.date == f.c.date))))


def forecast_vs_actual_interval() -> Select:
    f, s = forecast_interval_latest().subquery("f"), tables.silver_interval
    return (select(*(f.c[c] for c in ("forecast_origin", "queue", "date", "interval_start", "interval_start_utc",
                                      "method", "p10", "p50", "p90", "volume_p10", "volume_p50", "volume_p90")),
                   s.c.is_open, *_versus(f, s.c.offered))
            .select_from(f.outerjoin(s, and_(s.c.queue == f.c.queue,
                                             s.c.interval_start_utc == f.c.interval_start_utc))))


def _ratio(numerator: ColumnElement, denominator: ColumnElement) -> ColumnElement:
    """numerator / denominator as a float (PostgreSQL and SQL Server divide integers as integers), NULL for 0."""
    return cast(numerator, Float) / func.nullif(cast(denominator, Float), 0, type_=Float)


def _against_target(level: ColumnElement, target: ColumnElement) -> list[ColumnElement]:
    met = case((and_(level.is_not(None), target.is_not(None), level >= target), literal(1)),
               (and_(level.is_not(None), target.is_not(None)), literal(0)), else_=null())
    return [(level - target).label("service_level_gap"), cast(met, Integer).label("met_target")]


TARGET_DOCS = {
    "service_level_gap": ("service_level - target_service_level: negative = below target", "share (0-1)"),
    "met_target": ("1 if service_level >= target_service_level, 0 if below, NULL without a target", "flag 0/1"),
}


def service_vs_target_interval() -> Select:
    t = tables.gold_service_delivered
    return select(*t.c, *_against_target(t.c.service_level, t.c.target_service_level))


def service_vs_target_daily() -> Select:
    t = tables.gold_service_delivered
    sums = {c: func.sum(t.c[c]) for c in ("offered", "answered", "answered_in_target", "abandoned",
                                          "wait_seconds_answered")}
    level = _ratio(sums["answered_in_target"], sums["offered"])
    target = func.max(t.c.target_service_level)
    return (select(t.c.queue, t.c.date, *(s.label(c) for c, s in sums.items()),
                   level.label("service_level"), target.label("target_service_level"),
                   func.max(t.c.target_answer_seconds).label("target_answer_seconds"),
                   _ratio(sums["wait_seconds_answered"], sums["answered"]).label("asa_seconds"),
                   _ratio(sums["abandoned"], sums["offered"]).label("abandon_rate"),
                   *_against_target(level, target))
            .group_by(t.c.queue, t.c.date))


DAILY_SERVICE_DOCS = {
    "offered": ("calls offered that day (sum over the intervals)", "calls"),
    "answered": ("calls answered that day", "calls"),
    "answered_in_target": ("calls answered within the queue's target answer time that day", "calls"),
    "abandoned": ("calls abandoned that day", "calls"),
    "wait_seconds_answered": ("total wait of the answered calls that day", "seconds"),
    "service_level": ("answered_in_target / offered over the day", "share (0-1)"),
    "target_service_level": ("the queue's service-level target (the highest of the day's intervals)", "share (0-1)"),
    "target_answer_seconds": ("the queue's target answer time (the highest of the day's intervals)", "seconds"),
    "asa_seconds": ("average speed of answer: wait_seconds_answered / answered", "seconds"),
    "abandon_rate": ("abandoned / offered over the day", "share (0-1)"),
    **TARGET_DOCS,
}


def capacity_plan_latest() -> Select:
    t = tables.gold_capacity_plan
    published = t.c.scenario == PUBLISHED
    newest = (select(t.c.queue, t.c.week_start, func.max(t.c.plan_origin).label("plan_origin")).where(published)
              .group_by(t.c.queue, t.c.week_start).subquery("newest"))
    on = and_(t.c.queue == newest.c.queue, t.c.week_start == newest.c.week_start,
              t.c.plan_origin == newest.c.plan_origin)
    return select(*t.c).select_from(t.join(newest, on)).where(published)


def alerts_recent() -> Select:
    a, runs = tables.gold_alerts, tables.pipeline_runs
    newest = select(func.max(runs.c.as_of)).where(runs.c.status == "success").scalar_subquery()
    age = days_between(newest, a.c.as_of)
    return select(*a.c, age.label("days_ago")).where(age <= ALERT_DAYS - 1)


VIEWS: tuple[View, ...] = (
    View("v_forecast_daily_latest", ("queue", "date"),
         "The latest published daily forecast: gold_forecast_daily's row of the newest forecast_origin per queue and "
         "date.", forecast_daily_latest(), VOLUME_DOCS),
    View("v_forecast_interval_latest", ("queue", "interval_start_utc"),
         "The latest published interval forecast: gold_forecast_interval's rows of the newest forecast_origin (in "
         "gold_forecast_daily) per queue and local date, with the date and the day's method.",
         forecast_interval_latest(),
         {"date": ("local date of interval_start", None),
          "method": ("the day's forecast method (gold_forecast_daily.method of the same origin)", None),
          **VOLUME_DOCS}),
    View("v_staffing_interval_latest", ("queue", "interval_start_utc"),
         "The latest staffing per interval: gold_staffing_interval's rows of the newest forecast_origin (in "
         "gold_forecast_daily) per queue and local date.", staffing_interval_latest(),
         {"date": ("local date of interval_start", None)}),
    View("v_staffing_daily_latest", ("queue", "date"),
         "The latest staffing per day: gold_staffing_daily's row of the newest forecast_origin (in "
         "gold_forecast_daily) per queue and date.",
         staffing_daily_latest()),
    View("v_forecast_vs_actual_daily", ("queue", "date"),
         "Forecast vs actual by queue and day: the latest forecast of each date (v_forecast_daily_latest) next to "
         "what was offered (silver_daily); future dates have a forecast and no actual yet.",
         forecast_vs_actual_daily(),
         {"is_open": ("the queue is open that day: silver_daily.is_open for days silver has, else "
                      "gold_dim_queue_date's (the calendar the forecast used); NULL before the first step 3 of this "
                      "version", None),
          **VOLUME_DOCS, **VERSUS_DOCS}, frozenset({"is_open", *VERSUS_DOCS})),
    View("v_forecast_vs_actual_interval", ("queue", "interval_start_utc"),
         "Forecast vs actual by queue and interval: the latest interval forecast (v_forecast_interval_latest) next to "
         "what was offered (silver_interval).", forecast_vs_actual_interval(),
         {"date": ("local date of interval_start", None),
          "method": ("the day's forecast method (gold_forecast_daily.method of the same origin)", None),
          **VOLUME_DOCS, **VERSUS_DOCS}, frozenset({"is_open", *VERSUS_DOCS})),
    View("v_service_vs_target_interval", ("queue", "interval_start_utc"),
         "Service delivered against the queue's target per interval (gold_service_delivered).",
         service_vs_target_interval(), TARGET_DOCS),
    View("v_service_vs_target_daily", ("queue", "date"),
         "Service delivered against the queue's target per day: gold_service_delivered summed over the day's "
         "intervals (a week in Power BI: sum(answered_in_target) / sum(offered)).", service_vs_target_daily(),
         DAILY_SERVICE_DOCS),
    View("v_capacity_plan_latest", ("queue", "week_start"),
         "The latest published capacity plan: gold_capacity_plan's published rows of the newest plan_origin per queue "
         "(and the centre) and week.", capacity_plan_latest()),
    View("v_alerts_recent", ("id",),
         f"The alerts of the last {ALERT_DAYS} as-of dates, counted back from the newest as_of of a successful step "
         "in pipeline_runs (not the database's clock: a quiet night or a stopped pipeline does not shift it).",
         alerts_recent(), {"days_ago": ("newest successful run's as_of - this alert's as_of (0 = the last night)",
                                        "days")}),
)
