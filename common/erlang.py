"""Erlang C (M/M/N) queue formulas and the smallest staffing meeting a target.

Every probability comes from the Erlang B recursion
``B(0) = 1, B(n) = A*B(n-1) / (n + A*B(n-1))``, which stays in (0, 1] for any A,
so there are no factorials and no overflow even at thousands of Erlangs;
``C = N*B / (N - A*(1 - B))`` turns B into P(wait).

Two searches for the smallest sufficient N exist on purpose: `required_agents`
is the plain scalar loop (the oracle), and `_required_agents_array` advances
the recursion for many intervals at once with numpy (the fast path used by
`common.staffing.staffing_table`); the tests hold them equal.
"""

from __future__ import annotations

import math

import numpy as np

from common.errors import ConfigError


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
