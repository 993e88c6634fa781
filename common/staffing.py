"""Staffing tables: agents and scheduled staff per queue per interval for a service-level target.

The queue formulas and the searches for the smallest sufficient N live in
`common/erlang.py`; this module turns forecast intervals into staffing rows
and days. Offered load A = calls * AHT / interval_seconds.
"""

from __future__ import annotations

import logging

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
from common.errors import ConfigError, DataError

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
