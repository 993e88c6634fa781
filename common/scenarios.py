"""Named what-if scenarios (`--scenario NAME --set key=value`) on steps 3 and 6: stored beside, never over, the
published rows.

A scenario run writes step 3's forecast and staffing into the `gold_scenario_*` twins and step 6's plan into
gold_capacity_plan / gold_capacity_drivers under `scenario = NAME`, and records its overrides in gold_scenarios.
Re-running the same scenario for the same as-of replaces its rows (one transaction); the published rows
(`scenario = 'published'`, or the published tables) are never read for writing.
"""

from __future__ import annotations

import argparse
import sys
import json
import re
from datetime import date, datetime, timezone

import pandas as pd
from sqlalchemy import delete
from sqlalchemy.engine import Connection, Engine

from common import db, tables
from common.errors import ConfigError
from common.tables_capacity import PUBLISHED

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default=None, metavar="NAME",
                        help="write this run under scenario NAME (letters, digits, _ . -; max 40) beside the "
                             "published rows, never over them; its --set overrides are stored with it")
    parser.add_argument("--scenario-note", default=None, metavar="TEXT", help="a description stored with --scenario")
    parser.add_argument("--list-scenarios", action="store_true",
                        help="print the scenarios in the database (name, step, as-of, overrides) and exit")


def check_name(name: str | None, publish: bool = False) -> str | None:
    """The scenario name, or ConfigError naming the flag when it cannot be one."""
    if name is None:
        return None
    if name == PUBLISHED:
        raise ConfigError(f"--scenario {name}: '{PUBLISHED}' is the nightly run's rows; pick another name")
    if not NAME.match(name):
        raise ConfigError(f"--scenario {name!r}: use 1-40 letters, digits, _ . - (starting with a letter or digit)")
    if publish:
        raise ConfigError("--scenario and --publish together: a scenario never replaces the published rows; "
                          "drop one of them")
    return name


def record(conn: Connection, name: str, step: str, as_of: date, run_id: str, overrides: list[str],
           note: str | None) -> None:
    """Replace the gold_scenarios row of (name, step, as_of)."""
    t = tables.gold_scenarios
    conn.execute(delete(t).where((t.c.scenario == name) & (t.c.step == step) & (t.c.as_of == as_of)))
    db.insert_frame(conn, t, pd.DataFrame([{
        "scenario": name, "step": step, "as_of": pd.Timestamp(as_of), "run_id": run_id,
        "created_at_utc": pd.Timestamp(datetime.now(timezone.utc).replace(tzinfo=None)),
        "overrides": json.dumps(overrides), "description": note}]))


def replace_rows(conn: Connection, table, name: str, key_column: str, key: date, frame: pd.DataFrame) -> int:
    """Replace `table`'s rows of scenario `name` and `key_column == key` with `frame` (scenario filled in)."""
    conn.execute(delete(table).where((table.c.scenario == name) & (table.c[key_column] == key)))
    return db.insert_frame(conn, table, frame.assign(scenario=name))


def listing(engine: Engine) -> pd.DataFrame:
    """gold_scenarios, newest as-of first."""
    with engine.connect() as conn:
        frame = db.read_table(conn, tables.gold_scenarios)
    return frame.sort_values(["as_of", "scenario", "step"], ascending=[False, True, True]).reset_index(drop=True)


def format_listing(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no scenarios yet (run 3_forecast.py or 6_capacity_plan.py with --scenario NAME --set KEY=VALUE)"
    lines = [f"{'scenario':<20} {'step':<18} {'as-of':<10}  overrides"]
    for r in frame.itertuples():
        overrides = " ".join(json.loads(r.overrides)) or "(none)"
        note = f"  # {r.description}" if isinstance(r.description, str) and r.description else ""
        lines.append(f"{r.scenario:<20} {r.step:<18} {pd.Timestamp(r.as_of).date()!s:<10}  {overrides}{note}")
    return "\n".join(lines)


def list_main(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """`--list-scenarios`: print gold_scenarios and exit (no pipeline_runs row: nothing ran)."""
    from common.config import load_config
    from common.errors import PipelineError

    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        engine = db.make_engine(cfg.database_url)
        db.ensure_schema(engine)
        print(format_listing(listing(engine)))
    except PipelineError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def twins() -> dict:
    """{published table: its gold_scenario_* twin} of step 3's rows a scenario keeps (forecast and staffing)."""
    return {tables.gold_forecast_daily: tables.gold_scenario_forecast_daily,
            tables.gold_staffing_interval: tables.gold_scenario_staffing_interval,
            tables.gold_staffing_daily: tables.gold_scenario_staffing_daily}


def write_forecast(conn: Connection, ctx, name: str, step: str, frames: dict) -> int:
    """Step 3's scenario: its forecast and staffing rows into the twins, the overrides into gold_scenarios."""
    from common.cli import recorded_overrides

    written = sum(replace_rows(conn, twin, name, "forecast_origin", ctx.as_of, frames[published])
                  for published, twin in twins().items())
    record(conn, name, step, ctx.as_of, ctx.run_id, recorded_overrides(ctx.args.overrides, ctx.cfg.database_url),
           ctx.args.scenario_note)
    return written
