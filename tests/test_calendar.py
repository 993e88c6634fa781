"""Tests for common.calendar: opening hours, holidays, DST-correct interval grid.

Calendar facts used below (worked out by hand):
- 2025-01-01 is a Wednesday, so 2025-01-06 and 2025-01-13 are Mondays,
  2025-01-11 a Saturday and 2025-01-12 a Sunday.
- Europe/Stockholm: 2025-03-30 02:00 CET -> 03:00 CEST (23-hour day),
  2025-10-26 03:00 CEST -> 02:00 CET (25-hour day). CET = UTC+1, CEST = UTC+2.
- Asia/Kolkata is UTC+05:30 all year, no DST.
"""

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from common.calendar import (
    floor_to_interval,
    floor_to_interval_utc,
    interval_grid,
    is_open_at,
    localize,
    to_local,
)
from common.errors import ConfigError
from common.opening_hours import WEEKDAYS, OpeningHours, parse_opening_hours
from common.public_holidays import holiday_calendar

KEY = "rules.opening_hours"
WEEKDAY_0818 = {d: "08:00-18:00" for d in WEEKDAYS[:5]} | {"sat": "closed", "sun": None}
NO_CLOSED = pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]"), "holiday_name": pd.Series([], dtype="str")})


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def series(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"))


@pytest.fixture
def hours() -> OpeningHours:
    return parse_opening_hours({"default": WEEKDAY_0818, "queues": {"Sales": {"sat": "10:00-14:00"}}})


# ---------------------------------------------------------------- opening hours


def test_parse_opening_hours_turns_windows_into_minutes_and_merges_partial_override(hours):
    # 08:00 = 480, 18:00 = 1080, 10:00 = 600, 14:00 = 840
    assert hours.default["mon"] == (480, 1080)
    assert hours.default["sat"] is None and hours.default["sun"] is None
    assert hours.queues["Sales"]["sat"] == (600, 840)
    assert hours.queues["Sales"]["mon"] == (480, 1080)  # not overridden -> default
    assert list(hours.queues["Sales"]) == list(WEEKDAYS)
    assert hours.window("Sales", 5) == (600, 840)
    assert hours.window("Support", 5) is None  # unknown queue -> default
    assert hours.window("Support", 0) == (480, 1080)


def test_parse_opening_hours_accepts_24_00_closed_any_case_and_int_queue_names():
    spec = {"default": WEEKDAY_0818 | {"sun": "Closed", "fri": "00:00-24:00"}, "queues": {100: {"mon": "closed"}}}
    hours = parse_opening_hours(spec)
    assert hours.default["fri"] == (0, 1440)
    assert hours.default["sun"] is None
    assert hours.window("100", 0) is None  # YAML reads queue 100 as int; stored as "100"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"default": WEEKDAY_0818, "queues": {"Sales": {"sat": "14:00-10:00"}}},
            f"{KEY}.queues.Sales.sat: '14:00-10:00' ends before it starts; "
            'use "HH:MM-HH:MM" (close after open) or closed',
        ),
        (
            {"default": WEEKDAY_0818 | {"mon": "10:00-10:00"}},
            f"{KEY}.default.mon: '10:00-10:00' is empty (opens and closes at once); "
            'use "HH:MM-HH:MM" (close after open) or closed',
        ),
        (
            {"default": WEEKDAY_0818 | {"tue": "8-18"}},
            f"{KEY}.default.tue: '8-18' is not a time window; use \"HH:MM-HH:MM\" (close after open) or closed",
        ),
        (
            {"default": WEEKDAY_0818 | {"sat": False}},
            f"{KEY}.default.sat: False (bool) is not a time window; "
            'use "HH:MM-HH:MM" (close after open) or closed (quote the value in YAML)',
        ),
        (
            {"default": WEEKDAY_0818 | {"wed": "08:00-25:00"}},
            f"{KEY}.default.wed: '08:00-25:00' has a time out of range; hours are 00-23 and minutes "
            '00-59 (24:00 is allowed as a close); use "HH:MM-HH:MM" (close after open) or closed',
        ),
        (
            {"default": WEEKDAY_0818 | {"wed": "08:60-18:00"}},
            f"{KEY}.default.wed: '08:60-18:00' has a time out of range",
        ),
        (
            {"default": WEEKDAY_0818 | {"wed": "08:00-24:30"}},
            f"{KEY}.default.wed: '08:00-24:30' has a time out of range",
        ),
        (
            {"default": WEEKDAY_0818 | {"wed": "24:00-24:00"}},
            f"{KEY}.default.wed: '24:00-24:00' has a time out of range",
        ),
        (
            {"default": WEEKDAY_0818, "queues": {"Sales": {"monday": "09:00-17:00"}}},
            f"{KEY}.queues.Sales.monday: unknown weekday 'monday'; did you mean 'mon'? "
            "weekdays are mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            {"default": WEEKDAY_0818 | {"Fri": "08:00-18:00"}},
            f"{KEY}.default.Fri: unknown weekday 'Fri'; did you mean 'fri'?",
        ),
        (
            {"default": {d: WEEKDAY_0818[d] for d in WEEKDAYS[:5]}},
            f'{KEY}.default: missing weekday(s) sat, sun; list all 7 (mon, tue, wed, thu, fri, sat, sun), '
            'each "HH:MM-HH:MM" or closed',
        ),
        ({"queues": {}}, f"{KEY}.default: missing; list all 7 weekdays"),
        ({"default": WEEKDAY_0818, "queue": {}}, f"{KEY}.queue: unknown key; expected 'default' and 'queues'"),
        ({"default": WEEKDAY_0818, "queues": ["Sales"]}, f"{KEY}.queues: expected a mapping"),
        ({"default": WEEKDAY_0818, "queues": {"Sales": "closed"}}, f"{KEY}.queues.Sales: expected a mapping"),
        ("08:00-18:00", f"{KEY}: expected a mapping"),
    ],
)
def test_parse_opening_hours_rejects_bad_input_naming_the_full_key(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_opening_hours(spec)


def test_parse_opening_hours_uses_the_given_key_prefix():
    with pytest.raises(ConfigError, match=re.escape("cfg.hours.default.mon: '18:00-08:00' ends before")):
        parse_opening_hours({"default": WEEKDAY_0818 | {"mon": "18:00-08:00"}}, key="cfg.hours")


# ---------------------------------------------------------------- holidays

# Sweden 2025 by hand: Easter Sunday is 20 April, so Good Friday 18/4, Easter
# Monday 21/4, Ascension (+39 days) 29/5, Pentecost (+49) 8/6; Midsummer Day is
# the Saturday in 20-26 June (21/6); All Saints' Day the Saturday in 31/10-6/11 (1/11).
SE_2025 = [
    ("2025-01-01", "Nyårsdagen"),
    ("2025-01-06", "Trettondedag jul"),
    ("2025-04-18", "Långfredagen"),
    ("2025-04-20", "Påskdagen"),
    ("2025-04-21", "Annandag påsk"),
    ("2025-05-01", "Första maj"),
    ("2025-05-29", "Kristi himmelsfärdsdag"),
    ("2025-06-06", "Nationaldagen"),
    ("2025-06-08", "Pingstdagen"),
    ("2025-06-21", "Midsommardagen"),
    ("2025-11-01", "Alla helgons dag"),
    ("2025-12-25", "Juldagen"),
    ("2025-12-26", "Annandag jul"),
]


def expected_frame(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.Series(pd.to_datetime([d for d, _ in rows]), dtype="datetime64[ns]"),
            "holiday_name": pd.Series([n for _, n in rows], dtype="str"),
        }
    )


def test_holiday_calendar_se_2025_in_swedish_with_extra_dates_merged():
    # 24/12 is not a public holiday -> "closed (config)"; 25/12 is -> keeps Juldagen, once.
    got = holiday_calendar("SE", None, ["2025-12-24", date(2025, 12, 25)], [2025])
    rows = sorted(SE_2025 + [("2025-12-24", "closed (config)")])
    pd.testing.assert_frame_equal(got, expected_frame(rows))


def test_holiday_calendar_keeps_extra_dates_outside_the_years_and_lowercase_country():
    got = holiday_calendar("se", "", ["2026-01-01", "2024-07-15"], [2025])
    rows = sorted(SE_2025 + [("2024-07-15", "closed (config)"), ("2026-01-01", "Nyårsdagen")])
    pd.testing.assert_frame_equal(got, expected_frame(rows))


@pytest.mark.parametrize("country", [None, ""])
def test_holiday_calendar_without_country_gives_only_extra_dates(country):
    got = holiday_calendar(country, None, ["2025-03-02", "2025-01-05", "2025-03-02"], [2025])
    pd.testing.assert_frame_equal(
        got, expected_frame([("2025-01-05", "closed (config)"), ("2025-03-02", "closed (config)")])
    )


def test_holiday_calendar_with_nothing_closed_is_empty_but_typed():
    got = holiday_calendar(None, None, [], [2025])
    pd.testing.assert_frame_equal(got, expected_frame([]))


@pytest.mark.parametrize(
    ("country", "subdivision", "extra", "message"),
    [
        ("XX", None, [], "rules.holidays.country: 'XX' is not a country"),
        ("SE", "AB", [], "rules.holidays.subdivision: 'AB' is not a subdivision of SE; "
         "use null or one of: SE has none"),
        ("DE", "ZZ", [], "rules.holidays.subdivision: 'ZZ' is not a subdivision of DE; "
         "use null or one of: BB, BE, BW, BY"),
        (None, None, ["2025-13-45"], "rules.holidays.extra_closed_dates[0]: '2025-13-45' is not a date"),
        (None, None, ["2025-01-01", 7], "rules.holidays.extra_closed_dates[1]: 7 is not a date"),
    ],
)
def test_holiday_calendar_rejects_unknown_country_subdivision_or_bad_date(country, subdivision, extra, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        holiday_calendar(country, subdivision, extra, [2025])


# ---------------------------------------------------------------- is_open_at


def test_is_open_at_boundaries_holidays_weekends_and_overrides(hours):
    closed = holiday_calendar("SE", None, [], [2025])  # contains Monday 2025-01-06
    rows = [
        ("Support", "2025-01-13 07:59:59", False),  # Monday, before open
        ("Support", "2025-01-13 08:00:00", True),  # open is inclusive
        ("Support", "2025-01-13 17:59:59", True),
        ("Support", "2025-01-13 18:00:00", False),  # close is exclusive
        ("Support", "2025-01-12 10:00:00", False),  # Sunday closed
        ("Support", "2025-01-06 10:00:00", False),  # Monday but Trettondedag jul
        ("Sales", "2025-01-11 10:00:00", True),  # Saturday override 10-14
        ("Sales", "2025-01-11 14:00:00", False),
        ("Support", "2025-01-11 10:00:00", False),  # Saturday default closed
        ("Sales", None, False),  # NaT
    ]
    queues = pd.Series([q for q, _, _ in rows], index=range(10, 20), dtype="str")
    times = pd.Series(pd.to_datetime([t for _, t, _ in rows]), index=range(10, 20))
    got = is_open_at(queues, times, hours, closed)
    pd.testing.assert_series_equal(got, pd.Series([e for _, _, e in rows], index=range(10, 20), dtype=bool))


def test_is_open_at_matches_a_plain_loop_oracle(hours):
    rng = np.random.default_rng(7)
    n = 3000
    queues = pd.Series(rng.choice(["Sales", "Support", "Other"], n), dtype="str")
    seconds = rng.integers(0, 60 * 86400, n)  # Jan-Feb 2025, covers every weekday
    times = pd.Series(pd.Timestamp("2025-01-01") + pd.to_timedelta(seconds, unit="s"))
    closed = holiday_calendar("SE", None, ["2025-02-14"], [2025])
    closed_days = set(closed["date"].dt.date)

    def oracle(queue: str, t: pd.Timestamp) -> bool:
        window = hours.window(queue, t.weekday())
        minute = t.hour * 60 + t.minute + t.second / 60
        return window is not None and window[0] <= minute < window[1] and t.date() not in closed_days

    expected = [oracle(q, t) for q, t in zip(queues, times)]
    assert is_open_at(queues, times, hours, closed).tolist() == expected


# ---------------------------------------------------------------- interval grid


def grid_day(hours, day: date, minutes: int = 30, tz: str = "Europe/Stockholm", closed=NO_CLOSED, queues=("Support",)):
    return interval_grid(list(queues), day, day, minutes, tz, hours, closed)


def test_interval_grid_normal_day_has_48_half_hours_20_open(hours):
    grid = grid_day(hours, date(2025, 1, 13))  # Monday, CET
    assert list(grid.columns) == ["queue", "date", "interval_start", "interval_start_utc", "is_open"]
    assert grid.dtypes.astype(str).tolist() == ["str", "datetime64[ns]", "datetime64[ns]", "datetime64[ns]", "bool"]
    assert len(grid) == 48
    assert (grid["date"] == ts("2025-01-13")).all()
    # 08:00-18:00 -> 08:00, 08:30, ..., 17:30 = 20 half-hours
    open_starts = grid.loc[grid["is_open"], "interval_start"]
    assert len(open_starts) == 20
    assert open_starts.iloc[0] == ts("2025-01-13 08:00") and open_starts.iloc[-1] == ts("2025-01-13 17:30")
    assert grid["interval_start_utc"].iloc[0] == ts("2025-01-12 23:00")  # 00:00 CET


def test_interval_grid_spring_forward_day_has_46_half_hours(hours):
    grid = grid_day(hours, date(2025, 3, 30))
    assert len(grid) == 46  # 23 hours
    labels = grid["interval_start"].dt.strftime("%H:%M").tolist()
    assert "02:00" not in labels and "02:30" not in labels
    assert labels[3:5] == ["01:30", "03:00"]  # 01:30 CET = 00:30 UTC, next is 01:00 UTC = 03:00 CEST
    assert not grid["is_open"].any()  # Sunday


def test_interval_grid_fall_back_day_has_50_half_hours_with_repeated_labels(hours):
    grid = grid_day(hours, date(2025, 10, 26))
    assert len(grid) == 50  # 25 hours
    twice = grid[grid["interval_start"] == ts("2025-10-26 02:00")]
    # 02:00 CEST = 00:00 UTC, 02:00 CET = 01:00 UTC
    assert twice["interval_start_utc"].tolist() == [ts("2025-10-26 00:00"), ts("2025-10-26 01:00")]


@pytest.mark.parametrize(
    ("start", "end"), [(date(2025, 3, 29), date(2025, 3, 31)), (date(2025, 10, 25), date(2025, 10, 27))]
)
def test_interval_grid_utc_keys_are_unique_and_30_minutes_apart_across_dst(hours, start, end):
    grid = interval_grid(["Support"], start, end, 30, "Europe/Stockholm", hours, NO_CLOSED)
    assert grid["interval_start_utc"].is_unique
    assert (grid["interval_start_utc"].diff().dropna() == pd.Timedelta(minutes=30)).all()
    # local labels are the UTC keys seen in Stockholm
    pd.testing.assert_series_equal(
        to_local(grid["interval_start_utc"], "Europe/Stockholm"), grid["interval_start"], check_names=False
    )
    assert len(grid) == 48 + (46 if start.month == 3 else 50) + 48


def test_interval_grid_15_minutes_has_96_intervals_40_open(hours):
    grid = grid_day(hours, date(2025, 1, 13), minutes=15)
    assert len(grid) == 96
    assert grid["is_open"].sum() == 40  # 10 hours x 4


def test_interval_grid_opens_an_interval_that_overlaps_the_window():
    hours = parse_opening_hours({"default": WEEKDAY_0818 | {"mon": "08:15-17:45"}})
    grid = grid_day(hours, date(2025, 1, 13)).set_index("interval_start")["is_open"]
    assert grid[ts("2025-01-13 08:00")] and grid[ts("2025-01-13 17:30")]
    assert not grid[ts("2025-01-13 07:30")] and not grid[ts("2025-01-13 18:00")]
    assert grid.sum() == 20  # 08:00 .. 17:30


def test_interval_grid_kolkata_60_minutes_starts_on_local_hours():
    hours = parse_opening_hours({"default": WEEKDAY_0818})
    grid = grid_day(hours, date(2025, 1, 13), minutes=60, tz="Asia/Kolkata")
    assert len(grid) == 24
    assert (grid["interval_start"].dt.minute == 0).all()
    # 00:00 IST = previous day 18:30 UTC; 08:00 IST = 02:30 UTC
    assert grid["interval_start_utc"].iloc[0] == ts("2025-01-12 18:30")
    first_open = grid[grid["is_open"]].iloc[0]
    assert first_open["interval_start"] == ts("2025-01-13 08:00")
    assert first_open["interval_start_utc"] == ts("2025-01-13 02:30")
    assert grid["is_open"].sum() == 10


def test_interval_grid_closes_holidays_sorts_and_dedups_queues(hours):
    closed = holiday_calendar(None, None, ["2025-01-13"], [2025])
    grid = interval_grid(
        ["Support", "Sales", "Sales"], date(2025, 1, 11), date(2025, 1, 13), 30, "Europe/Stockholm", hours, closed
    )
    assert grid["queue"].unique().tolist() == ["Sales", "Support"]
    assert len(grid) == 2 * 3 * 48
    assert grid.groupby("queue")["interval_start_utc"].is_monotonic_increasing.all()
    open_per_day = grid.groupby(["queue", "date"])["is_open"].sum()
    # Sat 11th: Sales 10-14 = 8, Support closed; Sun 12th closed; Mon 13th closed by config
    assert open_per_day.tolist() == [8, 0, 0, 0, 0, 0]


def test_interval_grid_with_no_queues_is_empty_and_typed(hours):
    grid = interval_grid([], date(2025, 1, 13), date(2025, 1, 13), 30, "Europe/Stockholm", hours, NO_CLOSED)
    assert grid.empty
    assert grid.dtypes.astype(str).tolist() == ["str", "datetime64[ns]", "datetime64[ns]", "datetime64[ns]", "bool"]


@pytest.mark.parametrize("minutes", [7, 45, 0, 90, True])
def test_interval_grid_rejects_interval_minutes_not_allowed(hours, minutes):
    message = f"rules.interval_minutes: {minutes!r} is not allowed; use one of 5, 10, 15, 20, 30, 60"
    with pytest.raises(ConfigError, match=re.escape(message)):
        grid_day(hours, date(2025, 1, 13), minutes=minutes)


def test_interval_grid_rejects_unknown_timezone(hours):
    with pytest.raises(ConfigError, match=re.escape("timezone: 'Europe/Stockholmm' is not an IANA time zone")):
        grid_day(hours, date(2025, 1, 13), tz="Europe/Stockholmm")


def test_interval_grid_rejects_an_hour_grid_where_clocks_move_half_an_hour(hours):
    # Lord Howe Island goes from +10:30 to +11 on 2025-10-05: a 23.5-hour day
    with pytest.raises(ConfigError, match="rules.interval_minutes: 60 does not divide the length of 2025-10-05"):
        grid_day(hours, date(2025, 10, 5), minutes=60, tz="Australia/Lord_Howe")
    assert len(grid_day(hours, date(2025, 10, 5), minutes=30, tz="Australia/Lord_Howe")) == 47


# ---------------------------------------------------------------- floor to interval


def test_floor_to_interval_works_in_wall_clock():
    got = floor_to_interval(series("2025-01-13 10:44:59", "2025-01-13 10:30:00", "2025-10-26 02:10", None), 30)
    expected = series("2025-01-13 10:30", "2025-01-13 10:30", "2025-10-26 02:00", None).astype("datetime64[ns]")
    pd.testing.assert_series_equal(got, expected)


def test_floor_to_interval_utc_separates_the_two_fall_back_intervals(hours):
    # 00:10 UTC = 02:10 CEST, 01:10 UTC = 02:10 CET: same wall clock, different intervals
    utc = series("2025-10-26 00:10", "2025-10-26 01:10", "2025-10-26 01:59:59")
    local = to_local(utc, "Europe/Stockholm")
    got = floor_to_interval_utc(utc, local, 30, "Europe/Stockholm")
    assert got.tolist() == [ts("2025-10-26 00:00"), ts("2025-10-26 01:00"), ts("2025-10-26 01:30")]
    keys = set(grid_day(hours, date(2025, 10, 26))["interval_start_utc"])
    assert set(got) <= keys


def test_floor_to_interval_utc_follows_local_floor_in_kolkata():
    # 05:15 UTC = 10:45 IST -> 10:00 IST interval = 04:30 UTC (flooring UTC would give 05:00)
    utc = series("2025-01-13 05:15", None)
    got = floor_to_interval_utc(utc, None, 60, "Asia/Kolkata")
    assert got.iloc[0] == ts("2025-01-13 04:30") and pd.isna(got.iloc[1])


def test_floor_to_interval_utc_places_a_gap_local_time_by_utc_and_warns(caplog):
    # a raw 02:30 on 2025-03-30 does not exist; localize made it 01:00 UTC = 03:00 CEST
    local = series("2025-03-30 02:30")
    utc = localize(local, "Europe/Stockholm")
    with caplog.at_level("WARNING", logger="common.calendar"):
        got = floor_to_interval_utc(utc, local, 30, "Europe/Stockholm")
    assert got.tolist() == [ts("2025-03-30 01:00")]
    assert "1 row(s) have a local time that is not their UTC time" in caplog.text


# ---------------------------------------------------------------- localize / to_local


def test_localize_shifts_gap_forward_and_takes_first_occurrence_when_ambiguous():
    local = series("2025-01-13 10:00", "2025-07-01 10:00", "2025-03-30 02:30", "2025-10-26 02:30", None)
    got = localize(local, "Europe/Stockholm")
    # CET -1h; CEST -2h; gap -> 03:00 CEST = 01:00 UTC; ambiguous -> CEST 02:30 = 00:30 UTC
    expected = series("2025-01-13 09:00", "2025-07-01 08:00", "2025-03-30 01:00", "2025-10-26 00:30", None)
    expected = expected.astype("datetime64[ns]")
    pd.testing.assert_series_equal(got, expected)


def test_to_local_reads_naive_as_utc_and_converts_aware():
    naive = to_local(series("2025-10-26 00:30", "2025-10-26 01:30"), "Europe/Stockholm")
    assert naive.tolist() == [ts("2025-10-26 02:30")] * 2  # CEST then CET
    aware = to_local(series("2025-01-13 10:00").dt.tz_localize("Asia/Kolkata"), "Europe/Stockholm")
    assert aware.tolist() == [ts("2025-01-13 05:30")]  # 04:30 UTC = 05:30 CET


@pytest.mark.parametrize("fn", [localize, to_local])
def test_time_zone_helpers_reject_unknown_timezone(fn):
    with pytest.raises(ConfigError, match=re.escape("timezone: 'Mars/Olympus' is not an IANA time zone")):
        fn(series("2025-01-13 10:00"), "Mars/Olympus")
