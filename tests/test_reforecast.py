"""The intraday reforecast: hand-computed days (common/reforecast.py) and the step end to end on a short demo."""

from __future__ import annotations

import importlib
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from common import db, reforecast, reforecast_step, tables
from common.accuracy_store import replace_night
from common.calendar import interval_grid
from common.config import load_config
from common.demo import fill_demo_inbox
from common.opening_hours import parse_opening_hours
from tests.conftest import REPO, write_config

DAY = pd.Timestamp("2025-03-10")  # a Monday; the test plans are in UTC, so local = UTC
AS_OF = DAY.date()


def plan(open_from: str = "08:00", intervals: int = 8, p50: float = 100.0) -> pd.DataFrame:
    """A queue open `intervals` half-hours from `open_from`, nightly p50 per interval, band +-20%."""
    starts = pd.date_range(DAY + pd.Timedelta(open_from + ":00"), periods=intervals, freq="30min")
    return pd.DataFrame({"queue": "Support", "date": DAY, "interval_start": starts, "interval_start_utc": starts,
                         "is_open": True, "p10": 0.8 * p50, "p50": p50, "p90": 1.2 * p50, "aht_seconds": 300.0})


def observed(values: list[float], open_from: str = "08:00") -> pd.DataFrame:
    starts = pd.date_range(DAY + pd.Timedelta(open_from + ":00"), periods=len(values), freq="30min")
    return pd.DataFrame({"queue": "Support", "interval_start_utc": starts, "offered": values})


PLAIN = reforecast.calibrate(pd.DataFrame(), default_k=0.15)  # no history: the plain projection, k = 0.15


def test_a_day_running_10_percent_high_from_0800_gets_the_hand_computed_rest_of_day() -> None:
    # 08:00-12:00, 100 calls per half-hour forecast (day 800); 110 per half-hour came in 08:00-10:00.
    # At 10:00: S = 4/8 = 0.5, A = 440, w = 0.5 / (0.5 + 0.15) = 10/13,
    # rest = 0.5 x (10/13 x 440/0.5 + 3/13 x 800) = 400 x (1 + 10/13 x 0.1) = 430.769...
    rest, summary = reforecast.reforecast_day(plan(), observed([110] * 4), pd.Timestamp("2025-03-10 10:00"), 30,
                                              PLAIN)
    expected = 400 * (1 + 10 / 13 * 0.1)
    assert len(rest) == 4 and rest["interval_start"].min() == pd.Timestamp("2025-03-10 10:00")
    assert rest["p50"].to_numpy() == pytest.approx([expected / 4] * 4)
    s = summary.iloc[0]
    assert (s.share_so_far, s.observed_so_far, s.nightly_day_p50) == (0.5, 440.0, 800.0)
    assert s.projected_day_p50 == pytest.approx(440 + expected)
    # the band narrows with the day seen: nightly +-20% x sqrt(1 - w) = +-20% x sqrt(3/13) without replayed days
    assert rest["p90"].sum() / rest["p50"].sum() == pytest.approx(1 + 0.2 * np.sqrt(3 / 13))
    assert rest["p10"].sum() / rest["p50"].sum() == pytest.approx(1 - 0.2 * np.sqrt(3 / 13))


def test_the_interval_in_progress_is_not_observed_and_gets_its_calls_so_far_plus_the_rest_of_its_forecast() -> None:
    # At 10:10 the 10:00 interval has 40 calls in 10 of its 30 minutes: it is not part of A (still 440 against S 0.5);
    # its value is 40 + 2/3 of its reforecast 107.69 = 111.79; the others keep 107.69.
    seen = observed([110, 110, 110, 110, 40])
    rest, summary = reforecast.reforecast_day(plan(), seen, pd.Timestamp("2025-03-10 10:10"), 30, PLAIN)
    per = 400 * (1 + 10 / 13 * 0.1) / 4
    assert rest["p50"].to_numpy() == pytest.approx([40 + per * 2 / 3, per, per, per])
    assert summary.iloc[0].observed_so_far == 440.0
    assert summary.iloc[0].projected_day_p50 == pytest.approx(440 + 40 + per * (2 / 3 + 3))


def test_a_late_export_is_seen_up_to_its_last_call_not_read_as_a_dead_day() -> None:
    start, at = pd.Timestamp("2025-03-10 07:00"), pd.Timestamp("2025-03-10 11:00")  # UTC; the day opens at 07:00
    morning = pd.DataFrame({"queue": ["A", "A", "B"], "offered": [5.0, 0.0, 3.0],
                            "interval_start_utc": pd.to_datetime(["2025-03-10 08:00", "2025-03-10 09:30",
                                                                  "2025-03-10 08:30"])})
    # the last call is in A's 08:00 interval and B's 08:30 one: the export reaches 09:00, not 11:00
    assert reforecast.data_reaches(morning, start, at, 30) == pd.Timestamp("2025-03-10 09:00")
    assert reforecast.data_reaches(morning.iloc[:0], start, at, 30) == start  # no file yet: nothing seen
    busy = morning.assign(interval_start_utc=pd.to_datetime(["2025-03-10 10:30"] * 3), offered=1.0)
    assert reforecast.data_reaches(busy, start, at, 30) == at  # the interval in progress: up to now
    # seen up to the day's start, nothing is observed: the rest of the day is the nightly forecast
    _, summary = reforecast.reforecast_day(plan(), observed([]), pd.Timestamp("2025-03-10 08:00"), 30, PLAIN)
    assert summary["projected_day_p50"].iloc[0] == pytest.approx(summary["nightly_day_p50"].iloc[0])


def test_recent_intervals_weigh_more_with_a_half_life() -> None:
    # Half-life 1 h at 10:00: the intervals ending 08:30, 09:00, 09:30, 10:00 weigh 0.5**1.5, 0.5, 0.5**0.5, 1.
    # Only the last ran high (140): run rate = (100 (0.5**1.5 + 0.5 + 0.5**0.5) + 140) / (sum of weights x 1/8).
    cal = reforecast.Calibration({"Support": (1.0, 0.15)}, pd.DataFrame(columns=["queue", "share", "ratio"]),
                                 (float("inf"), 0.15))
    rest, _ = reforecast.reforecast_day(plan(), observed([100, 100, 100, 140]), pd.Timestamp("2025-03-10 10:00"), 30,
                                        cal)
    v = np.array([0.5 ** 1.5, 0.5, 0.5 ** 0.5, 1.0])
    rate = (100 * v[:3].sum() + 140) / (v.sum() / 8)
    w = 10 / 13
    assert rest["p50"].sum() == pytest.approx(0.5 * (w * rate + (1 - w) * 800))
    plain, _ = reforecast.reforecast_day(plan(), observed([100, 100, 100, 140]), pd.Timestamp("2025-03-10 10:00"),
                                         30, PLAIN)
    assert rest["p50"].sum() > plain["p50"].sum()  # the late surge counts more than in the plain ratio


def test_a_queue_with_no_calls_yet_early_in_the_day_keeps_the_nightly_forecast() -> None:
    # 24 half-hours of 2 calls expected: at 08:30 one has ended with 0 calls (2 expected: says nothing)
    rest, summary = reforecast.reforecast_day(plan(intervals=24, p50=2.0), observed([0]),
                                              pd.Timestamp("2025-03-10 08:30"), 30, PLAIN)
    assert rest["p50"].sum() == pytest.approx(46.0)
    assert summary.iloc[0].projected_day_p50 == pytest.approx(46.0)


def test_a_fall_back_day_counts_its_repeated_hour_twice_by_utc() -> None:
    # Stockholm 2025-10-26 has 50 half-hours; at 03:00 local (02:00 UTC) 8 have ended: 00:00-02:00 CEST (6 incl. the
    # first 02:00 and 02:30) and 02:00, 02:30 CET again. 100 forecast and 100 seen in each: S = 8/50, A = 800.
    hours = parse_opening_hours({"default": {d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                                          "sun")}})
    grid = interval_grid(["Support"], date(2025, 10, 26), date(2025, 10, 26), 30, "Europe/Stockholm", hours,
                         pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")}))
    assert len(grid) == 50
    day = grid.assign(p10=80.0, p50=100.0, p90=120.0)
    seen = grid.loc[:, ["queue", "interval_start_utc"]].assign(offered=100.0)
    at_utc = pd.Timestamp("2025-10-26 02:00")
    rest, summary = reforecast.reforecast_day(day, seen.loc[seen["interval_start_utc"] < at_utc], at_utc, 30, PLAIN)
    assert (summary.iloc[0].share_so_far, summary.iloc[0].observed_so_far) == (pytest.approx(8 / 50), 800.0)
    assert len(rest) == 42 and rest["p50"].to_numpy() == pytest.approx([100.0] * 42)  # on track: unchanged
    assert (rest["interval_start"].dt.strftime("%H:%M") == "03:00").sum() == 1


def test_tomorrow_carries_the_shrunk_part_of_todays_surprise() -> None:
    tomorrow = plan().assign(date=DAY + pd.Timedelta(days=1))
    summary = pd.DataFrame({"queue": ["Support"], "rest_factor": [1.10]})
    out = reforecast.adjust_tomorrow(tomorrow, summary, 0.5)
    assert out["p50"].to_numpy() == pytest.approx([105.0] * 8)
    assert out["p90"].to_numpy() == pytest.approx([126.0] * 8)


def test_calibration_learns_a_small_k_when_mornings_predict_afternoons() -> None:
    # 30 replayed days, each running at its own level all day: the best k is the smallest (trust the morning)
    rng = np.random.default_rng(0)
    rows = []
    for d in range(30):
        level = rng.uniform(0.8, 1.2)
        for minute in range(480, 720, 30):
            rows.append(("Support", DAY - pd.Timedelta(days=7 * (d + 1)), minute, 100 * level))
    actual = pd.DataFrame(rows, columns=["queue", "date", "minute", "offered"])
    shares = pd.DataFrame({"queue": "Support", "weekday": 0, "minute": range(480, 720, 30), "share": 1 / 8})
    nightly = actual.groupby(["queue", "date"], as_index=False).size().assign(p50=800.0)
    points = reforecast.replay_points(actual, shares, nightly, [540, 600, 660], 30)
    assert len(points) == 90 and points["share"].tolist()[:1] == [0.25]
    cal = reforecast.calibrate(points, 0.15)
    assert cal.k_for("Support") == min(reforecast.K_GRID)
    assert cal.points["ratio"].to_numpy() == pytest.approx(np.ones(90), rel=0.05)



def test_the_band_takes_its_ratios_out_of_sample_so_a_pair_fitted_to_the_replay_does_not_narrow_it() -> None:
    # 28 replayed days (4 weeks), all at S = 0.5 with A = 60 against N = 100 (run rate 120). Weeks 1-2 (the oldest)
    # persist (rest 60), weeks 3-4 revert (rest 50): rest projected = 50 + 10 w, so the error is flat in w over all 4
    # weeks and the plain k 0.15 stays (w = 10/13, rest 750/13: ratios 60 x 13/750 = 1.04 and 50 x 13/750 = 13/15).
    # Out of sample, a persisting week is projected with the pair the other weeks choose (1 persisting against 2
    # reverting: error 70 + 70 w, so k = 5, w = 1/11, rest 560/11, ratio 33/28) and a reverting week with k = 0.02
    # (w = 25/26, rest 1550/26, ratio 26/31). Conformal band of n = 28: the floor(29 x 0.1) = 2nd and the
    # ceil(29 x 0.9) = 27th of the sorted ratios.
    h = [c for i in range(len(reforecast.HALF_LIVES)) for c in (f"observed_h{i}", f"share_h{i}")]
    dates = pd.date_range(DAY - pd.Timedelta(days=28), periods=28, freq="D")
    rest = np.where(np.arange(28) < 14, 60.0, 50.0)
    points = pd.DataFrame({"queue": "Support", "date": dates, "checkpoint": 720, "share": 0.5, "observed": 60.0,
                           "nightly": 100.0, "rest_actual": rest,
                           **{c: (60.0 if c.startswith("observed") else 0.5) for c in h}})
    cal = reforecast.calibrate(points, 0.15)
    assert cal.for_queue("Support") == (float("inf"), 0.15)
    assert cal.in_sample["ratio"].to_numpy() == pytest.approx(np.where(rest == 60, 1.04, 13 / 15))
    assert cal.points["ratio"].to_numpy() == pytest.approx(np.where(rest == 60, 33 / 28, 26 / 31))
    before = reforecast.band_ratios(cal, "Support", 0.5, 0.8, 1.2, 0.15, in_sample=True)
    after = reforecast.band_ratios(cal, "Support", 0.5, 0.8, 1.2, 0.15)
    assert before == pytest.approx((13 / 15, 1.04)) and after == pytest.approx((26 / 31, 33 / 28))
    # the next day persisting (rest 64 on 750/13 projected: ratio 1.109) is above the in-sample p90, inside the new one
    assert before[1] * 750 / 13 < 64 <= after[1] * 750 / 13


def test_the_conformal_band_takes_the_order_statistics_of_n_plus_one() -> None:
    values = np.arange(1.0, 21.0)  # 1 .. 20: the 2nd (floor(21 x 0.1)) and the 19th (ceil(21 x 0.9)) values
    assert reforecast.conformal_quantiles(values) == (2.0, 19.0)
    # np.quantile interpolates inside them (2.9, 18.1): the 1 in 11 chance of a new value beyond is ignored
    assert (np.quantile(values, 0.1), np.quantile(values, 0.9)) == pytest.approx((2.9, 18.1))
    assert reforecast.conformal_quantiles(np.arange(1.0, 9.0)) is None  # 8 values: no 10% order statistic

def test_the_band_replays_each_day_against_its_own_weeks_profile() -> None:
    # Two replayed Mondays, 25 calls per half-hour 08:00-10:00. The week of 3 March split by 0.4/0.2/0.2/0.2, the week
    # of 10 March by 0.25 each: at 09:00 the first has seen S = 0.6, the second S = 0.5, each of its own profile.
    asked = []

    def profile_of(monday):
        asked.append(monday)
        first = [0.4, 0.2, 0.2, 0.2] if monday == date(2025, 3, 3) else [0.25] * 4
        return pd.DataFrame({"queue": "Support", "weekday": 0, "minute": range(480, 600, 30), "share": first})

    days = [DAY - pd.Timedelta(days=7), DAY]
    actual = pd.DataFrame([("Support", d, m, 25.0) for d in days for m in range(480, 600, 30)],
                          columns=["queue", "date", "minute", "offered"])
    nightly = pd.DataFrame({"queue": "Support", "date": days, "p50": 100.0})
    points = reforecast_step.replay_by_week(actual, profile_of, nightly, 30)
    at_nine = points.loc[points["checkpoint"] == 540].sort_values("date")
    assert asked == [date(2025, 3, 3), date(2025, 3, 10)]
    assert at_nine["share"].tolist() == pytest.approx([0.6, 0.5]) and at_nine["observed"].tolist() == [50.0, 50.0]


def test_a_deviation_alert_says_how_far_off_and_how_many_more_agents_when() -> None:
    summary = pd.DataFrame({"queue": ["Support", "Sales"], "share_so_far": [0.5, 0.5], "observed_so_far": [570, 500],
                            "nightly_day_p50": [1000.0, 1000.0], "projected_day_p50": [1140.0, 1050.0]})
    starts = pd.date_range("2025-03-10 13:00", periods=4, freq="30min")
    old = pd.DataFrame({"queue": "Support", "interval_start": starts, "interval_start_utc": starts,
                        "staff_p50": [10, 10, 10, 10]})
    new = old.assign(staff_p50=[12, 16, 16, 11])
    alerts = reforecast_step.deviation_alerts(summary, new, old, 0.10, 30)
    assert len(alerts) == 1  # Sales is +5%: within intraday.alert_deviation
    a = alerts[0]
    assert (a.severity, a.rule, a.queue, a.value, a.threshold) == ("warning", "intraday_deviation", "Support",
                                                                   pytest.approx(0.14), 0.10)
    assert a.message.startswith("Support: +14% on the nightly forecast; 6 more agents needed 13:30-14:30")


def test_a_day_no_night_forecast_is_reforecast_from_the_same_weekday_mean_of_four_weeks() -> None:
    # Billing is open Mon-Fri 08:00-18:00 (20 half-hours). 5 weeks of 10 calls per half-hour: the Monday mean is 200
    # (flat profile). Today 12 per half-hour 08:00-12:00: S = 0.4, A = 96, w = 0.4 / 0.55; the rest is
    # 0.6 x (w x 240 + (1 - w) x 200) = 137.45 over 12 half-hours; the day +16.7% on 200: an alert.
    cfg = load_config(REPO / "config.yaml", ["timezone=UTC", "rules.holidays.country=null",
                                             "intraday.calibration_weeks=0", "intraday.tomorrow_after=null"])
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    none = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")})
    past = interval_grid(["Billing"], date(2025, 2, 3), date(2025, 3, 9), 30, "UTC", hours, none)
    history = past.assign(offered=np.where(past["is_open"], 10.0, 0.0), handled=np.where(past["is_open"], 10.0, 0.0),
                          aht_seconds=np.where(past["is_open"], 240.0, np.nan))
    grid = reforecast_step.today_grid(cfg, date(2025, 3, 10), ["Billing"])
    seen = grid.loc[grid["is_open"] & (grid["interval_start"] < DAY + pd.Timedelta(hours=12))].assign(offered=12.0)
    nightly = pd.DataFrame(columns=["queue", "interval_start", "interval_start_utc", "p10", "p50", "p90",
                                    "aht_seconds"])
    rows, summary, alerts = reforecast_step.build(cfg, DAY + pd.Timedelta(hours=12), nightly, history, seen, grid)
    w = 0.4 / 0.55
    rest = 0.6 * (w * 240 + (1 - w) * 200)
    assert set(rows["method"]) == {"reforecast_no_nightly"} and set(rows["forecast_date"]) == {DAY}
    assert rows.loc[rows["p50"] > 0, "p50"].to_numpy() == pytest.approx([rest / 12] * 12)
    assert rows["nightly_day_p50"].iloc[0] == pytest.approx(200.0)
    assert rows["projected_day_p50"].iloc[0] == pytest.approx(96 + rest)
    assert (rows.loc[rows["p50"] > 0, "staff_p50"] >= 1).all() and rows["aht_seconds"].max() == 240.0
    assert [a.queue for a in alerts] == ["Billing"] and alerts[0].message.startswith("Billing: +17% on the nightly")


def test_the_night_leaves_the_days_intraday_alerts_alone() -> None:
    engine = db.make_engine("sqlite://")
    db.ensure_schema(engine)
    alert = reforecast_step.Alert(severity="warning", rule="intraday_deviation", metric="projected_day_vs_nightly",
                                  message="Support: +14% on the nightly forecast", queue="Support", value=0.14,
                                  threshold=0.1)
    with engine.begin() as conn:
        reforecast_step.save(conn, pd.DataFrame(columns=[c.name for c in tables.gold_forecast_intraday.columns]),
                             [alert], pd.Timestamp("2025-03-10 11:00"), AS_OF, "intraday")
        replace_night(conn, AS_OF, [], pd.DataFrame(), pd.DataFrame(), pd.DataFrame(
            {"severity": ["warning"], "alert_rule": ["daily_mape"], "queue": ["Sales"], "metric": ["mape"],
             "value": [0.2], "threshold": [0.1], "message": ["Sales: 20% off"]}), "night")
        rules = sorted(pd.read_sql("select alert_rule from gold_alerts", conn)["alert_rule"])
    assert rules == ["daily_mape", "intraday_deviation"]


# --- the step end to end --------------------------------------------------------------------------------------

STEPS = ("0_load_bronze", "1_build_silver", "3_forecast")


def _run(module: str, config: Path, *args: str) -> None:
    assert importlib.import_module(module).main(["--config", str(config), "--log-level", "WARNING", *args]) == 0


def _night(config: Path, as_of: date) -> None:
    for step in STEPS:
        _run(step, config, "--as-of", str(as_of))


def _read(config: Path, table: str) -> pd.DataFrame:
    engine = sa.create_engine(f"sqlite:///{config.parent / 'data' / 'wfm.db'}")
    with engine.connect() as conn:
        frame = pd.read_sql(f"select * from {table}", conn)
    engine.dispose()
    return frame


def _partial(full: Path, target: Path, before: str) -> None:
    """The rows of `full` that started before `before` (the same lines: step 0 finds them already loaded later)."""
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text(lines[0] + "".join(line for line in lines[1:]
                                                  if len(line.split(",")) > 3 and line.split(",")[3] < before),
                      encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """Two folders with the same 21-day demo (30% of its calls) and night AS_OF run; AS_OF's full export aside."""
    root = tmp_path_factory.mktemp("reforecast")
    (root / "a").mkdir()
    a = write_config(root / "a")
    fill_demo_inbox(a.parent / "inbox", AS_OF, 21, scale=0.3)
    _night(a, AS_OF)
    fill_demo_inbox(a.parent / "inbox", AS_OF + timedelta(days=1), 22, scale=0.3)  # writes AS_OF's file
    day_file = next((a.parent / "inbox").glob(f"*{AS_OF}*.csv"))
    aside = root / day_file.name
    shutil.move(day_file, aside)
    b = root / "b"
    shutil.copytree(a.parent, b)
    return {"a": a, "b": b / "config.yaml", "day_file": aside}


def test_reforecast_then_night_leaves_the_nightly_tables_as_a_night_alone_and_a_late_file_adds_rows(demo) -> None:
    a, b, day_file = demo["a"], demo["b"], demo["day_file"]
    inbox = a.parent / "inbox"
    # before the day opens nothing is seen: the reforecast is the night's, staffed exactly as step 3 staffed it
    # (the same model, targets and queue patience), so the agents differ from the night's only by the volume
    _run("3_5_reforecast_intraday", a, "--at", f"{AS_OF} 07:30", "--no-load")
    early = _read(a, "gold_forecast_intraday")
    night = _read(a, "gold_staffing_interval")
    night = night.loc[night["forecast_origin"] == str(AS_OF)]
    both = early.merge(night, on=["queue", "interval_start_utc"], suffixes=("", "_night"))
    assert len(both) == len(early) > 0
    assert (both["staff_p50"] == both["staff_p50_night"]).all() and (both["p50"] - both["volume_p50"]).abs().max() < 1e-9
    # a: the morning's drop, a reforecast at 12:00; then a late file with more of the morning, the same --at again
    _partial(day_file, inbox / "drop_1.csv", f"{AS_OF} 10:00")
    _run("3_5_reforecast_intraday", a, "--at", f"{AS_OF} 12:00")
    noon = f"{AS_OF} 12:00"
    first = _read(a, "gold_forecast_intraday").loc[lambda f: f["issued_at"].str.startswith(noon)]
    assert pd.Timestamp(AS_OF) > pd.to_datetime(_read(a, "silver_daily")["date"]).max()  # no partial day in silver
    _partial(day_file, inbox / "drop_2.csv", f"{AS_OF} 12:00")
    _run("3_5_reforecast_intraday", a, "--at", f"{AS_OF} 12:00")
    issues = _read(a, "gold_forecast_intraday")
    assert issues["issued_at"].nunique() == 2  # 12:00 replaced, 07:30 kept
    again = issues.loc[issues["issued_at"].str.startswith(noon)]
    assert len(again) == len(first) > 0
    seen_first = first.groupby("queue")["observed_so_far"].first()
    seen_again = again.groupby("queue")["observed_so_far"].first()
    assert (seen_again > seen_first).all()  # the late rows were seen
    assert set(again["method"]) == {"reforecast"} and (again["p90"] >= again["p10"]).all()
    assert again["interval_start"].min() == f"{AS_OF} 12:00:00.000000"
    assert (again.loc[again["p50"] > 0, "staff_p50"] > 0).all()
    # the night after, in both folders (b never had a reforecast), then a reforecast after the night in a
    shutil.copy(day_file, inbox / day_file.name)
    shutil.copy(day_file, b.parent / "inbox" / day_file.name)
    _night(a, AS_OF + timedelta(days=1))
    _night(b, AS_OF + timedelta(days=1))
    _run("3_5_reforecast_intraday", a, "--at", f"{AS_OF} 15:00", "--no-load")
    assert _read(a, "gold_forecast_intraday")["issued_at"].nunique() == 3  # every issue is kept
    for table in ("silver_interval", "silver_daily", "gold_forecast_daily", "gold_forecast_interval",
                  "gold_staffing_interval", "gold_staffing_daily"):
        left, right = (_read(c, table).drop(columns=["run_id", "built_at"], errors="ignore") for c in (a, b))
        pd.testing.assert_frame_equal(left, right, obj=table)


def test_run_intraday_refuses_a_second_reforecast_while_one_holds_its_lock(tmp_path: Path) -> None:
    import fcntl
    import subprocess

    shutil.copy(REPO / "run_intraday.sh", tmp_path / "run_intraday.sh")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "data").mkdir()
    with open(tmp_path / "data" / ".run_intraday.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = subprocess.run(["bash", str(tmp_path / "run_intraday.sh")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "still running" in done.stderr
    assert not (tmp_path / "data" / ".run_daily.lock").exists()  # the nightly lock is never taken
