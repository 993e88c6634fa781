"""What-if runs of steps 3 and 6 (`--set` without `--publish` or `--scenario`): outputs as CSV files, nothing in gold.

The folder is `<report.output_dir>/<as-of>/whatif-<run_id>/`: the run's own, so a what-if never overwrites another,
with `overrides.json` saying how to publish it (`--publish`) or keep it as a named scenario (`--scenario NAME`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from common.cli import StepContext, StepResult, recorded_overrides

log = logging.getLogger(__name__)


def write_whatif(folder: Path, frames: dict[str, pd.DataFrame], checks: pd.DataFrame, record: dict) -> list[Path]:
    """Write `<name>.csv` per frame (the gold tables' rows), `checks.csv` and `overrides.json`; the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in {**frames, "checks": checks}.items():
        paths.append(folder / f"{name}.csv")
        frame.to_csv(paths[-1], index=False)
    paths.append(folder / "overrides.json")
    paths[-1].write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return paths


def save_whatif(ctx: StepContext, script: str, frames: dict, checks: pd.DataFrame, message: str) -> StepResult:
    """A run with --set and neither --publish nor --scenario: `frames` ({gold table: rows}) as files only."""
    cfg, as_of = ctx.cfg, ctx.as_of
    overrides = recorded_overrides(ctx.args.overrides, cfg.database_url)
    folder = cfg.path(cfg.report.output_dir) / as_of.isoformat() / f"whatif-{ctx.run_id}"
    again = " ".join([f"python {script}", *(["--config", ctx.args.config] if ctx.args.config else []),
                      "--as-of", as_of.isoformat(), *(f"--set {item}" for item in overrides), "--publish"])
    write_whatif(folder, {t.name.removeprefix("gold_"): frame for t, frame in frames.items()}, checks,
                 {"run_id": ctx.run_id, "as_of": as_of.isoformat(), "overrides": overrides, "publish_with": again})
    log.info("what-if run (--set %s): NOT published, gold tables unchanged; the rows are in %s; to publish them, "
             "run: %s (or keep them beside the published rows with --scenario NAME instead of --publish)",
             " --set ".join(overrides), folder, again)
    return StepResult(0, f"what-if (not published): {message}; files in {folder}; publish with --publish")
