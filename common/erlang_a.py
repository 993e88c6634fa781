"""Erlang A (M/M/N+M): Erlang C plus callers who hang up after an exponential patience.

Model: Poisson arrivals (rate lambda), exponential handle times (mean AHT, rate mu),
N agents, and every waiting caller abandons at rate theta = 1 / mean patience.
With x = N*mu/theta and y = lambda/theta the stationary queue is
``pi(N+k) = pi(N) * r_k, r_k = prod_{i=1..k} y / (x + i)``, so everything follows from
``T(x, y) = sum_k r_k`` (= x e^y y^-x lower_gamma(x, y), Mandelbaum & Zeltyn's A(x, y))
and the Erlang B value E at N:

    P(wait)          = T E / (1 - E + T E)
    P(abandon)       = P(wait) * sum_k k r_k / (y T)          (theta E[queue] = lambda P(abandon))
    ASA              = P(abandon) / theta                      (mean wait of every caller, by Little's law)
    occupancy        = A (1 - P(abandon)) / N                  (A = lambda * AHT: only served calls load agents)
    service level(t) = 1 - P(wait) + (P(wait) - P(abandon)) * (1 - R(t)),
        R(t) = lower_gamma(x+1, y e^-theta t) / lower_gamma(x+1, y): the share of callers served after a wait
        whose wait was longer than t (the offered wait has density ~ exp(-N mu s + y (1 - e^-theta s))).

Service level is "answered within t / offered": an abandon counts against it, as the ACD reports it.
All sums are positive series evaluated in log scale, so no factorial or gamma function can overflow
at thousands of Erlangs or at a patience of years (where every metric tends to Erlang C's).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from common.erlang import _check_load, _check_targets, _required_agents_array
from common.errors import ConfigError

_RESCALE = 1e250          # a running term above this is scaled down (its log kept) so long series cannot overflow
_TOLERANCE = 1e-17


class ErlangAMetrics(NamedTuple):
    wait_probability: float
    abandon_probability: float
    asa_seconds: float          # mean wait over every caller, answered or not
    occupancy: float
    service_level: float        # answered within answer_seconds / offered


def _log_series(a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log sum_k r_k and log sum_k k r_k, r_k = prod_{i=1..k} z / (a + i), for arrays a > 0, z >= 0.

    Terms rise while a + k < z, then fall geometrically; a row stops once the bound on its tail
    (ratio q = z / (a + k + 1) < 1) is below the tolerance for both sums.
    """
    a, z = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(z, dtype=np.float64))
    out_s = np.zeros(a.shape)
    out_ks = np.full(a.shape, -np.inf)
    rows = np.arange(a.size)
    av, zv = a.ravel().copy(), z.ravel().copy()
    r, s, ks, shift = np.ones(a.size), np.ones(a.size), np.zeros(a.size), np.zeros(a.size)
    k = 0
    flat_s, flat_ks = out_s.reshape(-1), out_ks.reshape(-1)
    while rows.size:
        k += 1
        r = r * zv / (av + k)
        s = s + r
        ks = ks + k * r
        big = r > _RESCALE
        if big.any():
            r[big] /= _RESCALE
            s[big] /= _RESCALE
            ks[big] /= _RESCALE
            shift[big] += math.log(_RESCALE)
        q = zv / (av + k + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = r * (k * q / (1 - q) + q / (1 - q) ** 2)
            done = (q < 1) & (tail <= _TOLERANCE * np.minimum(s, np.where(ks > 0, ks, s)))
        done |= r == 0
        if done.any():
            with np.errstate(divide="ignore"):
                flat_s[rows[done]] = np.log(s[done]) + shift[done]
                flat_ks[rows[done]] = np.log(ks[done]) + shift[done]
            keep = ~done
            rows, av, zv, r, s, ks, shift = rows[keep], av[keep], zv[keep], r[keep], s[keep], ks[keep], shift[keep]
    return out_s, out_ks


def _erlang_b_array(traffic: np.ndarray, agents: np.ndarray) -> np.ndarray:
    """Erlang B at each row's own N, by the recursion (max(N) numpy steps)."""
    b = np.ones(traffic.shape)
    for n in range(1, int(agents.max(initial=0)) + 1):
        step = agents >= n
        ab = traffic * b
        b = np.where(step, ab / (n + ab), b)
    return b


def _metrics_array(
    traffic: np.ndarray,
    agents: np.ndarray,
    erlang_b: np.ndarray,
    aht_seconds: np.ndarray,
    patience_seconds: np.ndarray,
    answer_seconds: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(P(wait), P(abandon), ASA seconds, occupancy, service level) for traffic > 0 and agents >= 1."""
    x = agents * patience_seconds / aht_seconds
    y = traffic * patience_seconds / aht_seconds
    log_t, log_kt = _log_series(x, y)
    with np.errstate(divide="ignore", over="ignore"):
        # P(wait) = 1 / (1 + (1 - E) / (E T)), kept in logs because T can be astronomically large.
        wait = 1.0 / (1.0 + np.exp(np.log1p(-erlang_b) - np.log(erlang_b) - log_t))
    abandon = wait * np.exp(log_kt - log_t - np.log(y))
    asa = abandon * patience_seconds
    occupancy = traffic * (1.0 - abandon) / agents
    theta_t = np.asarray(answer_seconds, dtype=np.float64) / patience_seconds
    z = y * np.exp(-theta_t)
    log_z_series, _ = _log_series(x + 1, z)
    log_y_series, _ = _log_series(x + 1, y)
    log_r = -(x + 1) * theta_t - y * np.expm1(-theta_t) + log_z_series - log_y_series
    late = np.minimum(np.exp(log_r), 1.0)
    level = 1.0 - wait + (wait - abandon) * (1.0 - late)
    return wait, abandon, asa, occupancy, level


def _check_patience(patience_seconds: float) -> None:
    if not patience_seconds > 0 or math.isinf(patience_seconds):
        raise ValueError(f"patience_seconds == {patience_seconds!r}, must be finite and > 0 (Erlang C is the "
                         "infinitely patient case)")


def erlang_a_metrics(
    traffic_erlangs: float, agents: int, aht_seconds: float, patience_seconds: float, answer_seconds: float
) -> ErlangAMetrics:
    """The M/M/N+M metrics of `traffic_erlangs` offered to `agents`; no traffic: nobody waits, service level 1."""
    _check_load(traffic_erlangs, agents)
    _check_patience(patience_seconds)
    if traffic_erlangs == 0:
        return ErlangAMetrics(0.0, 0.0, 0.0, 0.0, 1.0)
    if agents == 0:
        return ErlangAMetrics(1.0, 1.0, patience_seconds, 0.0, 0.0)  # nobody is ever answered
    if not aht_seconds > 0:
        raise ValueError(f"aht_seconds == {aht_seconds!r}, must be > 0 when there is traffic")
    arrays = [np.array([v], dtype=np.float64) for v in (traffic_erlangs, agents, aht_seconds, patience_seconds)]
    b = _erlang_b_array(arrays[0], arrays[1])
    values = _metrics_array(arrays[0], arrays[1], b, arrays[2], arrays[3], answer_seconds)
    return ErlangAMetrics(*(float(v[0]) for v in values))


def _check_abandon_target(max_abandon_rate: float | None) -> None:
    if max_abandon_rate is not None and not 0 < max_abandon_rate < 1:
        raise ConfigError(f"staffing.max_abandon_rate == {max_abandon_rate!r}, must be > 0 and < 1 (e.g. 0.05) "
                          "or unset")


def _meets(metrics: tuple[np.ndarray, ...], service_level_target: float, max_occupancy: float,
           asa_target_seconds: float | None, max_abandon_rate: float | None) -> np.ndarray:
    _, abandon, asa, occupancy, level = metrics
    ok = (level >= service_level_target) & (occupancy <= max_occupancy)
    if asa_target_seconds is not None:
        ok &= asa <= asa_target_seconds
    if max_abandon_rate is not None:
        ok &= abandon <= max_abandon_rate
    return ok


def required_agents_erlang_a(
    traffic_erlangs: float,
    aht_seconds: float,
    patience_seconds: float,
    service_level_target: float,
    answer_seconds: float,
    max_occupancy: float = 1.0,
    asa_target_seconds: float | None = None,
    max_abandon_rate: float | None = None,
) -> int:
    """Smallest N >= 1 meeting every target under Erlang A, by plain upward search (the oracle); 0 with no traffic."""
    _check_targets(service_level_target, answer_seconds, max_occupancy, asa_target_seconds)
    _check_abandon_target(max_abandon_rate)
    if traffic_erlangs == 0:
        return 0
    n = 1
    while True:
        m = erlang_a_metrics(traffic_erlangs, n, aht_seconds, patience_seconds, answer_seconds)
        single = tuple(np.array([v]) for v in m)
        if _meets(single, service_level_target, max_occupancy, asa_target_seconds, max_abandon_rate)[0]:
            return n
        n += 1


def _required_agents_erlang_a_array(
    traffic: np.ndarray,
    aht_seconds: np.ndarray,
    patience_seconds: np.ndarray,
    service_level_target: float,
    answer_seconds: float,
    max_occupancy: float,
    asa_target_seconds: float | None,
    max_abandon_rate: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`required_agents_erlang_a` for many loads: (agents, service level, abandon probability, occupancy).

    Abandons only shorten queues, so Erlang A's answer is at or a little below Erlang C's: start at
    Erlang C's N (its fast search), climb while the targets fail (a tight abandon target can ask for more),
    then step down with the inverted Erlang B recursion while N - 1 still meets them. Every service metric
    improves with N, so the first failure below is the boundary.
    """
    _check_abandon_target(max_abandon_rate)
    size = traffic.shape
    agents = np.zeros(size, dtype=np.int64)
    level, abandon, occupancy = np.ones(size), np.zeros(size), np.zeros(size)
    rows = np.flatnonzero(traffic > 0)
    if rows.size == 0:
        return agents, level, abandon, occupancy
    a, h, p = traffic[rows], aht_seconds[rows], patience_seconds[rows]
    n, _ = _required_agents_array(a, h, service_level_target, answer_seconds, max_occupancy, asa_target_seconds)
    n = n.astype(np.float64)
    b = _erlang_b_array(a, n)

    def check(idx: np.ndarray, nn: np.ndarray, bb: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        m = _metrics_array(a[idx], nn, bb, h[idx], p[idx], answer_seconds)
        return _meets(m, service_level_target, max_occupancy, asa_target_seconds, max_abandon_rate), m

    best = [np.zeros(rows.size) for _ in range(3)]
    up = np.arange(rows.size)
    while up.size:  # climb until every row meets its targets
        ok, m = check(up, n[up], b[up])
        for store, values in zip(best, (m[4], m[1], m[3]), strict=True):
            store[up[ok]] = values[ok]
        up = up[~ok]
        n[up] += 1
        ab = a[up] * b[up]
        b[up] = ab / (n[up] + ab)
    down = np.flatnonzero(n > 1)
    while down.size:  # 1/B(N-1) = (1/B(N) - 1) * A / N, stable where it matters (N near or above A)
        nn = n[down] - 1
        bb = 1.0 / ((1.0 / b[down] - 1.0) * a[down] / n[down])
        ok, m = check(down, nn, bb)
        step = down[ok]
        n[step], b[step] = nn[ok], bb[ok]
        for store, values in zip(best, (m[4], m[1], m[3]), strict=True):
            store[step] = values[ok]
        down = step[n[step] > 1]
    agents[rows] = n.astype(np.int64)
    level[rows], abandon[rows], occupancy[rows] = best
    return agents, level, abandon, occupancy
