"""A real `wfm-api` server for the API tests: hand-made gold rows in a SQLite file, uvicorn on a free loopback port.

The rows (winter: Stockholm is UTC+1, summer UTC+2), with the answers the tests expect worked out by hand:
  gold_forecast_daily   origin 01-04: Billing 01-05 p50 100, 01-06 p50 110; Support 01-05 p50 50
                        origin 01-05: Billing 01-06 p50 120, 01-07 p50 130
                        latest Billing: 01-05 100 (01-04), 01-06 120 (01-05), 01-07 130 (01-05)
  gold_forecast_interval origin 01-04: Billing 01-06 08:00 p50 10, 08:15 p50 11
                        origin 01-05: Billing 01-06 08:00 p50 12 (08:15 left out), 07-01 08:00 (06:00Z) p50 7
                        latest Billing 01-06: only 08:00 p50 12 (a day's intervals come from one origin)
  gold_scenario_forecast_daily  hire10, origin 01-05: Billing 01-06 p50 150 (gold_scenarios lists hire10)
  gold_capacity_plan    published origin 01-04: Billing weeks 01-05 fte_required_p50 10, 01-12 12
                        published origin 01-05: Billing week 01-12 11; (centre) week 01-12 20
                        hire10 origin 01-05: Billing week 01-05 9
                        latest published Billing: 01-05 10 (origin 01-04), 01-12 11 (origin 01-05)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from common import db, tables
from tests.conftest import REPO, write_config
from tests.pg_server import free_port

KEYS = ("key-one", "k2-second-key")
D = date.fromisoformat
T = datetime.fromisoformat


def _daily(origin: str, queue: str, day: str, p50: float) -> dict:
    return {"run_id": f"r{origin}", "forecast_origin": D(origin), "queue": queue, "date": D(day),
            "horizon_day": (D(day) - D(origin)).days, "p10": p50 * 0.8, "p50": p50, "p90": p50 * 1.2,
            "method": "ensemble"}


def _interval(origin: str, queue: str, local: str, utc: str, p50: float) -> dict:
    return {"run_id": f"r{origin}", "forecast_origin": D(origin), "queue": queue, "interval_start_utc": T(utc),
            "interval_start": T(local), "p10": p50 - 2, "p50": p50, "p90": p50 + 2, "aht_seconds": 300.0}


def _staffing(origin: str, queue: str, local: str, utc: str, staff: int) -> dict:
    return {"run_id": f"r{origin}", "forecast_origin": D(origin), "queue": queue, "interval_start_utc": T(utc),
            "interval_start": T(local), "volume_p10": 8.0, "volume_p50": 10.0, "volume_p90": 12.0,
            "aht_seconds": 300.0, "workload_minutes": 50.0, "agents_p10": staff - 2, "agents_p50": staff - 1,
            "agents_p90": staff, "staff_p10": staff - 1, "staff_p50": staff, "staff_p90": staff + 1,
            "service_level_p50": 0.82, "staffing_model": "erlang_a"}


def _accuracy(origin: str, queue: str, day: str, method: str, p50: float, actual: float) -> dict:
    return {"run_id": f"r{origin}", "forecast_origin": D(origin), "queue": queue, "date": D(day), "method": method,
            "horizon_day": (D(day) - D(origin)).days, "weekday": D(day).weekday(), "actual": actual,
            "p10": p50 - 10, "p50": p50, "p90": p50 + 10, "error": p50 - actual, "abs_error": abs(p50 - actual),
            "is_open": True, "in_band": abs(p50 - actual) <= 10}


def _summary(as_of: str, scope: str, value: str, wmape: float) -> dict:
    return {"run_id": f"e{as_of}", "as_of": D(as_of), "scope": scope, "scope_value": value, "method": "forecast",
            "window_days": 28, "n_days": 20, "wmape": wmape, "bias": -0.01, "coverage": 0.8}


def _plan(scenario: str, origin: str, queue: str, week: str, fte: float) -> dict:
    return {"run_id": f"c{origin}", "scenario": scenario, "plan_origin": D(origin), "queue": queue,
            "week_start": D(week), "iso_week": D(week).strftime("%G-W%V"), "weeks_ahead": 1, "open_days": 5,
            "volume_p10": 900.0, "volume_p50": 1000.0, "volume_p90": 1100.0, "workload_hours_p50": 83.3,
            "fte_required_p10": fte - 1, "fte_required_p50": fte, "fte_required_p90": fte + 1, "gap_fte_p50": -0.5,
            "volume_method": "seasonal", "staffing_model": "erlang_a", "simulations": 200, "seed": 1}


def seed(url: str, now: datetime) -> None:
    """Write the module docstring's rows (and runs finished two hours before `now`, naive UTC) into `url`."""
    engine = db.make_engine(url)
    db.ensure_schema(engine)
    rows = {
        tables.gold_forecast_daily: [_daily("2026-01-04", "Billing", "2026-01-05", 100),
                                     _daily("2026-01-04", "Billing", "2026-01-06", 110),
                                     _daily("2026-01-04", "Support", "2026-01-05", 50),
                                     _daily("2026-01-05", "Billing", "2026-01-06", 120),
                                     _daily("2026-01-05", "Billing", "2026-01-07", 130)],
        tables.gold_forecast_interval: [
            _interval("2026-01-04", "Billing", "2026-01-06 08:00", "2026-01-06 07:00", 10),
            _interval("2026-01-04", "Billing", "2026-01-06 08:15", "2026-01-06 07:15", 11),
            _interval("2026-01-05", "Billing", "2026-01-06 08:00", "2026-01-06 07:00", 12),
            _interval("2026-01-05", "Billing", "2026-07-01 08:00", "2026-07-01 06:00", 7)],
        tables.gold_staffing_interval: [
            _staffing("2026-01-04", "Billing", "2026-01-06 08:00", "2026-01-06 07:00", 5),
            _staffing("2026-01-05", "Billing", "2026-01-06 08:00", "2026-01-06 07:00", 6)],
        tables.gold_staffing_daily: [
            {"run_id": "r2026-01-05", "forecast_origin": D("2026-01-05"), "queue": "Billing", "date": D("2026-01-06"),
             "volume_p50": 120.0, "staff_hours_p10": 30.0, "staff_hours_p50": 36.0, "staff_hours_p90": 42.0,
             "peak_staff_p10": 5, "peak_staff_p50": 6, "peak_staff_p90": 7, "fte_p50": 4.8}],
        tables.gold_forecast_accuracy: [_accuracy("2026-01-03", "Billing", "2026-01-05", "ensemble", 90, 100),
                                        _accuracy("2026-01-04", "Billing", "2026-01-05", "ensemble", 105, 100),
                                        _accuracy("2026-01-04", "Billing", "2026-01-05", "naive_benchmark", 80, 100)],
        tables.gold_forecast_accuracy_summary: [_summary("2026-01-05", "overall", "all", 0.10),
                                                _summary("2026-01-06", "overall", "all", 0.12),
                                                _summary("2026-01-06", "queue", "Billing", 0.09)],
        tables.gold_alerts: [
            {"run_id": "e1", "as_of": D("2026-01-05"), "created_at": T("2026-01-05 05:10"), "severity": "critical",
             "alert_rule": "freshness", "queue": None, "metric": "data_age_days", "value": 3.0, "threshold": 1.0,
             "message": "no data for 3 days"},
            {"run_id": "e1", "as_of": D("2026-01-05"), "created_at": T("2026-01-05 05:10"), "severity": "warning",
             "alert_rule": "accuracy", "queue": "Billing", "metric": "wmape", "value": 0.3, "threshold": 0.2,
             "message": "Billing wMAPE 30%"},
            {"run_id": "e0", "as_of": D("2026-01-04"), "created_at": T("2026-01-04 05:10"), "severity": "warning",
             "alert_rule": "accuracy", "queue": "Support", "metric": "wmape", "value": 0.25, "threshold": 0.2,
             "message": "Support wMAPE 25%"}],
        tables.gold_scenario_forecast_daily: [{**_daily("2026-01-05", "Billing", "2026-01-06", 150),
                                               "scenario": "hire10"}],
        tables.gold_scenarios: [{"scenario": "hire10", "step": "3_forecast", "as_of": D("2026-01-05"), "run_id": "s1",
                                 "created_at_utc": T("2026-01-05 09:00"), "overrides": '["capacity.hires=10"]',
                                 "description": "ten hires in February"}],
        tables.gold_capacity_plan: [_plan("published", "2026-01-04", "Billing", "2026-01-05", 10),
                                    _plan("published", "2026-01-04", "Billing", "2026-01-12", 12),
                                    _plan("published", "2026-01-05", "Billing", "2026-01-12", 11),
                                    _plan("published", "2026-01-05", "(centre)", "2026-01-12", 20),
                                    _plan("hire10", "2026-01-05", "Billing", "2026-01-05", 9)],
        tables.pipeline_runs: [
            {"run_id": "n3", "step": "3_forecast", "as_of": D("2026-01-05"), "started_at": now - timedelta(hours=3),
             "finished_at": now - timedelta(hours=2, minutes=30), "status": "success", "rows_written": 9},
            {"run_id": "n5", "step": "5_report", "as_of": D("2026-01-05"), "started_at": now - timedelta(hours=2.1),
             "finished_at": now - timedelta(hours=2), "status": "success", "rows_written": 0},
            {"run_id": "n6", "step": "5_report", "as_of": D("2026-01-06"), "started_at": now - timedelta(hours=1),
             "finished_at": now - timedelta(minutes=59), "status": "failed", "message": "smtp"}],
    }
    with engine.begin() as conn:
        for table, values in rows.items():
            for row in values:  # one by one: the rows leave different nullable columns out
                conn.execute(insert(table).values(row))
    engine.dispose()


def api_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "common.api", "--config", str(config), "--log-level", "info", *args]


def api_env(keys: tuple[str, ...] | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "WFM_API_KEYS"}
    if keys:
        env["WFM_API_KEYS"] = ",".join(keys)
    return env


@contextmanager
def running_api(directory: Path, keys: tuple[str, ...] | None = KEYS):
    """Seed a database in `directory`, start `python -m common.api` on a free loopback port; yield its base URL."""
    config = write_config(directory, timezone="Europe/Stockholm")
    seed(f"sqlite:///{directory / 'data' / 'wfm.db'}", datetime.now(timezone.utc).replace(tzinfo=None))
    port = free_port()
    log = (directory / "api.log").open("w")
    proc = subprocess.Popen(api_command(config, "--port", str(port)), cwd=REPO, env=api_env(keys),
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/v1/health", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"wfm-api did not start: {(directory / 'api.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def get(url: str, key: str | None = KEYS[0], header: str = "X-API-Key", method: str = "GET") -> tuple[int, dict]:
    """Status and JSON body of a request to `url` (the key sent in `header`: X-API-Key or Authorization)."""
    request = urllib.request.Request(url, method=method)
    if key is not None:
        request.add_header(header, key if header == "X-API-Key" else f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return exc.code, json.loads(body) if body else {}


@contextmanager
def serving(app):  # noqa: ANN001 - a FastAPI app
    """`app` served by uvicorn in a thread of this process on a free loopback port; yields its base URL."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start in a thread")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
