"""Load and validate `config.yaml`: one typed object, errors that name the key.

Every setting lives in the YAML file (documented inline there). Loading checks
types, ranges and unknown keys, resolves relative paths against the config
file's folder (so cron can run from anywhere), and applies overrides:
env `WFM_DB_URL` for `database.url`, and `--set key.path=value` from the CLI.
Secrets never sit in the file: only the *name* of the environment variable
that holds them (`database.password_env`, `report.smtp.password_env`).
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.errors import ConfigError

CANONICAL_CDR_COLUMNS = (
    "call_id", "queue", "start_time", "outcome", "handle_seconds", "talk_seconds", "hold_seconds",
    "wrap_seconds", "wait_seconds", "customer_id", "caller_id", "answer_time", "end_time", "agent_id",
    "parent_call_id", "channel",
)
CANONICAL_INTERVAL_COLUMNS = ("queue", "interval_start", "offered", "handled", "abandoned", "aht_seconds")
TIMESTAMP_COLUMNS = ("start_time", "answer_time", "end_time", "interval_start")
OUTCOMES = ("answered", "abandoned", "short_abandon", "other")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str = "sqlite:///data/wfm.db"
    password_env: str | None = None  # name of an env var whose value is put into the URL's password


class TimestampSpec(_Strict):
    """A timestamp built from one column, or from a date column plus a time-of-day column."""

    column: str | None = None
    date: str | None = None
    time: str | None = None
    format: str | None = None  # strptime format of the (joined "date time") text; None = ISO 8601

    @model_validator(mode="after")
    def _one_form(self) -> TimestampSpec:
        if bool(self.column) == bool(self.date):
            raise ValueError("give either `column`, or `date` (with optional `time`)")
        if self.time and not self.date:
            raise ValueError("`time` needs `date`")
        return self


ColumnSpec = str | list[str] | TimestampSpec


class PseudonymizeConfig(_Strict):
    """Personal ids replaced at load by a keyed hash (common/pseudonym.py); the key only ever in the environment."""

    enabled: bool = False
    key_env: str = "WFM_PSEUDONYM_KEY"  # name of the env var holding the secret key (at least 32 characters)
    columns: list[Literal["caller_id", "customer_id", "agent_id"]] = ["caller_id", "customer_id"]
    raw_columns: list[str] = Field(default_factory=list)  # more export columns to pseudonymise in bronze_rejects.raw

    @field_validator("key_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("must be the *name* of an environment variable (letters, digits, _), never the key itself")
        return v


class SourceConfig(_Strict):
    kind: Literal["cdr", "interval"] = "cdr"
    csv_glob: str | None = "data/inbox/*.csv"
    sql_url: str | None = None
    sql_url_env: str | None = None  # env var holding the source DB URL (it may carry a password)
    sql_query: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    chunk_rows: int = Field(200_000, ge=1_000, le=50_000_000)
    timestamp_format: str | None = None  # default strptime format for timestamp columns; None = ISO 8601
    # Times before this are placeholders (0001-01-01, 1900-01-01) or a wrong date format, not calls: rejected.
    # The upper side is the clock: more than a day in the future is rejected too.
    earliest_date: date = date(1990, 1, 1)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    missing_values: dict[str, list[str]] = Field(default_factory=dict)
    outcome_map: dict[str, list[str]] = Field(default_factory=dict)
    pseudonymize: PseudonymizeConfig = PseudonymizeConfig()
    # bronze_rejects rows (raw export lines, personal data) are deleted this many days after their load; null = keep
    rejects_retention_days: int | None = Field(90, ge=1, le=36600)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if v == "\\t":
            v = "\t"
        if len(v) != 1:
            raise ValueError(f"{v!r} must be one character (use \"\\t\" for tab)")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            # Windows calls its 8-bit code page "ANSI"; for Western European text that is cp1252.
            raise ValueError(f"{v!r} is not an encoding name Python knows; for Windows \"ANSI\" text use cp1252 "
                             "(utf-8, utf-16, latin-1 are others)") from None
        return v

    @field_validator("earliest_date")
    @classmethod
    def _after_1700(cls, v: date) -> date:
        if v.year < 1700:  # timestamps are stored as datetime64[ns], which starts in 1677
            raise ValueError(f"{v} must be 1700-01-01 or later")
        return v

    @model_validator(mode="after")
    def _columns_fit_kind(self) -> SourceConfig:
        allowed = CANONICAL_CDR_COLUMNS if self.kind == "cdr" else CANONICAL_INTERVAL_COLUMNS
        for name, spec in self.columns.items():
            if name not in allowed:
                raise _key_error(("columns", name), f"unknown canonical column for kind {self.kind}", allowed)
            if isinstance(spec, TimestampSpec) and name not in TIMESTAMP_COLUMNS:
                raise _key_error(("columns", name), "only timestamp columns take {column|date, time, format}", ())
            if isinstance(spec, list) and name not in ("call_id", "parent_call_id", "customer_id", "queue"):
                raise _key_error(("columns", name), "only id columns can be joined from several columns", ())
        required = ("call_id", "queue", "start_time", "outcome") if self.kind == "cdr" else ("queue", "interval_start", "offered")
        for name in required:
            if name not in self.columns:
                raise _key_error(("columns", name), "is required: map it to your export's column name", ())
        if self.kind == "cdr":
            has_parts = any(k in self.columns for k in ("talk_seconds", "hold_seconds", "wrap_seconds"))
            if "handle_seconds" not in self.columns and not has_parts:
                raise _key_error(("columns", "handle_seconds"),
                                 "is required (or talk_seconds/hold_seconds/wrap_seconds)", ())
            for outcome in self.outcome_map:
                if outcome not in OUTCOMES:
                    raise _key_error(("outcome_map", outcome), "unknown canonical outcome", OUTCOMES)
            if not self.outcome_map:
                raise _key_error(("outcome_map",), "is required: list your export's values for answered/abandoned", ())
        if not self.csv_glob and not (self.sql_query and (self.sql_url or self.sql_url_env)):
            raise ValueError("set csv_glob, or sql_query with sql_url or sql_url_env")
        return self


class HolidayConfig(_Strict):
    country: str | None = "SE"
    subdivision: str | None = None
    extra_closed_dates: list[date] = Field(default_factory=list)
    open_holidays: list[date | str] = Field(default_factory=list)  # public holidays worked anyway: names or dates


class OpeningHoursConfig(_Strict):
    default: dict[str, str | None] = Field(default_factory=lambda: {
        "mon": "08:00-18:00", "tue": "08:00-18:00", "wed": "08:00-18:00", "thu": "08:00-18:00",
        "fri": "08:00-18:00", "sat": "closed", "sun": "closed"})
    queues: dict[str, dict[str, str | None]] = Field(default_factory=dict)


class RulesConfig(_Strict):
    interval_minutes: Literal[5, 10, 15, 20, 30, 60] = 30
    redial_window_minutes: int = Field(10, ge=0, le=24 * 60)
    redial_match: Literal["customer_or_caller", "customer", "caller", "none"] = "customer_or_caller"
    short_abandon_seconds: float = Field(5, ge=0, le=3600)
    holidays: HolidayConfig = HolidayConfig()
    opening_hours: OpeningHoursConfig = OpeningHoursConfig()
    queue_aliases: dict[str, str] = Field(default_factory=dict)  # old queue name: current name (renamed in the ACD)

    @field_validator("queue_aliases")
    @classmethod
    def _resolve_aliases(cls, v: dict[str, str]) -> dict[str, str]:
        """Every old name mapped straight to the name it ends at (A: B, B: C means A: C); a cycle is an error."""
        clean = {str(k).strip(): str(n).strip() for k, n in v.items()}
        if any(not k or not n for k, n in clean.items()):
            raise ValueError("queue names must not be empty")
        resolved = {}
        for old in clean:
            chain = [old]
            while chain[-1] in clean:
                chain.append(clean[chain[-1]])
                if chain[-1] in chain[:-1]:
                    raise ValueError(f"{' -> '.join(map(repr, chain))} is a cycle; each old name must lead to one "
                                     "current name")
            resolved[old] = chain[-1]
        return resolved


class ValidationConfig(_Strict):
    # Share of the intervals that normally carry a queue's calls that must hold data (common/completeness.py); 0 = off
    completeness_min_share: float = Field(0.8, ge=0, le=1)
    min_calls_per_open_interval: float = Field(2.0, ge=0)  # queues quieter than this are not judged on completeness
    max_data_age_hours: float = Field(36, gt=0, le=24 * 366)
    volume_max_ratio: float = Field(3.0, gt=1)
    aht_min_seconds: float = Field(30, ge=0)
    aht_max_seconds: float = Field(3600, gt=0)
    holiday_horizon_days: int = Field(365, ge=0, le=3660)
    ignore_dates: list[date] = Field(default_factory=list)  # known outages: not judged for completeness, nor compared with

    @model_validator(mode="after")
    def _aht_range(self) -> ValidationConfig:
        if self.aht_max_seconds <= self.aht_min_seconds:
            raise ValueError(f"aht_max_seconds ({self.aht_max_seconds}) must be above aht_min_seconds ({self.aht_min_seconds})")
        return self


class SeriesConfig(_Strict):
    by: Literal["queue", "queue_segment"] = "queue"  # queue_segment needs customer ids (CDR sources)


Weekdays = list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]


class SegmentationConfig(_Strict):
    enabled: bool = True
    run_weekdays: Weekdays | None = ["sun"]           # weekly: a 180-day window barely moves in a day; null = nightly
    window_days: int = Field(180, ge=7, le=3660)
    k: int | None = Field(None, ge=2, le=20)          # fixed number of segments; null = choose by silhouette in k_range
    k_range: tuple[int, int] = (2, 6)
    min_contacts: int = Field(2, ge=1)                # customers with fewer contacts in the window are not segmented
    peak_hours: str = "09:00-12:00"                   # local time window counted as peak for the peak-share feature
    seed: int = 42

    @model_validator(mode="after")
    def _k_range(self) -> SegmentationConfig:
        lo, hi = self.k_range
        if not 2 <= lo <= hi <= 20:
            raise ValueError(f"k_range {list(self.k_range)} must be [low, high] with 2 <= low <= high <= 20")
        return self


class TrainingConfig(_Strict):
    retrain_weekdays: Weekdays | None = None                # null = every night
    backtest_origins: int = Field(4, ge=1, le=52)
    backtest_step_days: int = Field(7, ge=1, le=366)
    retrain_per_origin: bool = True                   # false: one model per setup for all origins (faster)
    promotion_margin: float = Field(0.02, ge=0, lt=1) # must beat production's setup's out-of-sample wMAPE by this share
    target: Literal["ratio", "log", "raw"] = "ratio"  # ratio: model calls / recent level (trees do not extrapolate)
    level: Literal["window", "seasonal"] = "seasonal" # what the ratio divides by (common/seasonality.py)
    level_half_life_days: float = Field(90.0, gt=0, le=3660) # seasonal level: weight halves every this many days back
    params: dict[str, Any] = Field(default_factory=dict)  # LightGBM parameters over the defaults
    seed: int = 42
    num_threads: int = Field(1, ge=1, le=1024)
    model_dir: str = "models"
    exogenous_table: str | None = None                # table with date[, series] and numeric daily columns
    min_history_days: int = Field(56, ge=14, le=3660)        # series with less open history get seasonal naive
    calibration_origins: int = Field(8, ge=0, le=52)  # inner backtest origins behind the conformal p10/p90; 0 = off

    @field_validator("exogenous_table")
    @classmethod
    def _plain_table_name(cls, v: str | None) -> str | None:
        # Checked at load so a name that could carry SQL stops the run before any work (training re-checks it).
        if v is not None and not _SAFE_NAME.match(v):
            raise ValueError(f"{v!r} is not a plain SQL identifier (letters, digits, _ ; max 63 chars)")
        return v


class ForecastGuardsConfig(_Strict):
    """Step 3's checks: daily ones (a series failing one gets seasonal naive) and the intraday profile's (a weekday
    failing one gets a more robust profile; the daily model stays)."""

    max_total_deviation: float = Field(0.40, gt=0)      # each day's p50 vs trailing same-weekday mean: +-share
    total_weeks: int = Field(4, ge=1, le=52)            # weeks of history behind that same-weekday mean
    max_interval_ratio: float = Field(5.0, gt=1)        # profile: an interval above this many times the mean interval
    min_shape_correlation: float = Field(0.8, ge=-1, le=1)  # profile vs the same weekday's shape_weeks profile
    shape_weeks: int = Field(8, ge=1, le=52)            # weeks of interval history behind that shape
    min_profile_days: int = Field(4, ge=1, le=52)       # a same-weekday profile resting on fewer days is replaced


class ForecastConfig(_Strict):
    horizon_days: int = Field(14, ge=1, le=92)
    quantiles: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9])
    profile_weeks: int = Field(16, ge=1, le=52)         # same-weekday intraday profile from this many recent weeks
    profile_long_weeks: int = Field(52, ge=1, le=104)   # robust profile candidates: same weekday over this many weeks
    profile_holdout_weeks: int = Field(4, ge=1, le=26)  # robust candidates are scored on these most recent weeks
    aht_weeks: int = Field(8, ge=1, le=52)              # same-weekday/interval AHT from this many recent weeks
    default_aht_seconds: float = Field(300, gt=0)       # AHT when a queue has no handled contact in those weeks
    guards: ForecastGuardsConfig = ForecastGuardsConfig()

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, v: list[float]) -> list[float]:
        if sorted(v) != v or len(set(v)) != len(v) or not all(0 < q < 1 for q in v) or 0.5 not in v:
            raise ValueError(f"{v} must be increasing, inside (0, 1), and include 0.5")
        return v


class StaffingConfig(_Strict):
    service_level: float = Field(0.80, gt=0, lt=1)
    answer_seconds: float = Field(20, ge=0)
    max_occupancy: float = Field(0.85, gt=0, le=1)
    shrinkage: float = Field(0.30, ge=0, lt=1)
    asa_target_seconds: float | None = Field(None, gt=0)


# One plain address: no display name, no separator, no whitespace or control character (a newline in a recipient
# would write a header of its own into the message).
_PLAIN_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")


def _plain_address(v: str) -> str:
    if not _PLAIN_ADDRESS.fullmatch(v):
        raise ValueError(f"{v!r} is not one plain e-mail address (name@example.com); list several as separate items")
    return v


class SmtpConfig(_Strict):
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password_env: str = "WFM_SMTP_PASSWORD"
    sender: str = "wfm-forecast@example.com"

    _sender = field_validator("sender")(classmethod(lambda cls, v: _plain_address(v)))


class ReportConfig(_Strict):
    output_dir: str = "output"
    recipients: list[str] = Field(default_factory=lambda: ["wfm-team@example.com"])
    # Queues drawn by name in the charts (the busiest by forecast volume); the rest are one "All other queues" panel.
    top_queues: int = Field(10, ge=1, le=60)
    smtp: SmtpConfig = SmtpConfig()

    @field_validator("recipients")
    @classmethod
    def _plain_addresses(cls, v: list[str]) -> list[str]:
        return [_plain_address(a) for a in v]


class EvaluationConfig(_Strict):
    """Step 4: stored forecasts scored against actuals, summarised over a trailing window of origins."""

    window_days: int = Field(28, ge=1, le=366)          # summary over forecast origins in the trailing N days


class AlertsConfig(_Strict):
    """Step 4's alert rules (WFM practice defaults); a warning threshold must be below its critical one."""

    horizon_day: int = Field(1, ge=1, le=92)            # MAPE and bias rules judge forecasts made this many days ahead
    mape_warning: float = Field(0.10, gt=0)             # daily MAPE above this on mape_warning_days open days running
    mape_warning_days: int = Field(3, ge=1, le=31)
    mape_critical: float = Field(0.15, gt=0)            # daily MAPE above this on the latest open day
    mape_min_actual: float = Field(50, ge=0)            # open days with fewer actual contacts: not judged by MAPE
    bias_warning: float = Field(0.03, gt=0)             # weekly |bias| above this, same sign, bias_warning_weeks running
    bias_warning_weeks: int = Field(2, ge=1, le=12)
    bias_critical: float = Field(0.05, gt=0)            # weekly |bias| above this in the last complete week
    bias_min_days: int = Field(7, ge=1, le=7)           # a week is judged with min(this, its open days) scored
    freshness_warning_hours: float = Field(2, gt=0)     # newest contact this late vs the end of the last open interval
    freshness_critical_hours: float = Field(6, gt=0)
    drift_warning_psi: float = Field(0.1, gt=0)         # population stability index, recent vs reference window
    drift_critical_psi: float = Field(0.3, gt=0)
    drift_recent_days: int = Field(28, ge=7, le=366)
    drift_reference_days: int = Field(364, ge=28, le=3660)
    drift_bins: int = Field(10, ge=2, le=50)
    naive_window_days: int = Field(28, ge=7, le=366)    # model vs seasonal naive over origins in the trailing N days
    naive_min_days: int = Field(10, ge=1, le=366)             # open days needed before that comparison is judged

    @model_validator(mode="after")
    def _warning_below_critical(self) -> AlertsConfig:
        for name in ("mape", "bias", "freshness", "drift"):
            unit = "_hours" if name == "freshness" else "_psi" if name == "drift" else ""
            warning, critical = getattr(self, f"{name}_warning{unit}"), getattr(self, f"{name}_critical{unit}")
            if warning > critical:
                raise ValueError(f"{name}_warning{unit} ({warning}) must not be above {name}_critical{unit} ({critical})")
        return self


class Config(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    timezone: str = "Europe/Stockholm"
    source: SourceConfig
    rules: RulesConfig = RulesConfig()
    validation: ValidationConfig = ValidationConfig()
    series: SeriesConfig = SeriesConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    training: TrainingConfig = TrainingConfig()
    forecast: ForecastConfig = ForecastConfig()
    staffing: StaffingConfig = StaffingConfig()
    report: ReportConfig = ReportConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    alerts: AlertsConfig = AlertsConfig()
    # Where the config file lives: relative paths in it are resolved against this folder.
    base_dir: Path = Path(".")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone name (e.g. Europe/Stockholm)") from None
        return v

    def path(self, value: str) -> Path:
        """A path from the config, resolved against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def database_url(self) -> str:
        """The database URL after env overrides, relative SQLite paths resolved, password filled in."""
        url = os.environ.get("WFM_DB_URL") or self.database.url
        return _resolve_url(url, self.base_dir, self.database.password_env, "database.password_env")

    @property
    def source_sql_url(self) -> str | None:
        url = os.environ.get(self.source.sql_url_env) if self.source.sql_url_env else self.source.sql_url
        if self.source.sql_url_env and not url:
            raise ConfigError(f"source.sql_url_env: environment variable {self.source.sql_url_env} is not set")
        return _resolve_url(url, self.base_dir, None, "") if url else None


class _KeyError(ValueError):
    def __init__(self, loc: tuple, msg: str, choices: tuple) -> None:
        super().__init__(msg)
        self.loc, self.msg, self.choices = loc, msg, choices


def _key_error(loc: tuple, msg: str, choices: tuple) -> ValueError:
    return _KeyError(loc, msg, choices)


def _resolve_url(url: str, base_dir: Path, password_env: str | None, password_key: str) -> str:
    from sqlalchemy.engine import make_url  # sqlalchemy is heavy; only needed once a URL is asked for

    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a long text
        raise ConfigError(f"database.url: cannot parse {url.split('@')[-1]!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db_path = Path(parsed.database)
        if not db_path.is_absolute():
            parsed = parsed.set(database=str((base_dir / db_path).resolve()))
    if password_env:
        secret = os.environ.get(password_env)
        if secret is None:
            raise ConfigError(f"{password_key}: environment variable {password_env} is not set")
        parsed = parsed.set(password=secret)
    return parsed.render_as_string(hide_password=False)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: use KEY.PATH=VALUE, e.g. --set rules.interval_minutes=15")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _apply_override(data: dict, keys: list[str], value: Any, item: str) -> None:
    node = data
    for k in keys[:-1]:
        if not isinstance(node.setdefault(k, {}), dict):
            raise ConfigError(f"--set {item!r}: {k} is not a section")
        node = node[k]
    node[keys[-1]] = value


def _format_validation_error(name: str, exc: ValidationError, raw: dict) -> str:
    err = exc.errors(include_url=False)[0]
    loc = tuple(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-union")))
    # A union like `str | list | TimestampSpec` reports one error per branch: keep the one that is not about the type.
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _KeyError):
        prefix = loc[:1] if loc and loc[0] == "source" else ()
        full = ".".join(("source", *ctx_err.loc) if not prefix else (*prefix, *ctx_err.loc))
        close = difflib.get_close_matches(str(ctx_err.loc[-1]), list(ctx_err.choices), n=1)
        hint = f"; did you mean {close[0]}?" if close else (
            f" (known: {', '.join(ctx_err.choices)})" if ctx_err.choices else "")
        return f"{name}: {full}: {ctx_err.msg}{hint}"
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(Config, loc[:-1])
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"; did you mean {'.'.join((*loc[:-1], close[0]))}?" if close else (
            f"; known keys here: {', '.join(k for k in known if k != 'base_dir')}" if known else "")
        return f"{name}: {key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{name}: {key}: required key is missing"
    value = _value_at(raw, loc)
    # A value given where the *name* of a secret's variable belongs may be the secret itself: never echoed.
    shown = f" (got {value!r})" if value is not _MISSING and not key.endswith("_env") else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"{name}: {key}: {msg}{shown}"


_MISSING = object()


def _value_at(data: Any, loc: tuple) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping: plain YAML keeps the last one and silently
    drops the first (e.g. a second `rules:` section would discard the whole first one)."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201 - PyYAML's signature
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (also on line {seen[key] + 1}); the first one would be "
                    "silently ignored: keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read, override and validate the config file; raise ConfigError naming the key on any problem."""
    path = Path(path or os.environ.get("WFM_CONFIG") or "config.yaml")
    name = path.name
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; pass --config PATH or set WFM_CONFIG")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "'\\t'" in problem:
            problem += " (YAML indents with spaces, never tabs)"
        raise ConfigError(f"{path}:{where}: YAML syntax error: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (database:, source:, ...)")
    for item in overrides or []:
        keys, value = _parse_override(item)
        _apply_override(raw, keys, value, item)
    if "base_dir" in raw:
        raise ConfigError(f"{name}: base_dir: unknown key")
    try:
        cfg = Config.model_validate({**raw, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(name, exc, raw)) from None
    _check_rules(cfg, name)
    return cfg


def _check_rules(cfg: Config, name: str) -> None:
    """Checks that need other modules (opening hours, holidays): done at load so a bad config fails before any work."""
    from common.calendar import parse_opening_hours

    try:
        parse_opening_hours(cfg.rules.opening_hours.model_dump(), key="rules.opening_hours")
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    for queue in cfg.rules.opening_hours.queues:
        if queue in cfg.rules.queue_aliases:
            current = cfg.rules.queue_aliases[queue]
            raise ConfigError(f"{name}: rules.opening_hours.queues.{queue}: {queue!r} is renamed to {current!r} by "
                              f"rules.queue_aliases; put its hours under {current!r}")
    country = cfg.rules.holidays.country
    if country:
        import holidays

        try:
            holidays.country_holidays(country, subdiv=cfg.rules.holidays.subdivision, years=[2000])
        except NotImplementedError:
            raise ConfigError(f"{name}: rules.holidays.country: {country!r} is not a country code the holidays package knows "
                              "(ISO 3166-1 alpha-2, e.g. SE, US)") from None
        except Exception as exc:  # holidays raises NotImplementedError or ValueError-like errors for subdivisions
            raise ConfigError(f"{name}: rules.holidays.subdivision: {cfg.rules.holidays.subdivision!r}: {exc}") from None


_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def safe_identifier(value: str, key: str) -> str:
    """A table or column name taken from config: letters, digits, underscore only (no SQL can ride in on it)."""
    if not _SAFE_NAME.match(value):
        raise ConfigError(f"{key}: {value!r} is not a plain SQL identifier (letters, digits, _ ; max 63 chars)")
    return value
