"""Time steps 0 and 1 on about --rows demo call legs (two years of daily CSV exports) against SQLite.

Generates the legs with `common.demo.demo_legs` at the scale that gives about
--rows legs over 730 days (plus one held-back day), writes them as daily
exports, then runs, each as its own process: step 0 (load bronze) and step 1
(build silver) on the two years, and an incremental night (the held-back day's
file added, steps 0 and 1 again). Per run: wall seconds, rows/s, CPU seconds,
peak RSS of the step's process (os.wait4) and of its whole process tree
(sampled; the steps start worker processes). The floor any loader pays is
timed in the same command: plain `pandas.read_csv` of every file.

--compare-repo runs the same steps with another checkout too (e.g. the code
before a change), on the same files, for before/after ratios.

    .venv/bin/python bench/bench_load.py --rows 5000000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import shutil
import sqlite3
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

DAYS = 730
END = date(2025, 6, 2)  # a Monday: the last of the two years; the held-back day is an ordinary Tuesday


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="about this many call legs (default 5,000,000)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/wfm-bench-load"),
                        help="generated files and databases (default /tmp/wfm-bench-load; never inside the repo)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the workdir afterwards (a later run with the same --rows reuses its files)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--compare-repo", type=Path, default=None,
                        help="also run the steps with this checkout (same venv), e.g. the code before a change")
    args = parser.parse_args(argv)
    if args.rows < 10_000:
        parser.error(f"--rows {args.rows}: use at least 10000 (about 14 per day)")
    if args.workdir.resolve().is_relative_to(REPO):
        parser.error(f"--workdir {args.workdir}: keep generated data out of the repository")
    return args


# --- data -------------------------------------------------------------------------------------------------

def make_dataset(workdir: Path, rows: int, seed: int) -> dict:
    """Daily exports of two years in workdir/inbox and the day after in workdir/held_back; reused when present."""
    from common.demo import demo_legs, write_demo_csvs

    manifest = workdir / "dataset.json"
    wanted = {"rows": rows, "seed": seed, "days": DAYS, "end": END.isoformat()}
    if manifest.exists():
        info = json.loads(manifest.read_text())
        if {k: info.get(k) for k in wanted} == wanted and (workdir / "held_back").exists():
            print(f"reusing {info['legs']:,} legs in {workdir}", file=sys.stderr)
            return info
    shutil.rmtree(workdir / "inbox", ignore_errors=True)
    shutil.rmtree(workdir / "held_back", ignore_errors=True)
    start, last = END - timedelta(days=DAYS - 1), END + timedelta(days=1)
    started = time.perf_counter()
    # Legs grow linearly with scale: measure them at a small scale, then pick the scale that gives `rows`.
    sample = len(demo_legs(start, END, seed=seed, scale=0.05))
    scale = rows / (sample / 0.05)
    legs = demo_legs(start, last, seed=seed, scale=scale)
    paths = write_demo_csvs(legs, workdir / "inbox", seed=seed)
    del legs
    (workdir / "held_back").mkdir()
    held = workdir / "inbox" / f"acd_export_{last}.csv"
    shutil.move(held, workdir / "held_back" / held.name)
    paths = [p for p in paths if p != held]
    loaded = sum(1 for p in paths for _ in p.open()) - len(paths)  # data lines (malformed ones too)
    info = {**wanted, "scale": scale, "legs": loaded, "files": len(paths),
            "bytes": sum(p.stat().st_size for p in paths), "seconds": time.perf_counter() - started}
    manifest.write_text(json.dumps(info))
    print(f"generated {loaded:,} legs (scale {scale:.3f}) in {info['seconds']:.0f}s", file=sys.stderr)
    return info


def read_csv_floor(inbox: Path) -> tuple[float, int]:
    """Seconds for plain pandas.read_csv of every export file, and the rows read."""
    import pandas as pd

    started = time.perf_counter()
    rows = sum(len(pd.read_csv(path)) for path in sorted(inbox.glob("*.csv")))
    return time.perf_counter() - started, rows


# --- running a step ---------------------------------------------------------------------------------------

@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    peak_mb: float  # the step's own process (os.wait4 ru_maxrss)
    tree_mb: float  # the step and its worker processes together, sampled every 50 ms
    load: float  # 1-minute load average before the run
    returncode: int


def _tree_rss_kb(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(x) for x in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
    return total


def run_step(label: str, cmd: list[str], log: Path) -> Run:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n".encode())
        out.flush()
        pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                                                     (os.POSIX_SPAWN_DUP2, out.fileno(), 2)])
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    run = Run(label, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, peak[0] / 1024, load, code)
    if code:
        print(f"{label}: exit code {code}; see {log}", file=sys.stderr)
    return run


def write_config(repo: Path, work: Path) -> Path:
    """That repo's own config.yaml, pointed at this run's inbox and SQLite file."""
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["database"]["url"] = f"sqlite:///{work / 'wfm.db'}"
    cfg["source"]["csv_glob"] = str(work / "inbox" / "*.csv")
    # Small --rows leave quiet weekend days patchy, which the completeness check (rightly) stops on.
    cfg["validation"]["completeness_min_share"] = 0.0
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def bench_repo(repo: Path, name: str, workdir: Path, info: dict) -> list[Run]:
    """Steps 0 and 1 on the two years, then the incremental night, with `repo`'s code."""
    work = workdir / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "inbox").mkdir(parents=True)
    for path in sorted((workdir / "inbox").glob("*.csv")):
        os.link(path, work / "inbox" / path.name)  # the same files, without copying hundreds of MB
    config = write_config(repo, work)
    log = work / "steps.log"
    last = END + timedelta(days=1)

    def step(script: str, as_of: date, label: str) -> Run:
        cmd = [sys.executable, str(repo / script), "--config", str(config), "--as-of", as_of.isoformat(),
               "--log-level", "WARNING"]
        return run_step(label, cmd, log)

    runs = [step("0_load_bronze.py", last, "step 0: load bronze"), step("1_build_silver.py", last, "step 1: build silver")]
    held = next((workdir / "held_back").glob("*.csv"))
    os.link(held, work / "inbox" / held.name)
    runs += [step("0_load_bronze.py", last + timedelta(days=1), "night: step 0"),
             step("1_build_silver.py", last + timedelta(days=1), "night: step 1")]
    with sqlite3.connect(work / "wfm.db") as con:
        message = con.execute("SELECT message FROM pipeline_runs WHERE step = '1_build_silver' "
                              "ORDER BY started_at DESC LIMIT 1").fetchone()
    print(f"[{name}] last step 1: {message[0] if message else '?'}", file=sys.stderr)
    return runs


# --- report -------------------------------------------------------------------------------------------------

def report(info: dict, floor: tuple[float, int], results: dict[str, list[Run]], command: str) -> str:
    floor_s, floor_rows = floor
    legs = info["legs"]
    lines = [
        f"Steps 0 and 1 on {legs:,} demo call legs ({info['files']} daily CSV files, {info['bytes'] / 1e6:.0f} MB, "
        f"730 days), SQLite, {os.cpu_count()} CPUs; incremental night = one more day's file.",
        "",
        f"Floor: plain `pandas.read_csv` of every file: {floor_s:.1f} s ({floor_rows / floor_s:,.0f} rows/s).",
        "",
        "| code | run | wall s | rows/s | CPU s | peak RSS MB (process / with workers) | load avg before |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        for r in runs:
            rate = f"{legs / r.wall:,.0f}" if not r.label.startswith("night") else ""
            fail = "" if r.returncode == 0 else f" (exit {r.returncode})"
            lines.append(f"| {name} | {r.label}{fail} | {r.wall:.1f} | {rate} | {r.cpu:.1f} | "
                         f"{r.peak_mb:,.0f} / {r.tree_mb:,.0f} | {r.load:.2f} |")
        full = runs[0].wall + runs[1].wall
        night = runs[2].wall + runs[3].wall
        lines.append(f"| {name} | **steps 0+1, two years** | **{full:.1f}** | {legs / full:,.0f} | "
                     f"{runs[0].cpu + runs[1].cpu:.1f} | {max(r.tree_mb for r in runs[:2]):,.0f} (max) | |")
        lines.append(f"| {name} | **night, steps 0+1** | **{night:.1f}** | | {runs[2].cpu + runs[3].cpu:.1f} | | |")
    lines += ["", f"Step 0 / read_csv floor: " + ", ".join(
        f"{name} {runs[0].wall / floor_s:.1f}x" for name, runs in results.items())]
    if len(results) == 2:
        (new_name, new), (old_name, old) = results.items()
        lines.append(f"{old_name} / {new_name}: " + ", ".join(
            f"{n.label} {o.wall / n.wall:.1f}x" for n, o in zip(new, old)))
    lines += ["", "Command:", "", f"    {command}"]
    return "\n".join(lines)


def prepare(workdir: Path, rows: int, seed: int) -> tuple[dict, tuple[float, int]]:
    """The data set and the read_csv floor; run in a child process (see main)."""
    info = make_dataset(workdir, rows, seed)
    return info, read_csv_floor(workdir / "inbox")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        # Generating legs takes GBs; in a child process, so this one stays small: a spawned step's ru_maxrss
        # starts from the RSS of the process that spawned it.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            info, floor = pool.submit(prepare, args.workdir, args.rows, args.seed).result()
        results = {"this": bench_repo(REPO, "this", args.workdir, info)}
        if args.compare_repo:
            results["compare"] = bench_repo(args.compare_repo.resolve(), "compare", args.workdir, info)
        command = shlex.join([Path(sys.executable).as_posix(), *sys.argv]) if argv is None else shlex.join(argv)
        print(report(info, floor, results, command))
        return 0 if all(r.returncode == 0 for runs in results.values() for r in runs) else 1
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
