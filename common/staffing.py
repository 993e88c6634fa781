"""Erlang C staffing: agents and scheduled staff per queue per interval for a service-level target.

The model is M/M/N (Erlang C): Poisson arrivals, exponential handle times,
callers wait (no abandons). Offered load A = calls * AHT / interval_seconds.
Every probability comes from the Erlang B recursion
``B(0) = 1, B(n) = A*B(n-1) / (n + A*B(n-1))``, which stays in (0, 1] for any A,
so there are no factorials and no overflow even at thousands of Erlangs;
``C = N*B / (N - A*(1 - B))`` turns B into P(wait).

Two searches for the smallest sufficient N exist on purpose: `required_agents`
is the plain scalar loop (the oracle), and `_required_agents_array` advances
the recursion for many intervals at once with numpy (the fast path used by
`staffing_table`); the tests hold them equal.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from common.errors import ConfigError, DataError

log = logging.getLogger(__name__)

QUANTILES = ("p10", "p50", "p90")
VOLUME_COLUMNS = tuple(f"volume_{q}" for q in QUANTILES)
# Staff counts are ceil(agents / (1 - shrinkage)); 21 / 0.7 is 30.000000000000004
# in floating point, so round away representation noise before the ceiling.
_STAFF_ROUND_DECIMALS = 9


# --- validation -------------------------------------------------------------


def _check_targets(
    service_level_target: float,
    answer_seconds: float,
    max_occupancy: float,
    asa_target_seconds: float | None,
) -> None:
    """Raise ConfigError naming the `staffing.*` key whose value is out of range."""
    if not 0 < service_level_target < 1:
        raise ConfigError(f"staffing.service_level == {service_level_target!r}, must be > 0 and < 1 (e.g. 0.80)")
    if not answer_seconds >= 0:  # also rejects NaN
        raise ConfigError(f"staffing.answer_seconds == {answer_seconds!r}, must be >= 0")
    if not 0 < max_occupancy <= 1:
        raise ConfigError(f"staffing.max_occupancy == {max_occupancy!r}, must be > 0 and <= 1 (e.g. 0.85)")
    if asa_target_seconds is not None and not asa_target_seconds > 0:
        # ASA is positive whenever there is traffic, so a target <= 0 can never be met.
        raise ConfigError(f"staffing.asa_target_seconds == {asa_target_seconds!r}, must be > 0 or unset")


def _check_shrinkage(shrinkage: float) -> None:
    if not 0 <= shrinkage < 1:
        raise ConfigError(f"staffing.shrinkage == {shrinkage!r}, must be >= 0 and < 1 (e.g. 0.30)")


def _check_interval_minutes(interval_minutes: int) -> None:
    if not interval_minutes > 0:
        raise ConfigError(f"rules.interval_minutes == {interval_minutes!r}, must be >= 1")


def _check_load(traffic_erlangs: float, agents: int) -> None:
    if not traffic_erlangs >= 0 or math.isinf(traffic_erlangs):
        raise ValueError(f"traffic_erlangs == {traffic_erlangs!r}, must be finite and >= 0")
    if agents < 0:
        raise ValueError(f"agents == {agents!r}, must be >= 0")


# --- scalar Erlang C ---------------------------------------------------------


def _erlang_b(traffic_erlangs: float, agents: int) -> float:
    b = 1.0
    for n in range(1, agents + 1):
        ab = traffic_erlangs * b
        b = ab / (n + ab)
    return b


def _erlang_c_from_b(traffic_erlangs: float, agents: int, erlang_b: float) -> float:
    return agents * erlang_b / (agents - traffic_erlangs * (1.0 - erlang_b))


def erlang_c_wait_probability(traffic_erlangs: float, agents: int) -> float:
    """P(a call waits > 0) for `traffic_erlangs` offered to `agents`; 1.0 when agents <= traffic, 0.0 with no traffic."""
    _check_load(traffic_erlangs, agents)
    if traffic_erlangs == 0:
        return 0.0
    if agents <= traffic_erlangs:
        return 1.0  # unstable queue: everybody waits, eventually forever
    return _erlang_c_from_b(traffic_erlangs, agents, _erlang_b(traffic_erlangs, agents))


def service_level(traffic_erlangs: float, agents: int, aht_seconds: float, answer_seconds: float) -> float:
    """Share of calls answered within `answer_seconds`: 1 - C * exp(-(N - A) * t / AHT); 1.0 with no traffic, 0.0 if N <= A."""
    _check_load(traffic_erlangs, agents)
    if traffic_erlangs == 0:
        return 1.0
    if agents <= traffic_erlangs:
        return 0.0
    if not aht_seconds > 0:
        raise ValueError(f"aht_seconds == {aht_seconds!r}, must be > 0 when there is traffic")
    wait = _erlang_c_from_b(traffic_erlangs, agents, _erlang_b(traffic_erlangs, agents))
    return 1.0 - wait * math.exp(-(agents - traffic_erlangs) * answer_seconds / aht_seconds)


def average_speed_of_answer(traffic_erlangs: float, agents: int, aht_seconds: float) -> float:
    """Mean wait in seconds over all calls: C * AHT / (N - A); 0.0 with no traffic, inf if N <= A."""
    _check_load(traffic_erlangs, agents)
    if traffic_erlangs == 0:
        return 0.0
    if agents <= traffic_erlangs:
        return math.inf
    wait = _erlang_c_from_b(traffic_erlangs, agents, _erlang_b(traffic_erlangs, agents))
    return wait * aht_seconds / (agents - traffic_erlangs)


def _first_candidate(traffic_erlangs: float, max_occupancy: float) -> int:
    # A lower bound, never the answer itself by construction: N must exceed A
    # (stability) and A/N <= max_occupancy. ceil(A/occ) - 1 leaves room for
    # float noise in the division; the search re-checks occupancy exactly.
    return max(math.floor(traffic_erlangs) + 1, math.ceil(traffic_erlangs / max_occupancy) - 1, 1)


def required_agents(
    calls: float,
    aht_seconds: float,
    interval_seconds: int,
    service_level_target: float,
    answer_seconds: float,
    max_occupancy: float = 1.0,
    asa_target_seconds: float | None = None,
) -> int:
    """Smallest N meeting the service level, A/N <= max_occupancy and (if given) ASA <= target; 0 with no calls."""
    _check_targets(service_level_target, answer_seconds, max_occupancy, asa_target_seconds)
    if not interval_seconds > 0:
        raise ValueError(f"interval_seconds == {interval_seconds!r}, must be > 0")
    if not (calls >= 0 and aht_seconds >= 0) or math.isinf(calls) or math.isinf(aht_seconds):
        raise ValueError(f"calls == {calls!r}, aht_seconds == {aht_seconds!r}: both must be finite and >= 0")
    traffic = calls * aht_seconds / interval_seconds
    if traffic == 0:
        return 0
    n = _first_candidate(traffic, max_occupancy)
    b = _erlang_b(traffic, n)
    while True:
        # n > traffic holds for every candidate, so the gap below is positive.
        gap = n - traffic
        wait = _erlang_c_from_b(traffic, n, b)
        ok = (
            1.0 - wait * math.exp(-gap * answer_seconds / aht_seconds) >= service_level_target
            and traffic / n <= max_occupancy
            and (asa_target_seconds is None or wait * aht_seconds / gap <= asa_target_seconds)
        )
        if ok:
            return n
        n += 1
        ab = traffic * b
        b = ab / (n + ab)


# --- vectorised search --------------------------------------------------------


def _required_agents_array(
    traffic: np.ndarray,
    aht_seconds: np.ndarray,
    service_level_target: float,
    answer_seconds: float,
    max_occupancy: float,
    asa_target_seconds: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """`required_agents` for many loads at once; returns (agents, service level at those agents).

    One Erlang B recursion step per loop turn advances every unsolved load;
    a load is checked once the turn reaches its first candidate and leaves
    the working set when it meets the targets. The loop runs max(agents) turns.
    """
    agents = np.zeros(traffic.shape, dtype=np.int64)
    level = np.ones(traffic.shape, dtype=np.float64)
    rows = np.flatnonzero(traffic > 0)
    a = traffic[rows]
    h = aht_seconds[rows]
    first = np.maximum(np.maximum(np.floor(a) + 1, np.ceil(a / max_occupancy) - 1), 1)
    b = np.ones_like(a)
    n = 0
    while rows.size:
        n += 1
        ab = a * b
        b = ab / (n + ab)
        due = np.flatnonzero(first <= n)
        if due.size == 0:
            continue
        ad, bd, hd = a[due], b[due], h[due]
        gap = n - ad
        wait = n * bd / (n - ad * (1.0 - bd))
        sl = 1.0 - wait * np.exp(-gap * answer_seconds / hd)
        ok = (sl >= service_level_target) & (ad / n <= max_occupancy)
        if asa_target_seconds is not None:
            ok &= wait * hd / gap <= asa_target_seconds
        if not ok.any():
            continue
        solved = due[ok]
        agents[rows[solved]] = n
        level[rows[solved]] = sl[ok]
        keep = np.ones(rows.size, dtype=bool)
        keep[solved] = False
        rows, a, h, b, first = rows[keep], a[keep], h[keep], b[keep], first[keep]
    return agents, level


# --- tables ---------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {missing}; have {list(frame.columns)}")


def staffing_table(
    intervals: pd.DataFrame,
    interval_minutes: int,
    service_level_target: float,
    answer_seconds: float,
    max_occupancy: float,
    shrinkage: float,
    asa_target_seconds: float | None = None,
) -> pd.DataFrame:
    """Erlang C agents and scheduled staff for each forecast interval.

    Grain: one row per input row (one queue per interval); all input columns
    are kept and these are added: workload_minutes (p50 volume x AHT / 60),
    agents_p10/p50/p90, staff_p10/p50/p90 (= ceil(agents / (1 - shrinkage))),
    service_level_p50 and occupancy_p50 (expected at agents_p50).
    Rows with zero volume (closed intervals) need 0 agents; their AHT may be NaN.
    """
    _check_targets(service_level_target, answer_seconds, max_occupancy, asa_target_seconds)
    _check_shrinkage(shrinkage)
    _check_interval_minutes(interval_minutes)
    _require_columns(intervals, [*VOLUME_COLUMNS, "aht_seconds"], "staffing input")

    volumes = np.column_stack([intervals[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in VOLUME_COLUMNS])
    aht = intervals["aht_seconds"].to_numpy(dtype=np.float64, na_value=np.nan)
    bad_volume = ~(np.isfinite(volumes) & (volumes >= 0))
    if bad_volume.any():
        row, col = np.argwhere(bad_volume)[0]
        raise DataError(
            f"staffing input: {int(bad_volume.any(axis=1).sum())} row(s) with a negative, missing or infinite "
            f"volume, first {VOLUME_COLUMNS[col]} == {float(volumes[row, col])!r}; volumes must be >= 0"
        )
    has_calls = volumes.max(axis=1, initial=0.0) > 0
    bad_aht = has_calls & ~(np.isfinite(aht) & (aht >= 0))
    if bad_aht.any():
        raise DataError(
            f"staffing input: {int(bad_aht.sum())} row(s) with calls but aht_seconds "
            f"== {float(aht[bad_aht][0])!r}; aht_seconds must be finite and >= 0 where volume > 0"
        )
    # A closed interval's AHT is meaningless (often NaN); zero makes its load 0.
    aht = np.where(has_calls, aht, 0.0)

    # Solve each distinct (calls, AHT) pair once, across all three quantiles:
    # closed intervals collapse to one pair and repeated profiles are common.
    calls = volumes.T.ravel()
    aht3 = np.tile(aht, len(QUANTILES))
    pairs, inverse = np.unique(np.column_stack([calls, aht3]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    interval_seconds = interval_minutes * 60
    pair_traffic = pairs[:, 0] * pairs[:, 1] / interval_seconds
    pair_agents, pair_level = _required_agents_array(
        pair_traffic, pairs[:, 1], service_level_target, answer_seconds, max_occupancy, asa_target_seconds
    )
    agents = pair_agents[inverse].reshape(len(QUANTILES), -1)
    level = pair_level[inverse].reshape(len(QUANTILES), -1)
    staff = np.ceil(np.round(agents / (1.0 - shrinkage), _STAFF_ROUND_DECIMALS)).astype(np.int64)

    p50 = QUANTILES.index("p50")
    traffic_p50 = volumes[:, p50] * aht / interval_seconds
    agents_p50 = agents[p50]
    occupancy = np.divide(traffic_p50, agents_p50, out=np.zeros_like(traffic_p50), where=agents_p50 > 0)

    new_columns: dict[str, np.ndarray] = {"workload_minutes": volumes[:, p50] * aht / 60.0}
    new_columns |= {f"agents_{q}": agents[i] for i, q in enumerate(QUANTILES)}
    new_columns |= {f"staff_{q}": staff[i] for i, q in enumerate(QUANTILES)}
    new_columns |= {"service_level_p50": level[p50], "occupancy_p50": occupancy}
    log.debug("staffing: %d intervals, %d distinct (calls, aht) pairs solved", len(intervals), len(pairs))
    return intervals.assign(**new_columns)


def daily_staffing_summary(staffing: pd.DataFrame, interval_minutes: int) -> pd.DataFrame:
    """Staff hours and peaks per day from `staffing_table` output.

    Grain: one row per queue per date (and per run_id / forecast_origin when
    those columns are present). date = interval_start at midnight (datetime64);
    staff_hours_pX = sum(staff_pX) * interval_minutes / 60; peak_staff_pX =
    max(staff_pX) over the day's intervals; volume_p50 = sum over the day.
    """
    _check_interval_minutes(interval_minutes)
    staff_columns = [f"staff_{q}" for q in QUANTILES]
    _require_columns(staffing, ["queue", "interval_start", "volume_p50", *staff_columns], "daily staffing input")
    if not pd.api.types.is_datetime64_any_dtype(staffing["interval_start"]):
        raise DataError(
            f"daily staffing input: interval_start has dtype {staffing['interval_start'].dtype}, must be datetime64"
        )
    keys = [c for c in ("run_id", "forecast_origin") if c in staffing.columns] + ["queue", "date"]
    frame = staffing.assign(date=staffing["interval_start"].dt.normalize())
    hours_per_interval = interval_minutes / 60.0
    aggregations: dict[str, tuple[str, str]] = {"volume_p50": ("volume_p50", "sum")}
    aggregations |= {f"staff_hours_{q}": (f"staff_{q}", "sum") for q in QUANTILES}
    aggregations |= {f"peak_staff_{q}": (f"staff_{q}", "max") for q in QUANTILES}
    daily = frame.groupby(keys, sort=True, as_index=False, dropna=False).agg(**aggregations)
    hours = {f"staff_hours_{q}": daily[f"staff_hours_{q}"] * hours_per_interval for q in QUANTILES}
    return daily.assign(**hours)
