"""bench/accuracy.py's intraday scoring: each method's daily p50 split into intervals, and profile variants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from bench.accuracy_metrics import NAIVE, OURS, interval_wmape
from common import intraday

if TYPE_CHECKING:
    from bench.accuracy_data import Inputs


def split_intervals(frame: pd.DataFrame, inputs: Inputs, profile_fn=intraday.intraday_profile) -> pd.DataFrame:
    """Each method's daily p50 split into intervals by the profile known at its origin, next to the actuals.

    Grain: one row per method per origin per queue per interval of the forecast days: method, origin, queue,
    date, interval_start, is_open, p50, y. `profile_fn(history, as_of, weeks, closed)` makes the profile.
    """
    ints = inputs.intervals
    weeks = inputs.cfg.forecast.profile_weeks
    parts = []
    for origin, rows in frame.groupby("origin", sort=True):
        profile = profile_fn(ints, origin.date(), weeks, inputs.holidays)
        dates = rows["date"].unique()
        grid = ints.loc[ints["date"].isin(dates)]
        for method, fc in rows.groupby("method", sort=True):
            daily = fc.loc[:, ["series", "date", "p50"]].rename(columns={"series": "queue"})
            split = intraday.split_daily(daily, profile, grid.loc[:, intraday.GRID_COLUMNS])
            split = split.merge(grid.loc[:, ["queue", "interval_start_utc", "offered"]],
                                on=["queue", "interval_start_utc"], how="left")
            parts.append(split.loc[:, ["queue", "date", "interval_start", "is_open", "p50", "offered"]].rename(
                columns={"offered": "y"}).assign(method=method, origin=origin))
    return pd.concat(parts, ignore_index=True)


PROFILE_VARIANTS = {  # intraday split alternatives: (weeks, half-life in weeks or None)
    "same weekday, 8 weeks, equal weights": (8, None),
    "same weekday, 8 weeks, half-life 2 weeks": (8, 2.0),
    "same weekday, 8 weeks, half-life 4 weeks": (8, 4.0),
    "same weekday, 16 weeks, equal weights": (16, None),
    "same weekday, 26 weeks, half-life 8 weeks": (26, 8.0),
}


def compare_profiles(frame: pd.DataFrame, inputs: Inputs, methods: Sequence[str] = (OURS,)) -> pd.DataFrame:
    """Interval wMAPE of each PROFILE_VARIANTS split, for `methods`' daily p50 and for the actual daily totals.

    Grain: one row per profile variant: profile, <method>..., actual daily x profile.
    """
    chosen = frame.loc[frame["method"].isin(list(methods))]
    oracle = frame.loc[frame["method"] == NAIVE].assign(p50=lambda f: f["y"], method="actual daily x profile")
    both = pd.concat([chosen, oracle], ignore_index=True)
    rows = []
    for label, (weeks, half_life) in PROFILE_VARIANTS.items():
        def profile(history, as_of, _weeks, closed, weeks=weeks, half_life=half_life):
            return intraday.intraday_profile(history, as_of, weeks, closed, half_life_weeks=half_life)

        rows.append({"profile": label, **interval_wmape(split_intervals(both, inputs, profile), both)})
    return pd.DataFrame(rows)
