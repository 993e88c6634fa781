"""Deterministic synthetic ACD call legs: the call-generation model behind the demo, the tests and the benchmarks.

`demo_legs` fabricates call legs the way an ACD exports them (the export's own
column names, which the default config maps to canonical ones) with the
patterns the pipeline must cope with: queues of very different size, weekly and
yearly seasonality with a mild trend, gamma-Poisson day noise, an intraday
curve, short Saturday hours, closed Sundays and Swedish public holidays, a
trickle of calls just outside opening hours, frequent and rare customers,
abandons (more at peaks), short abandons, technical failures, redials and
transfers. Draws are whole-array numpy steps from one seeded generator, so
the same arguments give the same frame; with `per_day=True` each day has its
own generator, seeded by (seed, date), so a day's calls are the same whatever
range it is generated in and the demo can add tomorrow's export without
touching the files of the days before.

Writing the legs out (CSV drop folder, SQLite source) is `common.demo_files`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import date

import holidays
import numpy as np
import pandas as pd

from common.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoQueue:
    """One synthetic queue: mean calls on a normal weekday at scale 1, mean handle
    time, and Saturday/Sunday hours ("HH:MM-HH:MM", or None when closed).
    Weekdays are always `WEEKDAY_HOURS`."""

    name: str
    calls_per_day: float
    aht_seconds: float
    saturday: str | None = None
    sunday: str | None = None


WEEKDAY_HOURS = "08:00-18:00"  # the DESIGN default opening hours, Monday to Friday
DEMO_QUEUES: tuple[DemoQueue, ...] = (
    DemoQueue("Support", 3000, 420, "10:00-14:00", None),
    DemoQueue("Billing", 800, 360, None, None),
    DemoQueue("Sales", 300, 540, "10:00-14:00", None),
    DemoQueue("VIP", 100, 600, None, None),
)
EXPORT_COLUMNS: tuple[str, ...] = (
    "CallID", "ParentCallID", "Queue", "StartTime", "AnswerTime", "EndTime", "Result",
    "WaitTime", "HandleTime", "CustomerID", "CallerNumber", "AgentID", "Channel",
)
_RESULTS = np.array(["ANSWERED", "ABANDONED", "FAILED"], dtype=object)
_ANSWERED, _ABANDONED, _FAILED = 0, 1, 2
_DAY_S = 86_400
_STR = np.dtypes.StringDType()

# Volume shape. Weekday factors average 1 so `calls_per_day` is the weekday mean.
_WEEKDAY_FACTOR = np.array([1.18, 1.04, 1.00, 0.97, 0.81])
_WEEKEND_HOURLY = 0.4        # an open weekend hour gets 40% of a weekday hour's calls
_DAY_NOISE_SHAPE = 60.0      # gamma shape of the day multiplier: CV 1/sqrt(60) = 13%
_TREND_PER_YEAR = 0.04
_TREND_ANCHOR = np.datetime64("2024-01-01", "D")  # fixed, so a day's level never depends on `start`
_OUTSIDE_SHARE = 0.01        # open days: calls arriving up to 30 min before opening / after closing
_OUTSIDE_MARGIN_S = 1800
_CLOSED_SHARE = 0.003        # closed days: a trickle relative to a weekday's volume
# Customers: anonymous callers, frequent callers (about weekly) and a rare pool.
_ANONYMOUS_SHARE = 0.15
_FREQUENT_SHARE = 0.12       # share of identified calls made by frequent callers
_FREQUENT_AHT = 1.35         # frequent callers' calls take longer
_RARE_POOL_DAYS = 60         # rare pool size = this many weekdays' calls
_RARE_SPREAD = 20            # the most active rare customer calls 20x the least active
# Outcomes.
_ABANDON_BASE = 0.05
_SHORT_ABANDON_SHARE = 0.3   # of abandons; gives ~2% short abandons overall
_FAILED_SHARE = 0.005
_HANDLE_SIGMA = 0.55
_REDIAL_SHARE = 0.40
_REDIAL_SAME_QUEUE = 0.9
_TRANSFER_SHARE = (0.05, 0.15, 0.0)  # P(transfer) of an answered leg at depth 0, 1, 2
_MOBILE_PREFIXES = np.array([70, 72, 73, 76, 79], dtype=np.int64)
_HOURS_RE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hours(text: str | None, where: str) -> tuple[int, int] | None:
    """(open, close) in seconds after midnight, or None when closed."""
    if text is None or text == "closed":
        return None
    match = _HOURS_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f'{where}: {text!r} is not "HH:MM-HH:MM"; use e.g. "10:00-14:00" or None for closed')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 > 0):
        raise ConfigError(f"{where}: {text!r} is not a time of day; hours 00-24, minutes 00-59")
    lo, hi = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if hi <= lo:
        raise ConfigError(f'{where}: {text!r} ends before it starts; use "HH:MM-HH:MM" or None for closed')
    return lo, hi


def _week_hours(queues) -> np.ndarray:
    """(n_queues, 7, 2) open/close seconds per weekday (Monday first); -1 when closed."""
    if len(queues) == 0:
        raise ConfigError("queues: empty; give at least one DemoQueue")
    names = [q.name for q in queues]
    for i, q in enumerate(queues):
        if not q.name or names.count(q.name) > 1:
            raise ConfigError(f"queues[{i}].name: {q.name!r} is empty or not unique; queue names must be unique")
        for field in ("calls_per_day", "aht_seconds"):
            value = getattr(q, field)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"queues[{i}].{field} == {value}, must be > 0")
    week = np.full((len(queues), 7, 2), -1, dtype=np.int64)
    for i, q in enumerate(queues):
        texts = [WEEKDAY_HOURS] * 5 + [q.saturday, q.sunday]
        fields = list(_WEEKDAY_KEYS[:5]) + ["saturday", "sunday"]
        for k, (text, field) in enumerate(zip(texts, fields)):
            hours = _parse_hours(text, f"queues[{i}].{field}")
            if hours is not None:
                week[i, k] = hours
    return week


def demo_opening_hours(queues=DEMO_QUEUES) -> dict:
    """The `rules.opening_hours` config dict matching `demo_legs`: weekday hours as
    `default`, and a full week for every queue whose weekend differs from it."""
    week = _week_hours(queues)

    def text(lo: int, hi: int) -> str:
        if lo < 0:
            return "closed"
        return f"{lo // 3600:02d}:{lo % 3600 // 60:02d}-{hi // 3600:02d}:{hi % 3600 // 60:02d}"

    default = {key: text(*_parse_hours(WEEKDAY_HOURS, "WEEKDAY_HOURS")) for key in _WEEKDAY_KEYS[:5]}
    default |= {"sat": "closed", "sun": "closed"}
    overrides = {}
    for q, rows in zip(queues, week):
        hours = {key: text(int(lo), int(hi)) for key, (lo, hi) in zip(_WEEKDAY_KEYS, rows)}
        if hours != default:
            overrides[q.name] = hours
    return {"default": default, "queues": overrides}


def _intraday_weight(sec: np.ndarray) -> np.ndarray:
    """Relative arrival rate by second of day: 10:00 peak, lunch dip, smaller 14:15 peak."""
    h = np.asarray(sec, dtype=float) / 3600

    def bump(mu: float, sd: float) -> np.ndarray:
        return np.exp(-0.5 * ((h - mu) / sd) ** 2)

    return (0.15 + bump(10.0, 1.15) + 0.65 * bump(14.25, 1.35)) * (1 - 0.4 * bump(12.5, 0.6))


def _seasonal_level(days: np.ndarray) -> np.ndarray:
    """Yearly shape (January high, July low) times the trend, per day."""
    doy = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    yearly = 1 + 0.10 * np.cos(2 * np.pi * (doy - 15) / 365.25) - 0.12 * np.exp(-(((doy - 200) / 18.0) ** 2))
    years = (days - _TREND_ANCHOR).astype(np.int64) / 365.25
    return yearly * (1 + _TREND_PER_YEAR) ** years


def _closed_days(days: np.ndarray, country: str) -> np.ndarray:
    """True on the public holidays of `country` (the `holidays` package)."""
    first, last = (int(str(d)[:4]) for d in (days[0], days[-1]))
    try:
        cal = holidays.country_holidays(country, years=range(first, last + 1))
    except NotImplementedError as exc:
        raise ConfigError(
            f"country: {country!r} is not a country code the holidays package knows; use e.g. 'SE'") from exc
    return np.isin(days, np.array(sorted(cal), dtype="datetime64[D]"))


@functools.cache
def _arrival_cdf() -> np.ndarray:
    """Cumulative intraday weight at each second boundary of a day (86,401 values), for inverse sampling."""
    return np.concatenate([[0.0], np.cumsum(_intraday_weight(np.arange(_DAY_S) + 0.5))])


@functools.cache
def _mean_weekday_weight() -> float:
    """Mean intraday weight over the weekday hours: a leg's load is its weight relative to this."""
    return float(_intraday_weight(np.arange(8 * 3600, 18 * 3600)).mean())


def _first_legs(days, closed, week, queues, scale, rng):
    """First attempts: per queue-day counts, then every call's time and customer (`closed`: holiday flags)."""
    n_q, n_d = len(queues), len(days)
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    hours = week[:, dow, :]                 # (Q, D, 2)
    hours[:, closed, :] = -1
    lo, hi = hours[..., 0], hours[..., 1]
    is_open = lo >= 0
    cpd = np.array([q.calls_per_day for q in queues]) * scale
    base = cpd[:, None] * _seasonal_level(days)[None, :]
    weekday_factor = _WEEKDAY_FACTOR[np.minimum(dow, 4)][None, :]
    day_factor = np.where(dow[None, :] < 5, weekday_factor, _WEEKEND_HOURLY * (hi - lo) / 36_000)
    noise = rng.gamma(_DAY_NOISE_SHAPE, 1 / _DAY_NOISE_SHAPE, size=(n_q, n_d))
    lam = np.where(is_open, base * day_factor * noise, 0.0)
    n_in = rng.poisson(lam)
    n_out = rng.poisson(np.where(is_open, _OUTSIDE_SHARE * lam, _CLOSED_SHARE * base * noise))

    flat_in = np.repeat(np.arange(n_q * n_d), n_in.ravel())
    flat_out = np.repeat(np.arange(n_q * n_d), n_out.ravel())
    lo_in, hi_in = lo.ravel()[flat_in], hi.ravel()[flat_in]
    cum = _arrival_cdf()
    target = cum[lo_in] + rng.random(len(flat_in)) * (cum[hi_in] - cum[lo_in])
    sec_in = np.clip(np.searchsorted(cum, target, side="right") - 1, lo_in, hi_in - 1)
    # Outside hours: just before opening or just after closing; closed days: weekday hours.
    lo_out, hi_out = lo.ravel()[flat_out], hi.ravel()[flat_out]
    before = rng.random(len(flat_out)) < 0.5
    offset = rng.integers(0, _OUTSIDE_MARGIN_S, len(flat_out))
    closed_sec = 8 * 3600 + rng.integers(0, 10 * 3600, len(flat_out))
    sec_out = np.where(lo_out < 0, closed_sec,
                       np.where(before, np.maximum(lo_out - 1 - offset, 0), np.minimum(hi_out + offset, _DAY_S - 1)))

    flat = np.concatenate([flat_in, flat_out])
    queue, day = flat // n_d, flat % n_d
    start = days.astype(np.int64)[day] * _DAY_S + np.concatenate([sec_in, sec_out])
    customer, frequent, phone = _customers(queue, queues, scale, rng)
    legs = {"start": start, "queue": queue, "day": day, "customer": customer, "frequent": frequent,
            "phone": phone, "parent": np.full(len(flat), -1), "depth": np.zeros(len(flat), dtype=np.int64)}
    return legs, noise, is_open


def _customers(queue, queues, scale, rng):
    """Customer index (-1 anonymous), frequent flag and phone number of each first attempt.

    Each queue has its own pool: frequent callers who call about weekly, then a
    rare pool sampled with weight 1/(k + k0) (Zipf-like with a bounded head)."""
    n = len(queue)
    cpd = np.array([q.calls_per_day for q in queues]) * scale
    n_freq = np.maximum(1, np.round(cpd * (1 - _ANONYMOUS_SHARE) * _FREQUENT_SHARE * 5)).astype(np.int64)
    n_rare = np.maximum(_RARE_SPREAD, np.round(cpd * _RARE_POOL_DAYS)).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(n_freq + n_rare)[:-1]])
    anonymous = rng.random(n) < _ANONYMOUS_SHARE
    frequent = ~anonymous & (rng.random(n) < _FREQUENT_SHARE)
    f, r = n_freq[queue], n_rare[queue]
    k0 = r / (_RARE_SPREAD - 1)  # weight ratio first/last = (r + k0) / k0 = _RARE_SPREAD
    rare = np.minimum(np.floor(k0 * ((r + k0) / k0) ** rng.random(n) - k0), r - 1).astype(np.int64)
    local = np.where(frequent, np.floor(rng.random(n) * f).astype(np.int64), f + rare)
    customer = np.where(anonymous, -1, offset[queue] + local)
    # A known customer always calls from the same number; 7919 is coprime with 10**7.
    digits = np.where(anonymous, rng.integers(0, 10**7, n), (customer * 7919 + 1_234_567) % 10**7)
    prefix = _MOBILE_PREFIXES[np.where(anonymous, rng.integers(0, 5, n), customer % 5)]
    return customer, frequent, 46 * 10**9 + prefix * 10**7 + digits


def _outcomes(legs, noise, queues, scale, rng) -> dict:
    """Result, wait, handle time and agent of each leg; abandons and waits grow with load."""
    n = len(legs["start"])
    queue = legs["queue"]
    load = noise[queue, legs["day"]] * _intraday_weight(legs["start"] % _DAY_S) / _mean_weekday_weight()
    u = rng.random(n)
    p_abandon = np.clip(_ABANDON_BASE * load**1.5, 0.005, 0.4)
    result = np.where(u < _FAILED_SHARE, _FAILED, np.where(u < _FAILED_SHARE + p_abandon, _ABANDONED, _ANSWERED))
    short = rng.random(n) < _SHORT_ABANDON_SHARE
    wait_answered = np.minimum(rng.exponential(20.0 * load**2), 1800)
    wait_abandoned = np.where(short, rng.integers(0, 5, n), 5 + np.minimum(rng.exponential(50.0 * load), 475))
    wait = np.select([result == _ANSWERED, result == _ABANDONED], [wait_answered, wait_abandoned],
                     rng.integers(0, 3, n)).astype(np.int64)
    aht = np.array([q.aht_seconds for q in queues])[queue]
    # Scale so a queue's mean handle time stays its AHT despite the longer frequent calls.
    frequent_legs = (1 - _ANONYMOUS_SHARE) * _FREQUENT_SHARE
    mean = aht * np.where(legs["frequent"], _FREQUENT_AHT, 1.0) / (1 + frequent_legs * (_FREQUENT_AHT - 1))
    handle = rng.lognormal(np.log(mean) - _HANDLE_SIGMA**2 / 2, _HANDLE_SIGMA)
    handle = np.where(result == _ANSWERED, np.maximum(np.round(handle), 10), 0).astype(np.int64)
    # Enough agents to make each agent's day plausible (~6 handled hours).
    per_day = np.array([q.calls_per_day * q.aht_seconds for q in queues]) * scale
    n_agents = np.maximum(2, np.ceil(per_day / (6 * 3600))).astype(np.int64)
    agent_offset = np.concatenate([[0], np.cumsum(n_agents)[:-1]])
    agent = agent_offset[queue] + np.floor(rng.random(n) * n_agents[queue]).astype(np.int64)
    return {"result": result, "wait": wait, "handle": handle,
            "agent": np.where(result == _ANSWERED, agent, -1), "end": legs["start"] + wait + handle}


def _other_queue(current, day, is_open, weight, rng) -> np.ndarray:
    """A queue other than `current`, open that day, drawn by `weight`; -1 if none is."""
    w = weight[None, :] * is_open[:, day].T
    w[np.arange(len(current)), current] = 0.0
    total = w.sum(axis=1)
    target = rng.random(len(current)) * total
    choice = np.minimum((w.cumsum(axis=1) <= target[:, None]).sum(axis=1), len(weight) - 1)
    return np.where(total > 0, choice, -1)


def _follow_ups(legs, is_open, weight, rng) -> dict:
    """Redials after abandoned first attempts and transfers after answered legs."""
    n = len(legs["start"])
    redial = (legs["result"] == _ABANDONED) & (legs["depth"] == 0) & (rng.random(n) < _REDIAL_SHARE)
    p_transfer = np.array(_TRANSFER_SHARE)[np.minimum(legs["depth"], len(_TRANSFER_SHARE) - 1)]
    transfer = (legs["result"] == _ANSWERED) & (rng.random(n) < p_transfer)
    r, t = np.flatnonzero(redial), np.flatnonzero(transfer)
    # Redial 1-10 min after hanging up and within 10 min of the first try's start.
    delay = 60 + (rng.random(len(r)) * np.maximum(0, 540 - legs["wait"][r])).astype(np.int64)
    switch = rng.random(len(r)) >= _REDIAL_SAME_QUEUE
    other = _other_queue(legs["queue"][r], legs["day"][r], is_open, weight, rng)
    redial_queue = np.where(switch & (other >= 0), other, legs["queue"][r])
    transfer_queue = _other_queue(legs["queue"][t], legs["day"][t], is_open, weight, rng)
    t = t[transfer_queue >= 0]
    transfer_queue = transfer_queue[transfer_queue >= 0]
    keep = np.concatenate([r, t])
    new = {key: legs[key][keep] for key in ("day", "customer", "frequent", "phone")}
    new["start"] = np.concatenate([legs["end"][r] + delay, legs["end"][t]])
    new["queue"] = np.concatenate([redial_queue, transfer_queue])
    new["parent"] = np.concatenate([np.full(len(r), -1), legs["id"][t]])
    new["depth"] = np.concatenate([np.zeros(len(r), dtype=np.int64), legs["depth"][t] + 1])
    return new


def _format_ids(values: np.ndarray, template: str) -> np.ndarray:
    """Object array of `template.format(v)`, or "" where v < 0; formats each distinct value once."""
    unique, inverse = np.unique(values, return_inverse=True)
    text = np.array(["" if v < 0 else template.format(v) for v in unique.tolist()], dtype=object)
    return text[inverse]


def demo_legs(start: date, end: date, seed: int = 42, queues=DEMO_QUEUES, country: str = "SE",
              scale: float = 1.0, per_day: bool = False) -> pd.DataFrame:
    """Synthetic ACD export for the whole days `start`..`end` (inclusive).

    One row per call leg, columns `EXPORT_COLUMNS`, sorted by StartTime; times
    are naive Europe/Stockholm wall clock (datetime64[us]); empty strings where
    a leg has no parent, customer or agent. Same arguments, same frame.

    `per_day=False` draws the whole range from one generator (whole-array, the
    frames the tests and benchmarks are recorded on); `per_day=True` gives each
    day its own generator, seeded by (seed, date): the same model, other draws,
    and a day's legs (and CallIDs) no longer depend on the range, except for
    the calls of the day before that run past midnight, which only a range
    holding that day has. The living demo (`common.demo`) needs the latter.
    """
    started = time.perf_counter()
    first, last = np.datetime64(pd.Timestamp(start).date(), "D"), np.datetime64(pd.Timestamp(end).date(), "D")
    if last < first:
        raise ConfigError(f"end: {last} is before start {first}; give end >= start")
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale == {scale}, must be > 0")
    week = _week_hours(queues)
    days = np.arange(first, last + 1)
    closed = _closed_days(days, country)
    weight = np.array([q.calls_per_day for q in queues], dtype=float)
    if per_day:
        batches, next_id = [], 0
        for day, holiday in zip(days, closed):
            # Ids only order legs that start in the same second: running on across days keeps a day's
            # order (hence its CallIDs) the same in any range.
            day_batches, next_id = _day_legs(day[None], holiday[None], week, queues, scale, weight,
                                             _day_rng(seed, day), next_id)
            batches += day_batches
    else:
        batches, _ = _day_legs(days, closed, week, queues, scale, weight, np.random.default_rng(seed), 0)
    legs = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    del batches  # the concatenated copy is all we need; keeps the peak memory down
    frame = _to_export(legs, queues)
    log.info("demo legs: %d legs, %s..%s, %d queues, scale %g, %.1f s",
             len(frame), first, last, len(queues), scale, time.perf_counter() - started)
    return frame


def _day_rng(seed: int, day: np.datetime64) -> np.random.Generator:
    """The generator of one day's draws: seeded by the seed and the date, never by the range's start."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed == {seed!r}, must be an integer >= 0")
    return np.random.default_rng([int(seed), int(day.astype(np.int64)) + 719_163])  # days since 0001-01-01


def _day_legs(days, closed, week, queues, scale, weight, rng, next_id: int) -> tuple[list[dict], int]:
    """The days' leg batches (first attempts, then redials/transfers of the batch before) and the next free id."""
    batch, noise, is_open = _first_legs(days, closed, week, queues, scale, rng)
    batches = []
    while not batches or len(batch["start"]):
        batch["id"] = np.arange(next_id, next_id + len(batch["start"]))
        next_id += len(batch["id"])
        batch |= _outcomes(batch, noise, queues, scale, rng)
        batches.append(batch)
        batch = _follow_ups(batch, is_open, weight, rng)
    return batches, next_id


def _to_export(legs: dict, queues) -> pd.DataFrame:
    """The leg arrays (ids = concatenation order) as the export frame, sorted by start."""
    order = np.lexsort((legs["id"], legs["start"]))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    legs = {key: value[order] for key, value in legs.items()}
    day = legs["start"] // _DAY_S
    seq = np.arange(len(day)) - np.searchsorted(day, day, side="left")
    # "YYYYMMDD-000123": readable, sortable, never parsed as a number. Built with
    # numpy string ufuncs: millions of temporary Python strings fragment the heap.
    unique_day, day_index = np.unique(day, return_inverse=True)
    prefix = np.datetime_as_string(unique_day.astype("datetime64[D]"), unit="D").astype(_STR)
    prefix = np.strings.add(np.strings.replace(prefix, "-", ""), "-")[day_index]
    call_id = np.strings.add(prefix, np.strings.zfill(seq.astype(_STR), 6)).astype(object)
    del prefix
    has_parent = legs["parent"] >= 0
    parent_id = np.where(has_parent, call_id[position[np.where(has_parent, legs["parent"], 0)]], "")
    answered = legs["result"] == _ANSWERED

    def stamp(seconds: np.ndarray) -> np.ndarray:
        return seconds.astype("datetime64[s]").astype("datetime64[us]")

    answer = np.where(answered, stamp(legs["start"] + legs["wait"]), np.datetime64("NaT", "us"))
    names = np.array([q.name for q in queues], dtype=object)
    columns = {
        "CallID": call_id, "ParentCallID": parent_id, "Queue": names[legs["queue"]],
        "StartTime": stamp(legs["start"]), "AnswerTime": answer, "EndTime": stamp(legs["end"]),
        "Result": _RESULTS[legs["result"]], "WaitTime": legs["wait"], "HandleTime": legs["handle"],
        "CustomerID": _format_ids(legs["customer"] + np.where(legs["customer"] >= 0, 1, 0), "C{:06d}"),
        "CallerNumber": _format_ids(legs["phone"], "+{}"),
        "AgentID": _format_ids(legs["agent"] + np.where(legs["agent"] >= 0, 1, 0), "A{:04d}"),
        "Channel": np.array(["voice"], dtype=object)[np.zeros(len(day), dtype=np.int64)],
    }
    return pd.DataFrame({key: pd.Series(value, dtype="str") if value.dtype == object else value
                         for key, value in columns.items()})
