"""Each queue's mean patience from its own calls, for Erlang A (Mandelbaum & Zeltyn).

With exponential patience, the abandonment rate is estimated by abandons / total time callers waited,
served or not (the answered callers' waits are censored patience times). The calls are the offered
ones of silver_calls (answered or abandoned; short abandons and calls outside hours are not demand,
so they are not in the sample either) over the `days` before the as-of. Fewer than `min_abandons`
abandons: the estimate is too noisy, the queue gets `default_seconds` (source 'default') or none
(Erlang C, source 'none'). Whitt showed staffing is fairly insensitive to the rate, so a rough
estimate is enough.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from common import db, tables

ESTIMATED, DEFAULT, NONE = "estimated", "default", "none"
COLUMNS = ["queue", "patience_seconds", "abandons", "calls", "wait_seconds_total", "window_days", "source"]


def read_waits(conn: Connection, as_of: date, days: int) -> pd.DataFrame:
    """silver_calls of the `days` dates before as_of that count as offered: queue, outcome, wait_seconds."""
    t = tables.silver_calls
    where = (t.c.date >= as_of - timedelta(days=days)) & (t.c.date < as_of) & t.c.counts_as_offered
    return db.read_table(conn, t, where=where, columns=["queue", "outcome", "wait_seconds"])


def estimate_patience(
    calls: pd.DataFrame, queues: Iterable[str], days: int, min_abandons: int, default_seconds: float | None
) -> pd.DataFrame:
    """One row per queue (every queue in `queues`, plus any with calls): mean patience and its sample."""
    frame = calls.loc[calls["outcome"].isin(["answered", "abandoned"])]
    wait = frame["wait_seconds"].astype("float64").fillna(0.0).clip(lower=0.0)
    per = (frame.assign(wait=wait, abandoned=(frame["outcome"] == "abandoned").astype("int64"))
           .groupby("queue", sort=True).agg(abandons=("abandoned", "sum"), calls=("outcome", "size"),
                                            wait_seconds_total=("wait", "sum")))
    per = per.reindex(sorted(set(queues) | set(per.index)), fill_value=0)
    per.index.name = "queue"
    trusted = (per["abandons"] >= min_abandons) & (per["wait_seconds_total"] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = per["wait_seconds_total"] / per["abandons"]
    fallback = np.nan if default_seconds is None else float(default_seconds)
    out = per.reset_index().assign(
        patience_seconds=np.where(trusted, estimate, fallback),
        source=np.where(trusted, ESTIMATED, NONE if default_seconds is None else DEFAULT),
        window_days=days,
        wait_seconds_total=per["wait_seconds_total"].astype("float64").to_numpy(),
    )
    return out.loc[:, COLUMNS].astype({"abandons": "int64", "calls": "int64"})


def patience_map(patience: pd.DataFrame | None) -> dict[str, float]:
    """{queue: patience seconds} of the queues that have one (the others are staffed with Erlang C)."""
    if patience is None or patience.empty:
        return {}
    known = patience.loc[patience["patience_seconds"].notna()]
    return dict(zip(known["queue"], known["patience_seconds"].astype(float), strict=True))
