"""The intraday split of a queue without interval history: intraday.default_shape, or days only."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from common import day_shape
from common.calendar import interval_grid
from common.config import load_config
from common.errors import ConfigError
from common.intraday import split_daily
from common.opening_hours import parse_opening_hours
from tests.conftest import write_config

# Mon-Fri 08:00-10:00, so two hourly intervals a day; Saturday 08:00-09:00 for Support only.
HOURS = parse_opening_hours({"default": {"mon": "08:00-10:00", "tue": "08:00-10:00", "wed": "08:00-10:00",
                                         "thu": "08:00-10:00", "fri": "08:00-10:00", "sat": "closed",
                                         "sun": "closed"},
                             "queues": {"Support": {"sat": "08:00-09:00"}}})
MON, TUE = pd.Timestamp("2025-03-10"), pd.Timestamp("2025-03-11")
NO_CLOSED = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "holiday_name": pd.Series(dtype="str")})


def _choice(queues: list[str]) -> pd.DataFrame:
    """choose_profiles' choice for queues without history: flat on Monday and Tuesday."""
    return pd.DataFrame([(q, wd, "flat", "no Monday with calls", False) for q in queues for wd in (0, 1)],
                        columns=["queue", "weekday", "profile", "reason", "passed"])


def _history(queue: str) -> pd.DataFrame:
    return pd.DataFrame({"queue": [queue], "date": [MON - pd.Timedelta(days=7)],
                         "interval_start": [MON - pd.Timedelta(days=7) + pd.Timedelta(hours=8)], "offered": [3.0],
                         "is_open": [True]})


def _split(shape: dict | None, queue: str = "Billing") -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    parsed = day_shape.parse_default_shape(shape, HOURS, 60)
    profile, choice, days_only = day_shape.without_interval_history(
        pd.DataFrame(columns=["queue", "weekday", "minute", "share", "days"]), _choice([queue]),
        _history("Support"), parsed, HOURS, 60)
    grid = interval_grid([queue], MON.date(), TUE.date(), 60, "Europe/Stockholm", HOURS, NO_CLOSED)
    daily = pd.DataFrame({"queue": queue, "date": [MON, TUE], "p10": [80.0, 40.0], "p50": [100.0, 60.0],
                          "p90": [120.0, 80.0]})
    split = split_daily(daily, profile, grid)
    return split.loc[split["is_open"]].reset_index(drop=True), choice, days_only


def test_the_default_shape_splits_a_day_by_its_weights_share_of_the_open_intervals() -> None:
    split, choice, days_only = _split({"08:00": 1, "09:00": 3})
    # weights 1 and 3: shares 1/4 and 3/4 of each day
    assert split["p50"].tolist() == [25.0, 75.0, 15.0, 45.0]
    assert split["p10"].tolist() == [20.0, 60.0, 10.0, 30.0]
    assert set(choice["profile"]) == {"default_shape"} and choice["passed"].all()
    assert days_only == []


def test_a_per_weekday_shape_splits_its_weekdays_and_a_weekday_it_does_not_list_flat() -> None:
    split, _, _ = _split({"mon": {"08:00": 3, "09:00": 1}})
    assert split["p50"].tolist() == [75.0, 25.0, 30.0, 30.0]  # Tuesday: flat over its two intervals


def test_without_a_default_shape_a_queue_without_interval_history_is_days_only() -> None:
    parsed = day_shape.parse_default_shape(None, HOURS, 60)
    profile = pd.DataFrame({"queue": ["Support", "Support"], "weekday": [0, 0], "minute": [480, 540],
                            "share": [0.5, 0.5], "days": [1, 1]})
    choice = _choice(["Billing", "Support"])
    profile, choice, days_only = day_shape.without_interval_history(profile, choice, _history("Support"), parsed,
                                                                    HOURS, 60)
    assert days_only == ["Billing"]
    billing = choice.loc[choice["queue"] == "Billing"]
    assert billing["profile"].isna().all() and (billing["reason"] == day_shape.DAYS_ONLY).all()
    assert (choice.loc[choice["queue"] == "Support", "profile"] == "flat").all()  # has history: unchanged
    assert set(profile["queue"]) == {"Support"}
    assert day_shape.days_only_sentence("Billing") == \
        "Billing: days only - no interval history and no intraday.default_shape, so no staffing"


@pytest.mark.parametrize(("shape", "message"), [
    ({"07:00": 1, "08:00": 1}, r"intraday\.default_shape\.07:00: outside the opening hours"),
    ({"08:15": 1}, r"intraday\.default_shape\.08:15: not a time \"HH:MM\" on the 60-minute grid"),
    ({"08:00": 0, "09:00": 0}, r"intraday\.default_shape: the weights sum to 0"),
    ({"sat": {"09:00": 1}}, r"intraday\.default_shape\.sat\.09:00: outside the opening hours"),
    ({"monday": {"09:00": 1}}, r"intraday\.default_shape\.monday: give weights per time"),
])
def test_a_default_shape_that_does_not_fit_is_a_one_line_error_naming_the_key(shape: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        day_shape.parse_default_shape(shape, HOURS, 60)


def test_the_default_shape_is_checked_when_the_config_loads(tmp_path: Path) -> None:
    path = write_config(tmp_path, intraday={"default_shape": {"06:00": 1}})
    with pytest.raises(ConfigError, match=r"config\.yaml: intraday\.default_shape\.06:00: outside the opening hours"):
        load_config(path)
    assert load_config(write_config(tmp_path, intraday={"default_shape": {"08:00": 1, "12:30": 2}})).intraday \
        .default_shape == {"08:00": 1, "12:30": 2}


# --- step 3: one queue with interval history, one with daily totals only ----------------------------------

def _forecast(tmp_path: Path, **sections):
    from common import forecast_run, silver
    from common.calendar import interval_grid as grid_of

    cfg = load_config(write_config(tmp_path, **sections))
    as_of = date(2025, 3, 10)
    days = pd.date_range("2025-02-03", "2025-03-09", freq="D")
    daily = pd.DataFrame([(q, d, 100.0 if d.day_of_week < 5 else 0.0, d.day_of_week < 5, False)
                          for q in ("Billing", "Support") for d in days],
                         columns=["queue", "date", "offered", "is_open", "is_holiday"])
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    closed = silver.closed_dates_for(cfg, days[0].date(), as_of)
    support = grid_of(["Support"], days[0].date(), days[-1].date(), 30, cfg.timezone, hours, closed)
    history_int = support.assign(offered=support["is_open"] * 5.0, handled=support["is_open"] * 5.0,
                                 aht_seconds=300.0)
    return forecast_run.build_forecast(cfg, as_of, daily, history_int, None, None, None, "no model in this test")


def test_step_3_splits_and_staffs_the_queue_with_interval_history_and_forecasts_the_other_by_the_day(
        tmp_path: Path) -> None:
    run = _forecast(tmp_path)
    assert run.forecast.groupby("queue")["date"].nunique().to_dict() == {"Billing": 14, "Support": 14}
    assert set(run.intervals["queue"]) == {"Support"} and set(run.staffing["queue"]) == {"Support"}
    billing = run.forecast.loc[run.forecast["queue"] == "Billing"]
    assert billing["intraday_profile"].isna().all()
    assert set(billing["intraday_profile_reason"].dropna()) == {day_shape.DAYS_ONLY}
    assert run.forecast.loc[run.forecast["queue"] == "Support", "intraday_profile"].notna().any()


def test_step_3_splits_a_queue_without_interval_history_by_the_default_shape(tmp_path: Path) -> None:
    run = _forecast(tmp_path, intraday={"default_shape": {"08:00": 1, "12:00": 3}})
    billing = run.intervals.loc[(run.intervals["queue"] == "Billing") & (run.intervals["p50"] > 0)]
    day = billing.loc[billing["date"] == billing["date"].min()]
    # the whole day in 08:00 and 12:00, one part to three
    assert day["interval_start"].dt.strftime("%H:%M").tolist() == ["08:00", "12:00"]
    assert day["p50"].iloc[1] == pytest.approx(3 * day["p50"].iloc[0])
    assert set(run.staffing["queue"]) == {"Billing", "Support"}
    open_days = run.forecast.loc[(run.forecast["queue"] == "Billing") & run.forecast["intraday_profile"].notna()]
    assert set(open_days["intraday_profile"]) == {"default_shape"}
