"""The capacity plan's fan chart: FTE need p10-p90 per ISO week vs the supply, per queue and the centre.

Frames as `report_capacity.fold_plan` returns them (queue, week_start, iso_week, fte_required_p10/p50/p90,
supply_fte_p50, volume_p50): the centre ('(centre)') first, then the drawn queues, then "All other queues (K)".
Same look as `plots.py`: one panel per queue on its own y scale, title and how-to-read footnote, a note where data
is missing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from common.chart_frame import ACTUAL, FORECAST, NOTE, empty_chart, new_figure, panel_order, plain_text, save_png, \
    thousands
from common.tables_capacity import CENTRE

SCENARIO = "#e65100"   # the compared scenario's lines (orange: apart from the blue plan and the dark supply)


def capacity_panels(queues: set[str]) -> list[str]:
    """The centre first, then the queues by name, the "All other queues (K)" aggregate last."""
    return ([CENTRE] if CENTRE in queues else []) + panel_order(queues - {CENTRE})


@plain_text
def capacity_fan_chart(plan: pd.DataFrame, plan_origin: date, path: Path, scenario: pd.DataFrame | None = None,
                       scenario_name: str | None = None) -> Path:
    """Per queue: FTE needed each week (p50 line, p10–p90 band), the supply p50 where a headcount is configured,
    and, with a scenario, its FTE need p50 dashed (and its supply dotted where it differs from the plan's)."""
    import matplotlib.dates as mdates  # on use: `5_report.py --help` must not wait for matplotlib
    from matplotlib.ticker import FuncFormatter

    from common.capacity_plan import iso_week  # on use too: the plan's simulation modules are not the report's

    title = f"FTE needed per week, capacity plan of {plan_origin:%a %d %b %Y}"  # short: the legend is beside it
    subtitle = ("Blue line = FTE needed (p50) at the service target, after shrinkage; blue band = p10–p90 of the "
                "simulations (8 weeks in 10 should fall inside); dark line = FTE on hand (supply p50, after "
                "attrition and hires' ramp-up) where capacity.queues.<queue>.headcount is set"
                + (f"; orange dashed = scenario '{scenario_name}' FTE needed (p50), orange dotted = its supply"
                   if scenario_name else "") + ". x = ISO week (Monday). gold_capacity_plan has every number.")
    queues = capacity_panels(set(plan["queue"]))
    if not queues:
        return empty_chart(path, title, subtitle, "No rows in the capacity plan.")
    other = scenario if scenario is not None and len(scenario) else plan.iloc[:0]
    fig, axes = new_figure(len(queues), 2.4, title, subtitle)
    for ax, queue in zip(axes, queues):
        q = plan.loc[plan["queue"] == queue].sort_values("week_start")
        ax.fill_between(q["week_start"], q["fte_required_p10"], q["fte_required_p90"], color=FORECAST, alpha=0.22,
                        lw=0, label="FTE needed p10–p90")
        ax.plot(q["week_start"], q["fte_required_p50"], color=FORECAST, lw=1.8, marker="o", ms=2.2,
                label="FTE needed p50")
        has_supply = q["supply_fte_p50"].notna().any()
        if has_supply:
            ax.plot(q["week_start"], q["supply_fte_p50"], color=ACTUAL, lw=1.6, label="FTE on hand (supply p50)")
        s = other.loc[other["queue"] == queue].sort_values("week_start")
        if len(s):
            ax.plot(s["week_start"], s["fte_required_p50"], color=SCENARIO, lw=1.6, ls="--",
                    label=f"'{scenario_name}' FTE needed p50")
            if _supply_differs(q, s):
                ax.plot(s["week_start"], s["supply_fte_p50"], color=SCENARIO, lw=1.4, ls=":",
                        label=f"'{scenario_name}' FTE on hand")
        name = "Whole centre" if queue == CENTRE else queue
        headcount = has_supply or (len(s) > 0 and s["supply_fte_p50"].notna().any())
        ax.set_title(name if headcount or q.empty else f"{name}  (no headcount configured)", loc="left", fontsize=10)
        ax.set_ylim(bottom=0)
        thousands(ax)
        ax.grid(axis="y", color="#e6e6e6")
        ax.set_axisbelow(True)
        ax.set_ylabel("FTE", fontsize=9)
        if q.empty:
            ax.text(0.5, 0.5, "not in the published plan", transform=ax.transAxes, **NOTE)
    n_weeks = plan["week_start"].nunique()
    every = 4 if n_weeks > 16 else 2 if n_weeks > 8 else 1
    label = FuncFormatter(lambda v, _pos: iso_week(pd.Timestamp(mdates.num2date(v)).tz_localize(None)))
    for ax in axes:
        ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO, interval=every))
        ax.xaxis.set_major_formatter(label)
        ax.tick_params(axis="x", labelbottom=True, labelsize=8)
    handles = {}
    for ax in axes:  # the legend of every line drawn on any panel, once
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside upper right", ncols=3, fontsize=9,
                   frameon=False)
    return save_png(fig, path)


def _supply_differs(plan: pd.DataFrame, scenario: pd.DataFrame) -> bool:
    merged = plan[["week_start", "supply_fte_p50"]].merge(scenario[["week_start", "supply_fte_p50"]], on="week_start",
                                                          how="outer", suffixes=("", "_s"))
    a, b = merged["supply_fte_p50"], merged["supply_fte_p50_s"]
    return bool(b.notna().any()) and not ((a - b).abs() < 0.05).all()
