"""Prometheus textfile metrics: parsed back with prometheus_client's own parser and checked against hand-known
values; written after every step, success or failure, without ever changing a step's outcome."""

from __future__ import annotations

import importlib
import logging
import stat
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from prometheus_client.parser import text_string_to_metric_families

from common import __version__, db, prom_metrics, tables
from common.cli import StepResult, run_step, step_parser
from common.config import load_config
from common.errors import DataError
from common.prom_metrics import DatabaseState, StepOutcome
from tests.conftest import REPO, write_config
from tests.test_chat import _evaluated
from tests.test_evaluation import AS_OF

evaluate = importlib.import_module("4_evaluate")

MAR_09 = 1741474800.0  # 2025-03-09 00:00 in Europe/Stockholm (CET, UTC+1) = 2025-03-08 23:00 UTC
MAR_10 = MAR_09 + 86400


def parse(text: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of a text-format file."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def read(path: Path) -> dict[tuple, float]:
    return parse(path.read_text())


def _step(step: str) -> tuple:
    return (("step", step),)


def test_step_metrics_say_status_duration_rows_and_times() -> None:
    outcome = StepOutcome("3_forecast", run_id="abc123", as_of=date(2025, 3, 10), status="success", rows_written=42)
    # last success 2025-03-10 01:30 naive UTC = 1741570200
    got = parse(prom_metrics.render(prom_metrics.step_registry(outcome, 12.5, 1741600000.0,
                                                               datetime(2025, 3, 10, 1, 30))))
    me = _step("3_forecast")
    assert got == {
        ("wfm_step_status", (("status", "success"), *me)): 1.0,
        ("wfm_step_status", (("status", "skipped"), *me)): 0.0,
        ("wfm_step_status", (("status", "failed"), *me)): 0.0,
        ("wfm_step_duration_seconds", me): 12.5,
        ("wfm_step_rows_written", me): 42.0,
        ("wfm_step_last_run_timestamp_seconds", me): 1741600000.0,
        ("wfm_step_last_success_timestamp_seconds", me): 1741570200.0,
        ("wfm_step_run_info", (("as_of", "2025-03-10"), ("run_id", "abc123"), *me, ("version", __version__))): 1.0,
    }


def test_state_metrics_from_a_hand_made_database_state() -> None:
    state = DatabaseState(newest_day=date(2025, 3, 9), accuracy_as_of=date(2025, 3, 9),
                          accuracy=[("overall", "", 0.08, -0.02, 0.1, 40),
                                    ("queue", 'Billing "B"', 0.12, 0.05, float("nan"), 20)],
                          alerts_as_of=date(2025, 3, 10), alerts={"warning": 2, "critical": 0})
    got = parse(prom_metrics.render(prom_metrics.state_registry(state, date(2025, 3, 10), "Europe/Stockholm")))
    overall, billing = (("queue", ""), ("scope", "overall")), (("queue", 'Billing "B"'), ("scope", "queue"))
    assert got == {
        ("wfm_state_as_of_timestamp_seconds", ()): MAR_10,
        ("wfm_data_newest_day_timestamp_seconds", ()): MAR_09,
        ("wfm_data_age_seconds", ()): 86400.0,
        ("wfm_forecast_accuracy_as_of_timestamp_seconds", ()): MAR_09,
        ("wfm_forecast_wmape", overall): 0.08,
        ("wfm_forecast_wmape", billing): 0.12,
        ("wfm_forecast_bias", overall): -0.02,
        ("wfm_forecast_bias", billing): 0.05,
        ("wfm_forecast_wmape_naive", overall): 0.1,  # Billing's is NaN: left out, not written as NaN
        ("wfm_forecast_scored_points", overall): 40.0,
        ("wfm_forecast_scored_points", billing): 20.0,
        ("wfm_alerts_as_of_timestamp_seconds", ()): MAR_10,
        ("wfm_alerts_open", (("severity", "warning"),)): 2.0,
        ("wfm_alerts_open", (("severity", "critical"),)): 0.0,
    }


def _dummy(config: Path, step: str, body) -> int:  # noqa: ANN001 - a step body
    return run_step(step, step_parser(f"{step}.py", "a test step"), body, ["--config", str(config), "--as-of", AS_OF])


def test_each_step_writes_its_own_file_and_a_failure_keeps_the_last_success(tmp_path: Path) -> None:
    config = write_config(tmp_path, metrics__textfile_dir="prom")
    prom = tmp_path / "prom"
    assert _dummy(config, "9_a", lambda ctx: StepResult(5, "ok")) == 0
    assert _dummy(config, "9_b", lambda ctx: StepResult(0, "nothing to do", "skipped")) == 0
    with db.make_engine(load_config(config).database_url).connect() as conn:
        runs = db.read_table(conn, tables.pipeline_runs).set_index("step")
    success_at = runs.loc["9_a", "finished_at"].tz_localize("UTC").timestamp()

    def fail(ctx):  # noqa: ANN001, ANN202
        raise DataError("the export is empty")

    assert _dummy(config, "9_a", fail) == 2
    assert sorted(p.name for p in prom.iterdir()) == ["wfm_forecast_9_a.prom", "wfm_forecast_9_b.prom",
                                                      "wfm_forecast_state.prom"]  # no temporary file left
    a, b = read(prom / "wfm_forecast_9_a.prom"), read(prom / "wfm_forecast_9_b.prom")
    assert a[("wfm_step_status", (("status", "failed"), *_step("9_a")))] == 1.0
    assert a[("wfm_step_status", (("status", "success"), *_step("9_a")))] == 0.0
    assert a[("wfm_step_rows_written", _step("9_a"))] == 0.0
    assert a[("wfm_step_last_success_timestamp_seconds", _step("9_a"))] == pytest.approx(success_at, abs=1e-3)
    assert 0 < a[("wfm_step_duration_seconds", _step("9_a"))] < 30
    assert b[("wfm_step_status", (("status", "skipped"), *_step("9_b")))] == 1.0
    assert b[("wfm_step_last_success_timestamp_seconds", _step("9_b"))] > 0  # a skip is not a failure
    state = read(prom / "wfm_forecast_state.prom")
    assert state == {("wfm_state_as_of_timestamp_seconds", ()): MAR_10}  # an empty database has nothing more
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in prom.iterdir())  # node_exporter is another user


def test_step_4_metrics_show_accuracy_bias_alerts_and_data_age(tmp_path: Path) -> None:
    config = _evaluated(tmp_path, [])
    assert evaluate.main(["--config", str(config), "--as-of", AS_OF, "--set", "metrics.textfile_dir=prom"]) == 0
    with db.make_engine(load_config(config).database_url).connect() as conn:
        [rows] = db.read_table(conn, tables.pipeline_runs)["rows_written"]
    step = read(tmp_path / "prom" / "wfm_forecast_4_evaluate.prom")
    assert step[("wfm_step_status", (("status", "success"), *_step("4_evaluate")))] == 1.0
    assert step[("wfm_step_rows_written", _step("4_evaluate"))] == rows > 0
    state = read(tmp_path / "prom" / "wfm_forecast_state.prom")
    # test_evaluation's hand computation: wMAPE 55/657, bias -39/657, naive 47/657 on 8 open days; one queue, A
    for scope in ((("queue", ""), ("scope", "overall")), (("queue", "A"), ("scope", "queue"))):
        assert state[("wfm_forecast_wmape", scope)] == pytest.approx(55 / 657)
        assert state[("wfm_forecast_bias", scope)] == pytest.approx(-39 / 657)
        assert state[("wfm_forecast_wmape_naive", scope)] == pytest.approx(47 / 657)
        assert state[("wfm_forecast_scored_points", scope)] == 8.0
    # silver ends Sun 03-09, the as-of is 03-10; alerts: freshness (critical), model vs naive, fallback (warnings)
    assert state[("wfm_data_age_seconds", ())] == 86400.0 and state[("wfm_data_newest_day_timestamp_seconds", ())] == MAR_09
    assert state[("wfm_alerts_open", (("severity", "critical"),))] == 1.0
    assert state[("wfm_alerts_open", (("severity", "warning"),))] == 2.0
    assert state[("wfm_alerts_as_of_timestamp_seconds", ())] == MAR_10


def test_metrics_that_cannot_be_written_never_fail_the_step(tmp_path: Path, caplog) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the folder should be")
    config = write_config(tmp_path, metrics__textfile_dir="not-a-folder")
    with caplog.at_level(logging.WARNING):
        assert _dummy(config, "9_a", lambda ctx: StepResult(5, "ok")) == 0
    [line] = [r.getMessage() for r in caplog.records if r.name == "common.prom_metrics"]
    assert line.startswith(f"metrics: could not write to metrics.textfile_dir {tmp_path / 'not-a-folder'} (")
    assert line.endswith("the step's outcome stands")


def test_no_metrics_without_textfile_dir_and_help_does_not_load_prometheus_client(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert _dummy(config, "9_a", lambda ctx: StepResult(5, "ok")) == 0
    assert not list(tmp_path.rglob("*.prom"))
    done = subprocess.run([sys.executable, "-c", "import sys, common.cli; print('prometheus_client' in sys.modules)"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_database_state_takes_the_newest_rows_at_or_before_the_as_of(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.ensure_schema(engine)
    day = {"offered": 10.0, "offered_outside_hours": 0.0, "is_open": True, "is_holiday": False}
    summary = {"run_id": "r", "window_days": 28}
    alert = {"run_id": "r", "created_at": datetime(2025, 3, 10, 2), "alert_rule": "x", "metric": "m", "message": "x"}
    finished = {"step": "4_evaluate", "as_of": date(2025, 3, 10), "started_at": datetime(2025, 3, 10, 1)}
    with engine.begin() as conn:
        conn.execute(insert(tables.silver_daily), [{"queue": "A", "date": date(2025, 3, 8), **day},
                                                   {"queue": "B", "date": date(2025, 3, 9), **day}])
        # (executemany takes its columns from the first row: every row names the same keys)
        conn.execute(insert(tables.gold_forecast_accuracy_summary), [
            {"as_of": date(2025, 3, d), "scope": scope, "scope_value": value, "n_days": n, "wmape": w, "bias": b,
             **summary, "method": method}
            for d, scope, value, n, w, b, method in [
                (9, "overall", "all", 5, 0.2, None, "forecast"),
                (10, "overall", "all", 6, 0.1, -0.01, "forecast"),
                (10, "queue", "A", 6, 0.1, None, "forecast"),
                (10, "weekday", "0", 1, 0.3, None, "forecast"),
                (10, "overall", "all", 6, 0.15, None, "naive_benchmark"),
                (11, "overall", "all", 7, 0.9, None, "forecast")]])
        conn.execute(insert(tables.gold_alerts), [{"as_of": date(2025, 3, 9), "severity": "critical", **alert},
                                                  {"as_of": date(2025, 3, 10), "severity": "warning", **alert},
                                                  {"as_of": date(2025, 3, 10), "severity": "warning", **alert}])
        conn.execute(insert(tables.pipeline_runs), [
            {"run_id": "a", "status": "success", "finished_at": datetime(2025, 3, 9, 2, 5), **finished},
            {"run_id": "b", "status": "skipped", "finished_at": datetime(2025, 3, 10, 2, 5), **finished},
            {"run_id": "c", "status": "failed", "finished_at": datetime(2025, 3, 11, 2, 5), **finished}])
    with engine.connect() as conn:
        state = prom_metrics.read_state(conn, date(2025, 3, 10))
        assert prom_metrics.last_success(conn, "4_evaluate") == datetime(2025, 3, 10, 2, 5)
        assert prom_metrics.last_success(conn, "3_forecast") is None
    assert state == DatabaseState(newest_day=date(2025, 3, 9), accuracy_as_of=date(2025, 3, 10),
                                  accuracy=[("overall", "", 0.1, -0.01, None, 6), ("queue", "A", 0.1, None, None, 6)],
                                  alerts_as_of=date(2025, 3, 10), alerts={"warning": 2, "critical": 0})
    # A quiet night: step 4 succeeded for 03-12 and raised nothing. Its open alerts are none, not 03-10's two.
    with engine.begin() as conn:
        conn.execute(insert(tables.pipeline_runs).values(run_id="d", status="success", finished_at=datetime(
            2025, 3, 12, 2, 5), **{**finished, "as_of": date(2025, 3, 12)}))
    with engine.connect() as conn:
        quiet = prom_metrics.read_state(conn, date(2025, 3, 12))
    assert (quiet.alerts_as_of, quiet.alerts) == (date(2025, 3, 12), {"warning": 0, "critical": 0})
