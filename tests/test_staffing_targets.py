"""Per-queue targets, shrinkage by month and weekday, and Erlang A in staffing_table, recorded on every row."""

import math

import numpy as np
import pandas as pd
import pytest

from common.erlang import required_agents
from common.erlang_a import erlang_a_metrics
from common.errors import ConfigError
from common.staffing import daily_staffing_summary, staffing_table


def _two_queues() -> pd.DataFrame:
    # 2024-03-08 is a Friday, 2024-12-02 a Monday in December; A = 100 * 180 / 1800 = 10 Erlangs everywhere.
    return pd.DataFrame({
        "queue": ["billing", "vip", "vip", "vip"],
        "interval_start": pd.to_datetime(["2024-03-08 09:00", "2024-03-08 09:00", "2024-03-07 09:00",
                                          "2024-12-02 09:00"]),
        "volume_p10": [100.0] * 4, "volume_p50": [100.0] * 4, "volume_p90": [100.0] * 4,
        "aht_seconds": [180.0] * 4,
    })


def test_queue_targets_override_the_global_ones_and_every_row_records_them():
    vip = {"service_level": 0.9, "answer_seconds": 10, "shrinkage": 0.4,
           "shrinkage_by_month": {12: 0.45}, "shrinkage_by_weekday": {"fri": 0.5}}
    got = staffing_table(_two_queues(), 30, 0.8, 20, 0.85, 0.3, model="erlang_c", queue_targets={"vip": vip})
    vip_agents = required_agents(100, 180, 1800, 0.9, 10, 0.85)
    assert vip_agents > 14
    assert got["agents_p50"].tolist() == [14, vip_agents, vip_agents, vip_agents]
    assert got["target_service_level"].tolist() == [0.8, 0.9, 0.9, 0.9]
    assert got["target_answer_seconds"].tolist() == [20, 10, 10, 10]
    # Friday: the weekday value; Thursday in March: the queue's; Monday in December: the month's.
    assert got["shrinkage"].tolist() == [0.3, 0.5, 0.4, 0.45]
    assert got["staff_p50"].tolist() == [20, math.ceil(vip_agents / 0.5), math.ceil(vip_agents / 0.6),
                                         math.ceil(vip_agents / 0.55)]


def test_erlang_a_is_used_where_the_queue_has_a_patience_and_recorded():
    got = staffing_table(_two_queues(), 30, 0.8, 20, 0.85, 0.3, patience_seconds={"billing": 300.0})
    billing, vip = got.iloc[0], got.iloc[1]
    # The golden load: Erlang A meets 80/20 with 13 agents where Erlang C needs 14.
    assert (billing["staffing_model"], billing["patience_seconds"], billing["agents_p50"]) == ("erlang_a", 300.0, 13)
    m = erlang_a_metrics(10.0, 13, 180, 300, 20)
    assert billing["abandon_rate_p50"] == pytest.approx(m.abandon_probability)
    assert billing["service_level_p50"] == pytest.approx(m.service_level)
    assert billing["occupancy_p50"] == pytest.approx(m.occupancy)
    assert (vip["staffing_model"], vip["agents_p50"]) == ("erlang_c", 14)
    assert np.isnan(vip["patience_seconds"])
    erlang_c = staffing_table(_two_queues(), 30, 0.8, 20, 0.85, 0.3, patience_seconds={"billing": 300.0},
                              model="erlang_c")
    assert erlang_c["staffing_model"].tolist() == ["erlang_c"] * 4 and erlang_c["agents_p50"].tolist() == [14] * 4


def test_a_queue_abandon_target_binds_under_erlang_a():
    got = staffing_table(_two_queues(), 30, 0.8, 20, 0.85, 0.3, patience_seconds={"billing": 300.0},
                         queue_targets={"billing": {"max_abandon_rate": 0.005}})
    n = int(got["agents_p50"].iloc[0])
    assert erlang_a_metrics(10.0, n, 180, 300, 20).abandon_probability <= 0.005
    assert erlang_a_metrics(10.0, n - 1, 180, 300, 20).abandon_probability > 0.005
    assert got["target_max_abandon_rate"].iloc[0] == 0.005 and np.isnan(got["target_max_abandon_rate"].iloc[1])


def test_an_out_of_range_queue_target_names_the_queue_key():
    with pytest.raises(ConfigError, match=r"staffing\.queues\.vip\.service_level"):
        staffing_table(_two_queues(), 30, 0.8, 20, 0.85, 0.3, queue_targets={"vip": {"service_level": 1.2}})


def test_daily_summary_adds_fte_from_paid_hours():
    got = staffing_table(_two_queues().iloc[:1], 30, 0.8, 20, 0.85, 0.3, model="erlang_c")
    daily = daily_staffing_summary(got, 30, paid_hours_per_fte=7.5)
    # 20 staff for one half hour = 10 staff hours = 10 / 7.5 FTE.
    assert daily["staff_hours_p50"].tolist() == [10.0]
    assert daily["fte_p50"].tolist() == pytest.approx([10 / 7.5])
