"""The `capacity:` section of config.yaml: the weekly capacity plan of `6_capacity_plan.py` (issue 19).

Supply is what the planner knows and the data does not: headcount per queue, attrition, planned hires. The rest
(volume, AHT, their spread) is learnt from silver by the plan's own backtest; the targets come from `staffing:`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from common.config_source import StrictModel

CapacityWeekdays = list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]


class HireConfig(StrictModel):
    week: date                                  # any date in the week the hires start (the plan uses its Monday)
    count: float = Field(gt=0)                  # people (or FTE) starting that week


class QueueCapacityConfig(StrictModel):
    headcount: float | None = Field(None, ge=0)           # FTE on the books now (tenured, fully productive)
    attrition_monthly: float | None = Field(None, ge=0, lt=1)
    attrition_monthly_sd: float | None = Field(None, ge=0, lt=0.5)
    aht_seconds: float | None = Field(None, gt=0)          # only where silver has no AHT (daily totals without it)
    hires: list[HireConfig] = []


class CapacityConfig(StrictModel):
    horizon_weeks: int = Field(26, ge=4, le=104)          # the last week planned
    first_week: int = Field(4, ge=1, le=26)               # the first: the 14-day forecast covers the weeks before
    simulations: int = Field(1000, ge=50, le=100_000)
    seed: int = 42
    # weekly, like segmentation (the plan moves little in a day); null = every night. The first plan is made
    # whatever the weekday; 6_capacity_plan.py --force plans anyway.
    run_weekdays: CapacityWeekdays | None = ["mon"]
    paid_hours_per_week: float | None = Field(None, gt=0, le=80)   # null: 5 x staffing.paid_hours_per_fte
    method: Literal["staffing", "occupancy"] = "staffing"  # staffing: Erlang per interval of a typical week
    attrition_monthly: float = Field(0.02, ge=0, lt=1)     # mean share of headcount leaving per month
    attrition_monthly_sd: float = Field(0.005, ge=0, lt=0.5)  # the planner's uncertainty about it
    shrinkage_sd: float = Field(0.02, ge=0, lt=0.3)        # absolute spread of shrinkage around staffing's value
    ramp: list[float] = [0.25, 0.5, 0.75]                  # a hire's productivity in their 1st, 2nd, ... week; then 1
    hires_file: str | None = None                          # CSV queue,week,count (added to queues.<q>.hires)
    # origins of the plan's own backtest (weekly): 5 years, so the band has seen more than one regime
    backtest_weeks: int = Field(260, ge=8, le=1040)
    min_history_weeks: int = Field(8, ge=4, le=104)        # history an origin needs before it is backtested
    queues: dict[str, QueueCapacityConfig] = {}

    @model_validator(mode="after")
    def _weeks(self) -> CapacityConfig:
        if self.first_week > self.horizon_weeks:
            raise ValueError(f"first_week {self.first_week} is after horizon_weeks {self.horizon_weeks}")
        if any(not 0 <= r <= 1 for r in self.ramp):
            raise ValueError(f"ramp {self.ramp}: every week's productivity must be between 0 and 1")
        return self
