"""The capacity plan in the report (issue 19): the newest published plan, once a week in the email, and a scenario
compared with it.

`load_capacity` reads gold_capacity_plan / gold_capacity_drivers (the newest published plan_origin on or before the
as-of; the scenario's rows with `5_report.py --scenario NAME`); `prepare_capacity` (pure) makes what the chart and
the email show: the drivers' sentences of the first block (the centre first), the rows the fan chart draws (the
busiest report.top_queues queues by name, the others summed into one panel, as the other charts do) and the
comparison table. `plots_capacity.capacity_fan_chart` draws it.

The email carries the section on the night step 6 planned (plan_origin = as-of), and on the first report after a
plan made otherwise (by hand after that night's report, or when that night's report failed); always with --scenario.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date

import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from common import db, report_queues, scenarios, tables
from common.errors import DataError
from common.tables_capacity import CENTRE, PUBLISHED

log = logging.getLogger(__name__)

REPORT_STEP = "5_report"
QUANTITIES = ["fte_required_p10", "fte_required_p50", "fte_required_p90", "supply_fte_p50", "volume_p50"]


@dataclass(frozen=True)
class CapacityInputs:
    """The published plan the report shows, and the scenario it compares with it (empty frame without one)."""

    plan: pd.DataFrame                 # gold_capacity_plan: scenario 'published', the newest plan_origin <= as-of
    drivers: pd.DataFrame              # gold_capacity_drivers of that plan
    shown_before: bool                 # a report since the plan was made has shown it (the email skips it)
    scenario: str | None = None
    scenario_plan: pd.DataFrame = field(default_factory=pd.DataFrame)  # gold_capacity_plan rows of the scenario

    @property
    def plan_origin(self) -> date:
        return pd.Timestamp(self.plan["plan_origin"].iloc[0]).date()


def load_capacity(conn: Connection, as_of: date, scenario: str | None = None) -> CapacityInputs | None:
    """The newest published plan on or before `as_of` (None when there is none) and the scenario's rows.

    DataError (exit 2) when `scenario` has no rows on or before the as-of, or there is no published plan to
    compare it with.
    """
    p, d = tables.gold_capacity_plan, tables.gold_capacity_drivers
    name = scenarios.check_name(scenario)
    origin = conn.execute(select(func.max(p.c.plan_origin)).where(
        p.c.scenario == PUBLISHED, p.c.plan_origin <= as_of)).scalar()
    if origin is None:
        if name:
            raise DataError(f"--scenario {name}: there is no published capacity plan on or before {as_of} to compare "
                            f"it with; run 6_capacity_plan.py --as-of {as_of} first")
        log.info("report: no published capacity plan on or before %s (gold_capacity_plan): no capacity section", as_of)
        return None
    plan = db.read_table(conn, p, and_(p.c.scenario == PUBLISHED, p.c.plan_origin == origin))
    drivers = db.read_table(conn, d, and_(d.c.scenario == PUBLISHED, d.c.plan_origin == origin))
    shown = _shown_before(conn, origin, as_of, sorted(plan["run_id"].unique()))
    if not name:
        return CapacityInputs(plan, drivers, shown)
    # The scenario planned on the published plan's origin, else its newest on or before the as-of.
    chosen = origin if _has_rows(conn, name, origin) else conn.execute(select(func.max(p.c.plan_origin)).where(
        p.c.scenario == name, p.c.plan_origin <= as_of)).scalar()
    if chosen is None:
        raise DataError(f"--scenario {name}: no rows in gold_capacity_plan on or before {as_of}; run "
                        f"6_capacity_plan.py --as-of {origin} --scenario {name} --set KEY=VALUE first "
                        "(6_capacity_plan.py --list-scenarios lists the scenarios)")
    rows = db.read_table(conn, p, and_(p.c.scenario == name, p.c.plan_origin == chosen))
    return CapacityInputs(plan, drivers, shown, name, rows)


def _has_rows(conn: Connection, name: str, origin: date) -> bool:
    p = tables.gold_capacity_plan
    return bool(conn.execute(select(func.count()).select_from(p).where(
        p.c.scenario == name, p.c.plan_origin == origin)).scalar())


def _shown_before(conn: Connection, origin: date, as_of: date, run_ids: list[str]) -> bool:
    """True when a successful report of an earlier as-of (on or after the plan's origin) ran after the plan was
    written: that report had the section, so tonight's email leaves it out."""
    runs = tables.pipeline_runs
    made = conn.execute(select(func.min(runs.c.started_at)).where(runs.c.run_id.in_(run_ids))).scalar()
    where = [runs.c.step == REPORT_STEP, runs.c.status == "success", runs.c.as_of >= origin, runs.c.as_of < as_of]
    if made is not None:  # a plan written without bookkeeping (by hand): any such report counts
        where.append(runs.c.started_at > made)
    return bool(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar())


@dataclass(frozen=True)
class CapacitySection:
    """What the report shows of the capacity plan."""

    plan_origin: date
    in_email: bool                 # the email carries the section (and the chart) tonight
    weeks: str                     # "2025-W14 to 2025-W39"
    sentences: list[str]           # the first block's driver sentences: the centre, then the drawn queues
    left_out: int                  # queues whose sentence is only in gold_capacity_drivers (not drawn by name)
    chart: pd.DataFrame            # fold_plan of the published plan
    scenario: str | None = None
    scenario_origin: date | None = None
    scenario_chart: pd.DataFrame = field(default_factory=pd.DataFrame)  # fold_plan of the scenario's rows
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)      # compare_plans


def capacity_due(plan_origin: date, as_of: date, shown_before: bool, scenario: str | None) -> bool:
    """The email's capacity section tonight: step 6 planned tonight, no report has shown this plan yet, or a
    scenario is compared."""
    return plan_origin == as_of or not shown_before or scenario is not None


def prepare_capacity(inputs: CapacityInputs | None, as_of: date, top: int) -> CapacitySection | None:
    """The section from the plan (pure); None without a plan."""
    if inputs is None or inputs.plan.empty:
        return None
    plan = inputs.plan
    queues = plan.loc[plan["queue"] != CENTRE]
    keep = report_queues.busiest_queues(queues.rename(columns={"volume_p50": "p50"}), top)
    weeks = plan.sort_values("week_start")["iso_week"]
    sentences, left_out = first_block_sentences(inputs.drivers, keep)
    section = CapacitySection(
        plan_origin=inputs.plan_origin, in_email=capacity_due(inputs.plan_origin, as_of, inputs.shown_before,
                                                              inputs.scenario),
        weeks=f"{weeks.iloc[0]} to {weeks.iloc[-1]}", sentences=sentences, left_out=left_out,
        chart=fold_plan(plan, keep))
    if inputs.scenario is None:
        return section
    other = fold_plan(inputs.scenario_plan, keep)
    return replace(section, scenario=inputs.scenario,
                   scenario_origin=pd.Timestamp(inputs.scenario_plan["plan_origin"].iloc[0]).date(),
                   scenario_chart=other, comparison=compare_plans(section.chart, other,
                                                                  block_ranges(inputs.drivers, plan)))


def first_block_sentences(drivers: pd.DataFrame, keep: list[str]) -> tuple[list[str], int]:
    """(sentences, left out): the first block's sentence of the centre, then of each queue in `keep` by name; how
    many other queues have one."""
    if drivers.empty:
        return [], 0
    first = drivers.loc[drivers["first_week"] == drivers["first_week"].min()]
    centre = first.loc[first["queue"] == CENTRE, "sentence"].tolist()
    named = first.loc[first["queue"].isin(keep)].sort_values("queue")["sentence"].tolist()
    return centre + named, int((~first["queue"].isin([CENTRE, *keep])).sum())


def fold_plan(rows: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """One row per drawn queue per week: the centre and the `keep` queues as they are, the other queues summed
    into "All other queues (K)" (their p10s and p90s summed too: a cautious band, as the other charts' aggregate;
    supply only when every folded queue has one). Columns: queue, week_start, iso_week and QUANTITIES."""
    cols = ["queue", "week_start", "iso_week", *QUANTITIES]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    rows = rows.assign(week_start=pd.to_datetime(rows["week_start"]))
    named = rows["queue"].isin([CENTRE, *keep])
    others = sorted(set(rows.loc[~named, "queue"]))
    if not others:
        return rows.loc[:, cols].reset_index(drop=True)
    grouped = rows.loc[~named].groupby(["week_start", "iso_week"])
    folded = grouped[QUANTITIES].sum(min_count=1)
    # Supply next to the need of all folded queues only when each has a headcount (else it looks like a shortfall).
    folded = folded.assign(supply_fte_p50=folded["supply_fte_p50"].where(
        grouped["supply_fte_p50"].count() == grouped.size()))
    folded = folded.reset_index().assign(queue=report_queues.others_label(len(others)))
    return pd.concat([rows.loc[named, cols], folded[cols]], ignore_index=True)


def block_ranges(drivers: pd.DataFrame, plan: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(first Monday, last Monday) of the plan's driver blocks; the whole plan as one block without drivers."""
    if drivers.empty:
        weeks = pd.to_datetime(plan["week_start"])
        return [(weeks.min(), weeks.max())]
    pairs = drivers[["first_week", "last_week"]].drop_duplicates().sort_values("first_week")
    return [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in pairs.itertuples(index=False)]


def compare_plans(published: pd.DataFrame, scenario: pd.DataFrame,
                  ranges: list[tuple[pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    """One row per queue (the centre first) per block: the mean weekly FTE need p50 and supply p50 of the published
    plan and of the scenario over the block's weeks, and scenario - published.

    Both frames as `fold_plan` returns them. A scenario planned on another origin covers other weeks: each side
    averages the weeks it has in the block. Columns: queue, first_week, last_week, weeks ("2025-W14 to 2025-W26"),
    need_published, need_scenario, need_change, supply_published, supply_scenario, supply_change (supply empty where
    no headcount is configured).
    """
    parts = []
    for first, last in ranges:
        sides = {}
        for side, frame in (("published", published), ("scenario", scenario)):
            cut = frame.loc[(frame["week_start"] >= first) & (frame["week_start"] <= last)]
            mean = cut.groupby("queue")[["fte_required_p50", "supply_fte_p50"]].mean()
            sides[side] = mean.rename(columns={"fte_required_p50": f"need_{side}", "supply_fte_p50": f"supply_{side}"})
        both = sides["published"].join(sides["scenario"], how="outer").reset_index()
        parts.append(both.assign(first_week=first, last_week=last))
    out = pd.concat(parts, ignore_index=True)
    iso = dict(zip(published["week_start"], published["iso_week"]))
    out = out.assign(need_change=out["need_scenario"] - out["need_published"],
                     supply_change=out["supply_scenario"] - out["supply_published"],
                     weeks=[f"{iso.get(a, f'{a:%Y-%m-%d}')} to {iso.get(b, f'{b:%Y-%m-%d}')}"
                            for a, b in zip(out["first_week"], out["last_week"])])
    out = (out.assign(_centre=out["queue"] != CENTRE, _others=out["queue"].map(report_queues.is_others))
           .sort_values(["_centre", "_others", "queue", "first_week"]).drop(columns=["_centre", "_others"]))
    return out.loc[:, ["queue", "first_week", "last_week", "weeks", "need_published", "need_scenario", "need_change",
                       "supply_published", "supply_scenario", "supply_change"]].reset_index(drop=True)
