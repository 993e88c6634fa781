"""Step 0: mapping real exports onto canonical bronze rows, rejects with reasons, idempotent loads."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from common import db, tables
from common.config import load_config
from tests.conftest import CDR_HEADER, write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")

HEADER = CDR_HEADER


def _rows(engine, table) -> pd.DataFrame:
    with engine.connect() as conn:
        return db.read_table(conn, table)


def _engine(config: Path):
    return db.make_engine(load_config(config).database_url)


def test_load_maps_columns_and_types(config_path: Path) -> None:
    write_csv(config_path.parent / "inbox" / "day1.csv", HEADER + """\
        A1,,Support,2025-03-10 08:01:00,2025-03-10 08:01:30,2025-03-10 08:05:30,ANSWERED,30,240,C1,+4670111,ag1,voice
        A2,A1,Billing,2025-03-10 08:05:30,2025-03-10 08:05:40,2025-03-10 08:09:40,answered,10,240,C1,+4670111,ag2,voice
        A3,,Support,2025-03-10 09:00:00,,2025-03-10 09:00:03,ABANDONED,3,0,,+4670999,,voice
        """)
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11"]) == 0
    legs = _rows(_engine(config_path), tables.bronze_cdr).sort_values("call_id")
    assert legs["call_id"].tolist() == ["A1", "A2", "A3"]
    assert legs["outcome"].tolist() == ["answered", "answered", "abandoned"]  # outcome_map is case-insensitive
    assert legs["parent_call_id"].tolist()[1] == "A1"
    assert pd.isna(legs["customer_id"].tolist()[2])
    # Stockholm is UTC+1 in March: 08:01 local is 07:01 UTC.
    assert legs["start_time_utc"].iloc[0] == pd.Timestamp("2025-03-10 07:01:00")
    assert legs["start_date"].iloc[0] == pd.Timestamp("2025-03-10")
    assert legs["handle_seconds"].tolist() == [240.0, 240.0, 0.0]


def test_malformed_rows_go_to_rejects_with_reason_and_the_rest_loads(config_path: Path) -> None:
    write_csv(config_path.parent / "inbox" / "day1.csv", HEADER + """\
        B1,,Support,2025-03-10 08:01:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice
        B2,,Support,2025-13-45 25:61:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice
        B3,,Support,2025-03-10 08:02:00,,,XYZ,30,240,C1,+4670111,ag1,voice
        B4,,,2025-03-10 08:03:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice
        B5,,Support,2025-03-10 08:04:00,,,ANSWERED,30,-5,C1,+4670111,ag1,voice
        B6,,Support,2025-03-10 08:05:00,,,ANSWERED,abc,240,C1,+4670111,ag1,voice
        B7,,Support,2025-03-10 08:06:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice,extra,fields
        """)
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11"]) == 0
    engine = _engine(config_path)
    assert _rows(engine, tables.bronze_cdr)["call_id"].tolist() == ["B1"]
    rejects = _rows(engine, tables.bronze_rejects).sort_values("source_row")
    assert rejects["source_row"].tolist() == [2, 3, 4, 5, 6, 7]
    reasons = rejects["reason"].tolist()
    assert reasons[0].startswith("start_time: cannot parse '2025-13-45 25:61:00'")
    assert "outcome: 'XYZ' is not in source.outcome_map" in reasons[1]
    assert reasons[2].startswith("queue: empty")
    assert reasons[3] == "handle_seconds: -5 is negative"
    assert reasons[4] == "wait_seconds: 'abc' is not a number"
    assert reasons[5].startswith("cannot split the line into the header's columns")
    assert rejects["raw"].iloc[0].startswith("B2,,Support,2025-13-45")


def test_loading_the_same_file_twice_adds_nothing(config_path: Path) -> None:
    inbox = config_path.parent / "inbox"
    body = HEADER + "C1,,Support,2025-03-10 08:01:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice\nC2,,Support,2025-03-10 08:02:00,,,BAD,1,1,,,,\n"
    write_csv(inbox / "a.csv", body)
    args = ["--config", str(config_path), "--as-of", "2025-03-11"]
    assert load_bronze.main(args) == 0
    engine = _engine(config_path)
    first = (_rows(engine, tables.bronze_cdr), _rows(engine, tables.bronze_rejects))
    write_csv(inbox / "same_content_other_name.csv", body)  # skipped by content hash
    assert load_bronze.main(args) == 0
    assert _rows(engine, tables.bronze_cdr).equals(first[0])
    assert _rows(engine, tables.bronze_rejects).equals(first[1])
    # A later export that repeats a row and adds one: the repeated row is skipped row by row.
    write_csv(inbox / "b.csv", body + "C3,,Support,2025-03-10 08:03:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice\n")
    assert load_bronze.main(args) == 0
    assert load_bronze.main(args) == 0
    assert sorted(_rows(engine, tables.bronze_cdr)["call_id"]) == ["C1", "C3"]
    with engine.connect() as conn:
        log = db.read_table(conn, tables.bronze_load_log)
    assert log["rows_loaded"].tolist() == [1, 1]
    assert log["rows_duplicate"].tolist() == [0, 1]
    assert log["rows_rejected"].tolist() == [1, 1]  # b.csv's bad row is a row of b.csv: recorded for it


def test_timestamps_with_an_offset_are_converted_to_local_time(config_path: Path) -> None:
    write_csv(config_path.parent / "inbox" / "utc.csv", HEADER + """\
        D1,,Support,2025-07-01T06:30:00Z,,,ANSWERED,30,240,C1,+4670111,ag1,voice
        D2,,Support,2025-07-01T08:30:00+02:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice
        """)
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-07-02"]) == 0
    legs = _rows(_engine(config_path), tables.bronze_cdr)
    # Summer time in Stockholm is UTC+2: both are 08:30 local, 06:30 UTC.
    assert legs["start_time"].tolist() == [pd.Timestamp("2025-07-01 08:30")] * 2
    assert legs["start_time_utc"].tolist() == [pd.Timestamp("2025-07-01 06:30")] * 2


def test_date_and_time_columns_and_a_composite_id_are_mapped_by_config(tmp_path: Path) -> None:
    # The layout of a real bank export: tab-separated, yymmdd date and H:MM:SS time in separate columns,
    # call ids that repeat across lines, customer 0 meaning "unknown", outcome codes.
    config = write_config(
        tmp_path,
        source__csv_glob="inbox/*.txt", source__delimiter="\t",
        source__columns={"call_id": ["vru+line", "call_id"], "queue": "type",
                         "start_time": {"date": "date", "time": "vru_entry", "format": "%y%m%d %H:%M:%S"},
                         "outcome": "outcome", "handle_seconds": "ser_time", "wait_seconds": "q_time",
                         "customer_id": "customer_id"},
        source__missing_values={"customer_id": ["0"]},
        source__outcome_map={"answered": ["AGENT"], "abandoned": ["HANG"], "other": ["PHANTOM"]},
        timezone="Asia/Jerusalem", rules__holidays={"country": "IL", "subdivision": None, "extra_closed_dates": []},
    )
    write_csv(tmp_path / "inbox" / "feb.txt", """\
        vru+line\tcall_id\tcustomer_id\ttype\tdate\tvru_entry\tq_time\toutcome\tser_time
        AA0101\t34536\t0\tPS\t990201\t7:02:47\t0\tAGENT\t166
        AA0102\t34536\t27089\tPE\t990201\t10:15:03\t35\tHANG\t0
        """)
    assert load_bronze.main(["--config", str(config), "--as-of", "1999-03-01"]) == 0
    legs = _rows(_engine(config), tables.bronze_cdr).sort_values("call_id")
    assert legs["call_id"].tolist() == ["AA0101|34536", "AA0102|34536"]
    assert legs["start_time"].tolist() == [pd.Timestamp("1999-02-01 07:02:47"), pd.Timestamp("1999-02-01 10:15:03")]
    assert legs["outcome"].tolist() == ["answered", "abandoned"]
    assert pd.isna(legs["customer_id"].iloc[0]) and legs["customer_id"].iloc[1] == "27089"


def test_missing_export_column_is_a_one_line_error_naming_file_and_key(config_path: Path, capsys) -> None:
    write_csv(config_path.parent / "inbox" / "bad.csv", "CallID,Queue,Result,HandleTime\nX1,Support,ANSWERED,10\n")
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "bad.csv: column 'ParentCallID' (source.columns.parent_call_id), 'StartTime' (source.columns.start_time)" in err
    with _engine(config_path).connect() as conn:  # nothing half-written
        assert conn.execute(select(func.count()).select_from(tables.bronze_cdr)).scalar() == 0
        runs = db.read_table(conn, tables.pipeline_runs)
    assert runs["status"].tolist() == ["failed"]


def test_semicolon_delimiter_and_decimal_comma_and_cp1252(tmp_path: Path) -> None:
    config = write_config(tmp_path, source__delimiter=";", source__decimal=",", source__encoding="cp1252")
    text = HEADER.replace(",", ";") + "E1;;Kundtjänst Åre;2025-03-10 08:01:00;;;ANSWERED;1,5;240,25;C1;;;\n"
    (tmp_path / "inbox" / "excel.csv").write_bytes(text.encode("cp1252"))
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-11"]) == 0
    legs = _rows(_engine(config), tables.bronze_cdr)
    assert legs["queue"].tolist() == ["Kundtjänst Åre"]
    assert legs["wait_seconds"].tolist() == [1.5] and legs["handle_seconds"].tolist() == [240.25]


def test_wrong_encoding_is_a_one_line_error_with_the_fix(config_path: Path, capsys) -> None:
    text = HEADER + "E1,,Kundtjänst,2025-03-10 08:01:00,,,ANSWERED,1,240,C1,,,\n"
    (config_path.parent / "inbox" / "latin.csv").write_bytes(text.encode("cp1252"))
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11"]) == 2
    assert "set source.encoding" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", HEADER])
def test_empty_or_header_only_file_loads_nothing_without_error(config_path: Path, content: str) -> None:
    (config_path.parent / "inbox" / "empty.csv").write_text(content)
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11"]) == 0
    assert len(_rows(_engine(config_path), tables.bronze_cdr)) == 0
