"""Load one 2 GB export with step 0 and report its peak memory: a big file is streamed, never read whole.

Writes a single CSV export of about --gb gigabytes (generated block by block, so this process stays small
too; distinct calls spread over a month), then runs `0_load_bronze.py` on it as its own process, in one
process (--workers 0) unless --workers 1 is given. Reports rows, seconds, rows/s and the peak RSS of the
step's process (os.wait4) and of its process tree (sampled), next to the file size. Peak memory is the
interpreter and libraries (~150 MB), one chunk of `source.chunk_rows` rows, and SQLite's page cache
(`common.db.SQLITE_CACHE_MB` per connection, filled as the database grows); it does not grow with the file.

    .venv/bin/python bench/bench_big_file.py                 # 2 GB, ~20 million rows
    .venv/bin/python bench/bench_big_file.py --gb 0.2        # a quick look
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import run_step  # noqa: E402 - the same runner and RSS sampler as the load benchmark

HEADER = ("CallID,ParentCallID,Queue,StartTime,AnswerTime,EndTime,Result,WaitTime,HandleTime,CustomerID,"
          "CallerNumber,AgentID,Channel\n")
BLOCK_ROWS = 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="size of the export in GB (default 2)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/wfm-bench-big"),
                        help="the export and the database (default /tmp/wfm-bench-big; never inside the repo)")
    parser.add_argument("--chunk-rows", type=int, default=None, help="source.chunk_rows (default: config.yaml's)")
    parser.add_argument("--workers", type=int, choices=[0, 1], default=0, help="step 0's --workers (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (a later run reuses the export)")
    args = parser.parse_args(argv)
    if args.gb <= 0:
        parser.error(f"--gb {args.gb}: must be > 0")
    if args.workdir.resolve().is_relative_to(REPO):
        parser.error(f"--workdir {args.workdir}: keep generated data out of the repository")
    return args


def _block(number: int) -> str:
    """BLOCK_ROWS export lines; call ids carry the block number, so every row is distinct."""
    lines = []
    for i in range(BLOCK_ROWS):
        n = number * BLOCK_ROWS + i
        day, second = 1 + n % 28, 8 * 3600 + (n * 7) % (10 * 3600)
        lines.append(f"K{n},,Q{n % 6},2025-02-{day:02d} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d},"
                     f",,{'ANSWERED' if n % 9 else 'ABANDONED'},{n % 120},{180 + n % 420},C{n % 250_000},"
                     f"+4670{n % 1_000_000:06d},ag{n % 300},voice\n")
    return "".join(lines)


def write_export(path: Path, gigabytes: float) -> tuple[int, int]:
    """Write the export block by block until it reaches the size; return (rows, bytes)."""
    target = int(gigabytes * 1e9)
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        while fh.tell() < target:
            fh.write(_block(rows // BLOCK_ROWS))
            rows += BLOCK_ROWS
    return rows, path.stat().st_size


def write_config(work: Path, chunk_rows: int | None) -> Path:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["database"]["url"] = f"sqlite:///{work / 'wfm.db'}"
    cfg["source"]["csv_glob"] = str(work / "inbox" / "*.csv")
    if chunk_rows:
        cfg["source"]["chunk_rows"] = chunk_rows
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir
    export = work / "inbox" / "big_export.csv"
    meta = work / "export.json"
    started = time.perf_counter()
    if export.exists() and meta.exists() and json.loads(meta.read_text())["gb"] == args.gb:
        rows, size = json.loads(meta.read_text())["rows"], export.stat().st_size
    else:
        rows, size = write_export(export, args.gb)
        meta.write_text(json.dumps({"gb": args.gb, "rows": rows}))
    print(f"export: {export} {size / 1e9:.2f} GB, {rows:,} rows ({time.perf_counter() - started:.0f} s to write)")
    for stale in work.glob("wfm.db*"):
        stale.unlink()
    config = write_config(work, args.chunk_rows)
    cmd = [sys.executable, str(REPO / "0_load_bronze.py"), "--config", str(config), "--as-of", "2025-03-01",
           "--workers", str(args.workers), "--log-level", "WARNING"]
    run = run_step("0_load_bronze", cmd, work / "step.log")
    db_size = sum(p.stat().st_size for p in work.glob("wfm.db*"))
    result = {"file_gb": round(size / 1e9, 3), "rows": rows, "seconds": round(run.wall, 1),
              "rows_per_second": round(rows / run.wall), "peak_rss_mb": round(run.peak_mb),
              "peak_tree_rss_mb": round(run.tree_mb), "peak_rss_share_of_file": round(run.peak_mb * 1e6 / size, 3),
              "database_gb": round(db_size / 1e9, 2), "workers": args.workers, "exit_code": run.returncode}
    print(json.dumps(result, indent=2))
    print(f"| {result['file_gb']} GB | {rows:,} rows | {run.wall:.0f} s | {result['rows_per_second']:,} rows/s "
          f"| peak RSS {result['peak_rss_mb']} MB (tree {result['peak_tree_rss_mb']} MB) |")
    if not args.keep:
        shutil.rmtree(work)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
