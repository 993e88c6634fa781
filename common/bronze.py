"""Load source exports into bronze: append-only, idempotent, rejects kept with their reason.

A file whose content (sha256) was loaded before is skipped; a row whose content
hash is already in bronze adds nothing. So re-running step 0, or dropping the
same export twice, never duplicates anything. A file that cannot be read to its end
(unreadable, not CSV text, an encoding error part-way) is skipped as a whole: its
bronze_load_log row says `skipped` and why, and the next run tries it again.

Raw chunks of consecutive sources are parsed together in batches of about
`source.chunk_rows` rows (daily exports are small; per-call costs are paid once
per batch). With `workers` > 0 and a big enough backlog of files, one spawned
process reads and parses the batches while this one inserts them, so parsing
and SQLite's own work overlap.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import multiprocessing
import queue
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from common import db, db_values, tables
from common.config_schema import Config
from common.errors import DataError, PipelineError
from common.progress import Progress, progress
from common.pseudonym import Pseudonymizer, pseudonymizer
from common.readers import RawChunk, iter_csv_chunks, iter_sql_chunks
from common.privacy import expire_rejects, warn_on_mixed_ids
from common.sources import parse_cdr_chunks, parse_interval_chunks

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


def _unreadable(path: Path, exc: OSError) -> str:
    """One line naming a file the job cannot read and what to check."""
    why = exc.strerror or type(exc).__name__
    return f"{path}: cannot be read ({why}); check that the file exists and the job's user may read it"


def _target(cfg: Config):
    if cfg.source.kind == "cdr":
        return tables.bronze_cdr, parse_cdr_chunks
    return tables.bronze_interval, parse_interval_chunks


# --- parsing: raw chunks -> insert-ready batches (in this process or in a parser process) ----------------

@dataclass(frozen=True)
class _Parsed:
    """One parsed batch, ready to insert: its sources' row counts, good rows (each row once) and rejects."""

    names: list[str]  # the batch's sources, in load order
    read: list[int]  # rows read per source (bad lines included)
    position: np.ndarray  # source index of each good row
    rows: pd.DataFrame  # the good rows, each once, in insert order
    rejects: pd.DataFrame
    watermarks: dict[str, str]  # SQL sources: newest start per source, "%Y-%m-%d %H:%M:%S"


def _hash_order(row_hash: pd.Series, position: np.ndarray) -> np.ndarray:
    """Row order for inserting: source by source, then by row hash.

    Inserting into the unique row_hash index in key order touches each index page once per batch
    instead of once per row (about 1.5x faster); keeping sources in load order keeps bronze ids
    increasing with load_id, which `silver.bronze_day_state` relies on.
    """
    prefix = np.array(row_hash.to_numpy(dtype=object), dtype="S8").view(">u8")  # hex digits sort like their ASCII
    return np.lexsort((prefix, position))


def _parse_batch(batch: list[tuple[RawChunk, str]], cfg: Config, watermark_col: str | None,
                 repeats: dict | None = None, pseudonyms: Pseudonymizer | None = None) -> _Parsed:
    """`repeats`: interval reports' fall-back-hour row counts, carried across the batches of one run;
    `pseudonyms`: source.pseudonymize's keyed hash (None: ids as exported)."""
    names = list(dict.fromkeys(name for _, name in batch))
    read = dict.fromkeys(names, 0)
    for chunk, name in batch:
        read[name] += len(chunk.frame) + len(chunk.bad_lines)
    if cfg.source.kind == "cdr":
        rows, rejects = parse_cdr_chunks(batch, cfg.source, cfg.timezone, pseudonyms=pseudonyms)
    else:
        rows, rejects = parse_interval_chunks(batch, cfg.source, cfg.timezone,
                                              repeats={} if repeats is None else repeats, pseudonyms=pseudonyms)
    position = pd.Index(names).get_indexer(rows["source_name"])
    watermarks = {}
    if watermark_col and len(rows):
        newest = rows[watermark_col].groupby(position).max()
        watermarks = {names[i]: t.strftime("%Y-%m-%d %H:%M:%S") for i, t in newest.items()}
    order = _hash_order(rows["row_hash"], position)
    rows, position = rows.iloc[order], position[order]
    # A row repeated in the batch is loaded once, for the first source that has it (as loading one by one would).
    first = ~rows["row_hash"].duplicated().to_numpy()
    if not first.all():
        rows, position = rows[first], position[first]
    return _Parsed(names, list(read.values()), position, rows, rejects, watermarks)


def _chunks(source: tuple, cfg: Config) -> Iterator[RawChunk]:
    if source[0] == "csv":
        return iter_csv_chunks(Path(source[1]), cfg.source)
    _, _, url, query, last = source
    return iter_sql_chunks(url, query, cfg.source, last)


def _parsed_batches(cfg: Config, sources: list[tuple], watermark_col: str | None) -> Iterator[_Parsed]:
    """Parse the sources' raw chunks in batches of about `source.chunk_rows` rows, in order.

    `sources`: ("csv", name) or ("sql", name, url, query, watermark) tuples.
    """
    pending: list[tuple[RawChunk, str]] = []
    rows = 0
    repeats: dict = {}  # a source split over batches counts its fall-back rows as one
    pseudonyms = pseudonymizer(cfg.source)  # here, so a parser process takes the key from its own environment
    for source in sources:
        try:
            for chunk in _chunks(source, cfg):
                pending.append((chunk, source[1]))
                rows += len(chunk.frame)
                if rows >= cfg.source.chunk_rows:
                    yield _parse_batch(pending, cfg, watermark_col, repeats, pseudonyms)
                    pending, rows = [], 0
        except (DataError, OSError) as exc:
            if source[0] != "csv":
                raise  # the one SQL source failing is the whole load failing
            # A file-level problem skips that file: its chunks not parsed yet are dropped here, the ones already
            # inserted are taken out again by the loader.
            pending = [(c, name) for c, name in pending if name != source[1]]
            rows = sum(len(c.frame) for c, _ in pending)
            yield _Skipped(source[1], str(exc) if isinstance(exc, DataError) else _unreadable(Path(source[1]), exc))
    if pending:
        yield _parse_batch(pending, cfg, watermark_col, repeats, pseudonyms)


@dataclass(frozen=True)
class _Skipped:
    """A source that could not be read to its end (not CSV text, an encoding error, unreadable): skip it."""

    name: str
    reason: str


@dataclass(frozen=True)
class _Failure:
    """An exception raised in the parser process, carried back to be raised in the loading one."""

    error: BaseException


def _parser_process(cfg: Config, sources: list[tuple], watermark_col: str | None, out) -> None:
    try:
        for parsed in _parsed_batches(cfg, sources, watermark_col):
            out.put(parsed)
        out.put(None)
    except PipelineError as exc:  # bad input: the user's one-line error
        out.put(_Failure(exc))
    except BaseException:  # a bug: keep its traceback
        out.put(_Failure(RuntimeError("bronze parser process failed:\n" + traceback.format_exc())))


def _batches_from_process(cfg: Config, sources: list[tuple], watermark_col: str | None) -> Iterator[_Parsed]:
    """`_parsed_batches`, computed ahead in a spawned process (at most two batches waiting)."""
    context = multiprocessing.get_context("spawn")  # the same on every OS; inherits no open connection
    out = context.Queue(maxsize=2)
    process = context.Process(target=_parser_process, args=(cfg, sources, watermark_col, out),
                              name="bronze-parser", daemon=True)
    process.start()
    try:
        while True:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(f"bronze parser process ended unexpectedly (exit code {process.exitcode})") \
                        from None
                continue
            if item is None:
                break
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join()


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
    table, _ = _target(cfg)
    if load.loaded:
        conn.execute(delete(table).where(table.c.load_id == load.load_id))
    if load.rejected:
        conn.execute(delete(tables.bronze_rejects).where(tables.bronze_rejects.c.load_id == load.load_id))
    load.read = load.loaded = load.rejected = 0
    load.skipped = reason


def _insert_parsed(conn: Connection, cfg: Config, parsed: _Parsed, loads: dict[str, _Load]) -> None:
    """Add a parsed batch's new rows and rejects to bronze and count them per source."""
    table, _ = _target(cfg)
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
            load.skipped = _unreadable(path, exc)
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
    watermark_col = "start_time" if cfg.source.kind == "cdr" else "interval_start"
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
    summary = load_csv_files(conn, cfg, run_id, workers) if cfg.source.csv_glob else load_sql_source(conn, cfg, run_id)
    summary.rejects_expired = expire_rejects(conn, cfg.source.rejects_retention_days)
    return summary


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
