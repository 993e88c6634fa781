"""run_daily.sh end to end on a daily-only export (source.kind daily): ~400 days of daily totals for 2 queues."""

from __future__ import annotations

import email
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tests.test_pipeline import project, run_daily  # noqa: F401 - `project` is a fixture: a copy of the project

AS_OF = "2025-03-10"
WEEKLY = [1.2, 1.0, 0.95, 0.95, 0.9, 0.4]  # Mon..Sat; closed on Sundays


def _write_daily_export(path: Path) -> None:
    """Daily totals 2024-02-05..2025-03-09: a weekly pattern plus Poisson noise, no row on Sundays."""
    rng = np.random.default_rng(7)
    rows = [(queue, f"{d:%d/%m/%Y}", int(rng.poisson(level * WEEKLY[d.day_of_week])))
            for queue, level in (("Support", 400), ("Billing", 120))
            for d in pd.date_range(end="2025-03-09", periods=400, freq="D") if d.day_of_week != 6]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["Queue", "Day", "Calls"]).to_csv(path, index=False)


@pytest.fixture(scope="module")
def daily_project(project: Path) -> Path:  # noqa: F811 - the imported fixture
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["source"] = {"kind": "daily", "csv_glob": "data/daily/*.csv",
                        "columns": {"queue": "Queue", "date": {"column": "Day", "format": "%d/%m/%Y"},
                                    "offered": "Calls"}}
    config["database"]["url"] = "sqlite:///data/daily.db"
    config["report"]["output_dir"] = "output_daily"
    config["rules"]["opening_hours"] = {"default": {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
                                        | {"sat": "10:00-14:00", "sun": "closed"}}
    (project / "daily.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _write_daily_export(project / "data" / "daily" / "totals.csv")
    return project


def test_a_daily_only_export_is_forecast_by_the_day_for_every_queue_and_the_report_says_there_is_no_staffing(
        daily_project: Path) -> None:
    done = run_daily(daily_project, "--config", "daily.yaml", "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    engine = sa.create_engine(f"sqlite:///{daily_project / 'data' / 'daily.db'}")
    with engine.connect() as conn:
        runs = pd.read_sql("select step, status from pipeline_runs", conn)
        daily = pd.read_sql("select * from silver_daily", conn)
        forecast = pd.read_sql("select * from gold_forecast_daily", conn)
        intervals = pd.read_sql("select count(*) as n from gold_forecast_interval", conn)["n"].iloc[0]
        staffing = pd.read_sql("select count(*) as n from gold_staffing_interval", conn)["n"].iloc[0]
        silver_intervals = pd.read_sql("select count(*) as n from silver_interval", conn)["n"].iloc[0]
        plan = pd.read_sql("select queue, staffing_model from gold_capacity_plan", conn)
    status = dict(zip(runs["step"], runs["status"]))
    assert status == {"0_load_bronze": "success", "1_build_silver": "success", "1_5_segment_customers": "skipped",
                      "2_train": "success", "3_forecast": "success", "4_evaluate": "success",
                      "6_capacity_plan": "success", "5_report": "success"}
    # a capacity plan without intervals: workload / max occupancy, per queue and the centre
    assert set(plan["queue"]) == {"Billing", "Support", "(centre)"}
    assert set(plan.loc[plan["queue"] != "(centre)", "staffing_model"]) == {"occupancy"}
    # every day 2024-02-05..2025-03-09 (Sundays too, closed), from the daily rows only
    assert daily.groupby("queue")["date"].nunique().to_dict() == {"Billing": 399, "Support": 399}
    assert silver_intervals == 0
    assert (daily.loc[pd.to_datetime(daily["date"]).dt.day_of_week == 6, "is_open"] == 0).all()
    assert forecast.groupby("queue")["date"].nunique().to_dict() == {"Billing": 14, "Support": 14}
    open_days = forecast[pd.to_datetime(forecast["date"]).dt.day_of_week != 6]
    assert (open_days["p50"] > 0).all() and set(forecast["method"]) == {"ensemble"}
    assert forecast["intraday_profile"].isna().all()
    assert intervals == 0 and staffing == 0
    assert "Billing: days only - no interval history and no intraday.default_shape, so no staffing" in done.stdout \
        + done.stderr
    message = email.message_from_bytes((daily_project / "output_daily" / AS_OF / "report.eml").read_bytes())
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "Support: days only - no interval history and no intraday.default_shape, so no staffing." in text
