"""Hostile inputs: every bad file and config gives a clear outcome and loses nothing.

The file corpus is `tests/data/bad/` with its manifest `cases.yaml` (what each file must do); each case
runs through the real steps 0 and 1. For every load, rows read == loaded + duplicate + rejected, rows
read == the records Python's csv module finds in the file, and the bronze tables hold exactly the rows the
load log counts. Config hostility and a streamed big file are tested below the corpus.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import shutil
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select

from common import db, tables
from common.config import load_config
from tests.conftest import CDR_COLUMNS, REPO, write_config

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

BAD = Path(__file__).parent / "data" / "bad"
MANIFEST = yaml.safe_load((BAD / "cases.yaml").read_text(encoding="utf-8"))
CASES = {case["id"]: case for case in MANIFEST["cases"]}
DEFAULT_AS_OF = "2025-03-13"
HEADER = CDR_COLUMNS


# --- generated inputs (too big or too regular to keep as files) ---------------------------------------------

def busy_days(inbox: Path, queue: str, dates: list, calls_per_interval: int) -> None:
    """One export per date: `calls_per_interval` answered calls in each half-hour from 08:00 to 17:30."""
    for day in dates:
        day = pd.Timestamp(day)
        lines = [HEADER]
        for slot in range(20):
            start = day + pd.Timedelta(hours=8, minutes=30 * slot)
            for k in range(calls_per_interval):
                t = start + pd.Timedelta(seconds=7 + k * (1800 // calls_per_interval))
                call = f"{queue[:2]}{day:%m%d}-{slot}-{k}"
                lines.append(f"{call},,{queue},{t:%Y-%m-%d %H:%M:%S},,,ANSWERED,10,180,{call},,,voice")
        (inbox / f"busy_{day:%Y%m%d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def long_field(inbox: Path, megabytes: int) -> None:
    """Two rows, the first with a transcript of `megabytes` MB in an unmapped column."""
    text = "lorem ipsum " * (megabytes * 1024 * 1024 // 12)
    rows = [f'LF1,,Support,2025-03-10 08:05:00,,,ANSWERED,20,300,C1,+461,,voice,"{text}"',
            "LF2,,Support,2025-03-10 09:00:00,,,ANSWERED,20,300,C2,+462,,voice,short"]
    (inbox / "long_field.csv").write_text(HEADER + ",Transcript\n" + "\n".join(rows) + "\n", encoding="utf-8")


def unreadable_file(inbox: Path, name: str) -> None:
    """A file matching the glob that the job cannot read.

    As a normal user: a file without read permission (PermissionError). As root, which reads any file whatever
    its mode: a link to a file that is gone (FileNotFoundError), the same "cannot be read" path for the loader.
    """
    path = inbox / name
    if os.geteuid() == 0:
        path.symlink_to(inbox / "gone" / name)
    else:
        path.write_text(HEADER + "\nUR1,,Support,2025-03-10 08:05:00,,,ANSWERED,20,300,C1,+461,,voice\n")
        path.chmod(0)


def late_encoding_error(inbox: Path, name: str, rows: int) -> None:
    """An export of `rows` good calls, then a line that is not UTF-8: the file fails after chunks of it loaded."""
    lines = [HEADER] + [f"LE{i},,Support,2025-03-10 {8 + i % 10:02d}:{i % 60:02d}:00,,,ANSWERED,20,300,C{i},,,voice"
                        for i in range(rows)]
    (inbox / name).write_bytes(("\n".join(lines) + "\n").encode() + b"LEX,,Kundtj\xe4nst,2025-03-10 08:00:00,,,"
                               b"ANSWERED,20,300,C,,,voice\n")


GENERATORS = {"busy_days": busy_days, "long_field": long_field, "unreadable_file": unreadable_file,
              "late_encoding_error": late_encoding_error}


# --- running a case -----------------------------------------------------------------------------------------

def _stages(case: dict) -> list[dict]:
    stages = case.get("stages") or [{k: v for k, v in case.items() if k in ("files", "generate", "expect", "silver")}]
    # a stage's own `config` is merged over the case's from that stage on
    return [{"as_of": case.get("as_of", DEFAULT_AS_OF), **stage} for stage in stages]


def _frames(engine) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        return {t.name: db.read_table(conn, t) for t in (tables.bronze_cdr, tables.bronze_interval,
                                                          tables.bronze_rejects, tables.bronze_load_log,
                                                          tables.pipeline_runs)}


def _one_line_error(err: str, step: str) -> str:
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{step}: error: "), err
    return last


def _same(actual, expected) -> bool:
    if expected is None:
        return actual is None or pd.isna(actual)
    if isinstance(actual, pd.Timestamp):
        return actual == pd.Timestamp(expected)
    if isinstance(expected, float) or isinstance(actual, float):
        return actual is not None and not pd.isna(actual) and math.isclose(float(actual), float(expected), rel_tol=1e-9)
    return str(actual) == str(expected)


def _check_columns(row: pd.Series, expected: dict, what: str) -> None:
    for column, value in expected.items():
        assert _same(row[column], value), f"{what}.{column}: {row[column]!r}, expected {value!r}"


def _check_step0(stage: dict, before: dict, after: dict, err: str, rc: int) -> None:
    expect = stage.get("expect", {})
    assert rc == expect.get("exit", 0), err
    if rc:
        line = _one_line_error(err, "0_load_bronze")
        for part in expect.get("error", []):
            assert str(part) in line, line
        for name in ("bronze_cdr", "bronze_interval", "bronze_rejects", "bronze_load_log"):
            assert len(after[name]) == len(before[name]), f"{name} changed by a failed load"
        run = after["pipeline_runs"].iloc[-1]
        assert run["status"] == "failed" and run["message"] in line
        return
    new_log = after["bronze_load_log"].iloc[len(before["bronze_load_log"]):]
    skipped = new_log[new_log["status"] == "skipped"]
    got = {Path(name).name: message for name, message in zip(skipped["source_name"], skipped["message"])}
    assert sorted(got) == sorted(expect.get("skipped", {})), got
    run = after["pipeline_runs"].iloc[-1]
    for name, part in expect.get("skipped", {}).items():
        assert part in got[name] and name in got[name], f"{name}: {got[name]!r} lacks {part!r}"
        assert got[name] in run["message"], run["message"]  # the night's result says the file was skipped
        assert f"bronze: skipped {got[name]}" in err, err  # and one log line names it
    totals = {"read": new_log["rows_read"].sum(), "loaded": new_log["rows_loaded"].sum(),
              "duplicate": new_log["rows_duplicate"].sum(), "rejected": new_log["rows_rejected"].sum()}
    for key, total in totals.items():
        if key in expect:
            assert total == expect[key], f"{key}: {total}, expected {expect[key]} ({totals})"
    rejects = after["bronze_rejects"][after["bronze_rejects"]["load_id"].isin(new_log["load_id"])]
    if "rejects" in expect:
        got = dict(zip(rejects["source_row"].astype(int), rejects["reason"]))
        assert sorted(got) == sorted(int(k) for k in expect["rejects"]), got
        for row, part in expect["rejects"].items():
            assert part in got[int(row)], f"row {row}: {got[int(row)]!r} lacks {part!r}"
    bronze = after["bronze_cdr"]
    for call_id, columns in expect.get("bronze", {}).items():
        rows = bronze[bronze["call_id"] == call_id]
        assert len(rows) == 1, f"{call_id}: {len(rows)} bronze rows"
        _check_columns(rows.iloc[0], columns, call_id)


def _run_silver(stage: dict, config: Path, engine, capsys) -> None:
    expect = stage["silver"]
    rc = build_silver.main(["--config", str(config), "--as-of", str(stage["as_of"]), "--workers", "0",
                            "--log-level", "WARNING"])
    err = capsys.readouterr().err
    assert rc == expect.get("exit", 0), err
    if rc:
        line = _one_line_error(err, "1_build_silver")
        for part in expect.get("error", []):
            assert str(part) in line, line
    with engine.connect() as conn:
        daily = db.read_table(conn, tables.silver_daily)
        intervals = db.read_table(conn, tables.silver_interval)
        calls = db.read_table(conn, tables.silver_calls)
        checks = db.read_table(conn, tables.data_quality_checks)
        runs = db.read_table(conn, tables.pipeline_runs)
    if expect.get("empty"):
        assert daily.empty and intervals.empty and calls.empty
    if "queues" in expect:
        assert sorted(daily["queue"].unique()) == sorted(expect["queues"])
    for row in expect.get("daily", []):
        match = daily[(daily["queue"] == row["queue"]) & (daily["date"] == pd.Timestamp(row["date"]))]
        assert len(match) == 1, f"silver_daily {row['queue']} {row['date']}: {len(match)} rows"
        _check_columns(match.iloc[0], {k: v for k, v in row.items() if k not in ("queue", "date")}, "silver_daily")
    for row in expect.get("intervals", []):
        match = intervals[(intervals["queue"] == row["queue"])
                          & (intervals["interval_start"] == pd.Timestamp(row["interval_start"]))]
        assert len(match) == 1
        _check_columns(match.iloc[0], {k: v for k, v in row.items() if k not in ("queue", "interval_start")},
                       "silver_interval")
    for contact_id, columns in expect.get("calls", {}).items():
        match = calls[calls["contact_id"] == contact_id]
        assert len(match) == 1, f"silver_calls {contact_id}: {len(match)} rows"
        _check_columns(match.iloc[0], columns, contact_id)
    if "failed_checks" in expect:
        run_id = runs[runs["step"] == "1_build_silver"]["run_id"].iloc[-1]
        mine = checks[checks["run_id"] == run_id]
        assert sorted(set(mine.loc[~mine["passed"], "check_name"])) == sorted(expect["failed_checks"]), \
            mine[["check_name", "passed", "detail"]].to_string()


def _csv_records(path: Path, spec) -> int:
    """Records after the header as Python's csv module reads them (an independent count; blank lines skipped)."""
    csv.field_size_limit(1 << 30)  # a transcript column can hold megabytes
    encoding = "utf-8-sig" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else spec.encoding
    with path.open(encoding=encoding, newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter=spec.delimiter) if any(f.strip() for f in r)]
    return max(len(rows) - 1, 0)


def _check_nothing_lost(config: Path, engine) -> None:
    cfg = load_config(config)
    table = tables.bronze_cdr if cfg.source.kind == "cdr" else tables.bronze_interval
    with engine.connect() as conn:
        log = db.read_table(conn, tables.bronze_load_log)
        for load in log.itertuples():
            assert load.rows_read == load.rows_loaded + load.rows_duplicate + load.rows_rejected
            if load.status == "skipped":  # a file skipped as unreadable adds nothing, even part-way through
                assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (0, 0, 0), load
            assert load.rows_duplicate >= 0
            loaded = conn.execute(select(func.count()).select_from(table).where(
                table.c.load_id == load.load_id)).scalar()
            rejected = conn.execute(select(func.count()).select_from(tables.bronze_rejects).where(
                tables.bronze_rejects.c.load_id == load.load_id)).scalar()
            assert (loaded, rejected) == (load.rows_loaded, load.rows_rejected), load
            if load.status != "skipped":
                assert load.rows_read == _csv_records(Path(load.source_name), cfg.source), load.source_name


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_case(case_id: str, tmp_path: Path, capsys) -> None:
    case = CASES[case_id]
    config = _config_with(write_config(tmp_path), case.get("config"))
    inbox = tmp_path / "inbox"
    engine = db.make_engine(load_config(config).database_url)
    db.ensure_schema(engine)
    for stage in _stages(case):
        if "config" in stage:  # the config changes from this stage on
            config = _config_with(write_config(tmp_path), {**(case.get("config") or {}), **stage["config"]})
        for item in stage.get("files", []):
            source, _, target = (part.strip() for part in item.partition(">"))
            shutil.copy(BAD / source, inbox / (target or source))
        for name, params in (stage.get("generate") or {}).items():
            GENERATORS[name](inbox, **params)
        before = _frames(engine)
        capsys.readouterr()
        rc = load_bronze.main(["--config", str(config), "--as-of", str(stage["as_of"]), "--workers", "0",
                               "--log-level", "WARNING"])
        _check_step0(stage, before, _frames(engine), capsys.readouterr().err, rc)
        if "silver" in stage:
            _run_silver(stage, config, engine, capsys)
    _check_nothing_lost(config, engine)


def _config_with(config: Path, overrides: dict | None) -> Path:
    """`config` with the case's overrides (dotted keys) written into it."""
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    for key, value in (overrides or {}).items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    config.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return config


def test_the_manifest_names_only_files_that_exist_and_every_file_is_used() -> None:
    named = set()
    for case in CASES.values():
        for stage in _stages(case):
            named |= {item.partition(">")[0].strip() for item in stage.get("files", [])}
    on_disk = {p.name for p in BAD.iterdir() if p.suffix == ".csv"}
    assert named == on_disk


# --- a big export is streamed ------------------------------------------------------------------------------

def _big_export(path: Path, rows: int) -> int:
    """A generated export of `rows` calls, written line by line; returns its size in bytes."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER + "\n")
        for i in range(rows):
            fh.write(f"B{i},,Q{i % 4},2025-03-{10 + i % 3:02d} {8 + i % 10:02d}:{i % 60:02d}:{i % 59:02d},,,ANSWERED,"
                     f"{i % 90},{i % 600},C{i % 5000},+46{i % 9999},ag{i % 50},voice\n")
    return path.stat().st_size


def _peak_python_memory(config: Path) -> int:
    tracemalloc.start()
    try:
        assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-13", "--workers", "0",
                                 "--log-level", "WARNING"]) == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_big_export_is_streamed_so_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # The real 2 GB run is bench/bench_big_file.py; here a file 8x bigger must not need more memory.
    peaks, sizes = [], []
    for rows in (500, 4_000, 24_000):  # the first run only warms up (lazy imports, lookup tables built once)
        (tmp_path / str(rows)).mkdir()
        config = write_config(tmp_path / str(rows), source__chunk_rows=1000)
        sizes.append(_big_export(config.parent / "inbox" / "big.csv", rows))
        peaks.append(_peak_python_memory(config))
        with db.make_engine(load_config(config).database_url).connect() as conn:
            log = db.read_table(conn, tables.bronze_load_log)
        assert log["rows_read"].tolist() == log["rows_loaded"].tolist() == [rows]
    # Read whole, 24,000 rows take ~27 MB of Python objects (about 15x the 1.7 MB file); streamed in
    # chunks of 1,000 rows the peak is one chunk's worth (~2.6 MB here, most of it fixed), whatever the file size.
    growth = peaks[2] - peaks[1]
    assert growth < sizes[2] / 10, (peaks, sizes)


# --- config hostility (tests/test_config.py has the common mistakes; these are the rest) -------------------

BASE_CONFIG = (REPO / "config.yaml").read_text(encoding="utf-8")
_LINES = BASE_CONFIG.splitlines()
RULES_LINE = _LINES.index("rules:") + 1
INTERVAL_LINE = next(i for i, line in enumerate(_LINES, 1) if line.startswith("  interval_minutes: 30"))


@pytest.mark.parametrize("name, content, message", [
    ("empty", "", "empty.yaml: source: required key is missing"),
    ("list", "- database\n- source\n", "list.yaml: the top level must be a mapping of keys"),
    ("duplicate_key", BASE_CONFIG + "\nrules:\n  interval_minutes: 15\n",
     f"duplicate_key.yaml: line {len(_LINES) + 2}, column 1: YAML syntax error: duplicate key 'rules' "
     f"(also on line {RULES_LINE}); "
     "the first one would be silently ignored"),
    ("tab", BASE_CONFIG.replace("  interval_minutes: 30", "\tinterval_minutes: 30"),
     f"tab.yaml: line {INTERVAL_LINE}, column 1: YAML syntax error: found character '\\t' that cannot start any token "
     "(YAML indents with spaces, never tabs)"),
    ("section_as_value", BASE_CONFIG.replace("rules:\n", "rules: 5\nold_rules:\n", 1),
     "section_as_value.yaml: rules: Input should be a valid dictionary"),
    ("word_for_number", BASE_CONFIG.replace("quantiles: [0.1, 0.5, 0.9]", "quantiles: [low, mid]"),
     "word_for_number.yaml: forecast.quantiles.0: Input should be a valid number, unable to parse string as a number "
     "(got 'low')"),
    ("top_level_typo", BASE_CONFIG.replace("staffing:", "staffng:"),
     "top_level_typo.yaml: staffng: unknown key; did you mean staffing?"),
    ("number_for_name", BASE_CONFIG.replace("timezone: Europe/Stockholm", "timezone: 1"),
     "number_for_name.yaml: timezone: Input should be a valid string (got 1)"),
    ("bad_url", BASE_CONFIG.replace("url: sqlite:///data/wfm.db", "url: 'no url here'"),
     "database.url: cannot parse 'no url here'"),
    ("alias_cycle",
     BASE_CONFIG.replace("queue_aliases: {}", "queue_aliases: {Kundservice: Support, Support: Kundservice}", 1),
     "alias_cycle.yaml: rules.queue_aliases: 'Kundservice' -> 'Support' -> 'Kundservice' is a cycle"),
    ("hours_under_old_name", BASE_CONFIG.replace("queue_aliases: {}", "queue_aliases: {Support: Help}", 1),
     "hours_under_old_name.yaml: rules.opening_hours.queues.Support: 'Support' is renamed to 'Help' by "
     "rules.queue_aliases; put its hours under 'Help'"),
])
def test_a_hostile_config_is_one_line_and_exit_2_before_any_work(tmp_path: Path, capsys, name: str, content: str,
                                                                  message: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(content, encoding="utf-8")
    assert load_bronze.main(["--config", str(path), "--as-of", "2025-03-10"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("0_load_bronze: error: ") and message in lines[0], err
    assert not (tmp_path / "data").exists()  # nothing was started


def test_a_config_that_is_not_utf8_says_so(tmp_path: Path, capsys) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE_CONFIG.replace("# wfm-forecast", "# wfm-förecast").encode("latin-1"))
    assert load_bronze.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err.strip().endswith("latin1.yaml: not UTF-8 text; save the config as UTF-8")


@pytest.mark.parametrize("args, message", [
    (["--set", "rules.interval_minutes"], "--set 'rules.interval_minutes': use KEY.PATH=VALUE"),
    (["--set", "timezone.name=UTC"], "--set 'timezone.name=UTC': timezone is not a section"),
])
def test_bad_command_line_overrides_are_one_line(capsys, args: list[str], message: str) -> None:
    assert load_bronze.main(["--config", str(REPO / "config.yaml"), *args]) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_bad_as_of_date_is_refused_with_the_format(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        load_bronze.main(["--config", str(REPO / "config.yaml"), "--as-of", "10/03/2025"])
    assert done.value.code == 2
    assert "'10/03/2025' is not a date; use YYYY-MM-DD" in capsys.readouterr().err


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path: Path, monkeypatch, capsys) -> None:
    config = write_config(tmp_path)
    (tmp_path / "a_folder").mkdir()  # a folder where the database file should be
    monkeypatch.setenv("WFM_DB_URL", f"sqlite:///{tmp_path / 'a_folder'}")
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-10"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("0_load_bronze: error: cannot use the database "
                                            f"sqlite:///{tmp_path}/a_folder: unable to open database file")
