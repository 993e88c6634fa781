"""The capacity plan's gold tables and the scenario tables (issue 19), re-exported by `common/tables.py`.

A scenario (`--scenario NAME --set key=value`) never writes into a published table: the capacity plan keys every row
by `scenario` ('published' for the nightly run), and step 3's scenario rows go to `gold_scenario_*` twins of its
published tables (the same columns plus `scenario`). A twin rather than a `scenario` key in the published table
keeps every existing Power BI report right: a report that sums gold_forecast_daily per origin would otherwise count
each scenario's calls too.
"""

from sqlalchemy import Column, Date, DateTime, Float, Integer, String, Table, Text

from common.table_types import NAME as _NAME
from common.table_types import metadata

PUBLISHED = "published"       # the scenario name of the nightly (and explicitly published) rows
CENTRE = "(centre)"           # the queue name of the whole centre's rows in the capacity tables

# One row per scenario per plan origin (as-of) per queue (and the centre) per ISO week ahead: the weekly FTE range.
# Weeks start on Monday (local dates); weeks_ahead 1 is the first week starting on or after plan_origin.
gold_capacity_plan = Table(
    "gold_capacity_plan", metadata,
    Column("run_id", String(32), nullable=False),
    Column("scenario", String(40), primary_key=True),         # published | the --scenario name
    Column("plan_origin", Date, primary_key=True),            # the as-of: the plan uses data before it only
    Column("queue", _NAME, primary_key=True),                 # a queue, or '(centre)' for the sum of all queues
    Column("week_start", Date, primary_key=True),             # Monday of the ISO week
    Column("iso_week", String(8), nullable=False),            # e.g. 2027-W10
    Column("weeks_ahead", Integer, nullable=False),
    Column("open_days", Integer, nullable=False),             # days the queue is open that week (holidays closed)
    Column("volume_p10", Float, nullable=False),              # offered calls in the week
    Column("volume_p50", Float, nullable=False),
    Column("volume_p90", Float, nullable=False),
    Column("aht_seconds_p50", Float),
    Column("workload_hours_p50", Float, nullable=False),      # volume x AHT / 3600
    Column("shrinkage_p50", Float),
    Column("fte_required_p10", Float, nullable=False),        # staff hours needed / capacity.paid_hours_per_week
    Column("fte_required_p50", Float, nullable=False),
    Column("fte_required_p90", Float, nullable=False),
    Column("headcount_p50", Float),                           # people on the books (incl. hires still ramping up)
    Column("supply_fte_p10", Float),                          # productive FTE after attrition and hires' ramp-up
    Column("supply_fte_p50", Float),
    Column("supply_fte_p90", Float),
    Column("gap_fte_p10", Float),                             # supply - required (negative: short of staff)
    Column("gap_fte_p50", Float),
    Column("gap_fte_p90", Float),
    Column("shortfall_probability", Float),                   # share of simulations with supply < required
    Column("volume_method", String(20), nullable=False),      # the weekly volume model the plan's backtest chose
    Column("staffing_model", String(10), nullable=False),     # erlang_a | erlang_c | occupancy
    Column("simulations", Integer, nullable=False),
    Column("seed", Integer, nullable=False),
)

# One row per scenario per plan origin per queue (and the centre) per block of weeks: what drives the spread of the
# FTE need minus supply, as shares of its variance, and the sentence the report and email print.
gold_capacity_drivers = Table(
    "gold_capacity_drivers", metadata,
    Column("run_id", String(32), nullable=False),
    Column("scenario", String(40), primary_key=True),
    Column("plan_origin", Date, primary_key=True),
    Column("queue", _NAME, primary_key=True),
    Column("first_week", Date, primary_key=True),             # Monday of the block's first week
    Column("last_week", Date, nullable=False),                # Monday of its last week
    Column("fte_required_p10", Float, nullable=False),        # the block's mean weekly FTE need
    Column("fte_required_p50", Float, nullable=False),
    Column("fte_required_p90", Float, nullable=False),
    Column("supply_fte_p50", Float),
    Column("share_volume", Float),                            # shares of the variance of (required - supply)
    Column("share_aht", Float),
    Column("share_shrinkage", Float),
    Column("share_attrition", Float),
    Column("main_driver", String(20)),                        # volume | aht | shrinkage | attrition
    Column("sentence", Text, nullable=False),
)

# One row per scenario run: which step wrote it, for which as-of, with which --set overrides (JSON, passwords
# masked). A re-run of the same scenario, step and as-of replaces its rows.
gold_scenarios = Table(
    "gold_scenarios", metadata,
    Column("scenario", String(40), primary_key=True),
    Column("step", String(40), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("created_at_utc", DateTime, nullable=False),
    Column("overrides", Text, nullable=False),                # JSON list of KEY=VALUE
    Column("description", Text),                              # --scenario-note
)


def scenario_twin(table: Table) -> Table:
    """gold_scenario_<name>: `table`'s columns with `scenario` first in the key (scenario rows of step 3)."""
    name = "gold_scenario_" + table.name.removeprefix("gold_")
    columns = [Column("scenario", String(40), primary_key=True)]
    columns += [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in table.columns]
    return Table(name, metadata, *columns)
