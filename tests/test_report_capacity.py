"""The capacity plan in step 5's report: the fan chart, the weekly email section, a scenario compared with the plan."""

from __future__ import annotations

import email
import importlib
import logging
from datetime import date, timedelta
from email import policy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import db, report_capacity, report_queues, tables
from common.config import load_config
from common.report_capacity import compare_plans, fold_plan
from tests.conftest import write_config
from tests.test_capacity import AS_OF, read, run, setup_db
from tests.test_plots import png_size

report = importlib.import_module("5_report")

WEEKS = pd.date_range("2025-03-31", periods=4, freq="7D")  # weeks_ahead 4-7 of a plan made on Monday 10 March


def _engine(config: Path):
    return db.make_engine(load_config(config).database_url)


def _forecast(config: Path, *origins: date) -> None:
    """The few gold_forecast_daily rows the report needs to run at all (a 14-day forecast per origin)."""
    rows = [{"run_id": "r3", "forecast_origin": pd.Timestamp(o), "queue": q, "date": d, "horizon_day": h + 1,
             "p10": 80.0, "p50": 100.0, "p90": 120.0, "method": "lightgbm"}
            for o in origins for q in ("Billing", "Support")
            for h, d in enumerate(pd.date_range(o, periods=14))]
    with _engine(config).begin() as conn:
        db.insert_frame(conn, tables.gold_forecast_daily, pd.DataFrame(rows))


def _report(config: Path, as_of: date, *extra: str) -> int:
    return report.main(["--config", str(config), "--as-of", as_of.isoformat(), "--no-email", "--log-level", "WARNING",
                        *extra])


def _email(tmp_path: Path, as_of: date) -> tuple[str, str, list[str]]:
    """(html, text, inline image file names) of the as-of's report.eml."""
    msg = email.message_from_bytes((tmp_path / "output" / as_of.isoformat() / "report.eml").read_bytes(),
                                   policy=policy.default)
    images = [p.get_filename() for p in msg.walk() if p.get_content_type() == "image/png"]
    return (msg.get_body(preferencelist=("html",)).get_content(),
            msg.get_body(preferencelist=("plain",)).get_content(), images)


def test_the_plan_step_6_made_tonight_is_in_the_email_with_its_chart_and_not_the_next_night(tmp_path):
    tuesday = AS_OF + timedelta(days=1)
    path = setup_db(tmp_path, capacity__queues={"Support": {"headcount": 60}})
    _forecast(path, AS_OF, tuesday)
    assert run(path) == 0                                    # step 6 plans on Monday
    assert _report(path, AS_OF) == 0
    chart = tmp_path / "output" / AS_OF.isoformat() / "capacity.png"
    width, height = png_size(chart)
    assert width > 900 and height > 300 and chart.stat().st_size > 10_000
    drivers = read(path, tables.gold_capacity_drivers)
    first = drivers.loc[drivers["first_week"] == drivers["first_week"].min()].set_index("queue")["sentence"]
    html, text, images = _email(tmp_path, AS_OF)
    assert "capacity.png" in images and len(images) == 6
    for sentence in first:       # the first block's sentences, the centre first
        assert sentence in text and sentence.replace("'", "&#39;") in html
    assert text.index(first["(centre)"]) < text.index(first["Billing"]) < text.index(first["Support"])
    assert "FTE on hand" in first["Support"] and "FTE on hand" not in first["Billing"]   # headcount: Support only
    later = drivers.loc[drivers["first_week"] > drivers["first_week"].min(), "sentence"]
    assert not any(s in text for s in later)
    assert "Capacity plan, weeks 2025-W14 to 2025-W36" in html

    assert run(path, as_of=tuesday) == 0                     # Tuesday: step 6 skips, the plan is Monday's
    assert _report(path, tuesday) == 0
    html, text, images = _email(tmp_path, tuesday)
    assert "capacity.png" not in images and "Capacity plan" not in html and "CAPACITY PLAN" not in text
    assert png_size(tmp_path / "output" / tuesday.isoformat() / "capacity.png")[0] > 0   # the folder keeps it


# --- hand-made plans ------------------------------------------------------------------------------------------

def _plan(scenario: str, origin: date, queue: str, need: list[float], supply: list[float] | None,
          weeks: pd.DatetimeIndex = WEEKS, volume: float = 1000.0) -> pd.DataFrame:
    """gold_capacity_plan rows of one queue: the FTE need p50 given, p10/p90 at -/+ 10%."""
    need_ = np.array(need, float)
    return pd.DataFrame({
        "run_id": f"run-{scenario}", "scenario": scenario, "plan_origin": pd.Timestamp(origin), "queue": queue,
        "week_start": weeks, "iso_week": [f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}" for d in weeks],
        "weeks_ahead": np.arange(4, 4 + len(weeks)), "open_days": 5, "volume_p10": volume * 0.9,
        "volume_p50": volume, "volume_p90": volume * 1.1, "workload_hours_p50": volume / 10,
        "fte_required_p10": need_ * 0.9, "fte_required_p50": need_, "fte_required_p90": need_ * 1.1,
        "supply_fte_p50": supply if supply is not None else np.nan, "volume_method": "seasonal",
        "staffing_model": "erlang_c", "simulations": 200, "seed": 42})


def _drivers(origin: date, queues: list[str]) -> pd.DataFrame:
    """Two blocks, weeks 4-5 and 6-7, one sentence each."""
    return pd.DataFrame([{"run_id": "run-published", "scenario": "published", "plan_origin": pd.Timestamp(origin),
                          "queue": q, "first_week": WEEKS[lo], "last_week": WEEKS[hi], "fte_required_p10": 9.0,
                          "fte_required_p50": 10.0, "fte_required_p90": 11.0, "main_driver": "volume",
                          "sentence": f"{q} block {lo}"} for q in queues for lo, hi in ((0, 1), (2, 3))])


PUBLISHED = [_plan("published", AS_OF, "(centre)", [30, 32, 34, 36], [50, 50, 48, 48]),
             _plan("published", AS_OF, "Support", [10, 12, 14, 16], [20, 20, 18, 18]),
             _plan("published", AS_OF, "Billing", [20, 20, 20, 20], None)]
HIRE = [_plan("hire", AS_OF, "(centre)", [32, 34, 34, 40], [55, 55, 55, 55]),
        _plan("hire", AS_OF, "Support", [12, 14, 14, 20], [25, 25, 25, 25]),
        _plan("hire", AS_OF, "Billing", [20, 20, 20, 20], None)]


def test_the_comparison_is_the_mean_weekly_p50_of_each_block_and_the_difference():
    published, scenario = (fold_plan(pd.concat(p), ["Billing", "Support"]) for p in (PUBLISHED, HIRE))
    got = compare_plans(published, scenario, [(WEEKS[0], WEEKS[1]), (WEEKS[2], WEEKS[3])]).set_index(
        ["queue", "first_week"])
    # Support, weeks 4-5: need (10+12)/2 = 11 -> (12+14)/2 = 13; supply 20 -> 25. Weeks 6-7: 15 -> 17, 18 -> 25.
    support = got.loc["Support"]
    assert support["need_published"].tolist() == [11.0, 15.0] and support["need_scenario"].tolist() == [13.0, 17.0]
    assert support["need_change"].tolist() == [2.0, 2.0] and support["supply_change"].tolist() == [5.0, 7.0]
    assert got.loc[("(centre)", WEEKS[2]), "need_change"] == pytest.approx(2.0)         # 35 -> 37
    assert got.loc["Billing", "need_change"].tolist() == [0.0, 0.0]
    assert got.loc["Billing", "supply_published"].isna().all()                            # no headcount
    assert got.index.get_level_values("queue").tolist()[:2] == ["(centre)", "(centre)"]  # the centre first


def test_queues_beyond_top_queues_are_one_summed_panel():
    more = pd.concat([*PUBLISHED, _plan("published", AS_OF, "Sales", [5, 5, 5, 5], [6, 6, 6, 6], volume=10.0)])
    keep = report_queues.busiest_queues(
        more.loc[more["queue"] != "(centre)"].rename(columns={"volume_p50": "p50"}), 1)
    folded = fold_plan(more, keep)
    assert keep == ["Billing"]                               # Billing and Support equally busy: the name decides
    others = folded.loc[folded["queue"] == "All other queues (2)"].sort_values("week_start")
    assert set(folded["queue"]) == {"(centre)", "Billing", "All other queues (2)"}
    assert others["fte_required_p50"].tolist() == [15, 17, 19, 21]                       # Support + Sales
    assert others["supply_fte_p50"].tolist() == [26, 26, 24, 24]
    # Billing has no headcount: a summed supply of Sales alone beside Billing's need would look like a shortfall
    without_billing = fold_plan(more, ["Support"])
    assert without_billing.loc[without_billing["queue"] == "All other queues (2)", "supply_fte_p50"].isna().all()


def _seed_hand_plans(tmp_path: Path) -> Path:
    config = write_config(tmp_path)
    db.ensure_schema(_engine(config))
    _forecast(config, AS_OF)
    with _engine(config).begin() as conn:
        db.insert_frame(conn, tables.gold_capacity_plan, pd.concat([*PUBLISHED, *HIRE]))
        db.insert_frame(conn, tables.gold_capacity_drivers, _drivers(AS_OF, ["(centre)", "Billing", "Support"]))
    return config


def test_report_scenario_adds_the_comparison_table_and_its_line(tmp_path):
    config = _seed_hand_plans(tmp_path)
    assert _report(config, AS_OF, "--scenario", "hire") == 0
    html, text, images = _email(tmp_path, AS_OF)
    assert "capacity.png" in images
    assert "Scenario &lsquo;hire&rsquo; vs the published plan" in html
    assert "SCENARIO 'hire' VS THE PUBLISHED PLAN" in text
    lines = [line.strip() for line in text.splitlines()]
    assert "Support, 2025-W14 to 2025-W15: need 11.0 -> 13.0 (+2.0); on hand 20.0 -> 25.0 (+5.0)" in lines
    assert "Support, 2025-W16 to 2025-W17: need 15.0 -> 17.0 (+2.0); on hand 18.0 -> 25.0 (+7.0)" in lines
    assert "Billing, 2025-W14 to 2025-W15: need 20.0 -> 20.0 (+0.0); no headcount configured" in lines
    assert text.index("Whole centre, 2025-W14") < text.index("Billing, 2025-W14")
    assert text.index("- (centre) block 0") < text.index("- Billing block 0") and "block 2" not in text
    assert png_size(tmp_path / "output" / AS_OF.isoformat() / "capacity.png")[0] > 900


def test_an_unknown_scenario_is_a_one_line_error_and_no_report(tmp_path, capsys):
    config = _seed_hand_plans(tmp_path)
    assert _report(config, AS_OF, "--scenario", "nosuch") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--scenario nosuch: no rows in gold_capacity_plan on or before 2025-03-10" in err
    assert "--list-scenarios" in err
    assert not (tmp_path / "output" / AS_OF.isoformat()).exists()


def test_the_email_shows_a_plan_made_after_last_nights_report_the_next_night_only(tmp_path, caplog):
    config = write_config(tmp_path)
    engine = _engine(config)
    db.ensure_schema(engine)
    with engine.connect() as conn:
        caplog.set_level(logging.INFO, logger="common.report_capacity")
        assert report_capacity.load_capacity(conn, AS_OF) is None
    assert "no published capacity plan on or before 2025-03-10" in caplog.text
    monday = pd.Timestamp(AS_OF)
    runs = pd.DataFrame([
        {"run_id": "report-mon", "step": "5_report", "as_of": monday, "started_at": monday + pd.Timedelta(hours=2),
         "status": "success"},
        {"run_id": "run-published", "step": "6_capacity_plan", "as_of": monday,     # planned by hand at 10:00
         "started_at": monday + pd.Timedelta(hours=10), "status": "success"}])
    with engine.begin() as conn:
        db.insert_frame(conn, tables.pipeline_runs, runs)
        db.insert_frame(conn, tables.gold_capacity_plan, pd.concat(PUBLISHED))

    def due(as_of: date) -> bool:
        with engine.connect() as conn:
            inputs = report_capacity.load_capacity(conn, as_of)
        return report_capacity.capacity_due(inputs.plan_origin, as_of, inputs.shown_before, None)

    assert due(AS_OF)                                  # re-running Monday's report: the plan is Monday's
    tuesday = AS_OF + timedelta(days=1)
    assert due(tuesday)                                # Monday's 02:00 report never saw it
    with engine.begin() as conn:
        db.insert_frame(conn, tables.pipeline_runs, pd.DataFrame([{
            "run_id": "report-tue", "step": "5_report", "as_of": pd.Timestamp(tuesday),
            "started_at": pd.Timestamp(tuesday) + pd.Timedelta(hours=2), "status": "success"}]))
    assert due(tuesday)                                # a re-run of Tuesday shows it again
    assert not due(tuesday + timedelta(days=1))        # Wednesday: Tuesday's report showed it
