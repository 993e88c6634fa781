"""Intraday profile, daily -> interval split (DST days included) and the AHT per interval, on hand-made frames."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from common.calendar import interval_grid
from common.errors import DataError
from common.intraday import aht_forecast, intraday_profile, split_daily
from common.opening_hours import parse_opening_hours

TZ = "Europe/Stockholm"
NO_CLOSED = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")})


def hours(mon: str = "08:00-11:00", sun: str = "closed"):
    week = {d: "closed" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return parse_opening_hours({"default": {**week, "mon": mon, "tue": mon, "sun": sun}, "queues": {}})


def rows(queue: str, day: str, values: dict[str, float], is_open: bool = True, **extra) -> list[dict]:
    """One silver_interval-like row per 'HH:MM': value."""
    return [{"queue": queue, "date": pd.Timestamp(day), "interval_start": pd.Timestamp(f"{day} {hm}"),
             "offered": v, "is_open": is_open, **extra} for hm, v in values.items()]


def history() -> pd.DataFrame:
    """Mondays of queue Q, 60-minute intervals open 08-11."""
    data = (
        rows("Q", "2025-02-17", {"08:00": 1000, "09:00": 0, "10:00": 0})      # before the 3-week window
        + rows("Q", "2025-02-24", {"08:00": 0, "09:00": 0, "10:00": 1000})    # a holiday: left out
        + rows("Q", "2025-03-03", {"08:00": 10, "09:00": 20, "10:00": 10})
        + rows("Q", "2025-03-10", {"08:00": 30, "09:00": 20, "10:00": 10})
        + rows("Q", "2025-03-10", {"07:00": 500}, is_open=False)              # a closed interval: left out
    )
    return pd.DataFrame(data)


HOLIDAY = pd.DataFrame({"date": pd.to_datetime(["2025-02-24"])})


def test_profile_is_the_mean_per_clock_time_of_open_same_weekday_days_normalised():
    profile = intraday_profile(history(), date(2025, 3, 17), weeks=3, closed_dates=HOLIDAY)
    # window 02-24..03-16, holiday 02-24 out -> Mondays 03-03 and 03-10:
    # means 08:00 (10+30)/2 = 20, 09:00 20, 10:00 10; total 50 -> shares 0.4, 0.4, 0.2
    assert profile["weekday"].tolist() == [0, 0, 0]
    assert profile["minute"].tolist() == [480, 540, 600]
    assert profile["share"].tolist() == pytest.approx([0.4, 0.4, 0.2])
    assert profile["days"].tolist() == [2, 2, 2]


def test_split_uses_the_profile_closed_intervals_get_0_and_each_day_sums_to_its_value():
    profile = intraday_profile(history(), date(2025, 3, 17), weeks=3, closed_dates=HOLIDAY)
    grid = interval_grid(["Q"], date(2025, 3, 17), date(2025, 3, 17), 60, TZ, hours(), NO_CLOSED)
    daily = pd.DataFrame({"queue": ["Q"], "date": pd.to_datetime(["2025-03-17"]),
                          "p10": [50.0], "p50": [100.0], "p90": [150.0]})
    out = split_daily(daily, profile, grid)
    assert len(out) == 24
    open_ = out.loc[out["is_open"]]
    assert open_["interval_start"].dt.hour.tolist() == [8, 9, 10]
    # 100 x (0.4, 0.4, 0.2); p10 and p90 the same shares of 50 and 150
    assert open_["p50"].tolist() == pytest.approx([40, 40, 20])
    assert open_["p10"].tolist() == pytest.approx([20, 20, 10])
    assert open_["p90"].tolist() == pytest.approx([60, 60, 30])
    assert (out.loc[~out["is_open"], ["p10", "p50", "p90"]].to_numpy() == 0).all()
    assert out[["p10", "p50", "p90"]].sum().tolist() == pytest.approx([50, 100, 150], rel=1e-12)


def test_an_open_interval_without_history_gets_a_flat_share_then_the_day_is_renormalised():
    profile = intraday_profile(history(), date(2025, 3, 17), weeks=3, closed_dates=HOLIDAY)
    grid = interval_grid(["Q"], date(2025, 3, 17), date(2025, 3, 17), 60, TZ, hours("07:00-11:00"), NO_CLOSED)
    daily = pd.DataFrame({"queue": ["Q"], "date": pd.to_datetime(["2025-03-17"]),
                          "p10": [100.0], "p50": [100.0], "p90": [100.0]})
    out = split_daily(daily, profile, grid)
    # 07:00 is new: flat 1/4 = 0.25; with 0.4, 0.4, 0.2 the day weighs 1.25 -> 0.2, 0.32, 0.32, 0.16
    assert out.loc[out["is_open"], "p50"].tolist() == pytest.approx([20, 32, 32, 16])


def test_a_weekday_without_any_history_is_split_flat_over_its_open_intervals():
    profile = intraday_profile(history(), date(2025, 3, 17), weeks=3, closed_dates=HOLIDAY)
    grid = interval_grid(["Q"], date(2025, 3, 18), date(2025, 3, 18), 60, TZ, hours(), NO_CLOSED)  # a Tuesday
    daily = pd.DataFrame({"queue": ["Q"], "date": pd.to_datetime(["2025-03-18"]),
                          "p10": [30.0], "p50": [60.0], "p90": [90.0]})
    out = split_daily(daily, profile, grid)
    assert out.loc[out["is_open"], "p50"].tolist() == pytest.approx([20, 20, 20])


def test_fall_back_day_has_50_intervals_the_repeated_hour_shares_its_profile_value_and_sums_right():
    # Sunday profile over 48 half-hours: 02:00 weighs 3, every other time 1 (total 50)
    minutes = np.arange(48) * 30
    profile = pd.DataFrame({"queue": "Q", "weekday": 6, "minute": minutes,
                            "share": np.where(minutes == 120, 3 / 50, 1 / 50)})
    grid = interval_grid(["Q"], date(2025, 10, 26), date(2025, 10, 26), 30, TZ, hours(sun="00:00-24:00"), NO_CLOSED)
    assert len(grid) == 50 and grid["is_open"].all()
    daily = pd.DataFrame({"queue": ["Q"], "date": pd.to_datetime(["2025-10-26"]),
                          "p10": [54.0], "p50": [108.0], "p90": [216.0]})
    out = split_daily(daily, profile, grid)
    # two 02:00 rows weigh 3 each, 48 other rows 1 each: total 54 -> p50 02:00 = 108*3/54 = 6, others 2
    at_two = out["interval_start"].dt.strftime("%H:%M") == "02:00"
    assert at_two.sum() == 2
    assert out.loc[at_two, "p50"].tolist() == pytest.approx([6, 6])
    assert out.loc[~at_two, "p50"].to_numpy() == pytest.approx(np.full(48, 2.0))
    assert out["interval_start_utc"].is_unique
    assert out[["p10", "p50", "p90"]].sum().tolist() == pytest.approx([54, 108, 216], rel=1e-12)


def test_spring_forward_day_has_46_intervals_summing_to_the_day():
    profile = pd.DataFrame({"queue": "Q", "weekday": 6, "minute": np.arange(48) * 30, "share": 1 / 48})
    grid = interval_grid(["Q"], date(2025, 3, 30), date(2025, 3, 30), 30, TZ, hours(sun="00:00-24:00"), NO_CLOSED)
    daily = pd.DataFrame({"queue": ["Q"], "date": pd.to_datetime(["2025-03-30"]),
                          "p10": [46.0], "p50": [92.0], "p90": [138.0]})
    out = split_daily(daily, profile, grid)
    # 02:00 and 02:30 do not exist: 46 equal shares of 92 = 2 each
    assert len(out) == 46 and out["p50"].to_numpy() == pytest.approx(np.full(46, 2.0))


def test_a_past_fall_back_day_counts_its_repeated_clock_time_once():
    grid = interval_grid(["Q"], date(2024, 10, 27), date(2024, 10, 27), 30, TZ, hours(sun="00:00-24:00"), NO_CLOSED)
    hm = grid["interval_start"].dt.strftime("%H:%M")
    first_two = (hm == "02:00") & ~hm.duplicated()
    offered = np.where(hm == "02:00", np.where(first_two, 4.0, 6.0), 1.0)
    profile = intraday_profile(grid.assign(offered=offered), date(2024, 10, 28), weeks=1, closed_dates=NO_CLOSED)
    # 02:00 counts as (4 + 6) / 2 = 5, the other 47 clock times 1: total 52
    assert len(profile) == 48
    assert profile.set_index("minute")["share"][120] == pytest.approx(5 / 52)
    assert profile.set_index("minute")["share"][0] == pytest.approx(1 / 52)


def test_volume_on_a_day_without_open_intervals_is_refused():
    grid = interval_grid(["Q"], date(2025, 3, 19), date(2025, 3, 19), 60, TZ, hours(), NO_CLOSED)  # Wed: closed
    daily = pd.DataFrame({"queue": ["Q"], "date": pd.to_datetime(["2025-03-19"]),
                          "p10": [1.0], "p50": [2.0], "p90": [3.0]})
    with pytest.raises(DataError, match="no open interval in the grid, first Q 2025-03-19"):
        split_daily(daily, pd.DataFrame(columns=["queue", "weekday", "minute", "share"]), grid)


def test_aht_is_handled_weighted_with_weekday_queue_and_default_fallbacks():
    hist = pd.DataFrame(
        rows("Q", "2025-03-03", {"08:00": 0}, handled=10.0, aht_seconds=100.0)
        + rows("Q", "2025-03-03", {"09:00": 0}, handled=10.0, aht_seconds=200.0)
        + rows("Q", "2025-03-10", {"09:00": 0}, handled=30.0, aht_seconds=300.0)
        + rows("Q", "2025-03-12", {"09:00": 0}, handled=10.0, aht_seconds=600.0)   # a Wednesday
        + rows("Q", "2025-03-11", {"09:00": 0}, handled=0.0, aht_seconds=np.nan)   # nothing handled: ignored
        + rows("Q", "2025-01-06", {"10:00": 0}, handled=99.0, aht_seconds=9999.0)  # outside the 2 weeks
    )
    grid = interval_grid(["New", "Q"], date(2025, 3, 17), date(2025, 3, 18), 60, TZ, hours(), NO_CLOSED)
    out = aht_forecast(hist, grid, date(2025, 3, 17), weeks=2, default_seconds=180.0)
    got = out.merge(grid, on=["queue", "interval_start_utc"]).set_index(["queue", "interval_start"])
    mon, tue = "2025-03-17", "2025-03-18"
    # Mon 08:00: 100 (interval); Mon 09:00: (200*10 + 300*30) / 40 = 275 (interval);
    # Mon 10:00: Monday mean (1000 + 2000 + 9000) / 50 = 240 (weekday);
    # Tue: no Tuesday handled -> queue mean (12000 + 6000) / 60 = 300; New: no history -> default 180
    expect = {("Q", f"{mon} 08:00"): (100, "interval"), ("Q", f"{mon} 09:00"): (275, "interval"),
              ("Q", f"{mon} 10:00"): (240, "weekday"), ("Q", f"{tue} 09:00"): (300, "queue"),
              ("New", f"{mon} 08:00"): (180, "default")}
    for (queue, ts), (seconds, source) in expect.items():
        row = got.loc[(queue, pd.Timestamp(ts))]
        assert (row["aht_seconds"], row["aht_source"]) == (pytest.approx(seconds), source)
    closed = got.loc[~got["is_open"]]
    assert closed["aht_seconds"].isna().all() and (closed["aht_source"] == "closed").all()
