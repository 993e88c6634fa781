"""The typed keys of config.yaml, one pydantic model per section, and `Config`, the root that holds them.

Types, ranges, defaults and the checks inside one section live here; reading the YAML file, `--set` overrides and
the one-line error messages live in `common/config.py`. Add a key to its section's model here (and to config.yaml,
commented). The `source:` section is in `common/config_source.py`.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator, model_validator

from common.config_capacity import CapacityConfig
from common.config_notify import MetricsConfig, WebhookConfig
from common.config_source import SourceConfig, StrictModel
from common.errors import ConfigError

# A table or column name taken from config: letters, digits, underscore only (no SQL can ride in on it).
SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class DatabaseConfig(StrictModel):
    url: str = "sqlite:///data/wfm.db"
    password_env: str | None = None  # name of an env var whose value is put into the URL's password


class HolidayConfig(StrictModel):
    country: str | None = "SE"
    subdivision: str | None = None
    extra_closed_dates: list[date] = Field(default_factory=list)
    open_holidays: list[date | str] = Field(default_factory=list)  # public holidays worked anyway: names or dates


class OpeningHoursConfig(StrictModel):
    default: dict[str, str | None] = Field(default_factory=lambda: {
        "mon": "08:00-18:00", "tue": "08:00-18:00", "wed": "08:00-18:00", "thu": "08:00-18:00",
        "fri": "08:00-18:00", "sat": "closed", "sun": "closed"})
    queues: dict[str, dict[str, str | None]] = Field(default_factory=dict)


class RulesConfig(StrictModel):
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


class ValidationConfig(StrictModel):
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


class SeriesConfig(StrictModel):
    by: Literal["queue", "queue_segment"] = "queue"  # queue_segment needs customer ids (CDR sources)


Weekdays = list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]


class SegmentationConfig(StrictModel):
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


def plain_table_name(v: str | None) -> str | None:
    """A user table's name as given, or ValueError when it is not a plain SQL identifier."""
    if v is not None and not SAFE_NAME.match(v):
        raise ValueError(f"{v!r} is not a plain SQL identifier (letters, digits, _ ; max 63 chars)")
    return v


# A user's table named in the config: checked at load, so a name that could carry SQL stops the run before any work
# (the step reading it re-checks it).
TableName = Annotated[str | None, AfterValidator(plain_table_name)]


class TrainingConfig(StrictModel):
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
    exogenous_table: TableName = None                # table with date[, series] and numeric daily columns
    min_history_days: int = Field(56, ge=14, le=3660)        # series with less open history get seasonal naive
    calibration_origins: int = Field(8, ge=0, le=52)  # inner backtest origins behind the conformal p10/p90; 0 = off
    # p50 = learnt weights per queue over LightGBM, a ridge model, the 4-week same-weekday mean, seasonal naive and
    # the vendor's forecast (common/ensemble.py); false = LightGBM's p50 alone. Needs calibration_origins >= 2.
    ensemble: bool = True
    ensemble_shrink_origins: float = Field(1.0, ge=0, le=52)  # backtest origins' worth of pull toward the prior
    ensemble_prior: Literal["lightgbm", "equal"] = "lightgbm"  # what thin evidence shrinks toward (docs/accuracy.md)
    ensemble_min_gain: float = Field(0.0, ge=0, lt=1)  # the combination must beat LightGBM alone by this share, else it
    # which members may get weight (lightgbm always can): lightgbm, linear, same_weekday_mean, seasonal_naive, vendor
    ensemble_members: list[Literal["lightgbm", "linear", "same_weekday_mean", "seasonal_naive", "vendor"]] = [
        "lightgbm", "linear", "same_weekday_mean", "seasonal_naive", "vendor"]
    ensemble_half_life_origins: float = Field(2.0, ge=0, le=52)  # an origin's say halves every this many back; 0 = equal



class ForecastGuardsConfig(StrictModel):
    """Step 3's checks: daily ones (a series failing one gets seasonal naive) and the intraday profile's (a weekday
    failing one gets a more robust profile; the daily model stays)."""

    max_total_deviation: float = Field(0.40, gt=0)      # each day's p50 vs trailing same-weekday mean: +-share
    total_weeks: int = Field(4, ge=1, le=52)            # weeks of history behind that same-weekday mean
    max_interval_ratio: float = Field(5.0, gt=1)        # profile: an interval above this many times the mean interval
    min_shape_correlation: float = Field(0.8, ge=-1, le=1)  # profile vs the same weekday's shape_weeks profile
    shape_weeks: int = Field(8, ge=1, le=52)            # weeks of interval history behind that shape
    min_profile_days: int = Field(4, ge=1, le=52)       # a same-weekday profile resting on fewer days is replaced


class ForecastConfig(StrictModel):
    horizon_days: int = Field(14, ge=1, le=92)
    quantiles: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9])
    profile_weeks: int = Field(16, ge=1, le=52)         # same-weekday intraday profile from this many recent weeks
    profile_long_weeks: int = Field(52, ge=1, le=104)   # robust profile candidates: same weekday over this many weeks
    profile_holdout_weeks: int = Field(4, ge=1, le=26)  # robust candidates are scored on these most recent weeks
    aht_weeks: int = Field(8, ge=1, le=52)              # same-weekday/interval AHT from this many recent weeks
    default_aht_seconds: float = Field(300, gt=0)       # AHT when a queue has no handled contact in those weeks
    guards: ForecastGuardsConfig = ForecastGuardsConfig()
    vendor_table: TableName = None  # the WFM tool's forecasts (queue, date, forecast, issued_at): an ensemble member


    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, v: list[float]) -> list[float]:
        if sorted(v) != v or len(set(v)) != len(v) or not all(0 < q < 1 for q in v) or 0.5 not in v:
            raise ValueError(f"{v} must be increasing, inside (0, 1), and include 0.5")
        return v


class IntradayConfig(StrictModel):
    """The split of a queue that has no interval history (only daily totals, common/day_shape.py), and the intraday
    reforecast's settings."""

    # Weights per time of day, {"08:00": 5, "08:30": 7, ...} for every weekday or {mon: {...}, ...} per weekday;
    # null: such a queue is forecast by the day only (no intervals, no staffing).
    default_shape: dict[str, float] | dict[str, dict[str, float]] | None = None
    # The intraday reforecast (3_5_reforecast_intraday.py; common/reforecast.py).
    alert_deviation: float = Field(0.10, gt=0)          # alert when the projected day is this share off the nightly
    trust_k: float = Field(0.15, gt=0)                  # w = share seen / (share seen + k) until calibrated per queue
    calibration_weeks: int = Field(8, ge=0, le=52)      # recent days replayed to calibrate k and the band (0: off)
    tomorrow_after: str | None = "15:00"                # from this local time on, tomorrow too (null: never)
    tomorrow_shrink: float = Field(0.5, ge=0, le=1)     # how much of today's surprise carries over to tomorrow

    @field_validator("tomorrow_after")
    @classmethod
    def _clock_time(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"{v!r} is not a time of day HH:MM, e.g. \"15:00\"")
        return v


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class QueueStaffingConfig(StrictModel):
    """One queue's targets over the global `staffing.*` ones (common/staffing_targets.py); unset: the global value."""

    service_level: float | None = Field(None, gt=0, lt=1)
    answer_seconds: float | None = Field(None, ge=0)
    max_occupancy: float | None = Field(None, gt=0, le=1)
    asa_target_seconds: float | None = Field(None, gt=0)
    max_abandon_rate: float | None = Field(None, gt=0, lt=1)
    shrinkage: float | None = Field(None, ge=0, lt=1)
    shrinkage_by_month: dict[int, float] = Field(default_factory=dict)      # {12: 0.35}: month 1-12, over shrinkage
    shrinkage_by_weekday: dict[str, float] = Field(default_factory=dict)    # {fri: 0.33}: over the month's value

    @model_validator(mode="after")
    def _shrinkage_ranges(self) -> QueueStaffingConfig:
        for key, value in self.shrinkage_by_month.items():
            if not 1 <= key <= 12 or not 0 <= value < 1:
                raise ValueError(f"shrinkage_by_month {key}: {value}: the month must be 1-12 and the value >= 0, < 1")
        for key, value in self.shrinkage_by_weekday.items():
            if key not in _WEEKDAYS or not 0 <= value < 1:
                raise ValueError(f"shrinkage_by_weekday {key}: {value}: the day must be one of {', '.join(_WEEKDAYS)} "
                                 "and the value >= 0, < 1")
        return self


class StaffingConfig(StrictModel):
    service_level: float = Field(0.80, gt=0, lt=1)
    answer_seconds: float = Field(20, ge=0)
    max_occupancy: float = Field(0.85, gt=0, le=1)
    shrinkage: float = Field(0.30, ge=0, lt=1)
    asa_target_seconds: float | None = Field(None, gt=0)
    max_abandon_rate: float | None = Field(None, gt=0, lt=1)      # Erlang A only: P(abandon) at most this
    # erlang_a: M/M/N+M with the queue's patience (estimated, else default_patience_seconds, else Erlang C);
    # erlang_c: nobody hangs up (the pre-0.6 behaviour).
    model: Literal["erlang_a", "erlang_c"] = "erlang_a"
    patience_days: int = Field(28, ge=1, le=366)                  # trailing window of silver_calls for the estimate
    min_abandons: int = Field(30, ge=1)                           # fewer abandons in it: the estimate is not trusted
    default_patience_seconds: float | None = Field(None, gt=0)    # for queues without a trusted estimate
    paid_hours_per_fte: float = Field(7.5, gt=0, le=24)           # gold_staffing_daily.fte_pX = staff hours / this
    queues: dict[str, QueueStaffingConfig] = Field(default_factory=dict)


# One plain address: no display name, no separator, no whitespace or control character (a newline in a recipient
# would write a header of its own into the message).
_PLAIN_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")


def _plain_address(v: str) -> str:
    if not _PLAIN_ADDRESS.fullmatch(v):
        raise ValueError(f"{v!r} is not one plain e-mail address (name@example.com); list several as separate items")
    return v


class SmtpConfig(StrictModel):
    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password_env: str = "WFM_SMTP_PASSWORD"
    sender: str = "wfm-forecast@example.com"

    _sender = field_validator("sender")(classmethod(lambda cls, v: _plain_address(v)))


class ReportConfig(StrictModel):
    output_dir: str = "output"
    recipients: list[str] = Field(default_factory=lambda: ["wfm-team@example.com"])
    # Queues drawn by name in the charts (the busiest by forecast volume); the rest are one "All other queues" panel.
    top_queues: int = Field(10, ge=1, le=60)
    smtp: SmtpConfig = SmtpConfig()

    @field_validator("recipients")
    @classmethod
    def _plain_addresses(cls, v: list[str]) -> list[str]:
        return [_plain_address(a) for a in v]


class EvaluationConfig(StrictModel):
    """Step 4: stored forecasts scored against actuals, summarised over a trailing window of origins."""

    window_days: int = Field(28, ge=1, le=366)          # summary over forecast origins in the trailing N days


class AlertsConfig(StrictModel):
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
    webhooks: list[WebhookConfig] = Field(default_factory=list)  # chat / HTTP endpoints for the open alerts

    @model_validator(mode="after")
    def _warning_below_critical(self) -> AlertsConfig:
        for name in ("mape", "bias", "freshness", "drift"):
            unit = "_hours" if name == "freshness" else "_psi" if name == "drift" else ""
            warning, critical = getattr(self, f"{name}_warning{unit}"), getattr(self, f"{name}_critical{unit}")
            if warning > critical:
                raise ValueError(f"{name}_warning{unit} ({warning}) must not be above {name}_critical{unit} ({critical})")
        return self


class Config(StrictModel):
    database: DatabaseConfig = DatabaseConfig()
    timezone: str = "Europe/Stockholm"
    source: SourceConfig
    # A second source of kind daily loaded beside `source:` (years of daily totals from the WFM tool next to a few
    # months of intervals or CDRs): its days fill silver_daily where `source:` has no data for the queue.
    daily_history: SourceConfig | None = None
    rules: RulesConfig = RulesConfig()
    validation: ValidationConfig = ValidationConfig()
    series: SeriesConfig = SeriesConfig()
    segmentation: SegmentationConfig = SegmentationConfig()
    training: TrainingConfig = TrainingConfig()
    forecast: ForecastConfig = ForecastConfig()
    intraday: IntradayConfig = IntradayConfig()
    staffing: StaffingConfig = StaffingConfig()
    report: ReportConfig = ReportConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    alerts: AlertsConfig = AlertsConfig()
    capacity: CapacityConfig = CapacityConfig()
    metrics: MetricsConfig = MetricsConfig()
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

    @field_validator("daily_history")
    @classmethod
    def _daily_kind(cls, v: SourceConfig | None) -> SourceConfig | None:
        if v is not None and v.kind != "daily":
            raise ValueError(f"kind is {v.kind!r}, must be daily (the intervals or CDRs go under source:)")
        return v

    @model_validator(mode="after")
    def _one_daily_source(self) -> Config:
        if self.daily_history is not None and self.source.kind == "daily":
            raise ValueError("daily_history: source.kind is daily already; put the daily export under one of them "
                             "and the intervals or CDRs under source:")
        return self

    def with_source(self, source: SourceConfig) -> Config:
        """This config with `source` as the source step 0 loads (daily_history is loaded this way)."""
        return self.model_copy(update={"source": source, "daily_history": None})

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


def _resolve_url(url: str, base_dir: Path, password_env: str | None, password_key: str) -> str:
    from sqlalchemy.engine import (
        make_url,  # sqlalchemy is heavy; only needed once a URL is asked for
    )

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
