"""Step 1's completeness check on hand-written exports: what is missing, judged per queue on its usual intervals.

Each export is written by `calls_csv`: for each day, how many calls arrive in each half-hour. The config is
the repository's (Stockholm, SE holidays, Mon-Fri 08:00-18:00; Support and Sales also Sat 10:00-14:00).
"""

from __future__ import annotations

import importlib
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from common import db, tables
from common.config import load_config
from tests.conftest import CDR_HEADER, write_config

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

WEEKDAY_SLOTS = [f"{8 + k // 2:02d}:{30 * (k % 2):02d}" for k in range(20)]  # 08:00 .. 17:30


def calls_csv(path: Path, queue: str, days: dict[date, dict[str, int]]) -> None:
    """A CDR export: for each day, `n` answered calls in each half-hour `HH:MM` of its mapping."""
    lines = [CDR_HEADER.strip()]
    for day, slots in days.items():
        for hhmm, n in slots.items():
            start = pd.Timestamp(f"{day} {hhmm}")
            for k in range(n):
                t = start + pd.Timedelta(seconds=60 + k * (1500 // max(n, 1)))
                call = f"{queue[:3]}{day:%m%d}{hhmm.replace(':', '')}{k}"
                lines.append(f"{call},,{queue},{t:%Y-%m-%d %H:%M:%S},,,ANSWERED,10,180,{call},+46{call},,voice")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def weekdays(first: date, last: date) -> list[date]:
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    return [d for d in days if d.weekday() < 5]


def full_day(n: int = 3) -> dict[str, int]:
    return dict.fromkeys(WEEKDAY_SLOTS, n)


def _run(config: Path, as_of: str) -> int:
    args = ["--config", str(config), "--as-of", as_of]
    return load_bronze.main(args) or build_silver.main(args)


def _completeness(config: Path) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        checks = db.read_table(conn, tables.data_quality_checks)
    return checks[checks["check_name"] == "completeness"].reset_index(drop=True)


def test_half_day_holiday_eves_in_a_cdr_export_are_a_warning_not_a_halt(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # Billing, 2025-03-24 .. 2025-04-30: 3 calls every half-hour, except the eves of Good Friday (Thu 04-17,
    # calls until 13:00) and of May Day (Wed 04-30, calls until 12:00). Easter Friday and Monday are closed.
    days = {d: full_day() for d in weekdays(date(2025, 3, 24), date(2025, 4, 30))
            if d not in (date(2025, 4, 18), date(2025, 4, 21))}
    days[date(2025, 4, 17)] = dict.fromkeys(WEEKDAY_SLOTS[:10], 3)
    days[date(2025, 4, 30)] = dict.fromkeys(WEEKDAY_SLOTS[:8], 3)
    calls_csv(tmp_path / "inbox" / "billing.csv", "Billing", days)

    # Today's rule saw 50% and 40% of the open intervals with calls: critical. These are whole mornings.
    assert _run(config, "2025-05-01") == 0
    checks = _completeness(config)
    failed = checks[~checks["passed"]]
    assert failed["severity"].tolist() == ["warning"]  # one warning lists both eves
    detail = failed["detail"].iloc[0]
    assert "calls stopped early on 2 queue-days" in detail
    assert "Billing Thu 2025-04-17 after 13:00 (the day before Långfredagen)" in detail
    assert "Billing Wed 2025-04-30 after 12:00 (the day before Första maj)" in detail


def test_a_24_hour_interval_export_with_zero_rows_at_night_does_not_halt(tmp_path: Path) -> None:
    always = "00:00-24:00"
    config = write_config(
        tmp_path, source__kind="interval",
        source__columns={"queue": "Queue", "interval_start": "IntervalStart", "offered": "Offered"},
        rules__opening_hours={"default": dict.fromkeys(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], always),
                              "queues": {}})
    # Ops, 2025-03-03 .. 2025-03-16, every day: a row for each of the 48 half-hours; 4 calls from 08:00 to
    # 19:30, an explicit 0 at night.
    rows = ["Queue,IntervalStart,Offered"]
    for d in pd.date_range("2025-03-03", "2025-03-16"):
        for k in range(48):
            start = d + pd.Timedelta(minutes=30 * k)
            rows.append(f"Ops,{start:%Y-%m-%d %H:%M},{4 if 16 <= k < 40 else 0}")
    (tmp_path / "inbox" / "ops.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    # Today's rule: 24 of 48 open intervals with calls each day, 50% < 80%: every day critical.
    assert _run(config, "2025-03-17") == 0
    checks = _completeness(config)
    assert checks["passed"].all(), checks["detail"].tolist()
    assert "14 queue-days judged" in checks["detail"].iloc[0]


def test_a_small_queue_with_empty_midday_intervals_on_a_saturday_does_not_halt(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # Support: 3 calls every weekday half-hour; on Saturdays (10:00-14:00) one or two calls a half-hour.
    # The last Saturday, 03-29, had none at 12:00 and 12:30: with 1.5 calls a half-hour on average, two
    # empty half-hours are ordinary chance (about 2 of 8 are expected empty).
    saturday = dict(zip([f"{10 + k // 2:02d}:{30 * (k % 2):02d}" for k in range(8)], [2, 1, 2, 1, 1, 2, 1, 2]))
    days = {d: full_day() for d in weekdays(date(2025, 3, 3), date(2025, 3, 28))}
    for sat in pd.date_range("2025-03-01", "2025-03-22", freq="7D").date:
        days[sat] = saturday
    days[date(2025, 3, 29)] = saturday | {"12:00": 0, "12:30": 0}
    calls_csv(tmp_path / "inbox" / "support.csv", "Support", dict(sorted(days.items())))

    # Today's rule: Support averages >= 2 calls per open interval, so it is judged; 03-29 has 6 of 8 = 75%.
    assert _run(config, "2025-03-31") == 0
    checks = _completeness(config)
    assert checks["passed"].all(), checks["detail"].tolist()


def test_one_busy_queue_missing_an_open_day_is_critical_and_named(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    # Billing and Claims: 3 calls every half-hour, 03-03 .. 03-21; Claims' export of Thu 03-20 never came.
    all_days = weekdays(date(2025, 3, 3), date(2025, 3, 21))
    calls_csv(tmp_path / "inbox" / "billing.csv", "Billing", {d: full_day() for d in all_days})
    calls_csv(tmp_path / "inbox" / "claims.csv", "Claims", {d: full_day() for d in all_days if d != date(2025, 3, 20)})

    # Today's rule judged time across queues: Billing's calls covered every interval, so it passed.
    assert _run(config, "2025-03-22") == 2
    err = capsys.readouterr().err
    assert "queue Claims: Thu 2025-03-20 no calls (usually about 60)" in err
    assert "Load the export for queue Claims on 2025-03-20, or list the date in validation.ignore_dates" in err
    failed = _completeness(config).query("not passed")
    assert failed[["severity", "queue"]].values.tolist() == [["critical", "Claims"]]
    with db.make_engine(load_config(config).database_url).connect() as conn:
        assert db.read_table(conn, tables.silver_daily).empty  # nothing written


def test_a_first_load_lists_past_partial_days_once_and_a_new_partial_day_halts(tmp_path: Path, capsys,
                                                                               database_url: str) -> None:
    # On every backend: the second night reads the comparable days and the last built day from silver.
    config = write_config(tmp_path, database__url=database_url)
    # Billing, 3 calls every half-hour, 02-24 .. 04-04; two old days are partial: Tue 03-11 has no
    # morning (nothing before 12:00), Wed 03-19's export never came.
    days = {d: full_day() for d in weekdays(date(2025, 2, 24), date(2025, 4, 4)) if d != date(2025, 3, 19)}
    days[date(2025, 3, 11)] = dict.fromkeys(WEEKDAY_SLOTS[8:], 3)
    calls_csv(tmp_path / "inbox" / "history.csv", "Billing", days)

    # A first load: days before the last week (03-29 on) are history; their gaps are one warning.
    assert _run(config, "2025-04-05") == 0
    failed = _completeness(config).query("not passed")
    assert failed["severity"].tolist() == ["warning"]
    detail = failed["detail"].iloc[0]
    assert detail.startswith("2 earlier queue-days look incomplete")
    assert ("Billing Tue 2025-03-11 data in 12 of the 20 intervals that normally carry calls "
            "(none 08:00-12:00)") in detail
    assert "Billing Wed 2025-03-19 no calls" in detail

    # The next night brings Monday 04-07 with a hole from 09:00 to 13:00: new since the last build, it halts.
    calls_csv(tmp_path / "inbox" / "monday.csv", "Billing",
              {date(2025, 4, 7): {s: n for s, n in full_day().items() if not "09:00" <= s < "13:00"}})
    assert _run(config, "2025-04-08") == 2
    err = capsys.readouterr().err
    assert ("queue Billing: Mon 2025-04-07 data in 12 of the 20 intervals that normally carry calls "
            "(none 09:00-13:00)") in err
    with db.make_engine(load_config(config).database_url).connect() as conn:
        daily = db.read_table(conn, tables.silver_daily)
    assert daily["date"].max() == pd.Timestamp("2025-04-04")  # the failed night wrote nothing
