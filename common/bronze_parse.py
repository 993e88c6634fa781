"""Step 0's parsing: export sources' raw chunks into insert-ready batches, in this process or in a parser process.

Raw chunks of consecutive sources are parsed together in batches of about `source.chunk_rows` rows (daily exports
are small; per-call costs are paid once per batch). `common.bronze` inserts the batches; this module never writes.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common import tables
from common.config_schema import Config
from common.errors import DataError, PipelineError
from common.pseudonym import Pseudonymizer, pseudonymizer
from common.readers import RawChunk, iter_csv_chunks, iter_sql_chunks
from common.sources import parse_cdr_chunks, parse_daily_chunks, parse_interval_chunks


def unreadable_reason(path: Path, exc: OSError) -> str:
    """One line naming a file the job cannot read and what to check."""
    why = exc.strerror or type(exc).__name__
    return f"{path}: cannot be read ({why}); check that the file exists and the job's user may read it"


def target(cfg: Config):
    """The bronze table the configured source loads into, and the parser of its chunks."""
    if cfg.source.kind == "cdr":
        return tables.bronze_cdr, parse_cdr_chunks
    if cfg.source.kind == "daily":
        return tables.bronze_daily, parse_daily_chunks
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
    if cfg.source.kind != "interval":
        rows, rejects = target(cfg)[1](batch, cfg.source, cfg.timezone, pseudonyms=pseudonyms)
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
            yield _Skipped(source[1], str(exc) if isinstance(exc, DataError) else unreadable_reason(Path(source[1]), exc))
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
