"""Step 0's fast paths: files parsed in batches, a parser process, vectorised parsing, stable row hashes."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from common import bronze, db, tables
from common.config import load_config
from common.row_hash import row_hashes
from common.source_values import TZ_SUFFIX, tz_suffix
from tests.conftest import CDR_HEADER, write_csv

load_bronze = importlib.import_module("0_load_bronze")

HEADER = CDR_HEADER
ROW = "{id},,Support,2025-03-10 08:{m:02d}:00,,,ANSWERED,30,240,C1,+4670111,ag1,voice\n"


def _row(i: int, prefix: str = "R") -> str:
    return ROW.format(id=f"{prefix}{i}", m=i)


def _bronze(config: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, tables.bronze_cdr), db.read_table(conn, tables.bronze_load_log)


def test_files_parsed_in_one_batch_are_counted_as_if_loaded_one_by_one(config_path: Path) -> None:
    inbox = config_path.parent / "inbox"
    args = ["--config", str(config_path), "--as-of", "2025-03-11"]
    write_csv(inbox / "a.csv", HEADER + _row(1) + _row(2))
    assert load_bronze.main(args) == 0
    # b and c go into one batch: b repeats a's R2 (already in bronze); c repeats b's new R3.
    write_csv(inbox / "b.csv", HEADER + _row(2) + _row(3))
    write_csv(inbox / "c.csv", HEADER + _row(3) + _row(4))
    assert load_bronze.main(args) == 0
    legs, log = _bronze(config_path)
    assert sorted(legs["call_id"]) == ["R1", "R2", "R3", "R4"]
    assert Path(legs.set_index("call_id").loc["R3", "source_name"]).name == "b.csv"  # the first file that has it
    counts = log.set_index(log["source_name"].map(lambda p: Path(p).name))
    assert counts.loc[["a.csv", "b.csv", "c.csv"], ["rows_read", "rows_loaded", "rows_duplicate"]].values.tolist() == \
        [[2, 2, 0], [2, 1, 1], [2, 1, 1]]


def test_a_parser_process_loads_what_this_process_loads(tmp_path: Path, monkeypatch) -> None:
    from tests.conftest import write_config

    bad = "X1,,Support,not a time,,,ANSWERED,1,1,,,,\n"
    configs = []
    for name in ("in_process", "parser_process"):
        (tmp_path / name).mkdir()
        configs.append(write_config(tmp_path / name))
        for prefix in ("R", "S"):  # two files: 29 good rows and one bad row each
            rows = "".join(_row(i, prefix) for i in range(1, 30))
            write_csv(tmp_path / name / "inbox" / f"{prefix}.csv", HEADER + rows + bad)
    monkeypatch.setattr(bronze, "PARSER_PROCESS_MIN_BYTES", 0)  # any backlog goes to the parser process
    for config, workers in zip(configs, ("0", "1")):
        assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-12", "--workers", workers]) == 0
    (legs_a, log_a), (legs_b, log_b) = (_bronze(c) for c in configs)
    key = ["call_id", "row_hash", "start_time_utc", "source_row", "load_id"]
    pd.testing.assert_frame_equal(legs_a[key].sort_values("call_id").reset_index(drop=True),
                                  legs_b[key].sort_values("call_id").reset_index(drop=True))
    assert len(legs_b) == 58 and log_b["rows_rejected"].tolist() == [1, 1]


def test_a_bad_file_in_the_parser_process_is_skipped_with_one_line_and_the_others_load(config_path: Path, monkeypatch,
                                                                                        capsys) -> None:
    # Issue 14.7: a file-level problem skips that file (it aborted the whole load before); only when no new file
    # can be loaded does step 0 fail.
    inbox = config_path.parent / "inbox"
    write_csv(inbox / "a.csv", HEADER + _row(1))
    write_csv(inbox / "b.csv", "CallID,Queue\nX,Support\n")
    monkeypatch.setattr(bronze, "PARSER_PROCESS_MIN_BYTES", 0)
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11", "--workers", "1"]) == 0
    assert "bronze: skipped " in capsys.readouterr().err
    legs, log = _bronze(config_path)
    assert len(legs) == 1 and log["status"].tolist() == ["loaded", "skipped"]
    assert "b.csv: column 'ParentCallID' (source.columns.parent_call_id)" in log["message"].iloc[1]
    (inbox / "a.csv").unlink()
    write_csv(inbox / "c.csv", "CallID,Queue\nY,Support\n")  # only bad files new: nothing to load, exit 2
    assert load_bronze.main(["--config", str(config_path), "--as-of", "2025-03-11", "--workers", "1"]) == 2
    assert "2 files could not be loaded: " in capsys.readouterr().err
    assert len(_bronze(config_path)[1]) == 2  # that run wrote nothing


def test_row_hashes_are_pandas_hash_pandas_object_in_hex() -> None:
    # Bronze's unique key: a faster implementation must give the very same values as the first one did.
    rng = np.random.default_rng(7)
    text = pd.DataFrame({
        "few": rng.choice(["answered", "abandoned", "", "Kundtjänst Åre"], 5000),  # factorised before hashing
        "many": [f"20250310-{i:06d}" for i in range(5000)],  # hashed value by value
        "mixed": rng.choice([f"C{i}" for i in range(3000)], 5000),
    }, dtype="str")
    keys = ("wfm-forecast-k01", "wfm-forecast-k02")
    a, b = (pd.util.hash_pandas_object(text, index=False, hash_key=k).to_numpy() for k in keys)
    assert row_hashes(text).tolist() == [f"{x:016x}{y:016x}" for x, y in zip(a, b)]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+-:ZT \n٣x", max_size=14)
                | st.text(max_size=3).map(lambda s: "2025-03-10 08:00:00" + s), min_size=1, max_size=20))
def test_tz_suffix_detection_agrees_with_the_regex(values: list[str]) -> None:
    got = tz_suffix(np.array(values, dtype=object))
    assert got.tolist() == [TZ_SUFFIX.search(v) is not None for v in values]
