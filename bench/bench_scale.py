"""Scale benchmark: about --rows generated call legs (default 20 million) through the pipeline on SQLite and PostgreSQL.

Generates two years of daily CSV exports for --queues demo queues (`common.demo.demo_legs`, scaled to give about
--rows legs) plus one held-back day. Then, per backend, each step as its own process:

- full rebuild: step 0 loads every file into an empty database, step 1 builds silver from scratch;
- the rest of that first night: steps 1_5, 2, 3, 4, 5 (so the next night has a production model and history);
- the nightly incremental run: the held-back day's file arrives, steps 0..5 for the next as-of.

Per step: wall seconds, CPU seconds of the step's process, peak RSS of its process tree (sampled every 50 ms; the
steps start worker processes; the database server's own memory is not in it). Also: bronze bulk-load rows/s, how many
days the night rebuilt, and the database size. PostgreSQL is a throwaway server started with tests/pg_server.py
(fsync off, as on a CI machine) with the memory and checkpoint settings of a modest warehouse server
(`PG_SETTINGS`; the defaults, 128 MB of shared buffers and a checkpoint every 1 GB of WAL, are a laptop's).

    .venv/bin/python bench/bench_scale.py --rows 20000000
    .venv/bin/python bench/bench_scale.py --rows 5000000 --backends sqlite --keep
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere
sys.path.insert(0, str(REPO / "bench"))

from bench_load import Run, run_step  # noqa: E402 - the same process-tree sampling as the load benchmark

END = date(2025, 6, 2)  # a Monday: the last day of the history; the held-back day is an ordinary Tuesday
FULL_STEPS = ("0_load_bronze", "1_build_silver")
TAIL_STEPS = ("1_5_segment_customers", "2_train", "3_forecast", "4_evaluate", "5_report")
NIGHT_STEPS = FULL_STEPS + TAIL_STEPS
PG_SETTINGS = {"shared_buffers": "2GB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
               "maintenance_work_mem": "512MB", "work_mem": "64MB"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="about this many call legs (default 20,000,000)")
    parser.add_argument("--queues", type=int, default=20, help="queues (default 20)")
    parser.add_argument("--days", type=int, default=730, help="days of history (default 730)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (default both)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/wfm-bench-scale"),
                        help="generated files and databases (default /tmp/wfm-bench-scale; never inside the repo)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the workdir (a later run with the same --rows/--queues/--days reuses the files)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.rows < 10_000:
        parser.error(f"--rows {args.rows}: use at least 10000")
    if not 1 <= args.queues <= 200:
        parser.error(f"--queues {args.queues}: use 1..200")
    if args.days < 120:
        parser.error(f"--days {args.days}: use at least 120 (training needs history before its backtest origins)")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown or not args.backends:
        parser.error(f"--backends {','.join(args.backends)}: choose from sqlite, postgresql")
    if args.workdir.resolve().is_relative_to(REPO):
        parser.error(f"--workdir {args.workdir}: keep generated data out of the repository")
    return args


# --- data -------------------------------------------------------------------------------------------------

def bench_queues(n: int) -> tuple:
    """`n` demo queues from 3000 down to about 60 calls per weekday (a big center's long tail); every third open
    on Saturdays."""
    from common.demo import DemoQueue

    return tuple(DemoQueue(f"Q{i + 1:02d}", round(3000 * 0.8 ** i, 1) if i < 18 else 60.0, 300 + 20 * (i % 8),
                           "10:00-14:00" if i % 3 == 0 else None, None) for i in range(n))


def make_dataset(workdir: Path, rows: int, queues: int, days: int, seed: int) -> dict:
    """Daily exports in workdir/inbox and the day after them in workdir/held_back; reused when present."""
    from common.demo import demo_legs, write_demo_csvs

    manifest = workdir / "dataset.json"
    wanted = {"rows": rows, "queues": queues, "days": days, "seed": seed, "end": END.isoformat()}
    if manifest.exists():
        info = json.loads(manifest.read_text())
        if {k: info.get(k) for k in wanted} == wanted and (workdir / "held_back").exists():
            print(f"reusing {info['legs']:,} legs in {workdir}", file=sys.stderr)
            return info
    for folder in ("inbox", "held_back"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
    started = time.perf_counter()
    qs = bench_queues(queues)
    start, last = END - timedelta(days=days - 1), END + timedelta(days=1)
    # Legs grow linearly with scale: count them at a small scale, then generate in slices of 60 days so the
    # generator's peak memory stays a few GB whatever --rows is.
    sample = len(demo_legs(start, END, seed=seed, queues=qs, scale=0.02))
    scale = rows / (sample / 0.02)
    slice_start = start
    while slice_start <= last:
        slice_end = min(slice_start + timedelta(days=59), last)
        legs = demo_legs(slice_start, slice_end, seed=seed + slice_start.toordinal(), queues=qs, scale=scale)
        write_demo_csvs(legs, workdir / "inbox", malformed_rows=0)
        del legs
        slice_start = slice_end + timedelta(days=1)
    for path in (workdir / "inbox").glob("*.csv"):  # redials after the last midnight spill into one more file
        if path.stem.rsplit("_", 1)[1] > last.isoformat():
            path.unlink()
    (workdir / "held_back").mkdir()
    held = workdir / "inbox" / f"acd_export_{last}.csv"
    shutil.move(held, workdir / "held_back" / held.name)
    paths = sorted((workdir / "inbox").glob("*.csv"))
    legs = sum(1 for p in paths for _ in p.open("rb")) - len(paths)
    info = {**wanted, "scale": scale, "legs": legs, "files": len(paths),
            "bytes": sum(p.stat().st_size for p in paths), "seconds": time.perf_counter() - started}
    manifest.write_text(json.dumps(info))
    print(f"generated {legs:,} legs (scale {scale:.3f}) in {info['seconds']:.0f}s", file=sys.stderr)
    return info


# --- running the steps ------------------------------------------------------------------------------------

def write_config(work: Path, url: str, queues: int) -> Path:
    """The repo's config.yaml pointed at this run's inbox and database, with the bench queues' opening hours."""
    from common.demo import demo_opening_hours

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["database"]["url"] = url
    cfg["source"]["csv_glob"] = str(work / "inbox" / "*.csv")
    cfg["rules"]["opening_hours"] = demo_opening_hours(bench_queues(queues))
    # The benchmark times the pipeline, not the data checks: quiet queues leave weekend intervals empty.
    cfg["validation"]["completeness_min_share"] = 0.0
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def database_size(url: str) -> int:
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return int(size)


def night_messages(url: str, as_of: date) -> dict[str, str]:
    """pipeline_runs.message of each step of `as_of`'s run (the last run of each step)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT step, message FROM pipeline_runs WHERE as_of = :d ORDER BY started_at"),
                            {"d": as_of}).all()
    engine.dispose()
    return {step: message for step, message in rows}


def bench_backend(name: str, url: str, workdir: Path, info: dict) -> dict:
    """Full rebuild, the rest of the first night, and the incremental night on one backend."""
    work = workdir / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "inbox").mkdir(parents=True)
    for path in sorted((workdir / "inbox").glob("*.csv")):
        os.link(path, work / "inbox" / path.name)  # the same files without copying GBs
    config = write_config(work, url, info["queues"])
    log = work / "steps.log"
    first, night = END + timedelta(days=1), END + timedelta(days=2)

    def step(script: str, as_of: date, label: str) -> Run:
        extra = ["--no-email"] if script == "5_report" else []
        cmd = [sys.executable, str(REPO / f"{script}.py"), "--config", str(config), "--as-of", as_of.isoformat(),
               "--log-level", "INFO", *extra]
        run = run_step(label, cmd, log)
        print(f"[{name}] {label}: {run.wall:.1f}s, {run.tree_mb:,.0f} MB (exit {run.returncode})", file=sys.stderr)
        return run

    full = [step(s, first, f"full: {s}") for s in FULL_STEPS]
    size_after_full = database_size(url)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:  # keeps this process small
        aggregation = pool.submit(daily_aggregation_timing, url, config).result()
    tail = [step(s, first, f"first night: {s}") for s in TAIL_STEPS]
    held = next((workdir / "held_back").glob("*.csv"))
    os.link(held, work / "inbox" / held.name)
    nightly = [step(s, night, f"night: {s}") for s in NIGHT_STEPS]
    return {"full": full, "tail": tail, "night": nightly, "db_bytes": size_after_full,
            "night_messages": night_messages(url, night), "aggregation": aggregation}


# --- push-down of the daily aggregation: measured, to decide whether it would pay ---------------------------

def daily_aggregation_timing(url: str, config: Path) -> dict:
    """Seconds to turn all of silver_interval into days, three ways, and whether the SQL gives the same numbers.

    - pandas_in_step: `aggregate_daily` on intervals already in memory (what step 1 pays, chunk by chunk);
    - pandas_with_read: reading silver_interval first, then `aggregate_daily` (a separate pass in Python);
    - sql_group_by: one GROUP BY on the database (what a push-down would run), result read back.
    The GROUP BY mirrors `aggregate_daily`'s rules (unknown counts stay unknown, AHT weighted by handled).
    """
    import numpy as np
    from sqlalchemy import case, func, select

    from common import db, tables
    from common.aggregate import aggregate_daily
    from common.config import load_config
    from common.silver import closed_dates_for

    cfg = load_config(config)
    engine = db.make_engine(url)
    i = tables.silver_interval
    with engine.connect() as conn:
        started = time.perf_counter()
        intervals = db.read_table(conn, i)
        read = time.perf_counter() - started
        closed = closed_dates_for(cfg, intervals["date"].min().date(), intervals["date"].max().date())
        started = time.perf_counter()
        daily = aggregate_daily(intervals, closed)
        in_step = time.perf_counter() - started

        def sum_unknown_wins(col):
            return case((func.count(col) < func.count(), None), else_=func.sum(col))

        use = (i.c.aht_seconds.is_not(None)) & (i.c.handled > 0)
        stmt = select(
            i.c.queue, i.c.date, *[sum_unknown_wins(i.c[c]).label(c) for c in
                                   ("offered", "handled", "abandoned", "short_abandoned", "offered_outside_hours")],
            (func.sum(case((use, i.c.aht_seconds * i.c.handled), else_=0.0))
             / func.nullif(func.sum(case((use, i.c.handled), else_=0.0)), 0)).label("aht_seconds"),
            func.max(case((i.c.is_open, 1), else_=0)).label("is_open"),
        ).group_by(i.c.queue, i.c.date).order_by(i.c.queue, i.c.date)
        started = time.perf_counter()
        pushed = db.read_frame(conn, stmt, tables.silver_daily)
        sql = time.perf_counter() - started
    engine.dispose()
    same = len(pushed) == len(daily) and all(
        np.allclose(pushed[c].to_numpy(dtype=float), daily[c].to_numpy(dtype=float), equal_nan=True)
        for c in ("offered", "handled", "abandoned", "aht_seconds", "is_open"))
    return {"intervals": len(intervals), "days": len(daily), "pandas_in_step": in_step,
            "pandas_with_read": read + in_step, "sql_group_by": sql, "same_result": bool(same)}


# --- report -------------------------------------------------------------------------------------------------

def report(info: dict, results: dict[str, dict], command: str) -> str:
    legs = info["legs"]
    lines = [
        f"{legs:,} call legs, {info['queues']} queues, {info['days']} days ({info['files']} daily CSV files, "
        f"{info['bytes'] / 1e9:.2f} GB); {os.cpu_count()} CPUs, {_memory_gb():.0f} GB RAM. Peak RSS = the step's "
        "process tree (workers included), sampled.",
        "",
        "| backend | run | wall s | CPU s (main process) | peak RSS MB | load avg before | exit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        for run in [*r["full"], *r["tail"], *r["night"]]:
            lines.append(f"| {name} | {run.label} | {run.wall:.1f} | {run.cpu:.1f} | {run.tree_mb:,.0f} | "
                         f"{run.load:.2f} | {run.returncode} |")
    lines += ["", "| backend | full rebuild (steps 0+1) s | peak RSS MB | bronze load rows/s | database GB | "
                  "nightly steps 0-5 s | night without step 2 s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        full = sum(run.wall for run in r["full"])
        night = sum(run.wall for run in r["night"])
        train = next(run.wall for run in r["night"] if run.label.endswith("2_train"))
        lines.append(f"| {name} | {full:.1f} | {max(run.tree_mb for run in r['full']):,.0f} | "
                     f"{legs / r['full'][0].wall:,.0f} | {r['db_bytes'] / 1e9:.2f} | {night:.1f} | {night - train:.1f} |")
    lines += ["", "Daily aggregation of all of silver_interval (s): pandas on intervals in memory (what step 1 pays) / "
                  "reading silver_interval + pandas / one SQL GROUP BY on the database (a push-down):", ""]
    for name, r in results.items():
        a = r["aggregation"]
        lines.append(f"- {name}: {a['intervals']:,} intervals -> {a['days']:,} queue-days: {a['pandas_in_step']:.2f} / "
                     f"{a['pandas_with_read']:.2f} / {a['sql_group_by']:.2f}; same result: {a['same_result']}")
    for name, r in results.items():
        lines += ["", f"{name}, the incremental night's pipeline_runs messages:"]
        lines += [f"- {step}: {message}" for step, message in r["night_messages"].items()]
    lines += ["", "Command:", "", f"    {command}"]
    return "\n".join(lines)


def _memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def as_json(info: dict, results: dict[str, dict]) -> dict:
    def runs(items: list[Run]) -> list[dict]:
        return [{"label": r.label, "wall": r.wall, "cpu": r.cpu, "peak_mb": r.tree_mb, "load": r.load,
                 "exit": r.returncode} for r in items]

    return {"dataset": info, "backends": {name: {"full": runs(r["full"]), "tail": runs(r["tail"]),
                                                 "night": runs(r["night"]), "db_bytes": r["db_bytes"],
                                                 "night_messages": r["night_messages"],
                                                 "aggregation": r["aggregation"]}
                                          for name, r in results.items()}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        # Generating legs takes GBs: in a child process, so the steps spawned from this one start small.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            info = pool.submit(make_dataset, args.workdir, args.rows, args.queues, args.days, args.seed).result()
        results = {}
        for backend in args.backends:
            with ExitStack() as stack:
                if backend == "sqlite":
                    url = f"sqlite:///{args.workdir / 'sqlite' / 'wfm.db'}"
                else:
                    from tests.pg_server import create_database, postgres_server

                    url = create_database(stack.enter_context(postgres_server(PG_SETTINGS)))
                results[backend] = bench_backend(backend, url, args.workdir, info)
        command = shlex.join([Path(sys.executable).as_posix(), *sys.argv]) if argv is None else shlex.join(argv)
        print(report(info, results, command))
        if args.json:
            args.json.write_text(json.dumps(as_json(info, results), indent=2, default=str))
        return 0 if all(run.returncode == 0 for r in results.values()
                        for run in [*r["full"], *r["tail"], *r["night"]]) else 1
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
