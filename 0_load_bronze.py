#!/usr/bin/env python3
"""Step 0: load the configured source (CSV exports or a SQL query) into the bronze tables.

Append-only and idempotent: an export file whose content was loaded before is
skipped, a row already in bronze adds nothing, and rows that cannot be parsed go
to bronze_rejects with the reason. Everything is written in one transaction.
A file that cannot be read (no permission, not CSV text, a wrong encoding) is skipped with a warning naming it,
and the others load; the step fails (exit 2) only when no new file could be loaded.

A backlog of files (a first load, a catch-up) is parsed by --workers processes
while this one writes; one night's export is loaded in this process.

Example:  python 0_load_bronze.py --config config.yaml
"""

from __future__ import annotations

import os
import sys

from common.bronze import load_sources
from common.cli import StepContext, StepResult, run_step, step_parser


def body(ctx: StepContext) -> StepResult:
    # Load inputs + Process data + Save outputs: streamed chunk by chunk inside one transaction.
    with ctx.engine.begin() as conn:
        summary = load_sources(conn, ctx.cfg, ctx.run_id, workers=ctx.args.workers)
    message = (f"{summary.sources_seen} sources ({summary.sources_skipped} already loaded): "
               f"{summary.rows_read} rows read, {summary.rows_loaded} loaded, "
               f"{summary.rows_duplicate} already present, {summary.rows_rejected} rejected")
    if summary.failed:  # the night's result says which files were left out, and why
        message += f"; {len(summary.failed)} file(s) skipped: " + "; ".join(why for _, why in summary.failed)
    if summary.rejects_expired:
        message += (f"; {summary.rejects_expired} rejected row(s) past source.rejects_retention_days "
                    f"({ctx.cfg.source.rejects_retention_days}) deleted")
    return StepResult(rows_written=summary.rows_loaded + summary.rows_rejected, message=message)


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("0_load_bronze.py", __doc__)
    parser.add_argument("--workers", type=int, choices=[0, 1], default=1 if (os.cpu_count() or 1) > 1 else 0,
                        help="1: a second process parses a backlog of files while this one writes (default with "
                             "2+ CPUs); 0: all in this process")
    return run_step("0_load_bronze", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
