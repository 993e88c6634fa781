"""Step 1's wiring: which days to rebuild, reading bronze for them, and replacing their silver rows.

Incremental by default: a day is rebuilt when the bronze rows behind it changed
since the last build (`silver_day_state` remembers count and newest load per
day), or when it has never been built, or when a call on a changed day was
placed on it before (a corrected re-export moved the call: `moved_calls`).
Its neighbours are rebuilt too, because a redial just after midnight belongs
to the contact that started the day before. `full=True` rebuilds every day,
and so does a run whose `rules.interval_minutes` differs from the grid silver
was built on (old days left on the old grid would skew intraday shapes). Only
days before the run's as-of are built: the as-of day itself is not complete yet.

The rebuilt days are processed in chunks of contiguous days (`chunk_dates`),
each read with one padding day on either side, so memory does not grow with
history. Planning never scans all of bronze: it uses the start_date index and
the silver tables, so a nightly run costs the same after years of data.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from common import db, moved_calls, tables
from common.aggregate import apply_queue_aliases
from common.calendar import interval_grid
from common.cdr import ContactRules, contacts_from_legs
from common.config_schema import Config
from common.opening_hours import parse_opening_hours
from common.public_holidays import holiday_calendar

log = logging.getLogger(__name__)


# Bronze columns `contacts_from_legs` reads (the others stay in bronze); start_date is derived from the start.
LEG_COLUMNS = ("call_id", "load_id", "source_row", "queue", "start_time", "start_time_utc", "outcome",
               "end_time", "handle_seconds", "wait_seconds", "customer_id", "caller_id", "parent_call_id")
REPORT_COLUMNS = ("queue", "interval_start", "interval_start_utc", "offered", "handled", "abandoned",
                  "aht_seconds", "load_id", "source_row")


@dataclass(frozen=True)
class BuildPlan:
    """The days this run rebuilds, and the wider span of bronze it must read to rebuild them right."""

    dates: list[date]
    read_from: date | None
    read_to: date | None
    # First local date of each queue known before reading the rebuilt days: from silver_daily outside them
    # and from bronze on or after the as-of date. `queue_first_dates` of the bronze read adds the rest.
    first_date_per_queue: dict[str, date]
    bronze_state: pd.DataFrame  # one row per local date with bronze rows: date, bronze_rows, bronze_max_load_id


def _bronze(cfg: Config):
    return tables.bronze_cdr if cfg.source.kind == "cdr" else tables.bronze_interval


def bronze_day_state(conn: Connection, cfg: Config) -> pd.DataFrame:
    """One row per local date that bronze has rows for: how many and the newest load behind them.

    Counted from the start_date index alone (no table scan): the newest load of a day is the load of its
    highest id, as loads only append and get increasing ids.
    """
    t = _bronze(cfg)
    stmt = select(t.c.start_date.label("date"), func.count().label("bronze_rows"),
                  func.max(t.c.id).label("bronze_max_load_id")).group_by(t.c.start_date)
    frame = db.read_frame(conn, stmt, tables.silver_day_state)
    if frame.empty:
        return frame
    ids = frame["bronze_max_load_id"].astype("int64").tolist()
    load_of = {}
    for start in range(0, len(ids), 500):
        load_of.update(conn.execute(select(t.c.id, t.c.load_id).where(t.c.id.in_(ids[start:start + 500]))).all())
    return frame.assign(bronze_max_load_id=frame["bronze_max_load_id"].map(load_of).astype("int64"))


def known_queue_first_dates(conn: Connection, cfg: Config, as_of: date, rebuilt: list[date]) -> dict[str, date]:
    """First local date of each queue, as far as is known without reading the rebuilt days' bronze.

    silver_daily holds every queue from its first bronze date on, for every built day; the days
    being rebuilt are left out (their bronze is read anyway), and bronze from the as-of date on
    (never built yet) is asked directly, through the start_date index.
    """
    t = _bronze(cfg)
    d = tables.silver_daily
    out: dict[str, date] = {}
    # Days built from daily totals have no intervals: a queue's interval grid starts at its first detailed day.
    stmt = select(d.c.queue, func.min(d.c.date).label("date")).where(d.c.source_kind.is_(None)).group_by(d.c.queue)
    for run in chunk_dates(rebuilt, len(rebuilt)):  # one range per run of consecutive days, not one value per day
        stmt = stmt.where(~d.c.date.between(run[0], run[-1]))
    built = db.read_frame(conn, stmt, d)
    late = db.read_frame(conn, select(t.c.queue, func.min(t.c.start_date).label("date")).where(
        t.c.start_date >= as_of).group_by(t.c.queue), tables.silver_daily)
    for frame in (built, late):
        for queue, day in zip(frame["queue"], frame["date"]):
            queue = cfg.rules.queue_aliases.get(queue, queue)  # rules.queue_aliases: old name -> current name
            out[queue] = min(out.get(queue, day.date()), day.date())
    return out


def queue_first_dates(rows: pd.DataFrame, known: dict[str, date]) -> dict[str, date]:
    """`known` updated with the first start_date of each queue in `rows` (bronze legs or report rows)."""
    out = dict(known)
    if len(rows):
        firsts = rows.groupby("queue", sort=False)["start_date"].min()
        for queue, day in firsts.items():
            out[queue] = min(out.get(queue, day.date()), day.date())
    return out


def queue_first_dates_merged(known: dict[str, date], more: dict[str, date]) -> dict[str, date]:
    """The earlier date of each queue in either mapping."""
    out = dict(known)
    for queue, day in more.items():
        out[queue] = min(out.get(queue, day), day)
    return out


def plan_build(conn: Connection, cfg: Config, as_of: date, full: bool) -> BuildPlan:
    """Decide which days to rebuild (see module docstring)."""
    state = bronze_day_state(conn, cfg)
    if state.empty:
        return BuildPlan([], None, None, known_queue_first_dates(conn, cfg, as_of, []), state)
    first = state["date"].min().date()
    last = as_of - timedelta(days=1)
    if last < first:
        return BuildPlan([], None, None, known_queue_first_dates(conn, cfg, as_of, []), state)
    all_days = pd.date_range(first, last, freq="D")
    grids = built_interval_minutes(conn) - {cfg.rules.interval_minutes}
    if grids and not full:  # days on two grids would give wrong intraday shapes: every day moves to the new one
        log.warning("silver: built with %s-minute intervals, rules.interval_minutes is now %d: rebuilding every day "
                    "(as 1_build_silver.py --full)", "/".join(map(str, sorted(grids))), cfg.rules.interval_minutes)
        full = True
    if full:
        changed = set(all_days.date)
    else:
        built = db.read_table(conn, tables.silver_day_state)
        merged = pd.DataFrame({"date": all_days}).merge(state, on="date", how="left").merge(
            built, on="date", how="left", suffixes=("", "_built"))
        merged[["bronze_rows", "bronze_max_load_id"]] = merged[["bronze_rows", "bronze_max_load_id"]].fillna(0)
        differs = (merged["bronze_rows_built"].isna()
                   | (merged["bronze_rows"] != merged["bronze_rows_built"])
                   | (merged["bronze_max_load_id"] != merged["bronze_max_load_id_built"]))
        changed = set(merged.loc[differs, "date"].dt.date)
        if cfg.rules.queue_aliases:  # days built under a name since aliased: rebuild them under the current one
            renamed = select(tables.silver_daily.c.date).where(
                tables.silver_daily.c.queue.in_(list(cfg.rules.queue_aliases))).distinct()
            changed |= {pd.Timestamp(d).date() for d in conn.execute(renamed).scalars()}
        if cfg.source.kind == "cdr" and not built.empty:  # the days re-exported calls were placed on before
            changed |= moved_calls.days_left_by_moved_calls(conn, chunk_dates(sorted(changed), len(changed)), first, last)
        neighbours = {d + timedelta(days=k) for d in changed for k in (-1, 1)} if cfg.source.kind == "cdr" else set()
        changed |= {d for d in neighbours if first <= d <= last}
    dates = sorted(changed)
    known = known_queue_first_dates(conn, cfg, as_of, dates)
    if not dates:
        return BuildPlan([], None, None, known, state)
    pad = timedelta(days=1) if cfg.source.kind == "cdr" else timedelta(0)
    return BuildPlan(dates, dates[0] - pad, dates[-1] + pad, known, state)


def chunk_dates(dates: list[date], chunk_days: int, day_rows: dict[date, int] | None = None,
                chunk_rows: int | None = None) -> list[list[date]]:
    """`dates` (sorted) cut into runs of consecutive days, each at most `chunk_days` long.

    With `day_rows` (bronze rows per day) and `chunk_rows`, a run also ends before it would hold more than
    `chunk_rows` rows (a busier day is a chunk of its own): memory follows rows, not days, so a big center's
    chunks are shorter than a small one's.
    """
    chunks: list[list[date]] = []
    rows = 0
    for d in dates:
        n = (day_rows or {}).get(d, 0)
        if chunks and (d - chunks[-1][-1]).days == 1 and len(chunks[-1]) < chunk_days \
                and (chunk_rows is None or rows + n <= chunk_rows):
            chunks[-1].append(d)
            rows += n
        else:
            chunks.append([d])
            rows = n
    return chunks


def bronze_rows_per_day(plan: BuildPlan) -> dict[date, int]:
    """Bronze rows behind each local date of the plan (from planning; no extra query)."""
    state = plan.bronze_state
    if state.empty:
        return {}
    return dict(zip(state["date"].dt.date, state["bronze_rows"].astype("int64").tolist()))


def chunk_plan(plan: BuildPlan, dates: list[date], first_date_per_queue: dict[str, date], cfg: Config) -> BuildPlan:
    """The plan for one chunk of `plan.dates`: those days, read with the same padding."""
    pad = timedelta(days=1) if cfg.source.kind == "cdr" else timedelta(0)
    return replace(plan, dates=dates, read_from=dates[0] - pad, read_to=dates[-1] + pad,
                   first_date_per_queue=first_date_per_queue)


def read_bronze(conn: Connection, cfg: Config, plan: BuildPlan, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The bronze rows of the read span (legs for CDR sources, interval rows for interval reports).

    Ordered by start_date, load_id, source_row (the order they were exported in), so results never
    depend on how the rows were stored. `columns`: only these (default: all); start_date is added from
    the start time when not among them (it is the start's local date).
    """
    t = _bronze(cfg)
    wanted = set(plan.dates)
    if cfg.source.kind == "cdr":
        wanted |= {d + timedelta(days=k) for d in plan.dates for k in (-1, 1)}
    # A contiguous span is read with one range predicate; scattered days with an IN list.
    span_days = (plan.read_to - plan.read_from).days + 1
    read_days = ((lambda column: column.between(plan.read_from, plan.read_to)) if len(wanted) >= span_days * 0.5
                 else (lambda column: column.in_(sorted(wanted))))
    where = read_days(t.c.start_date)
    if cfg.source.kind == "cdr":  # a call a re-export moved beyond the read is counted on its new day only
        where = where & moved_calls.newest_export_only(read_days)
    rows = db.read_table(conn, t, where=where, columns=columns)
    start = "start_time" if cfg.source.kind == "cdr" else "interval_start"
    if "start_date" not in rows.columns and start in rows.columns:
        rows["start_date"] = rows[start].to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
    if rows.empty or not {"start_date", "load_id", "source_row"} <= set(rows.columns):
        return rows
    order = np.lexsort((rows["source_row"].to_numpy(), rows["load_id"].to_numpy(),
                        rows["start_date"].to_numpy().view(np.int64)))
    return rows.iloc[order].reset_index(drop=True)


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's work that needs only bronze: its contacts (CDR) or report rows (interval reports)."""

    bronze_rows: int
    first_dates: dict[str, date]  # first start_date per queue in the bronze read (padding days included)
    calls: pd.DataFrame | None  # CDR: the contacts whose date is in the chunk
    report: pd.DataFrame | None  # interval reports: the bronze rows
    counts: dict[str, int]


def compute_chunk(cfg: Config, part: BuildPlan, closed_dates: pd.DataFrame, conn: Connection | None = None) -> ChunkResult:
    """Read one chunk's bronze and turn it into contacts (CDR); in a worker process when `conn` is None."""
    if conn is None:
        with _worker_engine(cfg.database_url).connect() as own:
            return compute_chunk(cfg, part, closed_dates, own)
    columns = LEG_COLUMNS if cfg.source.kind == "cdr" else REPORT_COLUMNS
    bronze = apply_queue_aliases(read_bronze(conn, cfg, part, columns), cfg.rules.queue_aliases)
    firsts = queue_first_dates(bronze, {})
    if cfg.source.kind != "cdr":
        return ChunkResult(len(bronze), firsts, None, bronze, {})
    calls, counts = contacts_from_legs(bronze, contact_rules(cfg, closed_dates))
    calls = calls[calls["date"].isin(pd.to_datetime(part.dates))].reset_index(drop=True)
    return ChunkResult(len(bronze), firsts, calls, None, counts)


_ENGINES: dict[str, object] = {}  # one engine per worker process


def _worker_engine(url: str):
    if url not in _ENGINES:
        # Reading sequentially needs no big page cache; it would only add to the worker's memory.
        _ENGINES[url] = db.make_engine(url, sqlite_cache_mb=64)
    return _ENGINES[url]


def _init_worker(log_level: str, run_id: str) -> None:
    from common import cli

    cli.setup_logging(log_level)
    cli._run_filter.run_id = run_id  # the worker's log lines carry the run's id too


def iter_chunk_results(cfg: Config, plan: BuildPlan, chunks: list[list[date]], closed_dates: pd.DataFrame,
                       workers: int, log_level: str = "INFO", run_id: str = "-") -> Iterator[ChunkResult]:
    """`compute_chunk` of each chunk, in order; with `workers` > 0 computed ahead in that many processes.

    Reading bronze and building contacts is most of step 1's work and needs no database writes, so it
    runs beside the writing process. At most `workers + 1` chunks are in flight, which bounds memory.
    """
    parts = [chunk_plan(plan, dates, {}, cfg) for dates in chunks]
    if workers <= 0 or len(parts) < 2:
        for part in parts:
            yield compute_chunk(cfg, part, closed_dates)
        return
    context = multiprocessing.get_context("spawn")  # the same on Linux, macOS and Windows; no inherited connections
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(log_level, run_id)) as pool:
        pending: deque[Future] = deque()
        try:
            for part in parts:
                pending.append(pool.submit(compute_chunk, cfg, part, closed_dates))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def contact_rules(cfg: Config, closed_dates: pd.DataFrame) -> ContactRules:
    """The rules that turn legs into contacts, from config."""
    r = cfg.rules
    return ContactRules(
        redial_window_minutes=r.redial_window_minutes, redial_match=r.redial_match,
        short_abandon_seconds=r.short_abandon_seconds, interval_minutes=r.interval_minutes, tz=cfg.timezone,
        hours=parse_opening_hours(r.opening_hours.model_dump()), closed_dates=closed_dates)


def closed_dates_for(cfg: Config, first: date, last: date) -> pd.DataFrame:
    """Holidays and extra closed dates for every year from `first` to `last`."""
    h = cfg.rules.holidays
    return holiday_calendar(h.country, h.subdivision, list(h.extra_closed_dates), range(first.year, last.year + 1),
                            open_holidays=list(h.open_holidays))


def calendar_grid(cfg: Config, plan: BuildPlan, closed_dates: pd.DataFrame) -> pd.DataFrame:
    """The complete interval calendar of the rebuilt days, per queue from the queue's first day in bronze on."""
    if not plan.dates:
        return pd.DataFrame()
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    grid = interval_grid(sorted(plan.first_date_per_queue), plan.dates[0], plan.dates[-1], cfg.rules.interval_minutes,
                         cfg.timezone, hours, closed_dates)
    first = grid["queue"].map({q: pd.Timestamp(d) for q, d in plan.first_date_per_queue.items()})
    keep = grid["date"].isin(pd.to_datetime(plan.dates)) & (grid["date"] >= first)
    return grid[keep].reset_index(drop=True)


def last_open_end(cfg: Config, queues: list[str], as_of: date, closed_dates: pd.DataFrame) -> pd.Timestamp | None:
    """End (local time) of the last open interval of any queue in the 14 days before `as_of`."""
    if not queues:
        return None
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    grid = interval_grid(queues, as_of - timedelta(days=14), as_of - timedelta(days=1), cfg.rules.interval_minutes,
                         cfg.timezone, hours, closed_dates)
    open_ = grid[grid["is_open"]]
    if open_.empty:
        return None
    return open_["interval_start"].max() + pd.Timedelta(minutes=cfg.rules.interval_minutes)


def history_daily_max(conn: Connection, dates: list[date]) -> pd.Series:
    """Each queue's highest daily offered outside the days being rebuilt (the yardstick for the volume check)."""
    t = tables.silver_daily
    stmt = select(t.c.queue, func.max(t.c.offered).label("offered")).where(t.c.date.not_in(dates) if len(dates) < 900
                                                                             else t.c.date < min(dates)).group_by(t.c.queue)
    frame = db.read_frame(conn, stmt, t)
    return frame.set_index("queue")["offered"] if not frame.empty else pd.Series(dtype="float64")


def last_built_date(conn: Connection) -> date | None:
    """The newest day silver holds (from silver_day_state, which only committed, successful builds write)."""
    value = conn.execute(select(func.max(tables.silver_day_state.c.date))).scalar()
    return None if value is None else pd.Timestamp(value).date()


def built_interval_minutes(conn: Connection) -> set[int]:
    """The interval lengths silver was built with, read off its oldest and newest built day (the step between
    the first two intervals of the day): one value, or none before the first build. Two days, each through the
    date index, so a grid left half changed by an older version is found too."""
    state, t = tables.silver_day_state, tables.silver_interval
    out = set()
    for day in set(conn.execute(select(func.min(state.c.date), func.max(state.c.date))).one()) - {None}:
        first = select(t.c.queue).where(t.c.date == day).limit(1).scalar_subquery()
        starts = conn.execute(select(t.c.interval_start_utc).where(t.c.date == day, t.c.queue == first)
                              .order_by(t.c.interval_start_utc).limit(2)).scalars().all()
        if len(starts) == 2:
            out.add(int((pd.Timestamp(starts[1]) - pd.Timestamp(starts[0])) / pd.Timedelta(minutes=1)))
    return out


def open_intervals_near(conn: Connection, dates: list[date], days: int) -> pd.DataFrame:
    """silver_interval's open intervals within `days` of any of `dates`, those dates themselves left out.

    The history the completeness check compares rebuilt days with; one range per run of consecutive dates.
    """
    t = tables.silver_interval
    ranges: list[list[date]] = []
    for run in chunk_dates(dates, len(dates)):
        lo, hi = run[0] - timedelta(days=days), run[-1] + timedelta(days=days)
        if ranges and lo <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    if not ranges:
        return pd.DataFrame()
    near = t.c.date.between(*ranges[0])
    for lo, hi in ranges[1:]:
        near = near | t.c.date.between(lo, hi)
    frame = db.read_table(conn, t, where=t.c.is_open & near, columns=[
        "queue", "date", "interval_start", "offered", "offered_outside_hours", "short_abandoned", "is_open"])
    return frame.loc[~frame["date"].isin(pd.to_datetime(dates))].reset_index(drop=True)


def newest_contact(conn: Connection, cfg: Config, as_of: date) -> pd.Timestamp | None:
    """The newest start time in bronze before the run's date.

    Looked for on the last start_date before as-of only (start_date is the local date of the start
    time), so the start_date index finds it without a scan.
    """
    if cfg.source.kind == "daily":  # a day's total covers the day to its end
        last = conn.execute(select(func.max(tables.bronze_daily.c.date)).where(tables.bronze_daily.c.date < as_of)).scalar()
        return None if last is None else pd.Timestamp(last) + pd.Timedelta(days=1)
    t = _bronze(cfg)
    col = t.c.start_time if cfg.source.kind == "cdr" else t.c.interval_start
    last_day = select(func.max(t.c.start_date)).where(t.c.start_date < as_of).scalar_subquery()
    frame = db.read_frame(conn, select(func.max(col).label("start_time")).where(t.c.start_date == last_day),
                          tables.bronze_cdr)
    value = frame["start_time"].iloc[0] if not frame.empty else pd.NaT
    return None if pd.isna(value) else value


def replace_silver(conn: Connection, plan: BuildPlan, calls: pd.DataFrame | None, intervals: pd.DataFrame,
                   daily: pd.DataFrame, run_id: str) -> int:
    """Replace the rebuilt days in every silver table and record what bronze held for them (caller's transaction)."""
    dates = plan.dates
    for i in range(0, len(dates), 500):
        chunk = dates[i:i + 500]
        conn.execute(delete(tables.silver_calls).where(tables.silver_calls.c.date.in_(chunk)))
        conn.execute(delete(tables.silver_interval).where(tables.silver_interval.c.date.in_(chunk)))
        conn.execute(delete(tables.silver_daily).where(tables.silver_daily.c.date.in_(chunk)))
        conn.execute(delete(tables.silver_day_state).where(tables.silver_day_state.c.date.in_(chunk)))
    written = 0
    if calls is not None:
        written += db.insert_frame(conn, tables.silver_calls, calls)
    written += db.insert_frame(conn, tables.silver_interval, intervals)
    written += db.insert_frame(conn, tables.silver_daily, daily)
    state = pd.DataFrame({"date": pd.to_datetime(dates)}).merge(plan.bronze_state, on="date", how="left")
    state[["bronze_rows", "bronze_max_load_id"]] = state[["bronze_rows", "bronze_max_load_id"]].fillna(0).astype("int64")
    db.insert_frame(conn, tables.silver_day_state, state.assign(run_id=run_id))
    return written


def save_checks(conn: Connection, results: pd.DataFrame, run_id: str, step: str, as_of: date) -> None:
    """Append this run's data-quality results (replacing any earlier results of the same run id)."""
    conn.execute(delete(tables.data_quality_checks).where(tables.data_quality_checks.c.run_id == run_id))
    db.insert_frame(conn, tables.data_quality_checks,
                    results.assign(run_id=run_id, step=step, as_of=pd.Timestamp(as_of), checked_at=db.utc_now()))
