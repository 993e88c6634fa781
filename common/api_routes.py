"""The REST API's data endpoints (`/v1/...`): request parameters in, a page of gold rows out.

Each endpoint checks its parameters (unknown queue: 404; bad date: 422), builds its select in `api_queries` and
returns the page envelope of `api_models`. Published forecasts and staffing read the gold tables; a named scenario
reads their `gold_scenario_*` twins, and the capacity tables' own rows of that scenario.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from pydantic import BeforeValidator
from sqlalchemy import Table

from common import api_models as m
from common import api_queries as q
from common import tables

MAX_LIMIT = 10_000
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
PUBLISHED = "published"

Queue = Annotated[str | None, Query(max_length=200, description="queue name (exact); omitted: every queue")]


def iso_date_text(value: object) -> object:
    """Only YYYY-MM-DD text is a date here: pydantic alone would also read `0` or `1700000000` as one (Unix time).
    `latest` passes on to the origin's Literal (a date parameter then refuses it as not a date)."""
    if isinstance(value, str) and value != "latest" and not ISO_DATE.fullmatch(value):
        raise ValueError("not a date: use YYYY-MM-DD")
    return value


DateFrom = Annotated[date | None, Query(description="first local date (YYYY-MM-DD), inclusive"),
                     BeforeValidator(iso_date_text)]
DateTo = Annotated[date | None, Query(description="last local date (YYYY-MM-DD), inclusive"),
                   BeforeValidator(iso_date_text)]
Origin = Annotated[Literal["latest"] | date, Query(description="`latest`: the newest forecast origin per queue and "
                                                              "date; or one origin date YYYY-MM-DD"),
                   BeforeValidator(iso_date_text)]
Scenario = Annotated[str, Query(max_length=60, description="`published`: what the nightly run published; or a "
                                                           "scenario run's name (GET /v1/scenarios)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip (next_offset of the previous page)")]


@dataclass(frozen=True)
class Endpoint:
    """One origin-keyed gold table served as a list: its path, what a call count is counted over, its twins."""

    path: str
    table: Table
    per: str
    summary: str
    model_name: str
    tag: str = "forecasts"
    scenario_table: Table | None = None  # the gold_scenario_* twin; None: a table keyed by scenario, or none


FORECAST_ENDPOINTS = [
    Endpoint("/v1/forecasts/daily", tables.gold_forecast_daily, "day", "daily forecast p10/p50/p90 per queue",
             "ForecastDaily", scenario_table=tables.gold_scenario_forecast_daily),
    Endpoint("/v1/forecasts/interval", tables.gold_forecast_interval, "interval",
             "interval forecast p10/p50/p90 per queue", "ForecastInterval"),
    Endpoint("/v1/staffing/interval", tables.gold_staffing_interval, "interval",
             "agents and staff needed per queue and interval", "StaffingInterval", "staffing",
             tables.gold_scenario_staffing_interval),
    Endpoint("/v1/staffing/daily", tables.gold_staffing_daily, "day",
             "staff-hours, peak staff and FTE per queue and day", "StaffingDaily", "staffing",
             tables.gold_scenario_staffing_daily),
    Endpoint("/v1/capacity/plan", tables.gold_capacity_plan, "ISO week",
             "weekly FTE need, supply and gap per queue and '(centre)' (origin: the plan origin; dates: week_start)",
             "CapacityPlan", "capacity"),
    Endpoint("/v1/capacity/drivers", tables.gold_capacity_drivers, "ISO week",
             "what drives the spread of the FTE gap per block of weeks (dates: first_week)", "CapacityDrivers",
             "capacity"),
]


def _origin(origin: date | str) -> date | None:
    return None if origin == "latest" else origin


def _check_dates(date_from: date | None, date_to: date | None) -> None:
    """422 in FastAPI's own shape (a list of errors naming the parameter), like every other bad parameter."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "date_to"), "input": str(date_to),
                                       "msg": f"date_to={date_to} is before date_from={date_from}"}])


def _check_queue(conn, queue: str | None, table: Table) -> None:  # noqa: ANN001 - a sqlalchemy Connection
    if queue is not None and not q.queue_known(conn, queue, table):
        raise HTTPException(404, f"queue {queue!r} not found: GET /v1/queues lists the queues")


def _envelope(request: Request, units: dict, rows: list[dict], page: q.Page, next_offset: int | None,
              drop: tuple[str, ...] = ()) -> dict:
    return {"timezone": request.app.state.tz, "units": units, "count": len(rows), "limit": page.limit,
            "offset": page.offset, "next_offset": next_offset, "items": [m.to_json_row(r, drop) for r in rows]}


def _forecast_route(app: FastAPI, ep: Endpoint, auth: Depends) -> None:
    model = m.page_model(ep.model_name + "Page", m.row_model(ep.model_name, ep.table))
    per = f"{app.state.interval_minutes}-minute interval" if ep.per == "interval" else ep.per
    units = m.units_block(ep.table, per)

    def read(request: Request, queue: Queue = None, date_from: DateFrom = None, date_to: DateTo = None,
             origin: Origin = "latest", scenario: Scenario = PUBLISHED, limit: Limit = 1000,
             offset: Offset = 0) -> dict:
        _check_dates(date_from, date_to)
        table, name = ep.table, (scenario if keyed_by_scenario else None)
        if scenario != PUBLISHED and not keyed_by_scenario:
            if ep.scenario_table is None:
                raise HTTPException(404, f"scenario {scenario!r} not found: {ep.path} has only scenario=published")
            table, name = ep.scenario_table, scenario
        filters = q.ForecastFilter(queue, date_from, date_to, _origin(origin), scenario=name)
        page = q.Page(limit, offset)
        with request.app.state.engine.connect() as conn:
            if scenario != PUBLISHED and not q.scenario_known(conn, scenario):
                raise HTTPException(404, f"scenario {scenario!r} not found: GET /v1/scenarios lists them")
            _check_queue(conn, queue, table)
            rows, next_offset = q.fetch_page(conn, q.select_forecast_rows(table, filters, page), page, table,
                                             request.app.state.columns)
        return _envelope(request, units, rows, page, next_offset, drop=() if keyed_by_scenario else ("scenario",))

    keyed_by_scenario = "scenario" in ep.table.c
    app.get(ep.path, response_model=model, summary=ep.summary, tags=[ep.tag], dependencies=[auth],
            responses={404: {"model": m.ErrorBody, "description": "unknown queue or scenario"}})(read)


def add_routes(app: FastAPI, auth: Depends) -> None:
    """Register every data endpoint on `app`, each behind `auth`."""
    for ep in FORECAST_ENDPOINTS:
        _forecast_route(app, ep, auth)
    not_found = {404: {"model": m.ErrorBody, "description": "unknown queue"}}

    @app.get("/v1/scenarios", response_model=m.ScenarioList, tags=["capacity"], dependencies=[auth],
             summary="scenario runs (3_forecast.py or the capacity plan with --scenario NAME), newest first")
    def scenarios(request: Request) -> dict:
        with request.app.state.engine.connect() as conn:
            items = [m.to_json_row(r) for r in q.list_scenarios(conn)]
        return {"timezone": request.app.state.tz, "items": items}

    @app.get("/v1/queues", response_model=m.QueueList, tags=["forecasts"], dependencies=[auth],
             summary="queues with a forecast, and their first and newest origin")
    def queues(request: Request) -> dict:
        with request.app.state.engine.connect() as conn:
            return {"timezone": request.app.state.tz, "items": q.list_queues(conn)}

    accuracy = tables.gold_forecast_accuracy
    accuracy_units = m.units_block(accuracy, "day")

    @app.get("/v1/accuracy/daily", response_model=m.page_model("AccuracyDailyPage", m.row_model("AccuracyDaily",
             accuracy)), tags=["accuracy"], dependencies=[auth], responses=not_found,
             summary="forecast next to actual per queue and day (latest origin: the shortest horizon)")
    def accuracy_daily(request: Request, queue: Queue = None, date_from: DateFrom = None, date_to: DateTo = None,
                       origin: Origin = "latest",
                       method: Annotated[str | None, Query(max_length=40, description="e.g. ensemble, "
                                                           "naive_benchmark, backtest_lightgbm")] = None,
                       limit: Limit = 1000, offset: Offset = 0) -> dict:
        _check_dates(date_from, date_to)
        filters = q.ForecastFilter(queue, date_from, date_to, _origin(origin), method=method)
        page = q.Page(limit, offset)
        with request.app.state.engine.connect() as conn:
            _check_queue(conn, queue, accuracy)
            rows, next_offset = q.fetch_page(conn, q.select_forecast_rows(accuracy, filters, page), page,
                                             accuracy, request.app.state.columns)
        return _envelope(request, accuracy_units, rows, page, next_offset)

    summary = tables.gold_forecast_accuracy_summary

    @app.get("/v1/accuracy/summary", response_model=m.page_model("AccuracySummaryPage", m.row_model(
             "AccuracySummary", summary)), tags=["accuracy"], dependencies=[auth],
             summary="accuracy over the trailing window by scope (overall, queue, horizon_day, weekday, method)")
    def accuracy_summary(request: Request,
                         as_of: Annotated[Literal["latest"] | date, Query(description="`latest` or YYYY-MM-DD"),
                                          BeforeValidator(iso_date_text)] = "latest",
                         scope: Annotated[str | None, Query(max_length=20)] = None,
                         method: Annotated[str | None, Query(max_length=40)] = None,
                         limit: Limit = 1000, offset: Offset = 0) -> dict:
        page = q.Page(limit, offset)
        with request.app.state.engine.connect() as conn:
            rows, next_offset = q.fetch_page(conn, q.select_accuracy_summary(_origin(as_of), scope, method, page),
                                             page, summary, request.app.state.columns)
        return _envelope(request, m.units_block(summary, "day"), rows, page, next_offset)

    alerts = tables.gold_alerts

    @app.get("/v1/alerts", response_model=m.page_model("AlertPage", m.row_model("Alert", alerts)), tags=["alerts"],
             dependencies=[auth], responses=not_found,
             summary="alerts by as-of (a queue's include the whole center's), newest first")
    def list_alerts(request: Request, queue: Queue = None, date_from: DateFrom = None, date_to: DateTo = None,
                    severity: Annotated[str | None, Query(pattern="^(warning|critical)$")] = None,
                    limit: Limit = 1000, offset: Offset = 0) -> dict:
        _check_dates(date_from, date_to)
        page = q.Page(limit, offset)
        with request.app.state.engine.connect() as conn:
            _check_queue(conn, queue, alerts)
            rows, next_offset = q.fetch_page(conn, q.select_alerts(queue, date_from, date_to, severity, page), page,
                                             alerts, request.app.state.columns)
        return _envelope(request, {}, rows, page, next_offset)

    runs = tables.pipeline_runs

    @app.get("/v1/runs", response_model=m.page_model("RunPage", m.row_model("Run", runs)), tags=["runs"],
             dependencies=[auth], summary="pipeline step runs, newest first (as_of: the run's local date)")
    def list_runs(request: Request, step: Annotated[str | None, Query(max_length=40)] = None,
                  status: Annotated[str | None, Query(max_length=20)] = None,
                  date_from: DateFrom = None, date_to: DateTo = None, limit: Limit = 100,
                  offset: Offset = 0) -> dict:
        _check_dates(date_from, date_to)
        page = q.Page(limit, offset)
        with request.app.state.engine.connect() as conn:
            rows, next_offset = q.fetch_page(conn, q.select_runs(step, status, date_from, date_to, page), page,
                                             runs, request.app.state.columns)
        return _envelope(request, {"rows_written": "rows"}, rows, page, next_offset)
