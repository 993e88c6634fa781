"""Opening hours, holidays and the interval grid, all DST-correct.

Conventions (see DESIGN.md): datetime columns are naive local wall-clock time
unless their name ends in `_utc`, in which case they are naive UTC. Every
datetime this module returns is `datetime64[ns]`, whatever the input unit
(pandas 3 defaults to `us`; merges across units work, but one unit is simpler).

A day is the span between two local midnights, so it has 23 or 25 hours on DST
days. The interval grid cuts that span into equal slices of real time; on a
fall-back day two slices share a wall-clock label, and `interval_start_utc` is
the key that tells them apart. Contacts are joined to the grid with
`floor_to_interval_utc`.
"""

from __future__ import annotations

import difflib
import logging
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from common.errors import ConfigError

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
INTERVAL_MINUTES = (5, 10, 15, 20, 30, 60)
EXTRA_CLOSED_NAME = "closed (config)"

_NS_PER_MIN = 60 * 10**9
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_WINDOW_HELP = 'use "HH:MM-HH:MM" (close after open) or closed'

Window = tuple[int, int] | None


@dataclass(frozen=True)
class OpeningHours:
    """Per-queue, per-weekday opening windows in local wall-clock minutes since midnight.

    A window `(open_min, close_min)` means open on `[open_min, close_min)`;
    `close_min` may be 1440 (24:00). `None` means closed all day. Queues not
    listed in `queues` use `default`.
    """

    default: dict[str, Window]
    queues: dict[str, dict[str, Window]]

    def window(self, queue: str, weekday: int) -> Window:
        """The window of `queue` on `weekday` (0=Mon .. 6=Sun)."""
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday!r} must be 0 (Mon) .. 6 (Sun)")
        return self.queues.get(queue, self.default)[WEEKDAYS[weekday]]


# ---------------------------------------------------------------- opening hours


def _parse_window(value: object, key: str) -> Window:
    if value is None or (isinstance(value, str) and value.strip().lower() == "closed"):
        return None
    if not isinstance(value, str):
        # PyYAML reads unquoted `no`/`off` as False and 8:00 as a sexagesimal int.
        raise ConfigError(
            f"{key}: {value!r} ({type(value).__name__}) is not a time window; "
            f'{_WINDOW_HELP} (quote the value in YAML)'
        )
    match = _WINDOW_RE.match(value)
    if match is None:
        raise ConfigError(f"{key}: {value!r} is not a time window; {_WINDOW_HELP}")
    oh, om, ch, cm = (int(g) for g in match.groups())
    if oh > 23 or om > 59 or ch > 24 or cm > 59 or (ch == 24 and cm != 0):
        raise ConfigError(
            f"{key}: {value!r} has a time out of range; hours are 00-23 and minutes "
            f"00-59 (24:00 is allowed as a close); {_WINDOW_HELP}"
        )
    open_min, close_min = oh * 60 + om, ch * 60 + cm
    if close_min < open_min:
        raise ConfigError(f"{key}: {value!r} ends before it starts; {_WINDOW_HELP}")
    if close_min == open_min:
        raise ConfigError(f"{key}: {value!r} is empty (opens and closes at once); {_WINDOW_HELP}")
    return (open_min, close_min)


def _parse_week(spec: object, key: str, *, complete: bool) -> dict[str, Window]:
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{key}: expected a mapping of weekday -> \"HH:MM-HH:MM\" or closed, got {spec!r}"
        )
    week: dict[str, Window] = {}
    for day, value in spec.items():
        if day not in WEEKDAYS:
            hint = difflib.get_close_matches(str(day).lower(), WEEKDAYS, n=1, cutoff=0.5)
            did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
            raise ConfigError(
                f"{key}.{day}: unknown weekday {day!r}; {did_you_mean}"
                f"weekdays are {', '.join(WEEKDAYS)}"
            )
        week[day] = _parse_window(value, f"{key}.{day}")
    missing = [d for d in WEEKDAYS if d not in week]
    if complete and missing:
        raise ConfigError(
            f"{key}: missing weekday(s) {', '.join(missing)}; list all 7 "
            f'({", ".join(WEEKDAYS)}), each "HH:MM-HH:MM" or closed'
        )
    return week


def parse_opening_hours(spec: dict, key: str = "rules.opening_hours") -> OpeningHours:
    """Validate the `rules.opening_hours` config block into `OpeningHours`.

    `spec` is `{"default": {mon..sun: "HH:MM-HH:MM" | "closed" | None},
    "queues": {queue: {some weekdays: ...}}}`. A queue override may list only
    some weekdays; the rest come from `default`. Queue names are turned into
    `str` because YAML reads an unquoted `100` as an int.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a mapping with 'default' and 'queues', got {spec!r}")
    unknown = [k for k in spec if k not in ("default", "queues")]
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; expected 'default' and 'queues'")
    if "default" not in spec:
        raise ConfigError(f"{key}.default: missing; list all 7 weekdays ({', '.join(WEEKDAYS)})")
    default = _parse_week(spec["default"], f"{key}.default", complete=True)
    ordered_default = {d: default[d] for d in WEEKDAYS}

    queues_spec = spec.get("queues") or {}
    if not isinstance(queues_spec, dict):
        raise ConfigError(f"{key}.queues: expected a mapping of queue -> weekdays, got {queues_spec!r}")
    queues: dict[str, dict[str, Window]] = {}
    for queue, override in queues_spec.items():
        week = _parse_week(override or {}, f"{key}.queues.{queue}", complete=False)
        queues[str(queue)] = {d: week.get(d, ordered_default[d]) for d in WEEKDAYS}
    return OpeningHours(default=ordered_default, queues=queues)


# ---------------------------------------------------------------- holidays


def _extra_dates(extra_closed_dates: list) -> list[pd.Timestamp]:
    out = []
    for i, value in enumerate(extra_closed_dates or []):
        key = f"rules.holidays.extra_closed_dates[{i}]"
        if not isinstance(value, (str, date, datetime, pd.Timestamp)):
            raise ConfigError(f"{key}: {value!r} is not a date; use YYYY-MM-DD")
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ConfigError(f"{key}: {value!r} is not a date; use YYYY-MM-DD") from None
        if pd.isna(ts):
            raise ConfigError(f"{key}: {value!r} is not a date; use YYYY-MM-DD")
        out.append(ts.normalize())
    return out


def _holiday_name_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def _open_holidays(open_holidays: Sequence) -> tuple[set[str], set[pd.Timestamp]]:
    """(holiday names casefolded, dates) of `rules.holidays.open_holidays`: a date-like entry is a date."""
    names, dates = set(), set()
    for i, value in enumerate(open_holidays or []):
        if isinstance(value, (date, datetime, pd.Timestamp)):
            dates.add(pd.Timestamp(value).normalize())
        elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            try:
                dates.add(pd.Timestamp(value.strip()).normalize())
            except ValueError:
                raise ConfigError(f"rules.holidays.open_holidays[{i}]: {value!r} is not a date; use YYYY-MM-DD "
                                  "or a holiday name") from None
        elif isinstance(value, str) and value.strip():
            names.add(_holiday_name_key(value))
        else:
            raise ConfigError(f"rules.holidays.open_holidays[{i}]: {value!r} is neither a holiday name nor a date")
    return names, dates


def _country_holidays(country: str, subdivision: str | None, years: list[int]) -> dict:
    import holidays  # the package is slow to import; keep it off module import

    try:
        probe = holidays.country_holidays(country, years=[])
    except NotImplementedError:
        raise ConfigError(
            f"rules.holidays.country: {country!r} is not a country the holidays package "
            "knows; use an ISO 3166-1 alpha-2 code such as SE, or null for none"
        ) from None
    # Names follow the process locale when `language` is None (cron and a
    # terminal would disagree), so pin the country's own language.
    try:
        cal = holidays.country_holidays(
            country, subdiv=subdivision, years=years, language=probe.default_language
        )
    except NotImplementedError:
        known = ", ".join(probe.subdivisions) if probe.subdivisions else f"{country} has none"
        raise ConfigError(
            f"rules.holidays.subdivision: {subdivision!r} is not a subdivision of {country}; "
            f"use null or one of: {known}"
        ) from None
    return dict(cal.items())


def holiday_calendar(
    country: str | None,
    subdivision: str | None,
    extra_closed_dates: list,
    years: Iterable[int],
    open_holidays: Sequence = (),
) -> pd.DataFrame:
    """Closed dates: one row per date (`date` datetime64[ns] midnight, `holiday_name` str).

    Public holidays of `country`/`subdivision` in `years` (names in the
    country's own language, e.g. SE "Juldagen"), less the `open_holidays`
    (holiday names, case-insensitive, or dates: public holidays the center
    works anyway, e.g. US "Columbus Day" at many banks), plus
    `extra_closed_dates` (dates or ISO strings, any year) named "closed
    (config)" unless they fall on a public holiday, which keeps its name; an
    extra closed date wins over an open holiday. `country` None or "" gives
    only the extra dates. Sorted by date, one row per date.
    """
    extras = _extra_dates(extra_closed_dates)
    open_names, open_dates = _open_holidays(open_holidays)
    wanted_years = sorted({int(y) for y in years})
    names: dict[pd.Timestamp, str] = {}
    if country is not None and str(country).strip():
        code = str(country).strip().upper()
        subdiv = str(subdivision).strip() if subdivision is not None and str(subdivision).strip() else None
        # Fetch the extra dates' years too, so one on a public holiday keeps its name.
        fetch = sorted(set(wanted_years) | {ts.year for ts in extras})
        public = {pd.Timestamp(d): str(n) for d, n in _country_holidays(code, subdiv, fetch).items()}
        names = {d: n for d, n in public.items() if d.year in wanted_years}
        worked = {d for d, n in names.items() if d in open_dates or _holiday_name_key(n) in open_names}
        unmatched = open_names - {_holiday_name_key(n) for n in names.values()}
        if unmatched:
            log.warning("rules.holidays.open_holidays: %s match no %s holiday in %s (names are as the holidays "
                        "package gives them, e.g. %s)", sorted(unmatched), code, wanted_years,
                        ", ".join(sorted(set(names.values()))[:3]) or "none")
        names = {d: n for d, n in names.items() if d not in worked}
        for ts in extras:
            names[ts] = public.get(ts, EXTRA_CLOSED_NAME)
    else:
        names = {ts: EXTRA_CLOSED_NAME for ts in extras}
    ordered = sorted(names)
    return pd.DataFrame(
        {
            "date": pd.Series(ordered, dtype="datetime64[ns]"),
            "holiday_name": pd.Series([names[d] for d in ordered], dtype="str"),
        }
    )


# ---------------------------------------------------------------- time zones


def _check_tz(tz: str) -> str:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"timezone: {tz!r} is not an IANA time zone; use a name such as Europe/Stockholm"
        ) from None
    return tz


def _check_minutes(minutes: int) -> int:
    if isinstance(minutes, bool) or minutes not in INTERVAL_MINUTES:
        raise ConfigError(
            f"rules.interval_minutes: {minutes!r} is not allowed; use one of "
            f"{', '.join(map(str, INTERVAL_MINUTES))} (it must divide a day)"
        )
    return int(minutes)


def _as_datetime(s: pd.Series) -> pd.Series:
    return s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s)


def localize(naive_local: pd.Series, tz: str) -> pd.Series:
    """Naive local wall-clock times in `tz` -> naive UTC (datetime64[ns], same index).

    Times in the spring-forward gap (02:30 on 2025-03-30 in Stockholm) do not
    exist; they move forward to the first real instant after the gap (03:00
    CEST). Times in the fall-back hour (02:30 on 2025-10-26) happen twice; we
    take the first occurrence (summer time, CEST), as a clock that is read
    once would. Already tz-aware input is just converted to UTC.
    """
    _check_tz(tz)
    s = _as_datetime(naive_local)
    if s.dt.tz is None:
        first = np.ones(len(s), dtype=bool)  # True = DST, applied only where ambiguous
        s = s.dt.tz_localize(tz, ambiguous=first, nonexistent="shift_forward")
    return s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")


def to_local(aware_or_utc: pd.Series, tz: str) -> pd.Series:
    """Tz-aware times, or naive times taken as UTC -> naive local wall clock in `tz` (ns)."""
    _check_tz(tz)
    s = _as_datetime(aware_or_utc)
    if s.dt.tz is None:
        s = s.dt.tz_localize("UTC")
    return s.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[ns]")


def _wall_clock_ns(local_times: pd.Series) -> np.ndarray:
    s = _as_datetime(local_times)
    if s.dt.tz is not None:  # aware input: its own wall clock is the local time
        s = s.dt.tz_localize(None)
    return s.to_numpy().astype("datetime64[ns]")


# ---------------------------------------------------------------- open / closed


def _window_table(queue_names: Sequence, hours: OpeningHours) -> tuple[np.ndarray, np.ndarray]:
    """open/close minutes, shape (len(queue_names) + 1, 7); the last row is the default.

    A closed day is (0, 0): no time or interval satisfies open <= t < close.
    """
    n = len(queue_names)
    opens = np.zeros((n + 1, 7), dtype=np.int64)
    closes = np.zeros((n + 1, 7), dtype=np.int64)
    for row, name in enumerate([*queue_names, None]):
        week = hours.queues.get(name, hours.default) if name is not None else hours.default
        for wd, day in enumerate(WEEKDAYS):
            if week[day] is not None:
                opens[row, wd], closes[row, wd] = week[day]
    return opens, closes


def _closed_days(closed_dates: pd.DataFrame | None) -> np.ndarray:
    if closed_dates is None or len(closed_dates) == 0:
        return np.array([], dtype=np.int64)
    days = pd.to_datetime(closed_dates["date"]).to_numpy().astype("datetime64[D]")
    return days[~np.isnat(days)].astype(np.int64)


def _queue_codes(queues: pd.Series | Sequence) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(np.asarray(queues, dtype=object))
    codes = np.where(codes < 0, len(uniques), codes)  # missing queue -> default row
    return codes, np.asarray(uniques, dtype=object)


def is_open_at(
    queues: pd.Series, local_times: pd.Series, hours: OpeningHours, closed_dates: pd.DataFrame
) -> pd.Series:
    """One bool per row: the queue is open at that local wall-clock time.

    True where the time of day is in the queue's window for that weekday
    ([open, close)) and the date is not in `closed_dates.date`. NaT is False.
    Rows pair up by position; the result has `local_times`' index. Vectorised
    through a (queue, weekday) lookup table, so millions of rows are cheap.
    """
    if len(queues) != len(local_times):
        raise ValueError(f"queues has {len(queues)} rows, local_times {len(local_times)}")
    ns = _wall_clock_ns(local_times)
    nat = np.isnat(ns)
    days = ns.astype("datetime64[D]")
    tod = (ns - days).astype(np.int64)  # ns since local midnight
    day_num = days.astype(np.int64)
    weekday = np.where(nat, 0, (day_num + 3) % 7)  # 1970-01-01 was a Thursday (3)

    codes, names = _queue_codes(queues)
    opens, closes = _window_table(names, hours)
    open_ns = opens[codes, weekday] * _NS_PER_MIN
    close_ns = closes[codes, weekday] * _NS_PER_MIN
    result = (tod >= open_ns) & (tod < close_ns) & ~nat
    result &= ~np.isin(day_num, _closed_days(closed_dates))
    index = local_times.index if isinstance(local_times, pd.Series) else None
    return pd.Series(result, index=index, dtype=bool)


# ---------------------------------------------------------------- interval grid


def interval_grid(
    queues: Sequence[str],
    start: date,
    end: date,
    minutes: int,
    tz: str,
    hours: OpeningHours,
    closed_dates: pd.DataFrame,
) -> pd.DataFrame:
    """The complete interval calendar: one row per queue per interval of each local day.

    Days are `start`..`end` inclusive. A day runs from local midnight to the
    next local midnight in real time and is cut into `minutes`-long slices,
    so a 23-hour spring-forward day has 46 half-hours and a 25-hour fall-back
    day 50 (whose repeated wall-clock labels differ in `interval_start_utc`).
    An interval is open if its wall-clock span [start, start + minutes)
    overlaps the queue's window that weekday and the day is not closed.
    Columns: queue, date, interval_start, interval_start_utc, is_open; sorted
    by queue, interval_start_utc.
    """
    minutes = _check_minutes(minutes)
    _check_tz(tz)
    start_ts, end_ts = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end_ts < start_ts:
        raise ValueError(f"interval_grid: end {end_ts.date()} is before start {start_ts.date()}")

    days = pd.Series(pd.date_range(start_ts, end_ts, freq="D", unit="ns"))
    # Day bounds via localize: a midnight inside a DST gap moves to the first
    # real instant, an ambiguous one takes its first occurrence, so consecutive
    # days meet without gap or overlap.
    day_start = localize(days, tz).to_numpy()
    day_end = localize(days + pd.Timedelta(days=1), tz).to_numpy()
    step = np.timedelta64(minutes, "m").astype("timedelta64[ns]")
    length = (day_end - day_start).astype(np.int64)
    if np.any(length % step.astype(np.int64)):
        bad = days[length % step.astype(np.int64) != 0].iloc[0].date()
        raise ConfigError(
            f"rules.interval_minutes: {minutes} does not divide the length of {bad} in "
            f"timezone {tz!r} (its clocks change by a fraction of an interval); use a shorter interval"
        )
    counts = length // step.astype(np.int64)
    day_idx = np.repeat(np.arange(len(days)), counts)
    within = np.arange(len(day_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    starts_utc = day_start[day_idx] + within * step
    starts_local = to_local(pd.Series(starts_utc), tz).to_numpy()
    start_min = ((starts_local - starts_local.astype("datetime64[D]")).astype(np.int64)) // _NS_PER_MIN
    if np.any(start_min % minutes):
        raise ConfigError(
            f"timezone: {tz!r} puts interval starts off the {minutes}-minute wall-clock grid; "
            "use a shorter rules.interval_minutes"
        )

    names = np.array(sorted({str(q) for q in queues}), dtype=object)
    n_int, n_q = len(starts_utc), len(names)
    opens, closes = _window_table(names, hours)
    day_vals = days.to_numpy()[day_idx]
    weekday = (day_vals.astype("datetime64[D]").astype(np.int64) + 3) % 7
    q_codes = np.repeat(np.arange(n_q), n_int)
    wd = np.tile(weekday, n_q)
    s_min = np.tile(start_min, n_q)
    # Overlap, not containment: 08:15-17:45 opens the 08:00 and 17:30 half-hours.
    is_open = (s_min < closes[q_codes, wd]) & (s_min + minutes > opens[q_codes, wd])
    closed = np.isin(day_vals.astype("datetime64[D]").astype(np.int64), _closed_days(closed_dates))
    is_open &= ~np.tile(closed, n_q)
    return pd.DataFrame(
        {
            "queue": pd.Series(np.repeat(names, n_int), dtype="str"),
            "date": pd.Series(np.tile(day_vals, n_q), dtype="datetime64[ns]"),
            "interval_start": pd.Series(np.tile(starts_local, n_q), dtype="datetime64[ns]"),
            "interval_start_utc": pd.Series(np.tile(starts_utc, n_q), dtype="datetime64[ns]"),
            "is_open": pd.Series(is_open, dtype=bool),
        }
    )


def floor_to_interval(local_times: pd.Series, minutes: int) -> pd.Series:
    """Each local wall-clock time floored to its interval's wall-clock start (ns).

    This works in wall clock only: on a fall-back day 02:10 CEST and 02:10 CET
    both give 02:00, although they are two different grid intervals. To join
    contacts to `interval_grid`, use `floor_to_interval_utc`.
    """
    minutes = _check_minutes(minutes)
    ns = pd.Series(_wall_clock_ns(local_times), index=local_times.index)
    return ns.dt.floor(f"{minutes}min")


def floor_to_interval_utc(
    utc_times: pd.Series, local_times: pd.Series | None, minutes: int, tz: str
) -> pd.Series:
    """Each instant's `interval_start_utc` on the `interval_grid` of `tz` (naive UTC, ns).

    Intervals start at wall-clock multiples of `minutes`, so the key comes
    from the local floor, not from flooring UTC (in Asia/Kolkata, +05:30,
    10:45 local belongs to the 10:00 interval = 04:30 UTC, while flooring UTC
    05:15 would give 05:00 = 10:30 local). The key is the UTC time minus the
    wall-clock remainder, which keeps the two fall-back 02:00 intervals apart.
    The key depends on `utc_times` alone; `local_times` (may be None) is only
    checked: rows whose wall clock is not `to_local(utc_times, tz)`, such as
    a raw time inside the spring-forward gap, are logged as a warning and
    placed by their UTC time, so one odd record does not stop a nightly run.
    """
    minutes = _check_minutes(minutes)
    local = to_local(utc_times, tz)
    if local_times is not None:
        given = pd.Series(_wall_clock_ns(local_times), index=local.index)
        differ = (given != local) & given.notna() & local.notna()
        if differ.any():
            i = int(np.flatnonzero(differ.to_numpy())[0])
            log.warning(
                "floor_to_interval_utc: %d row(s) have a local time that is not their UTC time "
                "in %s (first: local %s, utc %s = %s local); placed by UTC",
                int(differ.sum()), tz, given.iloc[i], utc_times.iloc[i], local.iloc[i],
            )
    utc = to_local(utc_times, "UTC")
    key = utc - (local - local.dt.floor(f"{minutes}min"))
    off_grid = (to_local(key, tz) != local.dt.floor(f"{minutes}min")) & key.notna()
    if off_grid.any():
        raise ConfigError(
            f"timezone: {tz!r} changes its clocks by a fraction of rules.interval_minutes="
            f"{minutes}; use a shorter interval"
        )
    return key
