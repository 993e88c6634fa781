"""The synthetic ACD generator: export contract, realism patterns, CSV and SQLite writers."""

import os
import sqlite3
from datetime import date, timedelta

import pandas as pd
import pytest

from common.demo import (
    DEMO_QUEUES,
    EXPORT_COLUMNS,
    DemoQueue,
    demo_legs,
    demo_opening_hours,
    fill_demo_inbox,
    write_demo_csvs,
    write_demo_inbox,
    write_demo_sqlite_source,
)
from common.errors import ConfigError, DataError

STR_COLUMNS = ["CallID", "ParentCallID", "Queue", "Result", "CustomerID", "CallerNumber", "AgentID", "Channel"]


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    # 2025 at a fifth of the volume: ~230k legs, under a second.
    return demo_legs(date(2025, 1, 1), date(2025, 12, 31), scale=0.2)


@pytest.fixture(scope="module")
def week() -> pd.DataFrame:
    return demo_legs(date(2025, 3, 3), date(2025, 3, 9), scale=0.05)


def daily_counts(legs: pd.DataFrame) -> pd.DataFrame:
    """Legs per queue (columns) per day (index), zero-filled, days as Timestamps."""
    counts = legs.groupby([legs["StartTime"].dt.normalize(), "Queue"]).size().unstack(fill_value=0)
    days = pd.date_range(legs["StartTime"].min().normalize(), legs["StartTime"].max().normalize())
    return counts.reindex(days, fill_value=0)


def normal_weekdays(counts: pd.DataFrame) -> pd.DataFrame:
    """Monday-Friday rows that are not holidays (a holiday total is far below the rest)."""
    weekday = counts[counts.index.day_of_week < 5]
    total = weekday.sum(axis=1)
    return weekday[total > 0.5 * total.median()]


def read_export(path) -> pd.DataFrame:
    """The well-formed rows of one written export file, read back with the frame's dtypes
    (malformed rows are the ones whose CallID has an "-X")."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame[~frame["CallID"].str.contains("-X")].reset_index(drop=True)
    for column in ("StartTime", "AnswerTime", "EndTime"):
        frame[column] = pd.to_datetime(frame[column].replace("", None), format="%Y-%m-%d %H:%M:%S")
    for column in ("WaitTime", "HandleTime"):
        frame[column] = frame[column].astype("int64")
    return frame


# --- contract ---------------------------------------------------------------------------------

def test_same_arguments_give_an_identical_frame_and_another_seed_does_not():
    first = demo_legs(date(2025, 3, 3), date(2025, 3, 4), seed=7, scale=0.05)
    again = demo_legs(date(2025, 3, 3), date(2025, 3, 4), seed=7, scale=0.05)
    other = demo_legs(date(2025, 3, 3), date(2025, 3, 4), seed=8, scale=0.05)
    pd.testing.assert_frame_equal(first, again)
    assert not first["StartTime"].equals(other["StartTime"])


def test_frame_has_the_export_columns_types_and_value_formats(week):
    assert list(week.columns) == list(EXPORT_COLUMNS)
    for column in ("StartTime", "AnswerTime", "EndTime"):
        assert week[column].dtype == "datetime64[us]"
    assert week["WaitTime"].dtype == "int64" and week["HandleTime"].dtype == "int64"
    assert week["CallID"].is_unique
    assert week["StartTime"].is_monotonic_increasing
    assert set(week["Result"]) == {"ANSWERED", "ABANDONED", "FAILED"}
    assert set(week["Channel"]) == {"voice"}
    assert set(week["Queue"]) == {q.name for q in DEMO_QUEUES}
    assert week["CustomerID"].str.fullmatch(r"(C\d{6,})?").all()
    assert week["CallerNumber"].str.fullmatch(r"\+467[02369]\d{7}").all()
    answered = week["Result"] == "ANSWERED"
    assert (week["AgentID"] != "").eq(answered).all()
    assert week["AnswerTime"].notna().eq(answered).all()
    assert (week.loc[~answered, "HandleTime"] == 0).all() and (week.loc[answered, "HandleTime"] > 0).all()
    # End = start + wait + handle, answer = start + wait, for every leg.
    seconds = pd.to_timedelta(week["WaitTime"] + week["HandleTime"], unit="s")
    assert (week["EndTime"] == week["StartTime"] + seconds).all()
    waited = week["StartTime"] + pd.to_timedelta(week["WaitTime"], unit="s")
    assert (week.loc[answered, "AnswerTime"] == waited[answered]).all()


def test_a_range_without_calls_gives_an_empty_frame_with_the_export_columns():
    # A 1-call/day queue at scale 0.01 on a Sunday: trickle mean 0.003 * 0.01 calls.
    legs = demo_legs(date(2025, 3, 2), date(2025, 3, 2), queues=(DemoQueue("Tiny", 1, 300),), scale=0.01)
    assert legs.empty and list(legs.columns) == list(EXPORT_COLUMNS)


def test_bad_arguments_raise_config_errors_naming_the_parameter():
    with pytest.raises(ConfigError, match="end: 2025-03-01 is before start 2025-03-05"):
        demo_legs(date(2025, 3, 5), date(2025, 3, 1))
    with pytest.raises(ConfigError, match="scale == 0"):
        demo_legs(date(2025, 3, 3), date(2025, 3, 3), scale=0)
    with pytest.raises(ConfigError, match=r"queues\[0\].saturday: '14:00-10:00' ends before it starts"):
        demo_legs(date(2025, 3, 3), date(2025, 3, 3), queues=(DemoQueue("A", 10, 300, "14:00-10:00"),))
    with pytest.raises(ConfigError, match=r"queues\[1\].calls_per_day == -5"):
        demo_legs(date(2025, 3, 3), date(2025, 3, 3), queues=(DemoQueue("A", 10, 300), DemoQueue("B", -5, 300)))
    with pytest.raises(ConfigError, match="country: 'XX'"):
        demo_legs(date(2025, 3, 3), date(2025, 3, 3), country="XX")


def test_opening_hours_dict_lists_weekday_default_and_saturday_queues():
    week_days = {day: "08:00-18:00" for day in ("mon", "tue", "wed", "thu", "fri")}
    saturday_queue = week_days | {"sat": "10:00-14:00", "sun": "closed"}
    assert demo_opening_hours() == {
        "default": week_days | {"sat": "closed", "sun": "closed"},
        "queues": {"Support": saturday_queue, "Sales": saturday_queue},
    }


# --- volumes and calendar ---------------------------------------------------------------------

def test_biggest_queue_has_about_thirty_times_the_calls_of_the_smallest(year):
    means = normal_weekdays(daily_counts(year)).mean()
    # Support 3000 vs VIP 100 calls a day -> 30; the same seasonality multiplies both.
    assert 25 < means["Support"] / means["VIP"] < 36
    # Scale 0.2 -> Support ~600 a weekday, times 2025's trend (+4%) and a few % redials/transfers.
    assert 560 < means["Support"] < 720


def test_scale_multiplies_all_volumes():
    small = demo_legs(date(2025, 3, 3), date(2025, 3, 7), scale=0.05)
    double = demo_legs(date(2025, 3, 3), date(2025, 3, 7), scale=0.1)
    ratio = double.groupby("Queue").size() / small.groupby("Queue").size()
    # Expected 2 per queue; VIP has only ~25 calls at scale 0.05, hence the wide band.
    assert ratio["Support"] == pytest.approx(2, rel=0.1)
    assert ratio.between(1.4, 2.8).all()


def test_monday_is_the_busiest_weekday_and_friday_the_quietest(year):
    totals = normal_weekdays(daily_counts(year)).sum(axis=1)
    by_weekday = totals.groupby(totals.index.day_of_week).mean()
    assert by_weekday.idxmax() == 0 and by_weekday.idxmin() == 4
    assert by_weekday[0] > 1.25 * by_weekday[4]  # factors 1.18 vs 0.81 -> 1.46


def test_january_is_busier_than_july(year):
    totals = normal_weekdays(daily_counts(year)).sum(axis=1)
    by_month = totals.groupby(totals.index.month).mean()
    # Yearly shape: 1.10 in mid January, 1 - 0.10 - 0.12 = 0.78 in mid July.
    assert by_month[1] > 1.2 * by_month[7]


def test_volumes_trend_upwards_a_few_percent_a_year():
    def weekday_mean(year_number: int) -> float:
        legs = demo_legs(date(year_number, 1, 1), date(year_number, 12, 31), scale=0.05)
        return normal_weekdays(daily_counts(legs)).sum(axis=1).mean()

    # +4% a year: 2026 over 2024 = 1.04^2 = 1.082; day noise averages out over ~250 weekdays.
    assert 1.04 < weekday_mean(2026) / weekday_mean(2024) < 1.13


def test_same_weekday_counts_vary_more_than_poisson(year):
    support = normal_weekdays(daily_counts(year))["Support"]
    wednesdays = support[support.index.day_of_week == 2]
    # Differences of consecutive Wednesdays cancel the slow seasonality. Poisson alone:
    # var(diff)/2 ~ mean (~600); gamma day noise (CV 13%) adds (0.13 * 600)^2 ~ 6000.
    half_var = wednesdays.diff().dropna().var() / 2
    assert half_var > 3 * wednesdays.mean()


def test_intraday_curve_peaks_at_ten_dips_at_lunch_and_has_a_smaller_afternoon_peak(year):
    weekday = year[year["StartTime"].dt.day_of_week < 5]
    hourly = weekday.groupby(weekday["StartTime"].dt.hour).size().reindex(range(8, 18))
    assert hourly.idxmax() == 10
    assert hourly[12] < hourly[11] and hourly[12] < hourly[13]
    assert hourly[12] < hourly[14] < hourly[10]


def test_about_one_percent_of_weekday_calls_arrive_just_outside_opening_hours(year):
    weekday = year[year["StartTime"].dt.day_of_week < 5]
    clock = weekday["StartTime"] - weekday["StartTime"].dt.normalize()
    outside = (clock < pd.Timedelta(hours=8)) | (clock >= pd.Timedelta(hours=18))
    assert 0.005 < outside.mean() < 0.02
    # Nothing arrives long before opening: the trickle starts 30 minutes early at most.
    assert clock.min() >= pd.Timedelta(hours=7, minutes=30)


def test_sunday_has_only_a_trickle_and_saturday_keeps_its_short_hours(year):
    counts = daily_counts(year)
    weekday_mean = normal_weekdays(counts).mean()
    sundays = counts[counts.index.day_of_week == 6]
    saturdays = counts[counts.index.day_of_week == 5]
    # Sunday closed everywhere: a trickle of 0.3% of a weekday.
    assert (sundays.mean() < 0.01 * weekday_mean).all()
    # Saturday: Support and Sales open 10-14 (4 h at 40% of a weekday hour -> 16%), others closed.
    assert (saturdays[["Support", "Sales"]].median() > 0.1 * weekday_mean[["Support", "Sales"]]).all()
    assert (saturdays[["Billing", "VIP"]].mean() < 0.01 * weekday_mean[["Billing", "VIP"]]).all()
    support = year[(year["StartTime"].dt.day_of_week == 5) & (year["Queue"] == "Support")]
    hour = support["StartTime"].dt.hour
    assert hour.between(10, 13).mean() > 0.97


def test_swedish_public_holiday_has_almost_no_calls(year):
    totals = daily_counts(year).sum(axis=1)
    weekday_mean = normal_weekdays(daily_counts(year)).sum(axis=1).mean()
    for holiday in ("2025-12-25", "2025-06-06", "2025-04-18"):  # Christmas, National Day, Good Friday
        assert totals[pd.Timestamp(holiday)] < 0.01 * weekday_mean


def test_holidays_follow_the_country_argument():
    # 6 June is Sweden's National Day but an ordinary Friday in Great Britain.
    sweden = demo_legs(date(2025, 6, 6), date(2025, 6, 6), scale=0.05)
    britain = demo_legs(date(2025, 6, 6), date(2025, 6, 6), scale=0.05, country="GB")
    assert len(sweden) < 0.02 * len(britain)


# --- customers and outcomes -------------------------------------------------------------------

def test_a_few_customers_call_weekly_while_most_call_rarely(year):
    calls = year[year["CustomerID"] != ""].groupby("CustomerID").size()
    assert calls.median() <= 3
    assert (calls >= 40).sum() > 100  # frequent callers: ~52 calls a year each
    assert (calls >= 40).mean() < 0.05
    assert (year["CustomerID"] == "").mean() == pytest.approx(0.15, abs=0.02)


def test_frequent_callers_have_longer_handle_times(year):
    answered = year[(year["Result"] == "ANSWERED") & (year["CustomerID"] != "")]
    calls = answered.groupby("CustomerID")["CustomerID"].transform("size")
    frequent = answered.loc[calls >= 40, "HandleTime"].mean()
    rare = answered.loc[calls <= 3, "HandleTime"].mean()
    assert frequent > 1.15 * rare  # generated with factor 1.35 (queue mix differs a little)


def test_handle_times_are_skewed_with_each_queue_mean(year):
    answered = year[year["Result"] == "ANSWERED"]
    stats = answered.groupby("Queue")["HandleTime"].agg(["mean", "median"])
    for queue in DEMO_QUEUES:
        assert stats.loc[queue.name, "mean"] == pytest.approx(queue.aht_seconds, rel=0.05)
        # Lognormal, sigma 0.55: mean / median = exp(0.55^2 / 2) = 1.16.
        assert stats.loc[queue.name, "mean"] > 1.08 * stats.loc[queue.name, "median"]


def test_abandon_short_abandon_and_failure_rates(year):
    result = year["Result"]
    assert 0.05 < (result == "ABANDONED").mean() < 0.10
    assert 0.01 < ((result == "ABANDONED") & (year["WaitTime"] < 5)).mean() < 0.03
    assert 0.002 < (result == "FAILED").mean() < 0.01


def test_abandons_are_more_frequent_at_the_morning_peak(year):
    weekday = year[year["StartTime"].dt.day_of_week < 5]
    hour = weekday["StartTime"].dt.hour
    abandoned = weekday["Result"] == "ABANDONED"
    assert abandoned[hour == 10].mean() > 2 * abandoned[hour == 16].mean()


def test_abandoned_callers_redial_within_ten_minutes(year):
    known = year[year["CustomerID"] != ""].sort_values("StartTime")
    abandoned = known[(known["Result"] == "ABANDONED") & (known["ParentCallID"] == "")]
    later = known[["CustomerID", "StartTime", "CallerNumber", "Queue"]].rename(
        columns={"StartTime": "NextStart", "CallerNumber": "NextNumber", "Queue": "NextQueue"})
    # The first later call of the same customer starting 1-10 minutes after the hang-up.
    pairs = pd.merge_asof(
        abandoned.assign(After=abandoned["EndTime"] + pd.Timedelta(minutes=1)).sort_values("After"),
        later, left_on="After", right_on="NextStart", by="CustomerID",
        direction="forward", tolerance=pd.Timedelta(minutes=9))
    redialled = pairs.dropna(subset=["NextStart"])
    assert len(redialled) / len(abandoned) == pytest.approx(0.40, abs=0.06)
    assert (redialled["NextNumber"] == redialled["CallerNumber"]).all()
    assert (redialled["NextQueue"] == redialled["Queue"]).mean() > 0.8
    # Also within 10 minutes of the abandoned attempt's start, whatever the wait (a
    # frequent caller's unrelated call can land in the window by chance, hence not all).
    assert (redialled["NextStart"] - redialled["StartTime"] <= pd.Timedelta(minutes=10)).mean() > 0.99


def test_every_parent_call_id_is_an_earlier_leg_in_another_queue(year):
    by_id = year.set_index("CallID")
    children = year[year["ParentCallID"] != ""]
    parents = by_id.loc[children["ParentCallID"]]
    assert (parents["StartTime"].to_numpy() < children["StartTime"].to_numpy()).all()
    # A transfer starts when the leg it came from ends, answered, in another queue, same caller.
    assert (parents["EndTime"].to_numpy() == children["StartTime"].to_numpy()).all()
    assert (parents["Result"] == "ANSWERED").all()
    assert (parents["Queue"].to_numpy() != children["Queue"].to_numpy()).all()
    assert (parents["CallerNumber"].to_numpy() == children["CallerNumber"].to_numpy()).all()
    answered_first = ((year["Result"] == "ANSWERED") & (year["ParentCallID"] == "")).sum()
    first_transfers = (~children["ParentCallID"].isin(children["CallID"])).sum()
    assert first_transfers / answered_first == pytest.approx(0.05, abs=0.01)
    assert children["ParentCallID"].isin(children["CallID"]).any()  # some calls get a third leg


# --- writers ----------------------------------------------------------------------------------

def test_csv_files_round_trip_one_per_day_plus_malformed_rows(week, tmp_path):
    paths = write_demo_csvs(week, tmp_path)
    # One file per day from the first to the last leg (Sunday 9 March has no call at this scale).
    last = week["StartTime"].max().date()
    assert last >= date(2025, 3, 8)
    days = [date(2025, 3, 3) + timedelta(d) for d in range((last - date(2025, 3, 3)).days + 1)]
    assert [p.name for p in paths] == [f"acd_export_{day}.csv" for day in days]
    assert sorted(tmp_path.iterdir()) == paths  # no temp files left behind
    back = pd.concat([read_export(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(back, week.reset_index(drop=True))
    malformed = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths])
    malformed = malformed[malformed["CallID"].str.contains("-X")]
    assert len(malformed) == 5
    assert malformed["CallID"].str[:8].nunique() > 1  # spread over more than one file
    assert (malformed["StartTime"] == "2025-13-45 25:61:00").sum() == 1
    assert (malformed["Result"] == "XYZ").sum() == 1
    assert (malformed["Queue"] == "").sum() == 1
    assert (malformed["WaitTime"] == "abc").sum() == 1
    assert (malformed["HandleTime"].str.startswith("-")).sum() == 1


def test_csv_text_format_of_a_row(week, tmp_path):
    first = week.iloc[0]
    path = write_demo_csvs(week, tmp_path, malformed_rows=0)[0]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS)
    start = first["StartTime"].strftime("%Y-%m-%d %H:%M:%S")
    answer = "" if pd.isna(first["AnswerTime"]) else first["AnswerTime"].strftime("%Y-%m-%d %H:%M:%S")
    assert lines[1].startswith(f"{first['CallID']},{first['ParentCallID']},{first['Queue']},{start},{answer},")
    assert len(lines) == 1 + (week["StartTime"].dt.date == date(2025, 3, 3)).sum()


def test_a_day_without_calls_inside_the_range_gets_a_header_only_file(week, tmp_path):
    without_wednesday = week[week["StartTime"].dt.date != date(2025, 3, 5)]
    paths = write_demo_csvs(without_wednesday, tmp_path, malformed_rows=0)
    assert paths[2].name == "acd_export_2025-03-05.csv"
    assert paths[2].read_text(encoding="utf-8") == ",".join(EXPORT_COLUMNS) + "\n"


def test_malformed_rows_depend_only_on_the_seed(week, tmp_path):
    one = [p.read_bytes() for p in write_demo_csvs(week, tmp_path / "a", seed=1)]
    same = [p.read_bytes() for p in write_demo_csvs(week, tmp_path / "b", seed=1)]
    other = [p.read_bytes() for p in write_demo_csvs(week, tmp_path / "c", seed=2)]
    assert one == same and one != other


def test_an_existing_identical_file_is_not_rewritten_but_a_changed_one_is(week, tmp_path):
    paths = write_demo_csvs(week, tmp_path)
    old = 1_000_000_000  # 2001: any rewrite would move the mtime to now
    for path in paths:
        os.utime(path, (old, old))
    paths[2].write_text("stale\n", encoding="utf-8")
    os.utime(paths[2], (old, old))
    again = write_demo_csvs(week, tmp_path)
    assert again == paths
    mtimes = [p.stat().st_mtime for p in paths]
    assert mtimes[:2] + mtimes[3:] == [old] * (len(paths) - 1)
    assert mtimes[2] > old and paths[2].read_text(encoding="utf-8").startswith("CallID,")


def test_csv_writer_leaves_the_frame_unchanged_and_checks_columns(week, tmp_path):
    before = week.copy()
    write_demo_csvs(week, tmp_path)
    pd.testing.assert_frame_equal(week, before)
    with pytest.raises(DataError, match=r"missing columns \['Channel'\]"):
        write_demo_csvs(week.drop(columns="Channel"), tmp_path)
    with pytest.raises(ConfigError, match="malformed_rows == -1"):
        write_demo_csvs(week, tmp_path, malformed_rows=-1)


def test_sqlite_source_holds_the_legs_with_iso_text_times_and_replaces_the_table(week, tmp_path):
    path = tmp_path / "source" / "acd.db"
    write_demo_sqlite_source(week.head(10), path)
    write_demo_sqlite_source(week, path)  # replaces, not appends
    with sqlite3.connect(path) as con:
        stored = pd.read_sql_query("SELECT * FROM acd_calls ORDER BY rowid", con)
        types = con.execute("SELECT typeof(StartTime), typeof(WaitTime), typeof(AnswerTime) FROM acd_calls "
                            "WHERE Result = 'ABANDONED' LIMIT 1").fetchone()
    assert types == ("text", "integer", "null")
    assert len(stored) == len(week)
    for column in ("StartTime", "AnswerTime", "EndTime"):
        stored[column] = pd.to_datetime(stored[column], format="%Y-%m-%d %H:%M:%S")
    for column in STR_COLUMNS:
        stored[column] = stored[column].fillna("").astype("str")
    pd.testing.assert_frame_equal(stored, week.reset_index(drop=True))
    with pytest.raises(ConfigError, match="table: 'acd calls'"):
        write_demo_sqlite_source(week, path, table="acd calls")


# --- the living demo: a later night adds its day and rewrites nothing -------------------------

def test_per_day_generators_draw_the_same_volumes_and_day_noise_as_one_generator(year):
    per_day = demo_legs(date(2025, 1, 1), date(2025, 12, 31), scale=0.2, per_day=True)
    one, each = normal_weekdays(daily_counts(year)), normal_weekdays(daily_counts(per_day))
    # Other draws of the same model: the big queues' weekday means within 4% (Support ~670 a day over ~250
    # days, day noise 13%: standard error ~1% per draw, so ~1.2% for the difference; Billing ~1.5%), and the
    # day-to-day noise (consecutive Wednesdays, as above) within a factor 1.6.
    ratio = each.mean() / one.mean()
    assert ratio[["Support", "Billing"]].between(0.96, 1.04).all(), ratio
    noise = [frame[frame.index.day_of_week == 2]["Support"].diff().var() for frame in (one, each)]
    assert 1 / 1.6 < noise[1] / noise[0] < 1.6
    assert not per_day["StartTime"].equals(year["StartTime"])


def test_the_next_night_writes_exactly_one_new_file_and_leaves_the_others_byte_identical(tmp_path):
    inbox = tmp_path / "inbox"
    assert fill_demo_inbox(inbox, date(2025, 3, 10), 40, scale=0.05) == (40, 40)
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    old = 1_000_000_000  # 2001: a rewrite, even of identical bytes, would move the mtime to now
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    assert fill_demo_inbox(inbox, date(2025, 3, 11), 40, scale=0.05) == (40, 1)
    after = {p.name: p.read_bytes() for p in inbox.iterdir()}
    assert set(after) - set(before) == {"acd_export_2025-03-10.csv"}
    assert {name: after[name] for name in before} == before
    assert all(p.stat().st_mtime == old for p in inbox.iterdir() if p.name in before)
    assert fill_demo_inbox(inbox, date(2025, 3, 11), 40, scale=0.05) == (40, 0)  # the same night again: nothing


def test_a_days_file_has_the_same_bytes_whichever_night_generates_it(tmp_path):
    # 2025-02-15 sits inside both windows, first near the end of one, then near the start of the other.
    fill_demo_inbox(tmp_path / "early", date(2025, 2, 20), 30, scale=0.05)
    fill_demo_inbox(tmp_path / "late", date(2025, 3, 15), 30, scale=0.05)
    shared = sorted({p.name for p in (tmp_path / "early").iterdir()} & {p.name for p in (tmp_path / "late").iterdir()})
    assert shared == [f"acd_export_2025-02-{day:02d}.csv" for day in range(13, 20)]
    for name in shared:
        assert (tmp_path / "early" / name).read_bytes() == (tmp_path / "late" / name).read_bytes()


def test_the_living_demo_puts_one_broken_row_on_every_30th_day_of_its_own(tmp_path):
    paths, _ = write_demo_inbox(demo_legs(date(2025, 1, 1), date(2025, 4, 30), scale=0.05), tmp_path,
                                date(2025, 1, 1), date(2025, 4, 30))
    broken = {p.name[11:21]: frame.loc[frame["CallID"].str.contains("-X"), "CallID"].tolist()
              for p in paths for frame in [pd.read_csv(p, dtype=str, keep_default_na=False)]}
    broken = {day: ids for day, ids in broken.items() if ids}
    # date.toordinal() + seed 42 divisible by 30: 2025-01-27 is 739,278 (+ 42 = 24,644 x 30), then every 30 days;
    # the kind (X0000k) is ordinal // 30 % 5: 24,642 % 5 = 2 on 2025-01-27, then 3, 4, 0.
    assert broken == {"2025-01-27": ["20250127-X00002"], "2025-02-26": ["20250226-X00003"],
                      "2025-03-28": ["20250328-X00004"], "2025-04-27": ["20250427-X00000"]}


def test_a_file_already_in_the_inbox_is_never_rewritten_and_a_missing_one_is_written_again(tmp_path):
    fill_demo_inbox(tmp_path, date(2025, 3, 10), 10, scale=0.05)  # 2025-02-28..03-09
    older = tmp_path / "acd_export_2025-03-03.csv"
    older.write_text("written by an older demo\n", encoding="utf-8")  # step 0 loaded it: it must stay
    gone = tmp_path / "acd_export_2025-03-05.csv"
    kept = gone.read_bytes()
    gone.unlink()
    assert fill_demo_inbox(tmp_path, date(2025, 3, 11), 10, scale=0.05) == (10, 2)  # 03-05 again, and 03-10
    assert older.read_text(encoding="utf-8") == "written by an older demo\n"
    assert gone.read_bytes() == kept
