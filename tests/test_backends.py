"""The pipeline on each database backend: SQLite and PostgreSQL give the same silver and gold rows for the same input.

The end-to-end test runs steps 0..5 in-process (each script's `main`) on a short generated demo, two nights: the first
night (history up to a week before the as-of) loads, builds silver, trains, promotes the model by hand and forecasts;
the second night loads the last week's files and runs every step, so the tables also hold an incremental rebuild,
forecast accuracy and alerts. The PostgreSQL run is compared with the SQLite run table by table.
"""

from __future__ import annotations

import importlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.sql import Delete

from common import db, tables
from common.demo import demo_legs, write_demo_csvs
from common.errors import DataError
from tests.conftest import CDR_HEADER, write_config, write_csv

STEPS = {name: importlib.import_module(name) for name in (
    "0_load_bronze", "1_build_silver", "1_5_segment_customers", "2_train", "3_forecast", "4_evaluate",
    "6_capacity_plan", "5_report")}

AS_OF = date(2025, 3, 10)  # a Monday; night 1 is the Monday before
NIGHT1 = AS_OF - timedelta(days=7)
DAYS = 80  # step 2 needs 56 days of history before its backtest origin (two weeks before night 1)
# Columns a run stamps with its own id or clock: they differ between any two runs, whatever the backend; `overrides`
# holds each run's --set database.url=..., which names the backend.
VOLATILE = {"run_id", "created_at", "checked_at", "loaded_at", "started_at", "finished_at", "promoted_at", "message",
            "overrides", "sql_sha256", "created_at_utc"}  # schema_views: each backend's CREATE VIEW is its own SQL
# Small and quick: one backtest origin, 20 trees, no calibration; short demo weekends may look incomplete.
SETTINGS = {"validation__completeness_min_share": 0.0, "training__min_history_days": 28,
            "training__backtest_origins": 1, "training__calibration_origins": 0,
            "training__params": {"n_estimators": 20, "min_data_in_leaf": 5}, "capacity__simulations": 200}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    """Demo exports of DAYS days before AS_OF: `history/` up to night 1's data, `last_week/` the 7 days after."""
    root = tmp_path_factory.mktemp("exports")
    legs = demo_legs(AS_OF - timedelta(days=DAYS), AS_OF - timedelta(days=1), seed=7, scale=0.05)
    write_demo_csvs(legs, root / "history", malformed_rows=3)
    (root / "last_week").mkdir()
    for path in sorted((root / "history").glob("*.csv")):
        if date.fromisoformat(path.stem.rsplit("_", 1)[1]) >= NIGHT1:
            shutil.move(path, root / "last_week" / path.name)
    return root


def step(name: str, config: Path, as_of: date, url: str, glob: str, *extra: str) -> None:
    code = STEPS[name].main(["--config", str(config), "--as-of", as_of.isoformat(), "--set", f"database.url={url}",
                             "--set", f"source.csv_glob={glob}", "--log-level", "WARNING", *extra])
    assert code == 0, f"{name} --as-of {as_of} exited with {code}"


def run_pipeline(directory: Path, url: str, exports: Path) -> None:
    """Night 1 (steps 0-3, the trained model promoted), then night 2 (steps 0-5 with the last week's files)."""
    config = write_config(directory, **SETTINGS)
    history, everything = str(exports / "history" / "*.csv"), str(exports / "*" / "*.csv")
    for name in ("0_load_bronze", "1_build_silver", "2_train"):
        step(name, config, NIGHT1, url, history, *(["--workers", "0"] if name != "2_train" else []))
    with db.make_engine(url).connect() as conn:
        versions = db.read_table(conn, tables.model_registry, columns=["version"])["version"].tolist()
    assert len(versions) == 1, versions
    # Forecasts from the model, not only seasonal naive, so its floats are compared too.
    step("2_train", config, NIGHT1, url, history, "--promote", versions[0])
    step("3_forecast", config, NIGHT1, url, history)
    for name in STEPS:
        extra = {"0_load_bronze": ["--workers", "0"], "1_build_silver": ["--workers", "0"],
                 "5_report": ["--no-email"]}.get(name, [])
        step(name, config, AS_OF, url, everything, *extra)
    # named scenarios: beside the published rows, in their own tables and keys
    step("3_forecast", config, AS_OF, url, everything, "--scenario", "sl90", "--set", "staffing.service_level=0.9")
    step("6_capacity_plan", config, AS_OF, url, everything, "--scenario", "sl90", "--set", "staffing.service_level=0.9")


def _without_timings(metrics: str) -> str:
    """model_registry.metrics JSON without its "seconds" entries (how long the backtest took)."""
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "seconds"}
        return [strip(v) for v in node] if isinstance(node, list) else node
    return json.dumps(strip(json.loads(metrics)), sort_keys=True)


def read_all(url: str) -> dict[str, pd.DataFrame]:
    """Every table without its volatile columns, rows sorted by every column (ids included: load order matters)."""
    out = {}
    with db.make_engine(url).connect() as conn:
        for table in tables.metadata.sorted_tables:
            frame = db.read_table(conn, table)
            frame = frame[[c for c in frame.columns if c not in VOLATILE]]
            if table is tables.model_registry:
                frame = frame.assign(metrics=frame["metrics"].map(_without_timings).astype("str"))
            out[table.name] = frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory, exports) -> dict[str, pd.DataFrame]:
    directory = tmp_path_factory.mktemp("sqlite_run")
    run_pipeline(directory, f"sqlite:///{directory / 'wfm.db'}", exports)
    return read_all(f"sqlite:///{directory / 'wfm.db'}")


def test_two_nights_on_sqlite_fill_every_table_the_comparison_relies_on(sqlite_run) -> None:
    # An empty table would compare equal on any backend; this keeps the PostgreSQL comparison meaningful.
    # A CDR export fills no interval-report or daily-total table; two months are too short for the ensemble's
    # weights (2 inner backtest origins), so the model is LightGBM alone and no members are written.
    empty = [name for name, frame in sqlite_run.items() if frame.empty
             and name not in ("bronze_interval", "bronze_daily", "gold_forecast_members", "gold_forecast_intraday")]
    assert empty == []
    assert set(sqlite_run["gold_forecast_daily"]["method"]) >= {"lightgbm"}
    assert len(sqlite_run["bronze_rejects"]) == 3
    # After night 2 silver covers every day of the export, up to the day before the as-of.
    built = sqlite_run["silver_day_state"]["date"]
    assert len(built) == DAYS and built.max() == pd.Timestamp(AS_OF - timedelta(days=1))


@pytest.mark.postgres
def test_postgresql_gives_the_same_silver_and_gold_rows_as_sqlite(sqlite_run, postgres_url, tmp_path, exports) -> None:
    run_pipeline(tmp_path, postgres_url, exports)
    pg = read_all(postgres_url)
    assert list(pg) == list(sqlite_run)
    for name, expected in sqlite_run.items():
        pd.testing.assert_frame_equal(pg[name], expected, check_exact=False, rtol=1e-9, atol=1e-9,
                                      obj=f"table {name}")


def test_nightly_run_rebuilds_only_the_new_days_and_the_day_before(database_url, tmp_path, exports) -> None:
    config = write_config(tmp_path, **SETTINGS)
    history, everything = str(exports / "history" / "*.csv"), str(exports / "*" / "*.csv")
    for as_of, glob in ((NIGHT1, history), (AS_OF, everything)):
        step("0_load_bronze", config, as_of, database_url, glob, "--workers", "0")
        step("1_build_silver", config, as_of, database_url, glob, "--workers", "0")
    with db.make_engine(database_url).connect() as conn:
        state = db.read_table(conn, tables.silver_day_state)
        runs = db.read_table(conn, tables.pipeline_runs)
    night2 = runs.loc[(runs["step"] == "1_build_silver") & (runs["as_of"] == pd.Timestamp(AS_OF)), "run_id"].item()
    rebuilt = sorted(state.loc[state["run_id"] == night2, "date"].dt.date)
    # New files: NIGHT1..AS_OF-1 (7 days); their neighbour NIGHT1-1 is rebuilt too; nothing earlier.
    assert rebuilt == [NIGHT1 - timedelta(days=1) + timedelta(days=k) for k in range(8)]


HEADER = CDR_HEADER
DAY = HEADER + """\
    A1,,Support,2025-03-10 08:05:00,,,ANSWERED,20,300,C1,+461,,voice
    A2,,Support,2025-03-10 09:00:00,,,ABANDONED,40,0,C2,+462,,voice
    A3,,Billing,2025-03-10 10:00:00,,,ANSWERED,5,100,C3,+463,,voice
    A4,,Billing,2025-03-10 10:00:00,,,NOT_A_RESULT,5,100,C3,+463,,voice
    """


def _count(url: str, table) -> int:
    with db.make_engine(url).connect() as conn:
        return len(db.read_table(conn, table, columns=[next(iter(table.columns)).name]))


def test_bronze_load_is_idempotent_on_every_backend(database_url, tmp_path) -> None:
    config = write_config(tmp_path)
    inbox = tmp_path / "inbox"
    write_csv(inbox / "day1.csv", DAY)
    step("0_load_bronze", config, AS_OF, database_url, str(inbox / "*.csv"), "--workers", "0")
    # The same file again: skipped by content. The same rows in a new file plus one new row: only that row is added.
    step("0_load_bronze", config, AS_OF, database_url, str(inbox / "*.csv"), "--workers", "0")
    write_csv(inbox / "day1_again.csv", DAY + "    A5,,Sales,2025-03-10 11:00:00,,,ANSWERED,5,60,C9,+469,,voice\n")
    step("0_load_bronze", config, AS_OF, database_url, str(inbox / "*.csv"), "--workers", "0")
    with db.make_engine(database_url).connect() as conn:
        log = db.read_table(conn, tables.bronze_load_log).sort_values("load_id")
    assert _count(database_url, tables.bronze_cdr) == 4  # A1-A3, then A5
    # A4 once per file: a reject is kept once per source (the same bad row in the same file adds nothing).
    assert _count(database_url, tables.bronze_rejects) == 2
    # Per file: rows read, loaded, already present (4 read = 3 loaded + A4 rejected; 5 read = A5 + 3 present + A4).
    assert log[["rows_read", "rows_loaded", "rows_duplicate"]].values.tolist() == [[4, 3, 0], [5, 1, 3]]


def test_a_reader_sees_silver_daily_before_or_after_a_rebuild_never_half_of_it(database_url, tmp_path, exports) -> None:
    config = write_config(tmp_path, **SETTINGS)
    history = str(exports / "history" / "*.csv")
    step("0_load_bronze", config, NIGHT1, database_url, history, "--workers", "0")
    step("1_build_silver", config, NIGHT1 - timedelta(days=20), database_url, history, "--workers", "0")
    reader = db.make_engine(database_url)

    def silver_daily() -> pd.DataFrame:
        with reader.connect() as conn:
            return db.read_table(conn, tables.silver_daily).sort_values(["queue", "date"]).reset_index(drop=True)

    before = silver_daily()
    seen: list[pd.DataFrame] = []

    def read_while_writing(conn, clauseelement, multiparams, params, execution_options) -> None:
        # Every delete of step 1's write transaction: silver rows removed, or removed and re-inserted, not committed.
        if conn.engine is not reader and isinstance(clauseelement, Delete):
            seen.append(silver_daily())

    event.listen(Engine, "before_execute", read_while_writing)
    try:
        step("1_build_silver", config, NIGHT1, database_url, history, "--workers", "0", "--full", "--chunk-days", "10")
    finally:
        event.remove(Engine, "before_execute", read_while_writing)
    after = silver_daily()
    assert len(after) > len(before) > 0  # the rebuild added 20 days per queue
    # One chunk's 4 deletes per 10 days, then data_quality_checks' delete after every insert: mid-write reads.
    assert len(seen) >= 8
    for frame in seen:
        pd.testing.assert_frame_equal(frame, before)


def test_bulk_inserts_keep_awkward_values_exactly_on_every_backend(database_url) -> None:
    # Text with the characters COPY escapes (tab, newline, backslash, "\N"), quotes and non-ASCII; missing values
    # of every type; sub-second times; floats that only round-trip exactly (shortest repr).
    rows = pd.DataFrame({
        "contact_id": ["a\tb", "line1\nline2\r", "back\\slash \\N", 'quote " \' ;,'],
        "queue": ["Kundtjänst", "Ελληνικά", "日本語", "x" * 100],
        "start_time": pd.to_datetime(["2025-03-10 08:00:00.123456", "2025-03-30 02:30:00", "1999-12-31 23:59:59",
                                      "2025-03-10 09:00:00"], format="ISO8601"),
        "start_time_utc": pd.to_datetime(["2025-03-10 07:00:00.123456", "2025-03-30 00:30:00", "1999-12-31 22:59:59",
                                          "2025-03-10 08:00:00"], format="ISO8601"),
        "date": pd.to_datetime(["2025-03-10", "2025-03-30", "1999-12-31", "2025-03-10"]),
        "interval_start": pd.to_datetime(["2025-03-10 08:00"] * 4),
        "interval_start_utc": pd.to_datetime(["2025-03-10 07:00"] * 4),
        "outcome": ["answered", "abandoned", "short_abandon", "other"],
        "handle_seconds": [0.1 + 0.2, float("nan"), 1e-300, 123456789.123],
        "wait_seconds": [float("nan"), 0.0, -0.0, 5.5],
        "customer_id": [None, "", "C1", "N"],
        "caller_id": pd.array([None, None, "+46", None], dtype="str"),
        "legs": [1, 2, 3, 2**31 - 1],
        "attempts": [1, 1, 2, 1],
        "is_open_hours": [True, False, True, False],
        "is_holiday": [False, False, True, False],
        "holiday_name": [None, None, "Nyårsafton", None],
        "counts_as_offered": [True, False, False, True],
    })
    engine = db.make_engine(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        assert db.insert_frame(conn, tables.silver_calls, rows) == 4
    with engine.connect() as conn:
        back = db.read_table(conn, tables.silver_calls)
    back = back.sort_values("legs").reset_index(drop=True)
    expected = rows.assign(caller_id=rows["caller_id"].astype("str"), customer_id=rows["customer_id"].astype("str"))
    pd.testing.assert_frame_equal(back[list(rows.columns)], expected, check_dtype=False)
    assert back["handle_seconds"].iloc[0] == 0.1 + 0.2  # not rounded on the way (0.30000000000000004)
    assert pd.isna(back["customer_id"].iloc[0]) and back["customer_id"].iloc[1] == ""  # NULL and "" stay apart


def test_an_over_long_value_is_rejected_with_its_length_on_every_backend(database_url, tmp_path) -> None:
    config = write_config(tmp_path)
    long_queue = "Q" * 101  # bronze_cdr.queue is VARCHAR(100): PostgreSQL would refuse the row
    write_csv(tmp_path / "inbox" / "day.csv", DAY + f"    A9,,{long_queue},2025-03-10 11:00:00,,,ANSWERED,5,60,C9,+469,,voice\n")
    step("0_load_bronze", config, AS_OF, database_url, str(tmp_path / "inbox" / "*.csv"), "--workers", "0")
    with db.make_engine(database_url).connect() as conn:
        rejects = db.read_table(conn, tables.bronze_rejects).sort_values("source_row")
    assert _count(database_url, tables.bronze_cdr) == 3
    assert rejects["reason"].tolist()[-1] == "queue: 101 characters, longer than the 100 bronze_cdr.queue holds"


def test_a_nul_byte_in_a_field_is_rejected_and_its_raw_line_kept_escaped_on_every_backend(database_url, tmp_path) -> None:
    # PostgreSQL refuses a NUL in text (psycopg.DataError stopped the whole load): the row is a reject, and the
    # reject's raw line holds the NUL as the four characters \x00.
    config = write_config(tmp_path)
    write_csv(tmp_path / "inbox" / "day.csv", DAY + "    A9,,Sales,2025-03-10 11:00:00,,,ANSWERED,5,60,C\x009,+469,,voice\n")
    step("0_load_bronze", config, AS_OF, database_url, str(tmp_path / "inbox" / "*.csv"), "--workers", "0")
    with db.make_engine(database_url).connect() as conn:
        rejects = db.read_table(conn, tables.bronze_rejects).sort_values("source_row")
    assert _count(database_url, tables.bronze_cdr) == 3
    assert rejects["reason"].tolist()[-1] == ("customer_id: 'C\\x009' contains a control character (\\x00): a broken "
                                              "export; fix the value in the source system")
    assert "C\\x009" in rejects["raw"].tolist()[-1] and "\x00" not in rejects["raw"].tolist()[-1]


@pytest.mark.postgres
def test_a_value_too_long_for_a_server_column_is_a_data_error_naming_it(postgres_url) -> None:
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    alert = pd.DataFrame({"run_id": ["r1"], "as_of": [pd.Timestamp(AS_OF)], "created_at": [pd.Timestamp(AS_OF)],
                          "severity": ["warning"], "alert_rule": ["r" * 41], "metric": ["m"], "message": ["x"]})
    with pytest.raises(DataError, match=r"gold_alerts\.alert_rule: 'r{41}' is 41 characters, longer than the 40"):
        with engine.begin() as conn:
            db.insert_frame(conn, tables.gold_alerts, alert)



def test_a_postgresql_server_in_another_time_zone_stores_and_returns_the_same_wall_clock_times(postgres_url) -> None:
    # A warehouse whose database (or Power BI's session) runs in another zone: the columns are naive local and
    # naive UTC by design, so nothing may shift. 2025-03-30 02:30 does not exist in Stockholm (DST) and is stored
    # as given; Auckland is +13 that day.
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar()
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET timezone TO \'Pacific/Auckland\''))
    admin.dispose()
    times = pd.to_datetime(["2025-03-30 02:30:00", "2025-10-26 02:30:00.5", "2025-01-01 00:00:00"], format="ISO8601")
    rows = pd.DataFrame({"queue": "Support", "interval_start": times,
                         "interval_start_utc": times - pd.Timedelta(hours=1),
                         "date": times.normalize(), "offered": [1, 2, 3], "handled": 1, "abandoned": 0,
                         "short_abandoned": 0, "offered_outside_hours": 0, "aht_seconds": 60.0, "is_open": True,
                         "is_holiday": False, "run_id": "r"})
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SHOW timezone")).scalar() == "Pacific/Auckland"
        db.insert_frame(conn, tables.silver_interval, rows)
    with engine.connect() as conn:
        back = db.read_table(conn, tables.silver_interval).sort_values("offered").reset_index(drop=True)
        as_text = conn.execute(sa.text("SELECT interval_start::text FROM silver_interval ORDER BY offered")).scalars()
        assert list(as_text) == ["2025-03-30 02:30:00", "2025-10-26 02:30:00.5", "2025-01-01 00:00:00"]
    engine.dispose()
    assert back["interval_start"].tolist() == list(times)
    assert back["interval_start_utc"].tolist() == list(times - pd.Timedelta(hours=1))
