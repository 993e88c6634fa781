"""Staffing tables: agents and scheduled staff per queue per interval for a service-level target.

The queue formulas and the searches for the smallest sufficient N live in
`common/erlang.py`; this module turns forecast intervals into staffing rows
and days. Offered load A = calls * AHT / interval_seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from common.erlang import (  # noqa: F401  (re-exported: the public Erlang C API predates common/erlang.py)
    _check_targets,
    _required_agents_array,
    average_speed_of_answer,
    erlang_c_wait_probability,
    required_agents,
    service_level,
)
from common.erlang_a import _check_abandon_target, _required_agents_erlang_a_array
from common.errors import ConfigError, DataError
from common.staffing_targets import ERLANG_A, TARGET_KEYS, row_models, row_targets

log = logging.getLogger(__name__)

QUANTILES = ("p10", "p50", "p90")
VOLUME_COLUMNS = tuple(f"volume_{q}" for q in QUANTILES)
# Staff counts are ceil(agents / (1 - shrinkage)); 21 / 0.7 is 30.000000000000004
# in floating point, so round away representation noise before the ceiling.
_STAFF_ROUND_DECIMALS = 9


# --- validation -------------------------------------------------------------


def _check_shrinkage(shrinkage: float) -> None:
    if not 0 <= shrinkage < 1:
        raise ConfigError(f"staffing.shrinkage == {shrinkage!r}, must be >= 0 and < 1 (e.g. 0.30)")


def _check_interval_minutes(interval_minutes: int) -> None:
    if not interval_minutes > 0:
        raise ConfigError(f"rules.interval_minutes == {interval_minutes!r}, must be >= 1")


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
    *,
    max_abandon_rate: float | None = None,
    model: str = ERLANG_A,
    patience_seconds: Mapping[str, float] | None = None,
    queue_targets: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Agents and scheduled staff for each forecast interval (Erlang A where the queue has a patience, else Erlang C).

    Grain: one row per input row (one queue per interval); all input columns
    are kept and these are added: workload_minutes (p50 volume x AHT / 60),
    agents_p10/p50/p90, staff_p10/p50/p90 (= ceil(agents / (1 - shrinkage))),
    service_level_p50, occupancy_p50 and abandon_rate_p50 (expected at agents_p50), agents_raw
    (agents_p50 / (1 - shrinkage) before rounding up), staffing_model, patience_seconds, the target_*
    columns and shrinkage the row was computed with (`queue_targets`: {queue: {key: value}} over the
    global arguments; see common/staffing_targets.py). `patience_seconds`: {queue: mean patience};
    without one (or with model erlang_c) a queue gets Erlang C. max_abandon_rate binds under Erlang A only.
    Rows with zero volume (closed intervals) need 0 agents; their AHT may be NaN.
    """
    _check_targets(service_level_target, answer_seconds, max_occupancy, asa_target_seconds)
    _check_abandon_target(max_abandon_rate)
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

    queues = intervals["queue"] if "queue" in intervals.columns else pd.Series("", index=intervals.index)
    starts = (intervals["interval_start"] if "interval_start" in intervals.columns
              else pd.Series(pd.NaT, index=intervals.index))
    defaults = {"service_level": service_level_target, "answer_seconds": answer_seconds,
                "max_occupancy": max_occupancy, "asa_target_seconds": asa_target_seconds,
                "max_abandon_rate": max_abandon_rate, "shrinkage": shrinkage}
    targets = row_targets(queues, starts, defaults, queue_targets)
    models, patience = row_models(queues, model, patience_seconds)

    interval_seconds = interval_minutes * 60
    n_q = len(QUANTILES)
    agents = np.zeros((n_q, len(intervals)), dtype=np.int64)
    level = np.ones((n_q, len(intervals)))
    abandon = np.full((n_q, len(intervals)), np.nan)
    occupancy = np.zeros((n_q, len(intervals)))
    # One solve per group of rows sharing targets and model (usually one per queue at most).
    group_keys = targets.loc[:, list(TARGET_KEYS.values())].assign(model=models)
    groups = group_keys.groupby(list(group_keys.columns), dropna=False, sort=False).indices
    for key, rows in groups.items():
        sl, ans, occ, asa, aband, row_model = key
        asa = None if pd.isna(asa) else float(asa)
        aband = None if pd.isna(aband) else float(aband)
        solved = _solve_group(volumes[rows], aht[rows], interval_seconds, float(sl), float(ans), float(occ), asa,
                              aband, patience[rows] if row_model == ERLANG_A else None)
        agents[:, rows], level[:, rows], abandon[:, rows], occupancy[:, rows] = solved
    row_shrinkage = targets["shrinkage"].to_numpy(dtype=np.float64)
    staff = np.ceil(np.round(agents / (1.0 - row_shrinkage), _STAFF_ROUND_DECIMALS)).astype(np.int64)

    p50 = QUANTILES.index("p50")
    new_columns: dict[str, Any] = {"workload_minutes": volumes[:, p50] * aht / 60.0}
    new_columns |= {f"agents_{q}": agents[i] for i, q in enumerate(QUANTILES)}
    new_columns |= {f"staff_{q}": staff[i] for i, q in enumerate(QUANTILES)}
    new_columns |= {"service_level_p50": level[p50], "occupancy_p50": occupancy[p50],
                    "abandon_rate_p50": abandon[p50], "agents_raw": agents[p50] / (1.0 - row_shrinkage),
                    "staffing_model": models, "patience_seconds": patience}
    new_columns |= {c: targets[c].to_numpy() for c in TARGET_KEYS.values()}
    new_columns["shrinkage"] = row_shrinkage
    log.debug("staffing: %d intervals in %d target groups", len(intervals), len(groups))
    return intervals.assign(**new_columns)


def _solve_group(
    volumes: np.ndarray, aht: np.ndarray, interval_seconds: int, sl: float, answer: float, occ: float,
    asa: float | None, max_abandon: float | None, patience: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(agents, service level, abandon rate, occupancy), each (quantile, row), for rows sharing targets and model.

    Each distinct (calls, AHT, patience) triple is solved once across the three quantiles: closed intervals
    collapse to one and repeated profiles are common. Erlang C rows (patience None) have no abandons (abandon
    rate NaN: not modelled).
    """
    calls = volumes.T.ravel()
    aht3 = np.tile(aht, len(QUANTILES))
    pat3 = np.zeros_like(aht3) if patience is None else np.tile(patience, len(QUANTILES))
    pairs, inverse = np.unique(np.column_stack([calls, aht3, pat3]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    traffic = pairs[:, 0] * pairs[:, 1] / interval_seconds
    if patience is None:
        n, level = _required_agents_array(traffic, pairs[:, 1], sl, answer, occ, asa)
        abandon = np.full(traffic.shape, np.nan)
        occupancy = np.divide(traffic, n, out=np.zeros_like(traffic), where=n > 0)
    else:
        n, level, abandon, occupancy = _required_agents_erlang_a_array(
            traffic, pairs[:, 1], pairs[:, 2], sl, answer, occ, asa, max_abandon)
    shape = (len(QUANTILES), -1)
    return (n[inverse].reshape(shape), level[inverse].reshape(shape), abandon[inverse].reshape(shape),
            occupancy[inverse].reshape(shape))


def daily_staffing_summary(
    staffing: pd.DataFrame, interval_minutes: int, paid_hours_per_fte: float = 7.5
) -> pd.DataFrame:
    """Staff hours and peaks per day from `staffing_table` output.

    Grain: one row per queue per date (and per run_id / forecast_origin when
    those columns are present). date = interval_start at midnight (datetime64);
    staff_hours_pX = sum(staff_pX) * interval_minutes / 60; peak_staff_pX =
    max(staff_pX) over the day's intervals; volume_p50 = sum over the day;
    fte_pX = staff_hours_pX / paid_hours_per_fte.
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
    if not paid_hours_per_fte > 0:
        raise ConfigError(f"staffing.paid_hours_per_fte == {paid_hours_per_fte!r}, must be > 0 (e.g. 7.5)")
    hours = {f"staff_hours_{q}": daily[f"staff_hours_{q}"] * hours_per_interval for q in QUANTILES}
    fte = {f"fte_{q}": hours[f"staff_hours_{q}"] / paid_hours_per_fte for q in QUANTILES}
    return daily.assign(**hours, **fte)
