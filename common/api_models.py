"""The REST API's JSON: one pydantic model per gold table (built from its declared columns), units, time zones.

Every response names its units (a `units` block: calls, seconds, agents, FTE, ...) and its time zone: `*_utc` values are
ISO 8601 with a `Z`, a local interval start carries its UTC offset (`2026-01-05T08:00:00+01:00`), and local dates are
those of the `timezone` the response names (the config's `timezone`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Table

from common import tables

# Columns renamed in JSON to say their time zone (the table's names stay: they are Power BI's contract).
RENAMED = {"interval_start": "interval_start_local", "started_at": "started_at_utc",
           "finished_at": "finished_at_utc", "created_at": "created_at_utc"}
UTC_COLUMNS = {"interval_start_utc", "started_at", "finished_at", "created_at", "issued_at_utc", "created_at_utc"}

_FRACTION = "fraction (0-1)"
_UNITS_EXACT = {
    "workload_minutes": "minutes", "window_days": "days", "n_days": "days", "horizon_day": "days",
    "weekday": "0 = Monday", "open_days": "days", "weeks_ahead": "weeks", "headcount_p50": "people",
    "workload_hours_p50": "hours", "shortfall_probability": _FRACTION, "wmape": _FRACTION, "mape": _FRACTION,
    "bias": _FRACTION, "coverage": _FRACTION, "wmape_naive": _FRACTION, "total_volume_error": _FRACTION, "shrinkage": _FRACTION,
}


def unit_of(column: str, per: str) -> str | None:
    """The unit of a numeric column by its name; `per` says what a call count is counted over ("day", "interval")."""
    if column in _UNITS_EXACT:
        return _UNITS_EXACT[column]
    if column.endswith("_seconds") or "_seconds_" in column:
        return "seconds"
    if column.startswith("fte_") or "_fte_" in column:
        return "FTE (full-time equivalents)"
    if column.startswith(("share_", "shrinkage")):
        return _FRACTION
    if column.startswith("staff_hours_"):
        return "agent-hours"
    if column.startswith(("agents_", "staff_", "peak_staff_")) or column == "agents_raw":
        return "agents"
    if column.startswith(("service_level", "occupancy", "abandon_rate", "target_service_level", "target_max_occ",
                          "target_max_abandon")):
        return _FRACTION
    if column in ("p10", "p50", "p90", "actual", "error", "abs_error", "mae", "rmse") \
            or column.startswith(("volume_", "pinball_")):
        return f"calls per {per}"
    return None


def units_block(table: Table, per: str) -> dict[str, str]:
    """`{column: unit}` for every numeric column of `table` that has one."""
    found = {RENAMED.get(c.name, c.name): unit_of(c.name, per) for c in table.columns
             if isinstance(c.type, (Integer, Float))}
    return {name: unit for name, unit in found.items() if unit is not None}


_PY_TYPES = {Integer: int, Float: float, Boolean: bool, Date: date}


def _python_type(column) -> type:  # noqa: ANN001 - a sqlalchemy Column
    if isinstance(column.type, DateTime):
        return str  # ISO 8601 text with its zone (see to_json_row)
    for sql_type, py in _PY_TYPES.items():
        if isinstance(column.type, sql_type):
            return py
    return str


def row_model(name: str, table: Table, drop: tuple[str, ...] = ()) -> type[BaseModel]:
    """A pydantic model of one row of `table` as JSON: its columns (renamed per RENAMED), nullable ones optional."""
    fields: dict[str, Any] = {}
    for col in table.columns:
        if col.name in drop:
            continue
        py = _python_type(col)
        desc = f"{table.name}.{col.name}"
        if col.name in UTC_COLUMNS:
            desc += ": UTC, ISO 8601 with Z"
        elif col.name == "interval_start":
            desc += ": local wall clock with its UTC offset"
        if col.nullable and not col.primary_key:
            fields[RENAMED.get(col.name, col.name)] = (py | None, Field(None, description=desc))
        else:
            fields[RENAMED.get(col.name, col.name)] = (py, Field(..., description=desc))
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def page_model(name: str, item: type[BaseModel]) -> type[BaseModel]:
    """The envelope every list endpoint returns: time zone, units, the page and its items."""
    return create_model(
        name, __config__=ConfigDict(extra="forbid"),
        timezone=(str, Field(..., description="IANA time zone of local dates and local times (config timezone)")),
        units=(dict[str, str], Field(..., description="unit of each numeric field")),
        count=(int, Field(..., description="items in this page")),
        limit=(int, ...), offset=(int, ...),
        next_offset=(int | None, Field(None, description="offset of the next page; null: this is the last page")),
        items=(list[item], ...),
    )


def utc_iso(value: datetime | None) -> str | None:
    """A naive UTC timestamp as ISO 8601 with Z."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def local_iso(local: datetime, utc: datetime | None) -> str:
    """A naive local timestamp as ISO 8601 with its UTC offset, taken from its UTC twin (exact at DST changes)."""
    if utc is None:
        return local.isoformat(timespec="seconds")
    minutes = round((local - utc) / timedelta(minutes=1))
    sign = "+" if minutes >= 0 else "-"
    return f"{local.isoformat(timespec='seconds')}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def to_json_row(row: dict, drop: tuple[str, ...] = ()) -> dict:
    """A database row as the API's JSON item: UTC timestamps with Z, local interval starts with their offset."""
    out = {}
    for name, value in row.items():
        if name in drop:
            continue
        if name in UTC_COLUMNS:
            value = utc_iso(value)
        elif name == "interval_start" and value is not None:
            value = local_iso(value, row.get("interval_start_utc"))
        out[RENAMED.get(name, name)] = value
    return out


class QueueItem(BaseModel):
    queue: str
    first_origin: date = Field(..., description="oldest forecast origin of the queue (local date)")
    newest_origin: date = Field(..., description="newest forecast origin of the queue (local date)")


class QueueList(BaseModel):
    timezone: str
    items: list[QueueItem]


Scenario = row_model("Scenario", tables.gold_scenarios)


class ScenarioList(BaseModel):
    timezone: str
    items: list[Scenario]


class RunInfo(BaseModel):
    run_id: str
    step: str
    as_of: date
    finished_at_utc: str | None = Field(None, description="UTC, ISO 8601 with Z")
    age_seconds: float | None = Field(None, description="seconds since the run finished")


class Health(BaseModel):
    status: str = Field(..., description="ok | stale (no successful nightly run in 36 hours) | unavailable")
    database: str = Field(..., description="reachable | unreachable")
    version: str = Field(..., description="wfm-forecast version serving")
    timezone: str
    now_utc: str = Field(..., description="the server's clock, UTC, ISO 8601 with Z")
    last_nightly_run: RunInfo | None = Field(None, description="newest successful 5_report run (the night's last step)")
    last_forecast_run: RunInfo | None = Field(None, description="newest successful 3_forecast run")


class ErrorBody(BaseModel):
    detail: str
