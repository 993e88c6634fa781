"""Replay real calls against the agents Erlang C and Erlang A recommend: the service each model really delivers.

Data: the February 1999 CDR export of the "Anonymous Bank" (../shared/data/anonymous_bank_feb1999/, see
/work/shared/data/README.md). Demand per queue (`type`) is every call that reached the agents' queue: served
calls (arrival = q_start, or vru_exit when it never queued) and abandons after at least
`--short-abandon-seconds` in queue (shorter ones are not demand, as in the pipeline). Each queue's mean patience is
estimated from the month as the pipeline does (abandons / seconds waited, served or not).

For each queue, day and 30-minute interval, both models staff the interval's *actual* calls and mean handle time
(perfect foresight, so only the queueing model differs) with common.staffing.staffing_table. Then a
discrete-event simulation replays the day's real arrivals FCFS with that many agents per interval (an agent
finishes a call past the end of their interval; a call waits for an agent on shift): a served call keeps its
real talk time; an abandon keeps its real patience (its observed wait) and, if answered sooner, a talk time drawn
from the queue's served calls; a served caller's unobserved patience is its observed wait plus an exponential
of the queue's mean patience (the model's own assumption). Reported per model: service level achieved (answered
within the target / offered), abandon rate, ASA and agent-hours, against the target.

    .venv/bin/python bench/bench_erlang_sim.py
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.staffing import staffing_table  # noqa: E402

# ../shared/data beside the repository (a git worktree one level deeper looks one level higher too).
_FILE = Path("shared", "data", "anonymous_bank_feb1999", "data_anonymous_bank_february.txt")
DATA = next((p / _FILE for p in Path(__file__).resolve().parents[2:4] if (p / _FILE).exists()),
            Path(__file__).resolve().parents[2] / _FILE)
INTERVAL = 1800


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--service-level", type=float, default=0.80)
    parser.add_argument("--answer-seconds", type=float, default=20.0)
    parser.add_argument("--max-occupancy", type=float, default=0.85)
    parser.add_argument("--short-abandon-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1999)
    return parser.parse_args(argv)


def _seconds(clock: pd.Series) -> np.ndarray:
    parts = clock.str.split(":", expand=True).astype(int)
    return (parts[0] * 3600 + parts[1] * 60 + parts[2]).to_numpy()


def load_calls(path: Path, short_abandon_seconds: float) -> pd.DataFrame:
    """One row per call offered to the agents: queue, date, arrival (seconds of day), wait, outcome, talk time."""
    raw = pd.read_csv(path, sep="\t", dtype={"q_start": str, "vru_exit": str, "date": str})
    queued = raw["q_start"] != "0:00:00"
    served = raw["outcome"] == "AGENT"
    abandoned = (raw["outcome"] == "HANG") & queued & (raw["q_time"] >= short_abandon_seconds)
    calls = raw.loc[served | abandoned]
    arrival = np.where(calls["q_start"] != "0:00:00", _seconds(calls["q_start"]), _seconds(calls["vru_exit"]))
    return pd.DataFrame({
        "queue": calls["type"].to_numpy(), "date": calls["date"].to_numpy(), "arrival": arrival.astype(float),
        "wait": calls["q_time"].clip(lower=0).to_numpy(dtype=float), "served": (calls["outcome"] == "AGENT").to_numpy(),
        "talk": calls["ser_time"].clip(lower=1).to_numpy(dtype=float),
    }).sort_values(["queue", "date", "arrival"], ignore_index=True)


def simulate_day(arrival: np.ndarray, talk: np.ndarray, patience: np.ndarray, agents: np.ndarray) -> np.ndarray:
    """Wait of each call (its start - arrival), NaN for an abandon; `agents` per 30-minute interval of the day.

    Agent k is on shift in interval i when agents[i] > k; a call starts on the slot where it can start first,
    never before an earlier call started (FCFS), and abandons if that is after its patience.
    """
    slots = int(agents.max(initial=0))
    waits = np.full(arrival.size, np.nan)
    if slots == 0:
        return waits
    n_int = agents.size
    on = agents[None, :] > np.arange(slots)[:, None]                 # (slot, interval)
    # next_on[k, i]: first interval >= i where slot k is on shift (n_int: never again)
    next_on = np.full((slots, n_int + 1), n_int)
    for i in range(n_int - 1, -1, -1):
        next_on[:, i] = np.where(on[:, i], i, next_on[:, i + 1])
    free = np.zeros(slots)
    last_start = 0.0
    for c in range(arrival.size):
        earliest = np.maximum(np.maximum(free, arrival[c]), last_start)
        idx = np.minimum((earliest // INTERVAL).astype(int), n_int)
        nxt = next_on[np.arange(slots), idx]
        start = np.where(nxt == idx, earliest, nxt * float(INTERVAL))
        start[nxt >= n_int] = np.inf
        k = int(np.argmin(start))
        if start[k] - arrival[c] > patience[c]:
            continue
        waits[c] = start[k] - arrival[c]
        free[k] = start[k] + talk[c]
        last_start = start[k]
    return waits


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.exists():
        print(f"{args.data} not found: this benchmark needs the shared Feb 1999 CDR export")
        return 2
    calls = load_calls(args.data, args.short_abandon_seconds)
    rng = np.random.default_rng(args.seed)
    per_queue = calls.groupby("queue").agg(abandons=("served", lambda s: int((~s).sum())), waited=("wait", "sum"))
    patience = (per_queue["waited"] / per_queue["abandons"]).to_dict()
    calls["interval"] = (calls["arrival"] // INTERVAL).astype(int)
    day_max = int(calls["interval"].max()) + 1
    grid = (calls.groupby(["queue", "date", "interval"])
            .agg(volume=("arrival", "size"), aht=("talk", lambda t: np.nan)).reset_index())
    served_talk = calls.loc[calls["served"]].groupby(["queue", "date", "interval"])["talk"].mean()
    queue_talk = calls.loc[calls["served"]].groupby("queue")["talk"].mean()
    grid["aht"] = served_talk.reindex(pd.MultiIndex.from_frame(grid[["queue", "date", "interval"]])).to_numpy()
    grid["aht"] = grid["aht"].fillna(grid["queue"].map(queue_talk))
    frame = grid.assign(volume_p10=grid["volume"], volume_p50=grid["volume"], volume_p90=grid["volume"],
                        aht_seconds=grid["aht"])
    targets = (30, args.service_level, args.answer_seconds, args.max_occupancy, 0.0)
    staffed = {"Erlang C": staffing_table(frame, *targets, model="erlang_c"),
               "Erlang A": staffing_table(frame, *targets, patience_seconds=patience)}

    # Patience per caller: the observed wait of an abandon; wait + Exp(mean patience) for a served caller.
    mean_patience = calls["queue"].map(patience).to_numpy()
    caller_patience = np.where(calls["served"], calls["wait"] + rng.exponential(mean_patience), calls["wait"])
    donors = {q: calls.loc[calls["served"] & (calls["queue"] == q), "talk"].to_numpy() for q in patience}
    talk = calls["talk"].to_numpy().copy()
    for q, pool in donors.items():
        rows = np.flatnonzero((~calls["served"]) & (calls["queue"] == q))
        talk[rows] = rng.choice(pool, rows.size)

    print("## Erlang C vs Erlang A on the real February 1999 calls\n")
    print(f"command: `{shlex.join([sys.executable, *sys.argv])}`\n")
    print(f"{len(calls):,} calls offered to agents; target {args.service_level:.0%} answered within "
          f"{args.answer_seconds:.0f} s, max occupancy {args.max_occupancy:.0%}; mean patience per queue (s): "
          + ", ".join(f"{q} {p:.0f}" for q, p in sorted(patience.items())) + "\n")
    print("| model | agent-hours | service level achieved | abandon rate | ASA of answered (s) "
          "| intervals meeting target |"
          " expected SL (model) |")
    print("|---|---|---|---|---|---|---|")
    for name, staff in staffed.items():
        waits = np.full(len(calls), np.nan)
        for (queue, day), rows in calls.groupby(["queue", "date"]).indices.items():
            plan = staff.loc[(staff["queue"] == queue) & (staff["date"] == day)]
            agents = np.zeros(day_max + 1, dtype=np.int64)
            agents[plan["interval"].to_numpy()] = plan["agents_p50"].to_numpy()
            waits[rows] = simulate_day(calls["arrival"].to_numpy()[rows], talk[rows], caller_patience[rows], agents)
        answered = ~np.isnan(waits)
        within = answered & (np.nan_to_num(waits, nan=np.inf) <= args.answer_seconds)
        per_int = pd.DataFrame({"k": list(zip(calls["queue"], calls["date"], calls["interval"], strict=True)),
                                "within": within}).groupby("k")["within"].mean()
        hours = staff["agents_p50"].sum() * INTERVAL / 3600
        expected = np.average(staff["service_level_p50"], weights=staff["volume"])
        print(f"| {name} | {hours:,.0f} | {within.mean():.1%} | {1 - answered.mean():.1%} | "
              f"{np.nanmean(waits):.1f} | {(per_int >= args.service_level).mean():.0%} | {expected:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
