"""Erlang C staffing: stable formulas against the textbook factorial formula, searches, tables."""

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from common.errors import ConfigError, DataError
from common.staffing import (
    _required_agents_array,
    average_speed_of_answer,
    daily_staffing_summary,
    erlang_c_wait_probability,
    required_agents,
    service_level,
    staffing_table,
)


def textbook_erlang_c(traffic: float, agents: int) -> Fraction:
    """Exact Erlang C, the textbook definition, in rationals (the oracle; fine for N up to ~60):

    C = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A)).
    """
    a = Fraction(traffic)  # the exact value of the float, so no rounding enters the oracle
    top = a**agents / math.factorial(agents) * Fraction(agents) / (agents - a)
    return top / (sum(a**k / math.factorial(k) for k in range(agents)) + top)


def exact_erlang_c_integer_load(traffic: int, agents: int) -> Fraction:
    """The same formula multiplied through by N!, in integers, so N in the thousands stays quick."""
    total, term = 0, math.factorial(agents)  # term_k = A^k * N!/k!, exact at every step
    for k in range(agents):
        total += term
        term = term * traffic // (k + 1)
    top = Fraction(traffic**agents * agents, agents - traffic)
    return top / (total + top)


def oracle_service_level(traffic: float, agents: int, aht: float, answer: float) -> float:
    return 1 - float(textbook_erlang_c(traffic, agents)) * math.exp(-(agents - traffic) * answer / aht)


# --- Erlang C against the oracle ------------------------------------------------


@pytest.mark.parametrize("traffic", [0.05, 0.5, 1.0, 3.7, 10.0, 24.999, 41.3, 55.0])
def test_wait_probability_matches_textbook_factorial_formula_up_to_60_agents(traffic):
    for agents in range(math.floor(traffic) + 1, 61):
        expected = float(textbook_erlang_c(traffic, agents))
        assert erlang_c_wait_probability(traffic, agents) == pytest.approx(expected, abs=1e-9, rel=1e-9)


def test_wait_probability_of_small_systems_matches_hand_computation():
    # M/M/1: P(wait) = utilisation, so A = 0.5 on 1 agent waits half the time.
    assert erlang_c_wait_probability(0.5, 1) == pytest.approx(0.5, abs=1e-12)
    # A = 1, N = 2: top = 1/2! * 2/(2-1) = 1; bottom = 1 + 1 + 1 = 3 -> C = 1/3.
    assert erlang_c_wait_probability(1.0, 2) == pytest.approx(1 / 3, abs=1e-12)
    # A = 1, N = 3: top = 1/3! * 3/2 = 1/4; bottom = 1 + 1 + 1/2 + 1/4 = 11/4 -> C = 1/11.
    assert erlang_c_wait_probability(1.0, 3) == pytest.approx(1 / 11, abs=1e-12)


def test_callcentrehelper_worked_example_needs_14_agents_for_80_percent_in_20_seconds():
    # Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example":
    # 100 calls in 30 min, AHT 180 s -> A = 100 * 180 / 1800 = 10 Erlangs; 80% in 20 s,
    # max occupancy 85%, shrinkage 30%. The article steps N up from 11 and lands on 14 agents,
    # 20 staff. Figures below are from the exact oracle (not from memory: P(wait) at 13 agents
    # is 0.2853, not the 0.25 sometimes quoted): 11 -> C 0.6821, SL 0.3896; 13 -> C 0.2853,
    # SL 0.7956 (just short); 14 -> C 0.1741, SL 0.8884, occupancy 10/14 = 0.714, ASA 7.84 s.
    assert erlang_c_wait_probability(10.0, 11) == pytest.approx(0.6821182047, abs=1e-9)
    assert erlang_c_wait_probability(10.0, 13) == pytest.approx(float(textbook_erlang_c(10, 13)), abs=1e-12)
    assert erlang_c_wait_probability(10.0, 13) == pytest.approx(0.2852704530, abs=1e-9)
    assert service_level(10.0, 13, 180, 20) == pytest.approx(oracle_service_level(10, 13, 180, 20), abs=1e-12)
    assert service_level(10.0, 13, 180, 20) == pytest.approx(0.7955947884, abs=1e-9)
    assert service_level(10.0, 14, 180, 20) == pytest.approx(0.8883500192, abs=1e-9)
    assert average_speed_of_answer(10.0, 14, 180) == pytest.approx(7.8359370118, abs=1e-9)
    assert required_agents(100, 180, 1800, 0.80, 20, max_occupancy=0.85) == 14


def test_erlang_com_example_360_calls_4_minutes_55_agents_matches_oracle():
    # erlang.com / Westbay "The Erlang-C Formula" walk-through: 360 calls per half hour,
    # 4 min calls, 55 agents, 15 s target -> A = 360 * 240 / 1800 = 48 Erlangs, u = 48/55.
    # Oracle: C = 0.238701, SL = 1 - C * exp(-7 * 15 / 240) = 0.845883, ASA = C * 240 / 7 = 8.184 s.
    assert erlang_c_wait_probability(48.0, 55) == pytest.approx(float(textbook_erlang_c(48, 55)), abs=1e-9)
    assert service_level(48.0, 55, 240, 15) == pytest.approx(0.8458830922, abs=1e-9)
    assert average_speed_of_answer(48.0, 55, 240) == pytest.approx(8.1840321044, abs=1e-9)


# --- edge cases ----------------------------------------------------------------------


def test_zero_traffic_never_waits_and_needs_no_agents():
    assert erlang_c_wait_probability(0.0, 0) == 0.0
    assert erlang_c_wait_probability(0.0, 5) == 0.0
    assert service_level(0.0, 0, 180, 20) == 1.0
    assert average_speed_of_answer(0.0, 0, 180) == 0.0
    assert required_agents(0, 180, 1800, 0.8, 20) == 0
    assert required_agents(25, 0, 1800, 0.8, 20) == 0


@pytest.mark.parametrize("traffic, agents", [(10.0, 10), (10.0, 7), (0.3, 0), (2000.0, 1999)])
def test_traffic_at_or_above_agents_always_waits_with_zero_service_level(traffic, agents):
    assert erlang_c_wait_probability(traffic, agents) == 1.0
    assert service_level(traffic, agents, 180, 20) == 0.0
    assert average_speed_of_answer(traffic, agents, 180) == math.inf


def test_2000_erlangs_is_exact_without_overflow_and_needs_a_few_dozen_extra_agents():
    # 12,000 calls in 30 min at AHT 300 s -> A = 12000 * 300 / 1800 = 2000 Erlangs.
    exact = float(exact_erlang_c_integer_load(2000, 2050))
    assert erlang_c_wait_probability(2000.0, 2050) == pytest.approx(exact, abs=1e-9)
    agents = required_agents(12_000, 300, 1800, 0.80, 20)
    assert 2000 < agents <= 2050
    assert service_level(2000.0, agents, 300, 20) >= 0.80
    assert service_level(2000.0, agents - 1, 300, 20) < 0.80  # smallest such N


def test_required_agents_is_the_smallest_n_meeting_the_target():
    # Oracle for A = 8 (80 calls, AHT 180 s, 30 min): SL(10) = 0.6724, SL(11) = 0.8245.
    assert oracle_service_level(8, 10, 180, 20) < 0.80 <= oracle_service_level(8, 11, 180, 20)
    assert required_agents(80, 180, 1800, 0.80, 20) == 11


def test_occupancy_cap_binds_when_it_needs_more_agents_than_the_service_level():
    # A = 10: SL alone needs 14, but A/N <= 0.5 needs N >= 20 (10/19 = 0.526 > 0.5).
    assert required_agents(100, 180, 1800, 0.80, 20, max_occupancy=1.0) == 14
    assert required_agents(100, 180, 1800, 0.80, 20, max_occupancy=0.5) == 20


def test_asa_target_binds_when_it_needs_more_agents_than_the_service_level():
    # A = 10, AHT 180: ASA(14) = 0.1741 * 180 / 4 = 7.84 s, ASA(15) = 0.1020 * 180 / 5 = 3.67 s.
    assert required_agents(100, 180, 1800, 0.80, 20, asa_target_seconds=10) == 14
    assert required_agents(100, 180, 1800, 0.80, 20, asa_target_seconds=5) == 15


def test_fractional_forecast_volume_is_allowed():
    # 100.5 calls -> A = 10.05 > 10: 14 agents still give SL 0.883 >= 0.8.
    assert required_agents(100.5, 180, 1800, 0.80, 20) == 14
    assert required_agents(0.2, 180, 1800, 0.80, 20) == 1  # A = 0.02: one agent, SL 0.98


def test_more_calls_never_need_fewer_agents_over_a_sweep():
    volumes = np.arange(0, 400.25, 0.25)
    agents = [required_agents(v, 240, 1800, 0.80, 20, max_occupancy=0.85) for v in volumes]
    assert np.all(np.diff(agents) >= 0)
    assert agents[0] == 0 and agents[-1] > 50  # the sweep really crosses many staffing levels


@pytest.mark.parametrize("max_occupancy, asa_target", [(1.0, None), (0.85, None), (0.9, 12.0), (0.7, 30.0)])
def test_vectorised_search_equals_scalar_search(max_occupancy, asa_target):
    rng = np.random.default_rng(7)
    calls = np.concatenate([[0.0, 0.01, 100.0, 12_000.0], rng.gamma(2.0, 40.0, 300)])
    aht = np.concatenate([[180.0, 180.0, 180.0, 300.0], rng.uniform(60, 900, 300)])
    traffic = calls * aht / 1800
    agents, level = _required_agents_array(traffic, aht, 0.8, 20, max_occupancy, asa_target)
    expected = [required_agents(c, h, 1800, 0.8, 20, max_occupancy, asa_target) for c, h in zip(calls, aht)]
    assert agents.tolist() == expected
    expected_level = [service_level(a, n, h, 20) for a, n, h in zip(traffic, expected, aht)]
    np.testing.assert_allclose(level, expected_level, rtol=0, atol=1e-12)


# --- staffing_table ---------------------------------------------------------------------


def _intervals() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": ["r1", "r1", "r1"],
            "queue": ["sales", "sales", "support"],
            "interval_start": pd.to_datetime(["2024-03-04 08:00", "2024-03-04 08:30", "2024-03-04 08:00"]),
            "volume_p10": [80.0, 0.0, 0.0],
            "volume_p50": [100.0, 0.0, 10.0],
            "volume_p90": [120.0, 0.0, 10.0],
            "aht_seconds": [180.0, np.nan, 180.0],
        },
        index=[10, 11, 12],
    )


def test_staffing_table_adds_agents_staff_service_level_and_occupancy():
    given = _intervals()
    before = given.copy()
    got = staffing_table(given, 30, 0.80, 20, max_occupancy=0.85, shrinkage=0.30)
    # Row 10 (worked example): A = 8 / 10 / 12 -> 11 / 14 / 16 agents (oracle SL 0.8245, 0.8884, 0.8688);
    #   staff = ceil(11/0.7 = 15.7) = 16, ceil(14/0.7 = 20) = 20, ceil(16/0.7 = 22.9) = 23;
    #   workload = 100 * 180 / 60 = 300 min; occupancy 10/14.
    # Row 11: closed (all volumes 0, AHT NaN) -> 0 everywhere, SL 1.0, occupancy 0.
    # Row 12: A = 0 / 1 / 1; A = 1 needs 3 (N=2: C = 1/3, SL 0.7017; N=3: C = 1/11,
    #   SL = 1 - exp(-40/180)/11 = 0.9272); staff ceil(3/0.7 = 4.3) = 5; occupancy 1/3.
    expect = before.assign(
        workload_minutes=[300.0, 0.0, 30.0],
        agents_p10=np.array([11, 0, 0], dtype=np.int64),
        agents_p50=np.array([14, 0, 3], dtype=np.int64),
        agents_p90=np.array([16, 0, 3], dtype=np.int64),
        staff_p10=np.array([16, 0, 0], dtype=np.int64),
        staff_p50=np.array([20, 0, 5], dtype=np.int64),
        staff_p90=np.array([23, 0, 5], dtype=np.int64),
        service_level_p50=[0.8883500192, 1.0, 1 - math.exp(-40 / 180) / 11],
        occupancy_p50=[10 / 14, 0.0, 1 / 3],
    )
    pd.testing.assert_frame_equal(got.loc[:, list(expect.columns)], expect, check_exact=False, atol=1e-9)
    pd.testing.assert_frame_equal(given, before)  # input untouched
    # No patience given: every row is Erlang C, and says so with the targets it was computed with.
    assert got["staffing_model"].tolist() == ["erlang_c"] * 3
    assert got["patience_seconds"].isna().all() and got["abandon_rate_p50"].isna().all()
    assert got["target_service_level"].tolist() == [0.8] * 3 and got["target_answer_seconds"].tolist() == [20] * 3
    assert got["target_max_occupancy"].tolist() == [0.85] * 3 and got["target_asa_seconds"].isna().all()
    assert got["shrinkage"].tolist() == [0.3] * 3
    assert got["agents_raw"].to_numpy() == pytest.approx([20.0, 0.0, 3 / 0.7])


def test_staff_after_shrinkage_is_not_inflated_by_float_noise():
    # 170 calls, AHT 180 s -> A = 17: SL(20) = 0.7241, SL(21) = 0.8286 -> 21 agents.
    # 21 / 0.7 = 30 exactly, but is 30.000000000000004 in floating point; a bare ceil gives 31.
    given = _intervals().iloc[:1].assign(volume_p10=170.0, volume_p50=170.0, volume_p90=170.0)
    got = staffing_table(given, 30, 0.80, 20, max_occupancy=0.85, shrinkage=0.30)
    assert got["agents_p50"].tolist() == [21]
    assert got["staff_p50"].tolist() == [30]


def test_staffing_table_applies_the_asa_target():
    got = staffing_table(_intervals().iloc[:1], 30, 0.80, 20, max_occupancy=0.85, shrinkage=0.0, asa_target_seconds=5)
    assert got["agents_p50"].tolist() == [15]  # ASA(14) = 7.84 s > 5 s, ASA(15) = 3.67 s
    assert got["staff_p50"].tolist() == [15]  # no shrinkage: staff == agents


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"service_level_target": 1.0}, "staffing.service_level == 1.0"),
        ({"service_level_target": 0.0}, "staffing.service_level == 0.0"),
        ({"max_occupancy": 0.0}, "staffing.max_occupancy == 0.0"),
        ({"max_occupancy": 1.2}, "staffing.max_occupancy == 1.2"),
        ({"shrinkage": 1.0}, "staffing.shrinkage == 1.0"),
        ({"shrinkage": -0.1}, "staffing.shrinkage == -0.1"),
        ({"answer_seconds": -5}, "staffing.answer_seconds == -5"),
        ({"asa_target_seconds": 0}, "staffing.asa_target_seconds == 0"),
        ({"interval_minutes": 0}, "rules.interval_minutes == 0"),
    ],
)
def test_staffing_table_rejects_out_of_range_parameters_naming_the_key(kwargs, key):
    params = {
        "interval_minutes": 30,
        "service_level_target": 0.8,
        "answer_seconds": 20,
        "max_occupancy": 0.85,
        "shrinkage": 0.3,
    } | kwargs
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        staffing_table(_intervals(), **params)


def test_staffing_table_rejects_negative_volume_missing_aht_and_missing_columns():
    args = (30, 0.8, 20, 0.85, 0.3)
    with pytest.raises(DataError, match="volume_p90 == -1.0"):
        staffing_table(_intervals().assign(volume_p90=[120.0, -1.0, 10.0]), *args)
    with pytest.raises(DataError, match="aht_seconds == nan"):
        staffing_table(_intervals().assign(aht_seconds=[np.nan, np.nan, 180.0]), *args)
    with pytest.raises(DataError, match="missing column"):
        staffing_table(_intervals().drop(columns="volume_p10"), *args)


# --- daily_staffing_summary ------------------------------------------------------------


def test_daily_summary_sums_staff_hours_and_takes_the_peak_per_queue_per_day():
    given = pd.DataFrame(
        {
            "run_id": ["r1"] * 4,
            "forecast_origin": pd.to_datetime(["2024-03-03"] * 4),
            "queue": ["sales"] * 4,
            "interval_start": pd.to_datetime(
                ["2024-03-04 08:00", "2024-03-04 08:30", "2024-03-05 08:00", "2024-03-05 08:30"]
            ),
            "volume_p50": [100.0, 20.0, 0.0, 50.5],
            "staff_p10": [16, 3, 0, 8],
            "staff_p50": [20, 5, 0, 10],
            "staff_p90": [23, 6, 0, 12],
        }
    )
    got = daily_staffing_summary(given, interval_minutes=30)
    # 4 Mar: (20 + 5) half-hours = 12.5 h at p50, peak 20; 5 Mar: (0 + 10) * 0.5 = 5 h, peak 10.
    expect = pd.DataFrame(
        {
            "run_id": ["r1", "r1"],
            "forecast_origin": pd.to_datetime(["2024-03-03"] * 2),
            "queue": ["sales", "sales"],
            "date": pd.to_datetime(["2024-03-04", "2024-03-05"]),
            "volume_p50": [120.0, 50.5],
            "staff_hours_p10": [9.5, 4.0],
            "staff_hours_p50": [12.5, 5.0],
            "staff_hours_p90": [14.5, 6.0],
            "peak_staff_p10": np.array([16, 8], dtype=np.int64),
            "peak_staff_p50": np.array([20, 10], dtype=np.int64),
            "peak_staff_p90": np.array([23, 12], dtype=np.int64),
            # FTE = staff hours / 7.5 paid hours (the default)
            "fte_p10": [9.5 / 7.5, 4.0 / 7.5],
            "fte_p50": [12.5 / 7.5, 5.0 / 7.5],
            "fte_p90": [14.5 / 7.5, 6.0 / 7.5],
        }
    )
    pd.testing.assert_frame_equal(got, expect)


def test_daily_summary_works_from_staffing_table_output_without_run_keys():
    staffing = staffing_table(_intervals().drop(columns="run_id"), 30, 0.80, 20, 0.85, 0.30)
    got = daily_staffing_summary(staffing, interval_minutes=30)
    assert list(got.columns[:2]) == ["queue", "date"]
    # sales: staff_p50 20 + 0 over two half-hours = 10 h; support: 5 * 0.5 = 2.5 h.
    assert got["staff_hours_p50"].tolist() == [10.0, 2.5]
    assert got["peak_staff_p90"].tolist() == [23, 5]
