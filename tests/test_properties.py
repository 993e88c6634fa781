"""Invariants of cleaning and aggregation (common.cdr) and of loading, checked on generated data (hypothesis).

- silver's offered total equals the contacts a plain, row-by-row reading of the rules (dedup, first-touch
  transfers, redials, short abandons, opening hours and holidays) counts as offered;
- shuffling the legs changes no contact; splitting an export in two, re-ordering its rows, or loading it
  twice changes no silver row.

Fixture rules: Europe/Stockholm (UTC+1 in early March 2025), open 08:00-18:00 Mon-Fri, redial window 10
minutes, short abandon < 5 s, 30-minute intervals; legs fall on Mon 10 .. Tue 11 March 2025.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import calendar as cal
from common import db, tables
from common.aggregate import aggregate_intervals
from common.cdr import contacts_from_legs
from common.config import load_config
from tests.conftest import CDR_COLUMNS, write_config
from tests.test_cdr import CLOSED, HOURS, RULES, TZ  # the same hand-checked rules

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

MONDAY = pd.Timestamp("2025-03-10")
QUEUES = ("A", "B")


@st.composite
def legs_strategy(draw, max_calls: int = 25) -> pd.DataFrame:
    """Call legs as bronze holds them: some calls re-exported in later loads, transfers to earlier calls,
    a few customers and callers who call again; times on a coarse grid so equal start times happen."""
    n = draw(st.integers(1, max_calls))
    rows = []
    for i in range(n):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i and draw(st.booleans()) else None
        versions = draw(st.integers(1, 2))  # a second version is a corrected re-export in a later load
        base = {
            "call_id": f"c{i}",
            "queue": draw(st.sampled_from(QUEUES)),
            # minutes from Monday 07:00 over two days, in 2-minute steps: before/after hours, redials, ties
            "start_time": MONDAY + pd.Timedelta(minutes=7 * 60 + 2 * draw(st.integers(0, 24 * 30))),
            "customer_id": draw(st.sampled_from([None, "k1", "k2", "k3"])),
            "caller_id": draw(st.sampled_from([None, "p1", "p2"])),
            "parent_call_id": None if parent is None else f"c{parent}",
        }
        for v in range(versions):
            rows.append(base | {
                "outcome": draw(st.sampled_from(["answered", "abandoned", "short_abandon", "other"])),
                "wait_seconds": draw(st.sampled_from([np.nan, 0.0, 3.0, 20.0, 90.0])),
                "handle_seconds": draw(st.sampled_from([np.nan, 0.0, 60.0, 300.0])),
                "load_id": 1 + v + draw(st.integers(0, 1)),
            })
    legs = pd.DataFrame(rows)
    legs["source_row"] = np.arange(1, len(legs) + 1)
    legs["start_time"] = legs["start_time"].astype("datetime64[ns]")
    legs["start_time_utc"] = legs["start_time"] - pd.Timedelta(hours=1)
    legs["end_time"] = pd.Series(pd.NaT, index=legs.index, dtype="datetime64[ns]")
    for c in ("call_id", "queue", "outcome", "customer_id", "caller_id", "parent_call_id"):
        legs[c] = legs[c].astype("str")
    return legs


def reference_offered(legs: pd.DataFrame) -> int:
    """The rules read row by row, as a planner would apply them by hand."""
    newest = {}
    for r in legs.to_dict("records"):
        if r["call_id"] not in newest or (r["load_id"], r["source_row"]) > (newest[r["call_id"]]["load_id"],
                                                                           newest[r["call_id"]]["source_row"]):
            newest[r["call_id"]] = r

    def root(call_id: str) -> str:
        while (parent := newest[call_id]["parent_call_id"]) in newest and parent != call_id:
            call_id = parent
        return call_id

    legs_of = defaultdict(list)
    for call_id in newest:
        legs_of[root(call_id)].append(newest[call_id])
    contacts = []
    for root_id, members in legs_of.items():
        first = newest[root_id]
        answered = any(m["outcome"] == "answered" for m in members)
        contacts.append({"id": root_id, "queue": first["queue"], "start": first["start_time_utc"],
                         "outcome": "answered" if answered else first["outcome"], "wait": first["wait_seconds"],
                         "who": first["customer_id"] if not pd.isna(first["customer_id"]) else first["caller_id"]})
    # Redial chains per caller, in time order (equal times: by contact id); a chain continues after an abandon
    # when the next call starts within 10 minutes of the hang-up (start + wait; no end times here).
    chains = []
    last_of = {}
    for c in sorted(contacts, key=lambda c: (str(c["who"]), c["start"], c["id"])):
        prev = last_of.get(c["who"]) if not pd.isna(c["who"]) else None
        wait = 0 if prev is None or pd.isna(prev["wait"]) else prev["wait"]
        if prev and prev["outcome"] in ("abandoned", "short_abandon") and \
                c["start"] - (prev["start"] + pd.Timedelta(seconds=wait)) <= pd.Timedelta(minutes=10):
            chains[-1]["last"] = c
        else:
            chains.append({"first": c, "last": c})
        last_of[c["who"]] = c
    offered = 0
    for chain in chains:
        outcome, wait = chain["last"]["outcome"], chain["last"]["wait"]
        if outcome == "abandoned" and not pd.isna(wait) and wait < 5:
            outcome = "short_abandon"
        local = chain["first"]["start"] + pd.Timedelta(hours=1)
        is_open = local.weekday() < 5 and 8 <= local.hour < 18
        offered += is_open and outcome in ("answered", "abandoned")
    return offered


def _grid() -> pd.DataFrame:
    return cal.interval_grid(list(QUEUES), MONDAY.date(), (MONDAY + pd.Timedelta(days=1)).date(), 30, TZ, HOURS, CLOSED)


def _sorted(calls: pd.DataFrame) -> pd.DataFrame:
    return calls.sort_values("contact_id").reset_index(drop=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(legs=legs_strategy())
def test_offered_in_silver_equals_the_contacts_the_rules_count(legs: pd.DataFrame) -> None:
    calls, counts = contacts_from_legs(legs, RULES)
    intervals = aggregate_intervals(calls, _grid())
    assert intervals["offered"].sum() == calls["counts_as_offered"].sum() == reference_offered(legs)
    assert counts["legs_in"] == len(legs)
    # every leg is accounted for: removed as a duplicate, merged as a transfer or redial, or a contact
    assert counts["duplicates_removed"] + counts["transfer_legs_merged"] + counts["redials_collapsed"] \
        + counts["contacts_out"] == len(legs)
    assert calls["attempts"].sum() == len(legs) - counts["duplicates_removed"] - counts["transfer_legs_merged"]


@settings(max_examples=150, deadline=None)
@given(legs=legs_strategy(), seed=st.integers(0, 2**32 - 1))
def test_shuffling_the_legs_changes_no_contact(legs: pd.DataFrame, seed: int) -> None:
    shuffled = legs.sample(frac=1, random_state=np.random.RandomState(seed)).reset_index(drop=True)
    pd.testing.assert_frame_equal(_sorted(contacts_from_legs(shuffled, RULES)[0]),
                                  _sorted(contacts_from_legs(legs, RULES)[0]))


# --- the same through the real loader: split, re-ordered, loaded twice ---------------------------------------

HEADER = CDR_COLUMNS
EXPORT = {"answered": "ANSWERED", "abandoned": "ABANDONED", "other": "FAILED"}


def _export_lines(legs: pd.DataFrame) -> list[str]:
    """One export line per call (the newest version only: one file never holds two versions of a call)."""
    newest = legs.sort_values(["load_id", "source_row"]).drop_duplicates("call_id", keep="last")
    newest = newest[newest["outcome"] != "short_abandon"]  # not an ACD outcome code
    out = []
    for r in newest.itertuples():
        fields = [r.call_id, "" if pd.isna(r.parent_call_id) else r.parent_call_id, r.queue,
                  f"{r.start_time:%Y-%m-%d %H:%M:%S}", "", "", EXPORT[r.outcome],
                  "" if pd.isna(r.wait_seconds) else f"{r.wait_seconds:g}",
                  "" if pd.isna(r.handle_seconds) else f"{r.handle_seconds:g}",
                  "" if pd.isna(r.customer_id) else r.customer_id, "" if pd.isna(r.caller_id) else r.caller_id,
                  "", "voice"]
        out.append(",".join(fields))
    return out


def _silver_after(root: Path, files: list[list[str]], loads: int = 1) -> dict[str, pd.DataFrame]:
    config = write_config(root)
    for i, lines in enumerate(files):
        (root / "inbox" / f"part{i}.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    args = ["--config", str(config), "--as-of", "2025-03-12", "--workers", "0", "--log-level", "ERROR"]
    for _ in range(loads):
        assert load_bronze.main(args) == 0
    assert build_silver.main(args) == 0
    if loads > 1:  # the second load added nothing, so step 1 had nothing to rebuild
        assert build_silver.main(args) == 0
    with db.make_engine(load_config(config).database_url).connect() as conn:
        out = {t.name: db.read_table(conn, t)
               for t in (tables.silver_calls, tables.silver_interval, tables.silver_daily)}
        out["bronze_rows"] = db.read_table(conn, tables.bronze_cdr, columns=["row_hash"])
    return {k: v.sort_values(list(v.columns)).reset_index(drop=True) for k, v in out.items()}


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(legs=legs_strategy(max_calls=15), cut=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_splitting_reordering_or_reloading_an_export_changes_nothing(legs: pd.DataFrame, cut: float, seed: int,
                                                                      tmp_path_factory) -> None:
    lines = _export_lines(legs)
    # The recency check needs a contact late on Tuesday (the day before the as-of): one is added.
    lines.append("z1,,A,2025-03-11 17:55:00,,,ANSWERED,5,60,,,,voice")
    k = round(cut * len(lines))
    reordered = list(np.random.default_rng(seed).permutation(lines))
    whole = _silver_after(tmp_path_factory.mktemp("whole"), [lines])
    for variant in (_silver_after(tmp_path_factory.mktemp("split"), [lines[:k], lines[k:]]),
                    _silver_after(tmp_path_factory.mktemp("reordered"), [reordered]),
                    _silver_after(tmp_path_factory.mktemp("twice"), [lines], loads=2)):
        for name, frame in whole.items():
            pd.testing.assert_frame_equal(variant[name], frame, obj=name)
