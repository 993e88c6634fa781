"""The REST API's reads: SQLAlchemy Core selects over the declared gold tables, every value a bound parameter.

No SQL text is built from a request: a queue, a scenario or a method from the URL only ever reaches the database as a
bound value, so `x' OR '1'='1` is simply a queue that does not exist. Pure statement builders are separate from the
few functions that run them (`fetch_*`, `queue_known`, ...), so the statements can be read and tested on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, Table, and_, exists, func, inspect, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.functions import FunctionElement

from common import tables

# The nightly run's last step: its success means the whole night (forecast, evaluation, report) went through.
NIGHTLY_LAST_STEP = "5_report"
FORECAST_STEP = "3_forecast"


class local_day(FunctionElement):  # noqa: N801 - reads as a SQL function in a select
    """The local calendar date of a naive local timestamp column (SQLite keeps timestamps as text: `date(x)`)."""

    type = Date()
    inherit_cache = True
    name = "local_day"


@compiles(local_day)
def _local_day(element: local_day, compiler, **kw) -> str:  # noqa: ANN001 - SQLAlchemy compiler hook
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(local_day, "sqlite")
def _local_day_sqlite(element: local_day, compiler, **kw) -> str:  # noqa: ANN001 - SQLAlchemy compiler hook
    return f"date({compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class Page:
    """Which slice of the ordered rows to return."""

    limit: int
    offset: int = 0


@dataclass(frozen=True)
class ForecastFilter:
    """A request's filters on an origin-keyed gold table. origin None: the newest origin per queue and date."""

    queue: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    origin: date | None = None
    method: str | None = None  # accuracy rows only
    scenario: str | None = None  # scenario twin tables only


def day_column(table: Table) -> ColumnElement:
    """The local date a row belongs to: its `date`, its (first) week's Monday (capacity tables), or the date of its
    `interval_start`."""
    for name in ("date", "week_start", "first_week"):
        if name in table.c:
            return table.c[name]
    return local_day(table.c.interval_start)


def time_column(table: Table) -> ColumnElement:
    """The column that orders a queue's rows: the interval (UTC, unambiguous at DST changes), else the date."""
    return table.c.interval_start_utc if "interval_start_utc" in table.c else day_column(table)


def origin_column(table: Table) -> ColumnElement:
    """The date the rows were forecast or planned at (the run's as-of)."""
    return table.c.plan_origin if "plan_origin" in table.c else table.c.forecast_origin


def _where(table: Table, f: ForecastFilter) -> list[ColumnElement]:
    day = day_column(table)
    clauses = []
    if f.queue is not None:
        clauses.append(table.c.queue == f.queue)
    if f.date_from is not None:
        clauses.append(day >= f.date_from)
    if f.date_to is not None:
        clauses.append(day <= f.date_to)
    if f.method is not None:
        clauses.append(table.c.method == f.method)
    if f.scenario is not None:
        clauses.append(table.c.scenario == f.scenario)
    return clauses


def select_forecast_rows(table: Table, f: ForecastFilter, page: Page) -> Select:
    """Rows of an origin-keyed table (one row per origin per queue per date or interval [per method]) after the
    filters: at one origin, or at the newest origin per queue and local date (and method), the "latest forecast".

    Latest is chosen per date, not per interval: a day's intervals always come from one origin, even when a newer
    origin left some interval out (a changed opening hour)."""
    where, origin = _where(table, f), origin_column(table)
    stmt = select(table)
    if f.origin is not None:
        stmt = stmt.where(origin == f.origin, *where)
    else:
        keys = [table.c[k] for k in ("scenario", "queue") if k in table.c] + [day_column(table)]
        keys += [table.c[k] for k in ("method",) if k in table.c]
        newest = (select(*(k.label(f"k{i}") for i, k in enumerate(keys)), func.max(origin).label("origin"))
                  .where(*where).group_by(*keys).subquery("newest"))
        on = [origin == newest.c.origin] + [k == newest.c[f"k{i}"] for i, k in enumerate(keys)]
        stmt = stmt.join_from(table, newest, and_(*on)).where(*where)
    order = [table.c.queue, time_column(table)] + [table.c[k] for k in ("method",) if k in table.c] + [origin]
    return stmt.order_by(*order).limit(page.limit + 1).offset(page.offset)


def select_accuracy_summary(as_of: date | None, scope: str | None, method: str | None, page: Page) -> Select:
    """Accuracy over trailing windows (gold_forecast_accuracy_summary) at one as-of; None: the newest one."""
    t = tables.gold_forecast_accuracy_summary
    newest = select(func.max(t.c.as_of)).scalar_subquery()
    stmt = select(t).where(t.c.as_of == (as_of if as_of is not None else newest))
    if scope is not None:
        stmt = stmt.where(t.c.scope == scope)
    if method is not None:
        stmt = stmt.where(t.c.method == method)
    return stmt.order_by(t.c.scope, t.c.scope_value, t.c.method).limit(page.limit + 1).offset(page.offset)


def select_alerts(queue: str | None, date_from: date | None, date_to: date | None, severity: str | None,
                  page: Page) -> Select:
    """Alerts (gold_alerts), newest as-of first; a queue's alerts include the whole center's (queue NULL)."""
    t = tables.gold_alerts
    stmt = select(t)
    if queue is not None:
        stmt = stmt.where(or_(t.c.queue == queue, t.c.queue.is_(None)))
    if date_from is not None:
        stmt = stmt.where(t.c.as_of >= date_from)
    if date_to is not None:
        stmt = stmt.where(t.c.as_of <= date_to)
    if severity is not None:
        stmt = stmt.where(t.c.severity == severity)
    return stmt.order_by(t.c.as_of.desc(), t.c.id).limit(page.limit + 1).offset(page.offset)


def select_runs(step: str | None, status: str | None, date_from: date | None, date_to: date | None,
                page: Page) -> Select:
    """Step runs (pipeline_runs), newest start first."""
    t = tables.pipeline_runs
    stmt = select(t)
    if step is not None:
        stmt = stmt.where(t.c.step == step)
    if status is not None:
        stmt = stmt.where(t.c.status == status)
    if date_from is not None:
        stmt = stmt.where(t.c.as_of >= date_from)
    if date_to is not None:
        stmt = stmt.where(t.c.as_of <= date_to)
    return stmt.order_by(t.c.started_at.desc(), t.c.run_id).limit(page.limit + 1).offset(page.offset)


def select_last_success(step: str) -> Select:
    """The newest successful run of `step`."""
    t = tables.pipeline_runs
    return (select(t.c.run_id, t.c.step, t.c.as_of, t.c.started_at, t.c.finished_at)
            .where(t.c.step == step, t.c.status == "success")
            .order_by(t.c.finished_at.desc()).limit(1))


class ColumnCache:
    """Which declared columns each table has in the database, re-read every `ttl_seconds`.

    A database an older version made lacks the newer nullable columns until the next step adds them (ensure_schema);
    this read-only server cannot add them, so it leaves them out and answers null for them instead of failing."""

    def __init__(self, ttl_seconds: float = 300) -> None:
        self.ttl_seconds = ttl_seconds
        self._seen: dict[str, tuple[float, frozenset[str]]] = {}

    def present(self, conn: Connection, table: Table) -> frozenset[str]:
        hit = self._seen.get(table.name)
        if hit is None or time.monotonic() - hit[0] > self.ttl_seconds:
            names = frozenset(c["name"] for c in inspect(conn).get_columns(table.name))
            hit = self._seen[table.name] = (time.monotonic(), names)
        return hit[1]


def only_present(stmt: Select, table: Table, present: frozenset[str]) -> Select:
    """`stmt` without the nullable columns of `table` the database lacks (a NOT NULL one stays: its absence is an
    error worth seeing)."""
    keep = [c for c in stmt.selected_columns if c.name in present or not table.c[c.name].nullable]
    if len(keep) == len(stmt.selected_columns):
        return stmt
    return stmt.with_only_columns(*keep, maintain_column_froms=True)


def fetch_page(conn: Connection, stmt: Select, page: Page, table: Table,
               columns: ColumnCache) -> tuple[list[dict], int | None]:
    """The page's rows of `table` as dicts, and the offset of the next page (None: this was the last one).

    The statement asks for one row more than the page holds: that row only says whether another page exists."""
    stmt = only_present(stmt, table, columns.present(conn, table))
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    more = len(rows) > page.limit
    return rows[:page.limit], (page.offset + page.limit if more else None)


def queue_known(conn: Connection, queue: str, table: Table) -> bool:
    """Whether `queue` has rows in `table` or was ever forecast (so a known queue with no rows here is not a 404)."""
    forecast = tables.gold_forecast_daily
    stmt = select(or_(exists().where(table.c.queue == queue), exists().where(forecast.c.queue == queue)))
    return bool(conn.execute(stmt).scalar())


def scenario_known(conn: Connection, scenario: str) -> bool:
    """Whether a run ever wrote rows under `scenario` (gold_scenarios lists every scenario run)."""
    t = tables.gold_scenarios
    return bool(conn.execute(select(exists().where(t.c.scenario == scenario))).scalar())


def list_scenarios(conn: Connection) -> list[dict]:
    """Every scenario run, newest first."""
    t = tables.gold_scenarios
    return [dict(r) for r in conn.execute(select(t).order_by(t.c.created_at_utc.desc(), t.c.scenario, t.c.step))
            .mappings()]


def list_queues(conn: Connection) -> list[dict]:
    """Every forecast queue with its first and newest forecast origin."""
    t = tables.gold_forecast_daily
    stmt = (select(t.c.queue, func.min(t.c.forecast_origin).label("first_origin"),
                   func.max(t.c.forecast_origin).label("newest_origin"))
            .group_by(t.c.queue).order_by(t.c.queue))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def ping(conn: Connection) -> None:
    """Raise if the database cannot answer a trivial query."""
    conn.execute(select(literal(1))).scalar()


def last_success(conn: Connection, step: str) -> dict | None:
    row = conn.execute(select_last_success(step)).mappings().first()
    return dict(row) if row else None
