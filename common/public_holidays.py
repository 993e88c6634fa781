"""Closed dates: a country's public holidays (names in its own language), less the ones the centre works, plus
the dates the config closes (`rules.holidays`).

The `holidays` package is imported only when a calendar is built: it is slow to import.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import pandas as pd

from common.errors import ConfigError

log = logging.getLogger(__name__)

EXTRA_CLOSED_NAME = "closed (config)"


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
