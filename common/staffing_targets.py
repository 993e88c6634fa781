"""Which targets, shrinkage and queue model each staffing row is computed with.

`staffing.queues.<name>` overrides the global `staffing.*` targets key by key; shrinkage is the most
specific of: the queue's shrinkage_by_weekday for the row's local weekday, its shrinkage_by_month
for the row's month, the queue's shrinkage, the global shrinkage. Erlang A needs the queue's mean
patience; a queue without one is staffed with Erlang C, and every row says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from common.erlang import _check_targets
from common.erlang_a import _check_abandon_target
from common.errors import ConfigError

ERLANG_A, ERLANG_C = "erlang_a", "erlang_c"
MODELS = (ERLANG_A, ERLANG_C)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Per-row target columns, as written to gold_staffing_interval.
TARGET_KEYS = {
    "service_level": "target_service_level",
    "answer_seconds": "target_answer_seconds",
    "max_occupancy": "target_max_occupancy",
    "asa_target_seconds": "target_asa_seconds",
    "max_abandon_rate": "target_max_abandon_rate",
}


def check_queue_targets(queue: str, targets: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Raise ConfigError naming `staffing.queues.<queue>` when its merged targets are out of range."""
    merged = {**defaults, **{k: v for k, v in targets.items() if v is not None}}
    try:
        _check_targets(merged["service_level"], merged["answer_seconds"], merged["max_occupancy"],
                       merged["asa_target_seconds"])
        _check_abandon_target(merged["max_abandon_rate"])
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("staffing.", f"staffing.queues.{queue}.", 1)) from None


def row_targets(
    queues: pd.Series,
    interval_start: pd.Series,
    defaults: Mapping[str, Any],
    queue_targets: Mapping[str, Mapping[str, Any]] | None,
) -> pd.DataFrame:
    """One row per input row: target_* columns and shrinkage from `defaults` (the global keys) and queue overrides.

    `defaults` holds service_level, answer_seconds, max_occupancy, asa_target_seconds, max_abandon_rate, shrinkage.
    """
    index = queues.index
    out = {col: pd.Series(defaults[key], index=index, dtype="float64") for key, col in TARGET_KEYS.items()}
    shrinkage = pd.Series(float(defaults["shrinkage"]), index=index, dtype="float64")
    has_time = pd.api.types.is_datetime64_any_dtype(interval_start)
    for queue, targets in (queue_targets or {}).items():
        rows = (queues == queue).to_numpy()
        if not rows.any():
            continue
        check_queue_targets(queue, targets, defaults)
        for key, col in TARGET_KEYS.items():
            if targets.get(key) is not None:
                out[col] = out[col].mask(rows, float(targets[key]))
        if targets.get("shrinkage") is not None:
            shrinkage = shrinkage.mask(rows, float(targets["shrinkage"]))
        if has_time:
            for month, value in (targets.get("shrinkage_by_month") or {}).items():
                shrinkage = shrinkage.mask(rows & (interval_start.dt.month == int(month)).to_numpy(), float(value))
            for day, value in (targets.get("shrinkage_by_weekday") or {}).items():
                weekday = WEEKDAYS.index(day)
                shrinkage = shrinkage.mask(rows & (interval_start.dt.day_of_week == weekday).to_numpy(), float(value))
    return pd.DataFrame(out, index=index).assign(shrinkage=shrinkage)


def row_models(
    queues: pd.Series, model: str, patience_seconds: Mapping[str, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(model per row, patience seconds per row, NaN under Erlang C): Erlang A only where the queue has a patience."""
    if model not in MODELS:
        raise ConfigError(f"staffing.model == {model!r}, must be one of {', '.join(MODELS)}")
    patience = queues.map(dict(patience_seconds or {})).to_numpy(dtype=np.float64, na_value=np.nan)
    usable = np.isfinite(patience) & (patience > 0) & (model == ERLANG_A)
    return np.where(usable, ERLANG_A, ERLANG_C), np.where(usable, patience, np.nan)
