"""Security: secrets never reach logs, emails, pipeline_runs or tracebacks; names from config and file headers
never become SQL; model artifacts are only read as verified LightGBM text, never unpickled.

Secrets are recognisable fake passwords put where the real ones go (the database URL in WFM_DB_URL, a source
URL in an env var, the SMTP password env var); the steps are then made to fail in the ways that print
connection details (unreachable database, SMTP refusing the login) and every output is searched for them.
"""

from __future__ import annotations

import base64
import importlib
import os
import pickle
import shutil
import socket
import socketserver
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import inspect

from common import db, registry, tables
from common.config import load_config
from common.errors import ModelError
from common.forecaster import QuantileForecaster
from tests.conftest import REPO, write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

DB_PASSWORD = "FAKE-DbPa55-7f3e91"
SMTP_PASSWORD = "FAKE-SmtpPa55-c4d2a8"
SOURCE_PASSWORD = "FAKE-SrcPa55-0b9e55"
STEPS = ["0_load_bronze", "1_build_silver", "1_5_segment_customers", "2_train", "3_forecast", "4_evaluate",
         "5_report"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_db_url() -> str:
    return f"postgresql+psycopg://wfm:{DB_PASSWORD}@127.0.0.1:{closed_port()}/wfm"


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return [p for p in (DB_PASSWORD, SMTP_PASSWORD, SOURCE_PASSWORD) if p.encode() in data]


@pytest.mark.parametrize("step, extra", [*((s, []) for s in STEPS), ("2_train", ["--list"])])
def test_an_unreachable_database_is_one_line_without_its_password(step: str, extra: list[str], tmp_path: Path,
                                                                   monkeypatch, capsys) -> None:
    config = write_config(tmp_path)
    monkeypatch.setenv("WFM_DB_URL", _unreachable_db_url())
    assert importlib.import_module(step).main(["--config", str(config), "--as-of", "2025-03-10", *extra]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{step}: error: cannot use the database postgresql+psycopg://wfm:***@127.0.0.1:")
    assert "Connection refused" in last
    assert _leaks(out + err) == []


class _RefusingSmtp(socketserver.StreamRequestHandler):
    """An SMTP server that offers AUTH and refuses every login, remembering what the client sent."""

    received: list[bytes] = []

    def handle(self) -> None:
        self.wfile.write(b"220 fake.example ESMTP\r\n")
        for line in self.rfile:
            self.received.append(line)
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-fake.example\r\n250 AUTH PLAIN LOGIN\r\n")
            elif verb == b"AUTH":
                self.wfile.write(b"535 5.7.8 Authentication credentials invalid\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RefusingSmtp)
    server.daemon_threads = True
    _RefusingSmtp.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _project(tmp_path: Path, smtp_port: int) -> Path:
    """A copy of the project's code (sharing .venv) whose config sends mail through `smtp_port` with a login."""
    root = tmp_path / "project"
    root.mkdir()
    for item in REPO.iterdir():
        if item.name == "common":
            shutil.copytree(item, root / item.name, ignore=shutil.ignore_patterns("__pycache__"))
        elif item.suffix in (".py", ".sh", ".txt") and item.name != "conftest.py":
            shutil.copy2(item, root / item.name)
    (root / ".venv").symlink_to(REPO / ".venv")
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    raw["report"]["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "username": "wfm-mailer",
                             "password_env": "WFM_SMTP_PASSWORD", "sender": "wfm@example.com"}
    (root / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return root


def test_a_failed_night_leaks_neither_the_database_nor_the_smtp_password(tmp_path: Path, smtp_server: int) -> None:
    project = _project(tmp_path, smtp_server)
    env = {**os.environ, "WFM_DB_URL": _unreachable_db_url(), "WFM_SMTP_PASSWORD": SMTP_PASSWORD}
    done = subprocess.run(["bash", "run_daily.sh", "--as-of", "2025-03-10"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "FAILED at step 0" in done.stderr
    # The alert really went to the server and logged in with the password (so it was in play) ...
    plain = [base64.b64decode(line.split()[-1]) for line in _RefusingSmtp.received if line.startswith(b"AUTH PLAIN")]
    assert plain and SMTP_PASSWORD.encode() in plain[0]
    # ... yet no output, log or kept email holds either password.
    assert _leaks(done.stdout + done.stderr) == []
    written = [p for p in project.rglob("*") if p.is_file() and p.parent.name in ("logs", "failures")]
    assert any(p.suffix == ".eml" for p in written) and any(p.suffix == ".log" for p in written)
    for path in written:
        assert _leaks(path.read_bytes()) == [], path
    eml = next(p for p in written if p.suffix == ".eml").read_text()
    assert "cannot use the database postgresql+psycopg://wfm:***@" in eml


def test_a_source_database_password_stays_out_of_pipeline_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    config = write_config(tmp_path, source__csv_glob=None, source__sql_url_env="WFM_TEST_SOURCE_URL",
                          source__sql_query="SELECT * FROM acd_calls WHERE StartTime > :watermark")
    monkeypatch.setenv("WFM_TEST_SOURCE_URL",
                       f"postgresql+psycopg://acd:{SOURCE_PASSWORD}@127.0.0.1:{closed_port()}/acd")
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-10"]) == 2
    err = capsys.readouterr().err
    assert "source.sql_query failed" in err.strip().splitlines()[-1] and _leaks(err) == []
    with db.make_engine(load_config(config).database_url).connect() as conn:
        runs = db.read_table(conn, tables.pipeline_runs)
    assert runs["status"].tolist() == ["failed"] and _leaks(runs["message"].iloc[0]) == []
    assert _leaks((tmp_path / "data" / "wfm.db").read_bytes()) == []


# --- names that could carry SQL --------------------------------------------------------------------------------

def test_a_table_name_from_config_that_could_carry_sql_stops_the_run_before_any_work(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, training__exogenous_table="drivers; DROP TABLE silver_daily; --")
    assert importlib.import_module("2_train").main(["--config", str(config), "--as-of", "2025-03-10"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == ("2_train: error: config.yaml: training.exogenous_table: 'drivers; DROP TABLE silver_daily; --' "
                    "is not a plain SQL identifier (letters, digits, _ ; max 63 chars) "
                    "(got 'drivers; DROP TABLE silver_daily; --')")
    assert not (tmp_path / "data" / "wfm.db").exists()  # refused before the database was even opened


def test_sql_in_file_headers_and_values_is_only_ever_data(tmp_path: Path) -> None:
    evil_column = 'Queue"; DROP TABLE bronze_cdr; --'
    evil_queue = "Support'); DROP TABLE silver_daily; --"
    config = write_config(tmp_path, source__columns={
        "call_id": "CallID", "queue": evil_column, "start_time": "StartTime", "outcome": "Result",
        "handle_seconds": "HandleTime"})
    header = f'CallID,"{evil_column.replace(chr(34), chr(34) * 2)}",StartTime,Result,HandleTime,"x INT); --"\n'
    write_csv(tmp_path / "inbox" / "evil.csv", header + f"""\
        E1,"{evil_queue}",2025-03-10 08:05:00,ANSWERED,120,1
        E2,"{evil_queue}",2025-03-10 09:05:00,ANSWERED,180,2
        """)
    args = ["--config", str(config), "--as-of", "2025-03-11", "--workers", "0"]
    assert load_bronze.main(args) == 0 and build_silver.main(args) == 0
    engine = db.make_engine(load_config(config).database_url)
    assert set(inspect(engine).get_table_names()) == set(tables.metadata.tables)
    with engine.connect() as conn:
        daily = db.read_table(conn, tables.silver_daily)
        bronze = db.read_table(conn, tables.bronze_cdr)
    assert bronze["queue"].tolist() == [evil_queue] * 2 and set(bronze.columns) == {c.name for c in tables.bronze_cdr.c}
    assert daily.loc[daily["date"] == "2025-03-10", ["queue", "offered"]].values.tolist() == [[evil_queue, 2.0]]


# --- model artifacts: verified LightGBM text, never a pickle --------------------------------------------------

class _Payload:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (Path.write_text, (self.marker, "unpickled"))


def _registered(tmp_path: Path) -> tuple:
    tmp_path.mkdir()
    cfg = load_config(write_config(tmp_path))
    engine = db.make_engine(cfg.database_url)
    db.ensure_schema(engine)
    dates = pd.date_range("2024-01-01", periods=100, freq="D")
    rng = np.random.default_rng(1)
    history = pd.DataFrame({"series": "A", "date": dates, "y": rng.poisson(100, len(dates)).astype(float),
                            "is_open": True, "is_holiday": False})
    holidays = pd.DataFrame({"date": pd.to_datetime(["2024-04-01"]), "holiday_name": "x"})
    model = QuantileForecaster(params={"n_estimators": 5, "min_data_in_leaf": 5}, calibrate=False)
    model = model.fit(history, holidays)
    folder = cfg.path(cfg.training.model_dir) / "v1"
    shas = registry.write_artifacts(folder, model, {"version": "v1"})
    entry = {"version": "v1", "created_at": datetime(2025, 1, 1), "data_hash": "d" * 64, "params": {}, "metrics": {},
             "feature_importance": {}, "artifact_path": f"{cfg.training.model_dir}/v1", "artifact_sha256": shas}
    with engine.begin() as conn:
        registry.save_version(conn, entry, "production", "test")
    return cfg, engine, folder


def test_a_pickle_in_the_model_folder_is_never_loaded(tmp_path: Path) -> None:
    cfg, engine, folder = _registered(tmp_path / "p")
    marker = tmp_path / "unpickled.txt"
    payload = pickle.dumps(_Payload(marker))
    # Beside intact files: ignored, the model loads from its text files.
    for name in ("model.pkl", "model_p50.pkl", "model.joblib"):
        (folder / name).write_bytes(payload)
    version, model = registry.load_production(engine, cfg)
    assert version == "v1" and model.quantiles_ == (0.1, 0.5, 0.9)
    # Instead of a missing text model: refused, named.
    (folder / "model_p50.txt").unlink()
    with pytest.raises(ModelError, match=r"model_p50.txt is missing"):
        registry.load_production(engine, cfg)
    # Disguised as the text model: its sha256 gives it away.
    (folder / "model_p50.txt").write_bytes(payload)
    with pytest.raises(ModelError, match=r"model_p50.txt has sha256 .* refusing to load it"):
        registry.load_production(engine, cfg)
    assert not marker.exists()


def test_recorded_overrides_mask_the_database_password():
    from common.cli import recorded_overrides

    url = "postgresql+psycopg://wfm:s3cret-pw@db.example:5432/wfm"
    assert recorded_overrides([f"database.url={url}", "staffing.service_level=0.9"], url) == [
        "database.url=postgresql+psycopg://wfm:***@db.example:5432/wfm", "staffing.service_level=0.9"]


AT_PASSWORD_HEAD, AT_PASSWORD_TAIL = "Summer2025", "Corp7Tail"  # a password "Summer2025@Corp7Tail", written raw


@pytest.mark.parametrize("step, extra", [*((s, []) for s in STEPS), ("2_train", ["--list"])])
def test_a_password_with_an_unencoded_at_sign_is_masked_whole_and_the_fix_named(step: str, extra: list[str],
                                                                                 tmp_path: Path, monkeypatch,
                                                                                 capsys) -> None:
    # The URL parser splits at the first '@': the password's tail becomes part of the host, which the driver echoes
    # ("failed to resolve host 'Corp7Tail@127.0.0.1'"). A real connection attempt to a closed loopback port.
    config = write_config(tmp_path)
    url = f"postgresql+psycopg://wfm:{AT_PASSWORD_HEAD}@{AT_PASSWORD_TAIL}@127.0.0.1:{closed_port()}/wfm"
    monkeypatch.setenv("WFM_DB_URL", url)
    assert importlib.import_module(step).main(["--config", str(config), "--as-of", "2025-03-10", *extra]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{step}: error: cannot use the database postgresql+psycopg://wfm:***@127.0.0.1:")
    assert "%40" in last  # the fix: URL-encode the '@'
    assert AT_PASSWORD_HEAD not in out + err and AT_PASSWORD_TAIL not in out + err


def test_safe_url_and_redact_mask_up_to_the_last_at_sign():
    from common.cli import _redact

    url = "postgresql+psycopg://wfm:Summer2025@Corp7Tail@db.example:5432/wfm"
    assert db.safe_url(url) == "postgresql+psycopg://wfm:***@db.example:5432/wfm"
    assert db.safe_url(db.make_engine(url)) == "postgresql+psycopg://wfm:***@db.example:5432/wfm"
    said = "failed to resolve host 'Corp7Tail@db.example': ... password Summer2025@Corp7Tail, url " + url
    assert _redact(said, url) == ("failed to resolve host '***@db.example': ... password ***, url "
                                  "postgresql+psycopg://wfm:***@db.example:5432/wfm")


def test_the_failure_mail_masks_a_url_up_to_its_last_at_sign(tmp_path: Path) -> None:
    from common import mail

    config = write_config(tmp_path)
    log = tmp_path / "run.log"
    log.write_text("engine: postgresql+psycopg://wfm:Summer2025@Corp7Tail@db.example:5432/wfm\n")
    mail.main(["--config", str(config), "--failure", "--subject", "step 0 failed", "--log-file", str(log)])
    (eml,) = (tmp_path / "output" / "failures").glob("*.eml")
    text = eml.read_text()
    assert "postgresql+psycopg://wfm:***@db.example:5432/wfm" in text
    assert AT_PASSWORD_HEAD not in text and AT_PASSWORD_TAIL not in text
