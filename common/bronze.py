"""Load source exports into bronze: append-only, idempotent, rejects kept with their reason.

A file whose content (sha256) was loaded before is skipped; a row whose content
hash is already in bronze adds nothing. So re-running step 0, or dropping the
same export twice, never duplicates anything.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from common import db, tables
from common.config import Config, TimestampSpec
from common.errors import DataError
from common.progress import progress
from common.sources import RawChunk, iter_csv_chunks, iter_sql_chunks, parse_cdr_chunk, parse_interval_chunk

log = logging.getLogger(__name__)


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


def file_sha256(path: Path) -> str:
    """Content hash of a file, streamed (exports can be GBs)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def csv_sources(cfg: Config) -> list[Path]:
    """The export files the glob matches, oldest name first (ACD exports carry dates in their names)."""
    pattern = str(cfg.path(cfg.source.csv_glob))
    return sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())


def _target(cfg: Config):
    if cfg.source.kind == "cdr":
        return tables.bronze_cdr, parse_cdr_chunk
    return tables.bronze_interval, parse_interval_chunk


def _load_chunks(conn: Connection, chunks, cfg: Config, run_id: str, source_name: str, sha: str | None,
                 watermark_col: str | None = None) -> tuple[int, int, int, int, str | None]:
    table, parse = _target(cfg)
    load_id = conn.execute(insert(tables.bronze_load_log).values(
        run_id=run_id, source_kind=cfg.source.kind, source_name=source_name, content_sha256=sha,
        rows_read=0, rows_loaded=0, rows_duplicate=0, rows_rejected=0, loaded_at=db.utc_now(),
        status="loading")).inserted_primary_key[0]
    read = loaded = rejected = 0
    watermark = None
    for chunk in chunks:
        rows, rejects = parse(chunk, cfg.source, cfg.timezone, source_name)
        read += len(chunk.frame) + len(chunk.bad_lines)
        rows = rows.assign(load_id=load_id, source_name=source_name)
        loaded += db.insert_ignoring_duplicates(conn, table, rows)
        rejected += db.insert_ignoring_duplicates(conn, tables.bronze_rejects, rejects.assign(load_id=load_id))
        if watermark_col and len(rows):
            newest = rows[watermark_col].max()
            watermark = max(watermark or "", newest.strftime("%Y-%m-%d %H:%M:%S"))
    duplicate = read - loaded - rejected
    conn.execute(update(tables.bronze_load_log).where(tables.bronze_load_log.c.load_id == load_id).values(
        rows_read=read, rows_loaded=loaded, rows_duplicate=duplicate, rows_rejected=rejected,
        watermark=watermark, status="loaded"))
    return load_id, read, loaded, rejected, watermark


def load_csv_files(conn: Connection, cfg: Config, run_id: str) -> LoadSummary:
    """Load every not-yet-loaded export file matched by source.csv_glob, inside the caller's transaction."""
    summary = LoadSummary()
    files = csv_sources(cfg)
    if not files:
        log.warning("source.csv_glob %s matches no file: nothing to load", cfg.source.csv_glob)
        return summary
    known = set(conn.execute(select(tables.bronze_load_log.c.content_sha256).where(
        tables.bronze_load_log.c.status == "loaded")).scalars())
    for path in progress(files, desc="bronze files", unit="file"):
        summary.sources_seen += 1
        sha = file_sha256(path)
        if sha in known:
            summary.sources_skipped += 1
            continue
        started = time.perf_counter()
        _, read, loaded, rejected, _ = _load_chunks(conn, iter_csv_chunks(path, cfg.source), cfg, run_id, str(path), sha)
        known.add(sha)
        summary.rows_read += read
        summary.rows_loaded += loaded
        summary.rows_rejected += rejected
        summary.rows_duplicate += read - loaded - rejected
        summary.per_source.append((path.name, read, loaded, rejected))
        log.info("bronze: %s: %d rows read, %d loaded, %d already present, %d rejected (%.1fs)",
                 path.name, read, loaded, read - loaded - rejected, rejected, time.perf_counter() - started)
    return summary


def load_sql_source(conn: Connection, cfg: Config, run_id: str) -> LoadSummary:
    """Load new rows of the SQL source since the last watermark, inside the caller's transaction."""
    summary = LoadSummary(sources_seen=1)
    query = cfg.source.sql_query or ""
    source_name = "sql:" + hashlib.sha256(query.encode()).hexdigest()[:16]
    last = conn.execute(select(func.max(tables.bronze_load_log.c.watermark)).where(
        tables.bronze_load_log.c.source_name == source_name)).scalar()
    watermark_col = "start_time" if cfg.source.kind == "cdr" else "interval_start"
    url = cfg.source_sql_url
    assert url is not None  # guaranteed by config validation
    _, read, loaded, rejected, watermark = _load_chunks(
        conn, iter_sql_chunks(url, query, cfg.source, last), cfg, run_id, source_name, None, watermark_col)
    summary.rows_read, summary.rows_loaded, summary.rows_rejected = read, loaded, rejected
    summary.rows_duplicate = read - loaded - rejected
    summary.per_source.append((source_name, read, loaded, rejected))
    log.info("bronze: %s since %s: %d rows read, %d loaded, %d already present, %d rejected; watermark now %s",
             source_name, last or "the beginning", read, loaded, summary.rows_duplicate, rejected, watermark or last)
    return summary


def load_sources(conn: Connection, cfg: Config, run_id: str) -> LoadSummary:
    """Step 0's work: the configured source (CSV glob, else SQL query) into bronze."""
    if cfg.source.csv_glob:
        return load_csv_files(conn, cfg, run_id)
    return load_sql_source(conn, cfg, run_id)
