"""Pseudonymised ids at load (source.pseudonymize) and rejects retention (source.rejects_retention_days)."""

from __future__ import annotations

import hmac
import importlib
import pickle
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update

from common import db, tables
from common.config import load_config
from common.pseudonym import Pseudonymizer
from tests.conftest import CDR_HEADER, write_config

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")
segment_customers = importlib.import_module("1_5_segment_customers")

KEY = "wfm-test-key-0123456789abcdef0123"  # 33 characters
# Computed once outside Python: printf '%s' '+46701234567' | openssl dgst -sha256 -hmac "$KEY"
#   -> 950e15dd3164d84f9b11ff67ecd293f83bfa3d3cc75aa26787708d35327eddc7; the pseudonym is ps_ + its first 24 digits.
BY_OPENSSL = {"+46701234567": "ps_950e15dd3164d84f9b11ff67",
              "CUST-0001": "ps_bbd0c5632eb750168cfaf79f",
              "+46701110001": "ps_e02829a0af5e563a7a3c4ff0"}
ON = {"enabled": True, "key_env": "WFM_PSEUDONYM_KEY", "columns": ["caller_id", "customer_id"], "raw_columns": []}


def test_a_pseudonym_is_the_truncated_hmac_sha256_of_the_id_with_a_prefix() -> None:
    p = Pseudonymizer(KEY.encode())
    for value, expected in BY_OPENSSL.items():
        assert p.one(value) == expected
        assert expected == "ps_" + hmac.new(KEY.encode(), value.encode(), "sha256").hexdigest()[:24]
    assert Pseudonymizer(b"another key of at least 32 characters").one("+46701234567") != BY_OPENSSL["+46701234567"]


def test_same_id_same_pseudonym_and_empty_stays_empty() -> None:
    values = np.array(["+46701234567", "", "CUST-0001", "+46701234567"], dtype=object)
    out = Pseudonymizer(KEY.encode()).values(values)
    assert out.tolist() == [BY_OPENSSL["+46701234567"], "", BY_OPENSSL["CUST-0001"], BY_OPENSSL["+46701234567"]]


def test_the_key_is_never_shown_nor_pickled() -> None:
    p = Pseudonymizer(KEY.encode())
    assert KEY not in repr(p) and KEY not in str(p)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(p)


def test_raw_fields_are_pseudonymised_but_missing_value_markers_kept() -> None:
    p = Pseudonymizer(KEY.encode(), raw_columns={"CallerNumber": [], "CustomerID": ["0"]})
    frame = pd.DataFrame({"CallID": ["L1", "L2"], "CustomerID": ["0", " CUST-0001 "],
                          "CallerNumber": ["+46701234567", ""]}, dtype="str")
    out = p.raw_frame(frame)
    assert out.to_dict("list") == {"CallID": ["L1", "L2"], "CustomerID": ["0", BY_OPENSSL["CUST-0001"]],
                                   "CallerNumber": [BY_OPENSSL["+46701234567"], ""]}
    assert frame["CallerNumber"].tolist() == ["+46701234567", ""]  # the input is not modified
    line = p.raw_line("L3;0;+46701234567", ["CallID", "CustomerID", "CallerNumber", "Queue"], ";")
    assert line == f"L3;0;{BY_OPENSSL['+46701234567']}"


# --- end to end ---------------------------------------------------------------------------------------

def _leg(call: str, minute: int, customer: str, caller: str, result: str = "ANSWERED", wait: int = 20,
         handle: int = 120) -> str:
    start = pd.Timestamp("2025-03-10 08:00") + pd.Timedelta(minutes=minute)
    return f"{call},,Support,{start:%Y-%m-%d %H:%M:%S},,,{result},{wait},{handle if result == 'ANSWERED' else 0}," \
           f"{customer},{caller},,voice\n"


def _night1() -> tuple[str, list[str]]:
    """Monday 2025-03-10: 24 customers (12 with two short morning calls, 12 with three long afternoon ones), a
    redial chain, a caller without customer id, a rejected row and a last line cut off mid-row (both holding a
    caller number); also the clear ids to look for."""
    text = CDR_HEADER
    for i in range(1, 25):
        customer, caller = f"CUST-{i:04d}", f"+4670111{i:04d}"
        if i <= 12:
            text += "".join(_leg(f"{c}{i}", 60 * k + 5 * i, customer, caller, handle=60) for k, c in enumerate("AB"))
        else:
            text += "".join(_leg(f"{c}{i}", 300 + 60 * k + 5 * i, customer, caller, handle=900)
                            for k, c in enumerate("ABD"))
    text += _leg("R1", 200, "CUST-0100", "+46701110100", "ABANDONED", 40)
    text += _leg("R2", 204, "CUST-0100", "+46701110100")  # a true redial: one contact with R1
    text += _leg("N1", 210, "", "+46701234567")
    text += "X1,,Support,2025-13-45 99:00,,,ANSWERED,5,100,CUST-0999,+46709990001,,voice\n"
    text += "X2,,Support,2025-03-10 17:00:00,,,ANSWERED,5,100,CUST-0998,+4670999"  # no line end: cut off
    clear = [f"CUST-{i:04d}" for i in (*range(1, 25), 100, 999, 998)] + \
        [f"4670111{i:04d}" for i in (*range(1, 25), 100)] + ["46701234567", "46709990001", "4670999"]
    return text, clear


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("WFM_PSEUDONYM_KEY", KEY)
    return write_config(tmp_path, source__pseudonymize=ON,
                        rules__holidays={"country": "SE", "subdivision": None, "extra_closed_dates": []})


def _steps(config: Path, as_of: str, *steps) -> None:
    for step in steps:
        extra = ["--force"] if step is segment_customers else []
        assert step.main(["--config", str(config), "--as-of", as_of, *extra]) == 0


def _table(config: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, table)


def _every_text_value(path: Path) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text value in every table of a SQLite file."""
    out = []
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            cursor = conn.execute(f'SELECT * FROM "{name}"')
            columns = [d[0] for d in cursor.description]
            out += [(name, c, v) for row in cursor for c, v in zip(columns, row) if isinstance(v, str)]
    return out


def test_no_clear_id_anywhere_in_the_database_after_load_silver_and_segments(config: Path, capsys) -> None:
    night1, clear = _night1()
    (config.parent / "inbox" / "day1.csv").write_text(night1, encoding="utf-8")
    _steps(config, "2025-03-11", load_bronze, build_silver, segment_customers)

    values = _every_text_value(config.parent / "data" / "wfm.db")
    assert {t for t, _, _ in values} >= {"bronze_cdr", "bronze_rejects", "silver_calls", "gold_dim_customer_behavior"}
    leaks = [(t, c, v) for t, c, v in values for ident in clear if ident in v]
    assert leaks == []
    logged = capsys.readouterr()
    assert not [ident for ident in clear if ident in logged.out + logged.err] and KEY not in logged.out + logged.err
    assert "two ids" not in logged.err  # a first load has no history to mix with

    # The rows still work: a redial collapsed on pseudonyms, the same pseudonym in every table, rejects readable.
    calls = _table(config, tables.silver_calls).set_index("contact_id")
    assert len(calls) == 12 * 2 + 12 * 3 + 1 + 1 and calls.loc["R1", "attempts"] == 2
    assert calls.loc["N1", "caller_id"] == BY_OPENSSL["+46701234567"] and pd.isna(calls.loc["N1", "customer_id"])
    assert calls.loc["A1", "customer_id"] == calls.loc["B1", "customer_id"] == BY_OPENSSL["CUST-0001"]
    assert calls.loc["A1", "caller_id"] == BY_OPENSSL["+46701110001"]
    segments = _table(config, tables.gold_dim_customer_behavior)
    assert len(segments) == 24 and set(segments["customer_id"]) <= set(calls["customer_id"].dropna())
    rejects = _table(config, tables.bronze_rejects).sort_values("source_row")
    p = Pseudonymizer(KEY.encode())
    assert rejects["raw"].tolist() == [
        f"X1,,Support,2025-13-45 99:00,,,ANSWERED,5,100,{p.one('CUST-0999')},{p.one('+46709990001')},,voice",
        f"X2,,Support,2025-03-10 17:00:00,,,ANSWERED,5,100,{p.one('CUST-0998')},{p.one('+4670999')}"]


def test_the_same_id_gets_the_same_pseudonym_on_the_next_night(config: Path) -> None:
    night1, _ = _night1()
    (config.parent / "inbox" / "day1.csv").write_text(night1, encoding="utf-8")
    _steps(config, "2025-03-11", load_bronze, build_silver)
    # Night 2 repeats one of night 1's rows (an overlapping export) and CUST-0001 calls again on Tuesday.
    night2 = CDR_HEADER + _leg("A1", 5, "CUST-0001", "+46701110001", handle=60) + \
        "C1,,Support,2025-03-11 09:00:00,,,ANSWERED,5,100,CUST-0001,+46701110001,,voice\n"
    (config.parent / "inbox" / "day2.csv").write_text(night2, encoding="utf-8")
    _steps(config, "2025-03-12", load_bronze, build_silver)

    log = _table(config, tables.bronze_load_log).sort_values("load_id")
    assert log["rows_loaded"].tolist()[-1] == 1 and log["rows_duplicate"].tolist()[-1] == 1  # row hash is stable
    calls = _table(config, tables.silver_calls).set_index("contact_id")
    assert calls.loc[["A1", "B1", "C1"], "customer_id"].tolist() == [BY_OPENSSL["CUST-0001"]] * 3
    assert calls.loc["C1", "caller_id"] == calls.loc["A1", "caller_id"] == BY_OPENSSL["+46701110001"]


def test_turning_pseudonymisation_on_or_off_over_a_loaded_history_is_a_warning(config: Path, capsys) -> None:
    (config.parent / "inbox" / "day1.csv").write_text(_night1()[0], encoding="utf-8")
    _steps(config, "2025-03-11", load_bronze)
    assert "bronze_cdr holds" not in capsys.readouterr().err
    off = write_config(config.parent, source__pseudonymize={**ON, "enabled": False})
    (config.parent / "inbox" / "day2.csv").write_text(CDR_HEADER + _leg("C1", 1500, "CUST-0001", "+46701110001"))
    _steps(off, "2025-03-12", load_bronze)
    assert "bronze_cdr holds pseudonymised ids but source.pseudonymize is off" in capsys.readouterr().err
    on = write_config(config.parent, source__pseudonymize=ON)
    (config.parent / "inbox" / "day3.csv").write_text(CDR_HEADER + _leg("D1", 2940, "CUST-0001", "+46701110001"))
    _steps(on, "2025-03-13", load_bronze)
    err = capsys.readouterr().err
    assert "source.pseudonymize is on but bronze_cdr holds clear ids from earlier loads" in err
    assert "CUST-0001" not in err and "46701110001" not in err


@pytest.mark.parametrize("value, problem", [(None, "is not set"), ("", "is empty"),
                                            ("short-secret-17ch", "holds 17 characters, fewer than 32")])
def test_a_missing_or_short_key_stops_step0_with_one_line_naming_it(config: Path, monkeypatch, capsys,
                                                                    value, problem) -> None:
    if value is None:
        monkeypatch.delenv("WFM_PSEUDONYM_KEY")
    else:
        monkeypatch.setenv("WFM_PSEUDONYM_KEY", value)
    (config.parent / "inbox" / "day1.csv").write_text(_night1()[0], encoding="utf-8")
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-11"]) == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert errors == [err.splitlines()[-1]] and errors[0].startswith(
        f"0_load_bronze: error: source.pseudonymize.key_env: environment variable WFM_PSEUDONYM_KEY {problem}; ")
    assert "openssl rand -hex 32" in errors[0] and (not value or value not in err)
    assert _table(config, tables.bronze_cdr).empty


def test_an_env_value_in_place_of_the_key_name_is_a_config_error(tmp_path: Path) -> None:
    from common.errors import ConfigError

    path = write_config(tmp_path, source__pseudonymize={**ON, "key_env": "my secret key 123"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == ("config.yaml: source.pseudonymize.key_env: must be the *name* of an environment "
                                 "variable (letters, digits, _), never the key itself")  # the value is not echoed


def test_a_sql_source_is_pseudonymised_too(config: Path) -> None:
    source = config.parent / "acd.db"
    legs = pd.DataFrame([line.split(",") for line in (
        "S1,,Support,2025-03-10 09:00:00,,,ANSWERED,5,100,CUST-0001,+46701110001,,voice",
        "S2,,Support,not a time,,,ANSWERED,5,100,CUST-0999,+46709990001,,voice")],
        columns=CDR_HEADER.strip().split(","))
    with sqlite3.connect(source) as conn:
        legs.to_sql("acd_calls", conn, index=False)
    config = write_config(config.parent, source__pseudonymize=ON, source__csv_glob=None,
                          source__sql_url=f"sqlite:///{source}", source__sql_query="SELECT * FROM acd_calls")
    _steps(config, "2025-03-11", load_bronze)
    rows, rejects = _table(config, tables.bronze_cdr), _table(config, tables.bronze_rejects)
    assert rows[["customer_id", "caller_id"]].values.tolist() == [[BY_OPENSSL["CUST-0001"], BY_OPENSSL["+46701110001"]]]
    assert "CUST-0999" not in rejects["raw"].iloc[0] and "46709990001" not in rejects["raw"].iloc[0]


# --- rejects retention ---------------------------------------------------------------------------------

def _reject_file(config: Path, name: str, call: str) -> None:
    (config.parent / "inbox" / name).write_text(
        CDR_HEADER + f"{call},,Support,not a time,,,ANSWERED,5,100,C1,+461,,voice\n", encoding="utf-8")


@pytest.mark.parametrize("days, kept", [(90, ["new"]), (None, ["old", "new"])])
def test_retention_deletes_only_rejects_loaded_before_the_limit(tmp_path: Path, capsys, days, kept) -> None:
    config = write_config(tmp_path, source__rejects_retention_days=days)
    _reject_file(config, "a.csv", "old")
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-11"]) == 0
    with db.make_engine(load_config(config).database_url).begin() as conn:  # that load was 91 days ago
        conn.execute(update(tables.bronze_load_log).values(loaded_at=db.utc_now() - timedelta(days=91)))
    _reject_file(config, "b.csv", "new")
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-11"]) == 0

    rejects = _table(config, tables.bronze_rejects)
    assert sorted(r.split(",")[0] for r in rejects["raw"]) == sorted(kept)
    assert _table(config, tables.bronze_load_log)["rows_rejected"].tolist() == [1, 1]  # the counts stay
    runs = _table(config, tables.pipeline_runs)
    message = runs["message"].tolist()[-1]
    if days:
        assert message.endswith("; 1 rejected row(s) past source.rejects_retention_days (90) deleted")
        assert "bronze: 1 rejected row(s) loaded before" in capsys.readouterr().err
    else:
        assert "deleted" not in message


def test_clearing_old_ids_as_the_readme_says_triggers_no_silver_rebuild(config: Path) -> None:
    (config.parent / "inbox" / "day1.csv").write_text(_night1()[0], encoding="utf-8")
    _steps(config, "2025-03-11", load_bronze, build_silver)
    daily = _table(config, tables.silver_daily)
    with sqlite3.connect(config.parent / "data" / "wfm.db") as conn:  # the README's statements, cutoff 2025-03-11
        conn.execute("UPDATE bronze_cdr SET caller_id = NULL, customer_id = NULL WHERE start_date < '2025-03-11'")
        conn.execute("UPDATE silver_calls SET caller_id = NULL, customer_id = NULL WHERE date < '2025-03-11'")
    _steps(config, "2025-03-11", build_silver)
    assert _table(config, tables.pipeline_runs)["status"].tolist()[-1] == "skipped"  # bronze's rows and loads unchanged
    pd.testing.assert_frame_equal(_table(config, tables.silver_daily), daily)
    assert _table(config, tables.silver_calls)[["caller_id", "customer_id"]].isna().all().all()


def test_a_parser_process_takes_the_key_from_its_environment(config: Path, monkeypatch) -> None:
    from common import bronze

    night1, clear = _night1()
    (config.parent / "inbox" / "day1.csv").write_text(night1, encoding="utf-8")
    monkeypatch.setattr(bronze, "PARSER_PROCESS_MIN_BYTES", 0)  # the backlog goes to a spawned parser process
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-11", "--workers", "1"]) == 0
    legs = _table(config, tables.bronze_cdr).set_index("call_id")
    ids = legs.loc["A1", ["customer_id", "caller_id"]].tolist()
    assert ids == [BY_OPENSSL["CUST-0001"], BY_OPENSSL["+46701110001"]]
    assert not [v for _, _, v in _every_text_value(config.parent / "data" / "wfm.db") for i in clear if i in v]


def test_pseudonymised_load_and_retention_on_each_backend(tmp_path: Path, monkeypatch, database_url: str) -> None:
    monkeypatch.setenv("WFM_PSEUDONYM_KEY", KEY)
    config = write_config(tmp_path, source__pseudonymize=ON, database__url=database_url)
    (tmp_path / "inbox" / "day1.csv").write_text(_night1()[0], encoding="utf-8")
    _steps(config, "2025-03-11", load_bronze)
    with db.make_engine(load_config(config).database_url).begin() as conn:  # that load was 91 days ago
        conn.execute(update(tables.bronze_load_log).values(loaded_at=db.utc_now() - timedelta(days=91)))
    rejects = _table(config, tables.bronze_rejects)
    assert len(rejects) == 2 and all("ps_" in r and "4670999" not in r and "CUST" not in r for r in rejects["raw"])
    legs = _table(config, tables.bronze_cdr).set_index("call_id")
    ids = legs.loc["A1", ["customer_id", "caller_id"]].tolist()
    assert ids == [BY_OPENSSL["CUST-0001"], BY_OPENSSL["+46701110001"]]
    _reject_file(config, "b.csv", "new")
    _steps(config, "2025-03-11", load_bronze)
    assert [r.split(",")[0] for r in _table(config, tables.bronze_rejects)["raw"]] == ["new"]
