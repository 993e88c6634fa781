"""run_daily.sh end to end on a short generated demo, in a copy of the project (its own data/ and logs/)."""

from __future__ import annotations

import email
import email.policy
import fcntl
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import REPO

AS_OF = "2025-03-10"
NEXT = "2025-03-11"  # the night after AS_OF


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project's code sharing this checkout's .venv (so nothing is installed again)."""
    root = tmp_path_factory.mktemp("project")
    for item in REPO.iterdir():
        if item.name in (".git", ".venv", "data", "logs", "output", "models") or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, root / item.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, root / item.name)
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def run_daily(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "run_daily.sh", *args], cwd=project, capture_output=True, text=True, timeout=timeout)


def test_demo_runs_end_to_end_and_fills_the_tables(project: Path) -> None:
    done = run_daily(project, "--demo", "--demo-days", "35", "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert "all steps succeeded" in done.stdout
    engine = sa.create_engine(f"sqlite:///{project / 'data' / 'wfm.db'}")
    with engine.connect() as conn:
        runs = pd.read_sql("select step, status from pipeline_runs", conn)
        daily = pd.read_sql("select * from silver_daily", conn)
        rejects = pd.read_sql("select reason from bronze_rejects", conn)
        forecast = pd.read_sql("select * from gold_forecast_daily", conn)
        staffing = pd.read_sql("select * from gold_staffing_interval", conn)
        patience = pd.read_sql("select * from gold_queue_patience", conn)
        delivered = pd.read_sql("select * from gold_service_delivered", conn)
    status = dict(zip(runs["step"], runs["status"]))
    # 35 days is too little history to train on: step 2 says so and skips; step 3 falls back to seasonal naive.
    assert status == {"0_load_bronze": "success", "1_build_silver": "success", "1_5_segment_customers": "success",
                      "2_train": "skipped", "3_forecast": "success", "4_evaluate": "success", "6_capacity_plan": "success",
                      "5_report": "success"}
    assert sorted(daily["queue"].unique()) == ["Billing", "Sales", "Support", "VIP"]
    assert daily["date"].nunique() == 35
    assert len(rejects) == 1  # the demo puts one broken row on every 30th day on purpose: 2025-02-26 here
    assert list((project / "logs").glob(f"run_daily_{AS_OF}_*.log"))
    assert len(forecast) == 4 * 14 and set(forecast["method"]) == {"seasonal_naive"}
    assert forecast["fallback_reason"].str.contains("no production model").all()
    assert (staffing["staff_p90"] >= staffing["staff_p10"]).all() and staffing["staff_p50"].max() > 0
    # The demo's CDRs carry waits and abandons: each queue's patience is estimated and staffs it with Erlang A.
    assert sorted(patience["queue"]) == ["Billing", "Sales", "Support", "VIP"]
    assert set(patience["source"]) == {"estimated"} and (patience["abandons"] >= 30).all()
    assert set(staffing["staffing_model"]) == {"erlang_a"} and staffing["target_service_level"].eq(0.8).all()
    # Step 4 measured the service delivered over its window, against the same target.
    assert sorted(delivered["queue"].unique()) == ["Billing", "Sales", "Support", "VIP"]
    assert delivered["service_level"].between(0, 1).all() and delivered["target_service_level"].eq(0.8).all()
    assert (delivered["answered_in_target"] <= delivered["answered"]).all()
    report = project / "output" / AS_OF
    for name in ("forecast.png", "totals.png", "staffing.png", "accuracy.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Content-Type: multipart" in (report / "report.eml").read_text()  # no SMTP host: the email is a file
    message = email.message_from_bytes((report / "report.eml").read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    # Yesterday (a Sunday) was closed; the past 4 weeks' service delivered is there, against the 80% target.
    assert "Service delivered (target 80%): no calls yesterday; last 4 weeks " in text


def test_second_concurrent_run_is_refused(project: Path) -> None:
    (project / "data").mkdir(exist_ok=True)
    with open(project / "data" / ".run_daily.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running night would hold it
        done = run_daily(project, "--as-of", AS_OF)
    assert done.returncode == 3
    assert "another run is in progress" in done.stderr


def test_from_resumes_at_the_named_step(project: Path) -> None:
    done = run_daily(project, "--as-of", AS_OF, "--from", "4")  # the last two steps: the cheapest resume
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipping step 0" in done.stdout and "skipping step 3" in done.stdout
    assert "step 4: 4_evaluate.py" in done.stdout and "step 5: 5_report.py" in done.stdout


def test_set_is_a_what_if_for_step_3_and_publish_publishes_it(project: Path) -> None:
    def staffing() -> pd.DataFrame:
        with sa.create_engine(f"sqlite:///{project / 'data' / 'wfm.db'}").connect() as conn:
            return pd.read_sql("select * from gold_staffing_interval order by queue, interval_start", conn)

    published = staffing()
    # from step 3 (step 2's what-if, never promoted, is test_training's): the staffing target is a step-3 what-if
    whatif = ["--as-of", AS_OF, "--from", "3", "--set", "staffing.service_level=0.95"]
    done = run_daily(project, *whatif)
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(staffing(), published)  # steps 4 and 5 ran on the published forecast
    assert len(list((project / "output" / AS_OF).glob("whatif-*/staffing_interval.csv"))) == 1
    assert "NOT published" in done.stderr
    done = run_daily(project, *whatif, "--publish")  # steps 4 and 5 would refuse an unknown --publish
    assert done.returncode == 0, done.stderr[-3000:]
    assert staffing()["agents_p50"].sum() > published["agents_p50"].sum()


def test_a_failing_step_stops_the_run_and_names_it(project: Path) -> None:
    done = run_daily(project, "--as-of", AS_OF, "--set", "rules.interval_minutes=7")
    assert done.returncode == 2
    assert "FAILED at step 0 (0_load_bronze.py)" in done.stderr
    assert "rules.interval_minutes" in done.stderr + done.stdout
    alerts = list((project / "output" / "failures").glob("*.eml"))  # the failure alert, as a file without SMTP
    assert alerts and "FAILED at step 0" in alerts[-1].read_text()


def test_the_next_nights_demo_loads_one_day_and_scores_yesterdays_forecast(project: Path) -> None:
    db = f"sqlite:///{project / 'data' / 'wfm.db'}"
    with sa.create_engine(db).connect() as conn:
        bronze_before = conn.execute(sa.text("select count(*) from bronze_cdr")).scalar()
    done = run_daily(project, "--demo", "--demo-days", "35", "--as-of", NEXT)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert "1 file(s) written, 34 already there" in done.stderr  # 2025-02-04..03-10: only 03-10 is new
    with sa.create_engine(db).connect() as conn:
        loads = pd.read_sql("select source_name, rows_loaded from bronze_load_log", conn)
        bronze = conn.execute(sa.text("select count(*) from bronze_cdr")).scalar()
        scored = pd.read_sql(f"select * from gold_forecast_accuracy where date = '{AS_OF}'", conn)
        alerts = pd.read_sql(f"select severity, alert_rule, message from gold_alerts where as_of = '{NEXT}'", conn)
    assert len(loads) == 36 and loads["source_name"].iloc[-1].endswith(f"acd_export_{AS_OF}.csv")
    assert bronze == bronze_before + loads["rows_loaded"].iloc[-1]  # the other 35 files were found already loaded
    # Step 4 scores last night's forecast (origin AS_OF) for the day that has now happened, per queue.
    judged = scored[(scored["forecast_origin"] == AS_OF) & (scored["method"] == "seasonal_naive")]
    assert sorted(judged["queue"]) == ["Billing", "Sales", "Support", "VIP"] and (judged["horizon_day"] == 1).all()
    # No critical alert from the data (a rewritten history doubled bronze and fired 5 critical alerts). Only a
    # day's miss beyond alerts.mape_critical (15%) may remain: the demo's day noise (13% per queue-day, more for
    # small queues) makes a single day miss by that much on many nights, here VIP against seasonal naive.
    critical = alerts[alerts["severity"] == "critical"]
    assert set(critical["alert_rule"]) <= {"daily_mape"}, critical.to_string()
    assert critical["message"].str.contains(f"for Mon {AS_OF} made the same night").all(), critical.to_string()


def test_demo_nights_is_checked_before_any_work(project: Path) -> None:
    for args, error in ((["--demo-nights", "0"], "--demo-nights 0: give a whole number >= 1"),
                        (["--demo-nights", "x7"], "--demo-nights x7: give a whole number >= 1"),
                        (["--demo-nights", "3", "--from", "2"], "--from 2 cannot be combined"),
                        (["--demo-nights"], "--demo-nights needs a value")):
        done = run_daily(project, *args)
        assert done.returncode == 2 and error in done.stderr, (args, done.stderr)
    # The inbox holds exports up to NEXT - 1: a replay whose first night is AS_OF (NEXT - 2 nights + 1 = AS_OF)
    # would have step 0 load them before their night, so it is refused before any step runs.
    done = run_daily(project, "--demo-nights", "2", "--as-of", NEXT)
    assert done.returncode == 2 and "on or after the replay's first night 2025-03-10" in done.stderr, done.stderr
    assert "step 0" not in done.stdout


def test_help_lists_every_option_and_no_script_lines(project: Path) -> None:
    done = run_daily(project, "--help")
    assert done.returncode == 0
    for option in ("--config", "--as-of", "--from", "--demo ", "--demo-days", "--demo-nights", "--set", "--publish"):
        assert option in done.stdout
    assert "set -euo" not in done.stdout and "#" not in done.stdout
