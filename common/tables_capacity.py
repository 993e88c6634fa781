"""The capacity plan's gold tables and the scenario tables (issue 19), re-exported by `common/tables.py`.

A scenario (`--scenario NAME --set key=value`) never writes into a published table: the capacity plan keys every row
by `scenario` ('published' for the nightly run), and step 3's scenario rows go to `gold_scenario_*` twins of its
published tables (the same columns plus `scenario`). A twin rather than a `scenario` key in the published table
keeps every existing Power BI report right: a report that sums gold_forecast_daily per origin would otherwise count
each scenario's calls too.
"""

from sqlalchemy import Column, Date, DateTime, Float, Integer, String, Table, Text

from common.table_types import CALLS, FTE, HOURS, SECONDS, SHARE, metadata
from common.table_types import NAME as _NAME

PUBLISHED = "published"       # the scenario name of the nightly (and explicitly published) rows
CENTRE = "(centre)"           # the queue name of the whole centre's rows in the capacity tables

_WEEKS = {"unit": "weeks"}

gold_capacity_plan = Table(
    "gold_capacity_plan", metadata,
    Column("run_id", String(32), nullable=False),
    Column("scenario", String(40), primary_key=True, comment="published | the --scenario name"),
    Column("plan_origin", Date, primary_key=True, comment="the as-of (local date): the plan uses data before it only"),
    Column("queue", _NAME, primary_key=True, comment="a queue, or '(centre)' for the sum of all queues"),
    Column("week_start", Date, primary_key=True, comment="Monday of the ISO week"),
    Column("iso_week", String(8), nullable=False, comment="ISO week as text, e.g. 2027-W10"),
    Column("weeks_ahead", Integer, nullable=False, comment="1 = the first week starting on or after plan_origin",
           info=_WEEKS),
    Column("open_days", Integer, nullable=False, comment="days the queue is open that week (holidays closed)",
           info={"unit": "days"}),
    Column("volume_p10", Float, nullable=False, comment="offered calls in the week: 10% quantile", info=CALLS),
    Column("volume_p50", Float, nullable=False, comment="offered calls in the week: median", info=CALLS),
    Column("volume_p90", Float, nullable=False, comment="offered calls in the week: 90% quantile", info=CALLS),
    Column("aht_seconds_p50", Float, comment="average handle time: median", info=SECONDS),
    Column("workload_hours_p50", Float, nullable=False, comment="volume x AHT / 3600: median", info=HOURS),
    Column("shrinkage_p50", Float, comment="shrinkage: median", info=SHARE),
    Column("fte_required_p10", Float, nullable=False,
           comment="staff hours needed / capacity.paid_hours_per_week: 10% quantile", info=FTE),
    Column("fte_required_p50", Float, nullable=False, comment="the same: median", info=FTE),
    Column("fte_required_p90", Float, nullable=False, comment="the same: 90% quantile", info=FTE),
    Column("headcount_p50", Float, comment="people on the books (incl. hires still ramping up): median",
           info={"unit": "people"}),
    Column("supply_fte_p10", Float, comment="productive FTE after attrition and hires' ramp-up: 10% quantile",
           info=FTE),
    Column("supply_fte_p50", Float, comment="the same: median", info=FTE),
    Column("supply_fte_p90", Float, comment="the same: 90% quantile", info=FTE),
    Column("gap_fte_p10", Float, comment="supply - required (negative: short of staff): 10% quantile", info=FTE),
    Column("gap_fte_p50", Float, comment="the same: median", info=FTE),
    Column("gap_fte_p90", Float, comment="the same: 90% quantile", info=FTE),
    Column("shortfall_probability", Float, comment="share of simulations with supply < required", info=SHARE),
    Column("volume_method", String(20), nullable=False, comment="the weekly volume model the plan's backtest chose"),
    Column("staffing_model", String(10), nullable=False, comment="erlang_a | erlang_c | occupancy"),
    Column("simulations", Integer, nullable=False, comment="simulations the ranges come from"),
    Column("seed", Integer, nullable=False, comment="random seed of the simulations (same seed, same plan)"),
    comment="One row per scenario per plan origin (as-of) per queue (and the centre) per ISO week ahead: the weekly "
            "FTE range. Weeks start on Monday (local dates).",
)

gold_capacity_drivers = Table(
    "gold_capacity_drivers", metadata,
    Column("run_id", String(32), nullable=False),
    Column("scenario", String(40), primary_key=True, comment="published | the --scenario name"),
    Column("plan_origin", Date, primary_key=True, comment="the as-of (local date): the plan uses data before it only"),
    Column("queue", _NAME, primary_key=True, comment="a queue, or '(centre)' for the sum of all queues"),
    Column("first_week", Date, primary_key=True, comment="Monday of the block's first week"),
    Column("last_week", Date, nullable=False, comment="Monday of its last week"),
    Column("fte_required_p10", Float, nullable=False, comment="the block's mean weekly FTE need: 10% quantile",
           info=FTE),
    Column("fte_required_p50", Float, nullable=False, comment="the same: median", info=FTE),
    Column("fte_required_p90", Float, nullable=False, comment="the same: 90% quantile", info=FTE),
    Column("supply_fte_p50", Float, comment="the block's mean weekly productive FTE: median", info=FTE),
    Column("share_volume", Float, comment="share of the variance of (required - supply) due to volume", info=SHARE),
    Column("share_aht", Float, comment="the same due to AHT", info=SHARE),
    Column("share_shrinkage", Float, comment="the same due to shrinkage", info=SHARE),
    Column("share_attrition", Float, comment="the same due to attrition", info=SHARE),
    Column("main_driver", String(20), comment="volume | aht | shrinkage | attrition"),
    Column("sentence", Text, nullable=False, comment="the sentence the report and email print"),
    comment="One row per scenario per plan origin per queue (and the centre) per block of weeks: what drives the "
            "spread of the FTE need minus supply, as shares of its variance.",
)

gold_scenarios = Table(
    "gold_scenarios", metadata,
    Column("scenario", String(40), primary_key=True, comment="the --scenario name"),
    Column("step", String(40), primary_key=True, comment="the step that wrote its rows"),
    Column("as_of", Date, primary_key=True, comment="the run's as-of (local date)"),
    Column("run_id", String(32), nullable=False),
    Column("created_at_utc", DateTime, nullable=False, comment="when it ran, UTC"),
    Column("overrides", Text, nullable=False, comment="JSON list of KEY=VALUE (passwords masked)"),
    Column("description", Text, comment="--scenario-note"),
    comment="One row per scenario run: which step wrote it, for which as-of, with which --set overrides. A re-run of "
            "the same scenario, step and as-of replaces its rows.",
)


def scenario_twin(table: Table) -> Table:
    """gold_scenario_<name>: `table`'s columns with `scenario` first in the key (scenario rows of step 3)."""
    name = "gold_scenario_" + table.name.removeprefix("gold_")
    columns = [Column("scenario", String(40), primary_key=True, comment="the --scenario name")]
    columns += [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, comment=c.comment,
                       info=dict(c.info)) for c in table.columns]
    return Table(name, metadata, *columns, comment=f"{table.name}'s rows of a scenario (3_forecast.py --scenario "
                                                   f"NAME), the same columns plus `scenario`: {table.comment}")
