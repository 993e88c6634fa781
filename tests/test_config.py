"""Config loading: every mistake is one line naming the key; overrides and env vars; secrets stay out of logs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from common.config import load_config, safe_identifier
from common.db import safe_url
from common.errors import ConfigError
from tests.conftest import REPO, write_config


def test_the_shipped_config_loads_with_paths_relative_to_its_folder() -> None:
    cfg = load_config(REPO / "config.yaml")
    assert cfg.database_url == f"sqlite:///{REPO / 'data' / 'wfm.db'}"
    assert cfg.path(cfg.source.csv_glob) == REPO / "data" / "inbox" / "*.csv"
    assert cfg.rules.interval_minutes == 30 and cfg.forecast.quantiles == [0.1, 0.5, 0.9]


@pytest.mark.parametrize("override, message", [
    ("rules.redial_windw=7", "rules.redial_windw: unknown key; did you mean rules.redial_window_minutes?"),
    ("rules.interval_minutes=7", "rules.interval_minutes: Input should be 5, 10, 15, 20, 30 or 60 (got 7)"),
    ("staffing.shrinkage=1.2", "staffing.shrinkage: Input should be less than 1 (got 1.2)"),
    ("forecast.horizon_days=0", "forecast.horizon_days: Input should be greater than or equal to 1 (got 0)"),
    ("timezone=Mars/Base", "timezone: 'Mars/Base' is not an IANA time zone name"),
    ("rules.holidays.country=XX", "rules.holidays.country: 'XX'"),
    ("rules.opening_hours.default.mon=18:00-08:00",
     "rules.opening_hours.default.mon: '18:00-08:00' ends before it starts"),
    ("source.columns.start_tme=Start", "source.columns.start_tme: unknown canonical column for kind cdr; did you mean start_time?"),
    ("forecast.quantiles=[0.9, 0.1]", "forecast.quantiles: Value error, [0.9, 0.1] must be increasing"),
    ("source.delimiter=;;", "source.delimiter: Value error, ';;' must be one character"),
    ("validation.aht_max_seconds=10", "aht_max_seconds (10.0) must be above aht_min_seconds (30.0)"),
    ("source.encoding=ANSI", "source.encoding: 'ANSI' is not an encoding name Python knows; for Windows \"ANSI\" "
                             "text use cp1252"),
    ("source.earliest_date=1500-01-01", "source.earliest_date: 1500-01-01 must be 1700-01-01 or later"),
])
def test_a_bad_value_names_its_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "config.yaml", [override])
    text = str(err.value)
    assert text.startswith("config.yaml: ") and "\n" not in text
    assert message.replace("Value error, ", "") in text


def test_a_missing_required_mapping_is_named(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    del raw["source"]["columns"]["outcome"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"c.yaml: source.columns.outcome: is required: map it to your export's column"):
        load_config(tmp_path / "c.yaml")


def test_missing_file_and_yaml_syntax_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found; pass --config PATH or set WFM_CONFIG"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("source:\n  kind: cdr\n   csv_glob: x\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line 3, column \d+: YAML syntax error"):
        load_config(tmp_path / "broken.yaml")


def test_env_db_url_wins_and_password_comes_from_env(monkeypatch, tmp_path: Path) -> None:
    config = write_config(tmp_path, database__url="postgresql+psycopg://wfm@db.example:5432/wfm",
                          database__password_env="WFM_TEST_DB_PASSWORD")
    with pytest.raises(ConfigError, match="database.password_env: environment variable WFM_TEST_DB_PASSWORD is not set"):
        _ = load_config(config).database_url
    monkeypatch.setenv("WFM_TEST_DB_PASSWORD", "s3cret-Pa55")
    url = load_config(config).database_url
    assert "s3cret-Pa55" in url
    assert "s3cret-Pa55" not in safe_url(url)  # what the logs show
    monkeypatch.setenv("WFM_DB_URL", "sqlite:///other.db")
    assert load_config(config).database_url == f"sqlite:///{(tmp_path / 'other.db').resolve()}"


def test_a_step_turns_a_config_error_into_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, rules__interval_minutes=45)
    step = importlib.import_module("1_build_silver")
    assert step.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["1_build_silver: error: config.yaml: rules.interval_minutes: Input should be 5, 10, 15, 20, 30 or 60 (got 45)"]


@pytest.mark.parametrize("name", ["campaigns", "daily_drivers_2025"])
def test_plain_identifiers_are_accepted(name: str) -> None:
    assert safe_identifier(name, "training.exogenous_table") == name


@pytest.mark.parametrize("name", ["x; DROP TABLE silver_daily", "a b", "1abc", '"quoted"'])
def test_identifiers_that_could_carry_sql_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="training.exogenous_table: .* is not a plain SQL identifier"):
        safe_identifier(name, "training.exogenous_table")


@pytest.mark.parametrize("script", ["0_load_bronze", "1_build_silver", "1_5_segment_customers", "2_train",
                                    "3_forecast", "4_evaluate", "5_report"])
def test_every_step_explains_itself_with_help(script: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        importlib.import_module(script).main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--as-of" in out and len(out.splitlines()) < 70  # about a screen


@pytest.mark.parametrize("override, message", [
    # (YAML 1.1 reads `1e8` as text, refused as not a number already; `1.0e+8` and 100000000 are numbers.)
    ("segmentation.window_days=1.0e+8", "segmentation.window_days: Input should be less than or equal to 3660"),
    ("training.backtest_step_days=100000000", "training.backtest_step_days: Input should be less than or equal to 366"),
    ("training.min_history_days=100000000", "training.min_history_days: Input should be less than or equal to 3660"),
    ("validation.holiday_horizon_days=100000000", "validation.holiday_horizon_days: Input should be less than or equal to 3660"),
])
def test_a_huge_number_is_one_line_naming_its_key_and_limit(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "config.yaml", [override])
    assert "\n" not in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("key, value", [
    ("report.recipients", ["wfm@example.com\nBcc: everyone@example.com"]),
    ("report.recipients", ["wfm@example.com, other@example.com"]),
    ("report.recipients", ["not an address"]),
    ("report.smtp.sender", "wfm@example.com\r\nBcc: x@example.com"),
])
def test_a_recipient_or_sender_that_is_not_one_plain_address_is_refused(tmp_path: Path, key: str, value) -> None:
    config = write_config(tmp_path, **{key.replace(".", "__"): value})
    with pytest.raises(ConfigError, match=rf"{key}.*is not one plain e-mail address \(name@example.com\)"):
        load_config(config)
