"""The `source:` section of config.yaml: how an export's columns map onto the canonical CDR or interval columns.

The lowest floor of the config: `config_schema` builds every other section on `StrictModel` from here, and
`config` turns a `KeyPathError` raised here into the one-line message with its `did you mean`.
"""

from __future__ import annotations

import codecs
import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class StrictModel(BaseModel):
    """Every config section: an unknown key is an error (a typo must not be silently ignored); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyPathError(ValueError):
    """A problem with a key *inside* a mapping field (`source.columns.<name>`): pydantic only knows the field, so
    the path below it and the allowed names (for `did you mean`) ride along."""

    def __init__(self, loc: tuple, msg: str, choices: tuple) -> None:
        super().__init__(msg)
        self.loc, self.msg, self.choices = loc, msg, choices


CANONICAL_CDR_COLUMNS = (
    "call_id", "queue", "start_time", "outcome", "handle_seconds", "talk_seconds", "hold_seconds",
    "wrap_seconds", "wait_seconds", "customer_id", "caller_id", "answer_time", "end_time", "agent_id",
    "parent_call_id", "channel",
)
CANONICAL_INTERVAL_COLUMNS = ("queue", "interval_start", "offered", "handled", "abandoned", "aht_seconds")
# A WFM tool's daily totals (one row per queue per day): years of history where intervals are kept for months only.
CANONICAL_DAILY_COLUMNS = ("queue", "date", "offered", "handled", "abandoned", "aht_seconds")
TIMESTAMP_COLUMNS = ("start_time", "answer_time", "end_time", "interval_start", "date")
_CANONICAL = {"cdr": CANONICAL_CDR_COLUMNS, "interval": CANONICAL_INTERVAL_COLUMNS, "daily": CANONICAL_DAILY_COLUMNS}
_REQUIRED = {"cdr": ("call_id", "queue", "start_time", "outcome"), "interval": ("queue", "interval_start", "offered"),
             "daily": ("queue", "date", "offered")}
OUTCOMES = ("answered", "abandoned", "short_abandon", "other")


class TimestampSpec(StrictModel):
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


class PseudonymizeConfig(StrictModel):
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


class SourceConfig(StrictModel):
    kind: Literal["cdr", "interval", "daily"] = "cdr"
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
        allowed = _CANONICAL[self.kind]
        for name, spec in self.columns.items():
            if name not in allowed:
                raise KeyPathError(("columns", name), f"unknown canonical column for kind {self.kind}", allowed)
            if isinstance(spec, TimestampSpec) and name not in TIMESTAMP_COLUMNS:
                raise KeyPathError(("columns", name), "only timestamp columns take {column|date, time, format}", ())
            if isinstance(spec, list) and name not in ("call_id", "parent_call_id", "customer_id", "queue"):
                raise KeyPathError(("columns", name), "only id columns can be joined from several columns", ())
        for name in _REQUIRED[self.kind]:
            if name not in self.columns:
                raise KeyPathError(("columns", name), "is required: map it to your export's column name", ())
        if self.kind == "cdr":
            has_parts = any(k in self.columns for k in ("talk_seconds", "hold_seconds", "wrap_seconds"))
            if "handle_seconds" not in self.columns and not has_parts:
                raise KeyPathError(("columns", "handle_seconds"),
                                 "is required (or talk_seconds/hold_seconds/wrap_seconds)", ())
            for outcome in self.outcome_map:
                if outcome not in OUTCOMES:
                    raise KeyPathError(("outcome_map", outcome), "unknown canonical outcome", OUTCOMES)
            if not self.outcome_map:
                raise KeyPathError(("outcome_map",), "is required: list your export's values for answered/abandoned", ())
        if not self.csv_glob and not (self.sql_query and (self.sql_url or self.sql_url_env)):
            raise ValueError("set csv_glob, or sql_query with sql_url or sql_url_env")
        return self
