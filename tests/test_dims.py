"""The date and queue dimensions: past days as silver built them, forecast days from the calendar, worked by hand.

Fixture: silver for Mon 2024-12-30 and Tue 2024-12-31 (built when the 31st was closed as "Nyårsafton"), queues
Support (interval data, open Saturdays 10-14 in config.yaml) and Billing (daily only); the config now closes only
2025-01-01; the newest forecast (origin 2025-01-01) runs to Sat 2025-01-04.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from common import db, dims, tables
from common.config import load_config
from tests.conftest import write_config


def _silver(queue: str, day: str, offered: float, is_open: bool, holiday: str | None) -> dict:
    return {"queue": queue, "date": pd.Timestamp(day), "offered": offered, "offered_outside_hours": 0.0,
            "is_open": is_open, "is_holiday": holiday is not None, "holiday_name": holiday}


def _forecast(origin: str, queue: str, day: str, method: str) -> dict:
    return {"run_id": "r", "forecast_origin": pd.Timestamp(origin), "queue": queue, "date": pd.Timestamp(day),
            "horizon_day": 1, "p10": 1.0, "p50": 2.0, "p90": 3.0, "method": method}


@pytest.fixture
def built(tmp_path):
    config = load_config(write_config(tmp_path, rules__holidays__country=None,
                                      rules__holidays__extra_closed_dates=["2025-01-01"]))
    engine = db.make_engine(f"sqlite:///{tmp_path / 'wfm.db'}")
    db.ensure_schema(engine)
    forecasts = [_forecast("2024-12-31", "Support", d, "lightgbm") for d in ("2024-12-31", "2025-01-01")]
    forecasts += [_forecast("2025-01-01", q, f"2025-01-0{d}", m) for q, m in (("Support", "ensemble"),
                                                                              ("Billing", "seasonal_naive"))
                  for d in (1, 2, 3, 4)]
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, pd.DataFrame([
            _silver("Support", "2024-12-30", 100, True, None),
            _silver("Support", "2024-12-31", 0, False, "Nyårsafton"),
            _silver("Billing", "2024-12-30", 0, True, None),
            _silver("Billing", "2024-12-31", 5, False, "Nyårsafton")]))
        db.insert_frame(conn, tables.silver_interval, pd.DataFrame([{
            "queue": "Support", "interval_start": pd.Timestamp("2024-12-30 09:00"),
            "interval_start_utc": pd.Timestamp("2024-12-30 08:00"), "date": pd.Timestamp("2024-12-30"),
            "offered": 100.0, "offered_outside_hours": 0.0, "is_open": True}]))
        db.insert_frame(conn, tables.gold_forecast_daily, pd.DataFrame(forecasts))
        written = dims.replace_dims(conn, config)
        dims.replace_dims(conn, config)  # a rebuild replaces, never adds
    with engine.connect() as conn:
        out = {t.name: db.read_table(conn, t) for t in (tables.gold_dim_date, tables.gold_dim_queue_date,
                                                         tables.gold_dim_queue)}
    engine.dispose()
    return written, out


def test_dim_date_runs_from_the_first_silver_day_to_the_last_forecast_date_with_iso_weeks(built) -> None:
    _, out = built
    got = out["gold_dim_date"].sort_values("date")
    assert [d.date() for d in got["date"]] == [date(2024, 12, 30), date(2024, 12, 31), *(date(2025, 1, d)
                                                                                          for d in (1, 2, 3, 4))]
    first = got.iloc[0]  # Monday 30 December 2024 is in ISO week 1 of 2025
    assert (first["year"], first["iso_year"], first["iso_week_number"], first["iso_week"]) == (2024, 2025, 1,
                                                                                                "2025-W01")
    assert (first["weekday"], first["weekday_name"], first["month_name"], first["quarter"]) == (0, "Monday",
                                                                                                 "December", 4)
    assert got["is_weekend"].tolist() == [False, False, False, False, False, True]
    # the 31st keeps the name silver was built with; the 1st is closed by today's config
    assert got["holiday_name"].fillna("").tolist() == ["", "Nyårsafton", "closed (config)", "", "", ""]


def test_dim_queue_date_keeps_silvers_flags_for_past_days_and_the_calendars_for_forecast_days(built) -> None:
    _, out = built
    got = out["gold_dim_queue_date"]
    support = got.loc[got["queue"] == "Support"].sort_values("date")
    assert support["is_open"].tolist() == [True, False, False, True, True, True]  # Sat 4th: open 10-14
    assert support["source"].tolist() == ["silver", "silver", "calendar", "calendar", "calendar", "calendar"]
    billing = got.loc[got["queue"] == "Billing"].sort_values("date")
    assert billing["is_open"].tolist() == [True, False, False, True, True, False]  # closed on Saturdays
    assert billing["is_holiday"].tolist() == [False, True, True, False, False, False]


def test_dim_queue_says_when_each_queue_had_calls_and_what_forecast_it_has(built) -> None:
    written, out = built
    got = out["gold_dim_queue"].set_index("queue")
    assert got.loc["Support", "first_date"] == got.loc["Support", "last_date"] == pd.Timestamp("2024-12-30")
    assert got.loc["Billing", "first_date"] == pd.Timestamp("2024-12-31")  # its 30th had no calls
    assert got["days_with_calls"].to_dict() == {"Billing": 1, "Support": 1}
    assert got.loc["Support", "open_weekdays"] == "Mon,Tue,Wed,Thu,Fri,Sat"
    assert got.loc["Billing", "open_weekdays"] == "Mon,Tue,Wed,Thu,Fri"
    assert got["has_interval_data"].to_dict() == {"Billing": False, "Support": True}
    assert got["last_forecast_origin"].tolist() == [pd.Timestamp("2025-01-01")] * 2
    assert got["last_forecast_date"].tolist() == [pd.Timestamp("2025-01-04")] * 2
    assert got["forecast_method"].to_dict() == {"Billing": "seasonal_naive", "Support": "ensemble"}
    assert written == 6 + 12 + 2
