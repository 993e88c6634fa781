"""Load source exports into bronze: append-only, idempotent, rejects kept with their reason.

A file whose content (sha256) was loaded before is skipped; a row whose content
hash is already in bronze adds nothing. So re-running step 0, or dropping the
same export twice, never duplicates anything. A file that cannot be read to its end
(unreadable, not CSV text, an encoding error part-way) is skipped as a whole: its
bronze_load_log row says `skipped` and why, and the next run tries it again.

Sources are parsed in batches by `common.bronze_parse`. With `workers` > 0 and a big enough backlog of files, one spawned
process reads and parses the batches while this one inserts them, so parsing
and SQLite's own work overlap.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from common import db, db_values, tables
from common.bronze_parse import (
    _batches_from_process,
    _Parsed,
    _parsed_batches,
    _Skipped,
    target,
    unreadable_reason,
)
from common.config_schema import Config
from common.errors import DataError
from common.privacy import expire_rejects, warn_on_mixed_ids
from common.progress import Progress, progress
from common.pseudonym import pseudonymizer

log = logging.getLogger(__name__)

PARSER_PROCESS_MIN_BYTES = 32 * 1024 * 1024  # below this backlog, starting a process costs more than it saves


@dataclass
class LoadSummary:
    """What one run of step 0 did, for the log and pipeline_runs."""

    sources_seen: int = 0
    sources_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    per_source: list[tuple[str, int, int, int]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, why) of files skipped as unreadable
    rejects_expired: int = 0  # bronze_rejects rows deleted by source.rejects_retention_days


def file_sha256(path: Path) -> str:
    """Content hash of a file, streamed (exports can be GBs)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def csv_sources(cfg: Config) -> list[Path]:
    """The export files the glob matches, oldest name first (ACD exports carry dates in their names).

    A link whose target is gone is listed too (loading it fails and is reported); folders and pipes are not.
    """
    pattern = str(cfg.path(cfg.source.csv_glob))
    return sorted(Path(p) for p in glob.glob(pattern)
                  if Path(p).is_file() or (Path(p).is_symlink() and not Path(p).exists()))


# --- loading ------------------------------------------------------------------------------------------

@dataclass
class _Load:
    """One source being loaded in this run (a file, or one incremental SQL query), with its bronze_load_log row."""

    name: str
    load_id: int
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    watermark: str | None = None
    skipped: str | None = None  # why the source was skipped


def _open_load(conn: Connection, cfg: Config, run_id: str, source_name: str, sha: str | None) -> _Load:
    load_id = conn.execute(insert(tables.bronze_load_log).values(
        run_id=run_id, source_kind=cfg.source.kind, source_name=source_name, content_sha256=sha,
        rows_read=0, rows_loaded=0, rows_duplicate=0, rows_rejected=0, loaded_at=db.utc_now(),
        status="loading")).inserted_primary_key[0]
    return _Load(source_name, load_id)


def _close_load(conn: Connection, load: _Load) -> None:
    conn.execute(update(tables.bronze_load_log).where(tables.bronze_load_log.c.load_id == load.load_id).values(
        rows_read=load.read, rows_loaded=load.loaded, rows_duplicate=load.read - load.loaded - load.rejected,
        rows_rejected=load.rejected, watermark=load.watermark, status="skipped" if load.skipped else "loaded",
        message=load.skipped))


def _skip_load(conn: Connection, cfg: Config, load: _Load, reason: str) -> None:
    """Take out what a source skipped part-way added (this transaction's rows with its load_id) and zero its counts."""
    table, _ = target(cfg)
    if load.loaded:
        conn.execute(delete(table).where(table.c.load_id == load.load_id))
    if load.rejected:
        conn.execute(delete(tables.bronze_rejects).where(tables.bronze_rejects.c.load_id == load.load_id))
    load.read = load.loaded = load.rejected = 0
    load.skipped = reason


def _insert_parsed(conn: Connection, cfg: Config, parsed: _Parsed, loads: dict[str, _Load]) -> None:
    """Add a parsed batch's new rows and rejects to bronze and count them per source."""
    table, _ = target(cfg)
    batch_loads = [loads[name] for name in parsed.names]
    load_ids = np.array([load.load_id for load in batch_loads], dtype=np.int64)[parsed.position]
    newest_id = conn.execute(select(func.max(table.c.id))).scalar() or 0
    rows = parsed.rows.assign(load_id=load_ids)
    if conn.dialect.name == "sqlite":  # rows are unique already: skip insert_ignoring_duplicates' drop_duplicates
        names, values = db_values.sqlite_values(table, rows)
        added = db.sqlite_insert_values(conn, table, names, values, or_ignore=True)
    else:
        added = db.insert_ignoring_duplicates(conn, table, rows)
    if added == len(rows):
        new = np.ones(len(rows), dtype=bool)
    else:  # some rows were in bronze already: the ones this insert added are those with a higher id
        fresh = set(conn.execute(select(table.c.row_hash).where(table.c.id > newest_id)).scalars())
        new = rows["row_hash"].isin(fresh).to_numpy()
    loaded_per_source = np.bincount(parsed.position[new], minlength=len(batch_loads))
    for load, read, loaded in zip(batch_loads, parsed.read, loaded_per_source):
        load.read += read
        load.loaded += int(loaded)
        if load.name in parsed.watermarks:
            load.watermark = max(load.watermark or "", parsed.watermarks[load.name])
    if len(parsed.rejects):
        for load in batch_loads:
            mine = parsed.rejects[parsed.rejects["source_name"] == load.name]
            if len(mine):
                load.rejected += db.insert_ignoring_duplicates(conn, tables.bronze_rejects,
                                                               mine.assign(load_id=load.load_id))


def _load(conn: Connection, cfg: Config, loads: list[_Load], sources: list[tuple], workers: int, backlog_bytes: int,
          watermark_col: str | None = None) -> None:
    by_name = {load.name: load for load in loads}
    # The parser process pays off only for a backlog (a first load or a catch-up), not for one night's file.
    if workers > 0 and backlog_bytes >= PARSER_PROCESS_MIN_BYTES:
        batches = _batches_from_process(cfg, sources, watermark_col)
    else:
        batches = _parsed_batches(cfg, sources, watermark_col)
    meter = Progress("bronze: loading", total=len(loads), unit="sources", logger=log)
    seen: set[str] = set()
    for parsed in batches:
        if isinstance(parsed, _Skipped):
            _skip_load(conn, cfg, by_name[parsed.name], parsed.reason)
            meter.advance(int(parsed.name not in seen))
            seen.add(parsed.name)
        else:
            _insert_parsed(conn, cfg, parsed, by_name)
            meter.advance(len(set(parsed.names) - seen), sum(parsed.read))
            seen.update(parsed.names)
    meter.close()
    for load in loads:
        _close_load(conn, load)


def load_csv_files(conn: Connection, cfg: Config, run_id: str, workers: int = 0) -> LoadSummary:
    """Load every not-yet-loaded export file matched by source.csv_glob, inside the caller's transaction."""
    summary = LoadSummary()
    files = csv_sources(cfg)
    if not files:
        log.warning("source.csv_glob %s matches no file: nothing to load", cfg.source.csv_glob)
        return summary
    started = time.perf_counter()
    known = set(conn.execute(select(tables.bronze_load_log.c.content_sha256).where(
        tables.bronze_load_log.c.status == "loaded")).scalars())
    loads, unreadable, backlog = [], [], 0
    for path in progress(files, desc="bronze files", unit="file"):
        summary.sources_seen += 1
        try:
            sha = file_sha256(path)
            size = path.stat().st_size
        except OSError as exc:  # e.g. no read permission, a broken link: skip the file, load the others
            load = _open_load(conn, cfg, run_id, str(path), None)
            load.skipped = unreadable_reason(path, exc)
            unreadable.append(load)
            continue
        if sha in known:
            summary.sources_skipped += 1
            continue
        known.add(sha)
        loads.append(_open_load(conn, cfg, run_id, str(path), sha))
        backlog += size
    _load(conn, cfg, loads, [("csv", load.name) for load in loads], workers, backlog)
    for load in unreadable:
        _close_load(conn, load)
    failed = unreadable + [load for load in loads if load.skipped]
    if failed and len(failed) == len(unreadable) + len(loads):
        # Nothing new could be loaded: the night has no data, so the step fails (exit 2, one line, nothing written).
        raise DataError(failed[0].skipped if len(failed) == 1 else
                        f"{len(failed)} files could not be loaded: " + "; ".join(f.skipped for f in failed))
    for load in failed:
        summary.failed.append((Path(load.name).name, load.skipped))
        log.warning("bronze: skipped %s", load.skipped)
    for load in (load for load in loads if not load.skipped):
        duplicate = load.read - load.loaded - load.rejected
        summary.rows_read += load.read
        summary.rows_loaded += load.loaded
        summary.rows_rejected += load.rejected
        summary.rows_duplicate += duplicate
        summary.per_source.append((Path(load.name).name, load.read, load.loaded, load.rejected))
        # One line per file is the detail (a first load has hundreds); the log's reader gets the summary below.
        log.debug("bronze: %s: %d rows read, %d loaded, %d already present, %d rejected",
                  Path(load.name).name, load.read, load.loaded, duplicate, load.rejected)
    seconds = time.perf_counter() - started
    log.info("bronze: %d files (%d already loaded), %d rows read in %.1fs (%.0f rows/s): %d loaded, %d already "
             "present, %d rejected%s", summary.sources_seen, summary.sources_skipped, summary.rows_read, seconds,
             summary.rows_read / max(seconds, 1e-9), summary.rows_loaded, summary.rows_duplicate,
             summary.rows_rejected, rejects_by_file(summary.per_source))
    return summary


def rejects_by_file(per_source: list[tuple[str, int, int, int]], shown: int = 5) -> str:
    """The files with rejected rows, most first, for the summary line: ' (rejects in a.csv 12, b.csv 3 and 4 more
    files; per file at --log-level DEBUG)', or '' without rejects."""
    with_rejects = sorted(((rejected, name) for name, _, _, rejected in per_source if rejected),
                          key=lambda item: (-item[0], item[1]))
    if not with_rejects:
        return ""
    listed = ", ".join(f"{name} {rejected}" for rejected, name in with_rejects[:shown])
    more = f" and {len(with_rejects) - shown} more files" if len(with_rejects) > shown else ""
    return f" (rejects in {listed}{more}; per file at --log-level DEBUG)"


def load_sql_source(conn: Connection, cfg: Config, run_id: str) -> LoadSummary:
    """Load new rows of the SQL source since the last watermark, inside the caller's transaction."""
    summary = LoadSummary(sources_seen=1)
    query = cfg.source.sql_query or ""
    source_name = "sql:" + hashlib.sha256(query.encode()).hexdigest()[:16]
    last = conn.execute(select(func.max(tables.bronze_load_log.c.watermark)).where(
        tables.bronze_load_log.c.source_name == source_name)).scalar()
    watermark_col = {"cdr": "start_time", "interval": "interval_start", "daily": "date"}[cfg.source.kind]
    url = cfg.source_sql_url
    assert url is not None  # guaranteed by config validation
    load = _open_load(conn, cfg, run_id, source_name, None)
    # In this process: how much a query returns is unknown until it has run.
    _load(conn, cfg, [load], [("sql", source_name, url, query, last)], 0, 0, watermark_col)
    read, loaded, rejected, watermark = load.read, load.loaded, load.rejected, load.watermark
    summary.rows_read, summary.rows_loaded, summary.rows_rejected = read, loaded, rejected
    summary.rows_duplicate = read - loaded - rejected
    summary.per_source.append((source_name, read, loaded, rejected))
    log.info("bronze: %s since %s: %d rows read, %d loaded, %d already present, %d rejected; watermark now %s",
             source_name, last or "the beginning", read, loaded, summary.rows_duplicate, rejected, watermark or last)
    return summary


def load_sources(conn: Connection, cfg: Config, run_id: str, workers: int = 0) -> LoadSummary:
    """Step 0's work: the configured source (CSV glob, else SQL query) into bronze.

    `workers` > 0 lets a parser process read and parse a backlog of CSV files while this one inserts. Rejects
    loaded longer ago than source.rejects_retention_days are deleted in the same transaction.
    """
    pseudonymizer(cfg.source)  # a missing or short key stops the step before any work (exit 2)
    _wait_for_other_loads(conn)
    warn_on_mixed_ids(conn, cfg.source)  # turned on (or off) over a loaded history: say that ids will not match
    summary = _load_one(conn, cfg, run_id, workers)
    if cfg.daily_history is not None:  # the WFM tool's daily totals, after the detailed source (own load-log rows)
        summary = _added(summary, _load_one(conn, cfg.with_source(cfg.daily_history), run_id, workers))
    summary.rejects_expired = expire_rejects(conn, cfg.source.rejects_retention_days)
    return summary


def _load_one(conn: Connection, cfg: Config, run_id: str, workers: int) -> LoadSummary:
    return load_csv_files(conn, cfg, run_id, workers) if cfg.source.csv_glob else load_sql_source(conn, cfg, run_id)


def _added(a: LoadSummary, b: LoadSummary) -> LoadSummary:
    """Two sources' load summaries as one (step 0's message counts both)."""
    return LoadSummary(a.sources_seen + b.sources_seen, a.sources_skipped + b.sources_skipped,
                       a.rows_read + b.rows_read, a.rows_loaded + b.rows_loaded, a.rows_duplicate + b.rows_duplicate,
                       a.rows_rejected + b.rows_rejected, a.per_source + b.per_source, a.failed + b.failed)


def _wait_for_other_loads(conn: Connection) -> None:
    """Take bronze_load_log's write lock before reading what was loaded, held until the caller's transaction ends:
    a second step 0 started meanwhile waits for this one, then finds its files loaded (and never logs them twice).
    Readers (steps 1-5, Power BI) are not blocked."""
    t = tables.bronze_load_log
    name = conn.dialect.identifier_preparer.format_table(t)
    if conn.dialect.name == "sqlite":
        # A write statement takes SQLite's one write lock even when it changes no row (busy timeout: 60 s).
        conn.execute(update(t).where(t.c.load_id < 0).values(status=t.c.status))
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")  # blocks its writers, not readers
    elif conn.dialect.name == "mssql":
        conn.exec_driver_sql(f"SELECT TOP 0 load_id FROM {name} WITH (TABLOCKX, HOLDLOCK)")
