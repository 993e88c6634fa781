"""Erlang A (M/M/N+M): the reference implementation's golden values, the patient limit, Little's law, searches."""

import numpy as np
import pytest

from common.erlang import average_speed_of_answer, erlang_c_wait_probability, required_agents, service_level
from common.erlang_a import _required_agents_erlang_a_array, erlang_a_metrics, required_agents_erlang_a
from common.errors import ConfigError


def stationary_queue(traffic: float, agents: int, aht: float, patience: float, states: int = 4000) -> np.ndarray:
    """The birth-death chain's distribution by brute force: pi(j) ~ prod lambda / (min(j, N) mu + max(j-N, 0) theta)."""
    lam, mu, theta = traffic / aht, 1 / aht, 1 / patience
    log_p = np.zeros(states)
    for j in range(1, states):
        log_p[j] = log_p[j - 1] + np.log(lam / (min(j, agents) * mu + max(j - agents, 0) * theta))
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def test_golden_values_of_the_reference_implementation():
    # 100 calls per 30 min, AHT 3 min, mean patience 5 min, 14 agents: A = 10 Erlangs.
    m = erlang_a_metrics(100 * 180 / 1800, 14, 180, 300, 20)
    assert m.wait_probability == pytest.approx(0.14526, abs=5e-6)
    assert m.abandon_probability == pytest.approx(0.013984, abs=5e-7)
    assert m.occupancy == pytest.approx(0.704297, abs=5e-7)
    assert m.asa_seconds / 60 == pytest.approx(0.069919, abs=5e-7)
    assert m.service_level == pytest.approx(0.916792, abs=5e-7)


@pytest.mark.parametrize(("traffic", "agents"), [(10.0, 14), (3.3, 4), (47.5, 55)])
def test_metrics_tend_to_erlang_c_as_patience_grows_without_bound(traffic, agents):
    m = erlang_a_metrics(traffic, agents, 180, 180 * 1e9, 20)
    assert m.wait_probability == pytest.approx(erlang_c_wait_probability(traffic, agents), rel=1e-6)
    assert m.service_level == pytest.approx(service_level(traffic, agents, 180, 20), rel=1e-6)
    assert m.asa_seconds == pytest.approx(average_speed_of_answer(traffic, agents, 180), rel=1e-5)
    assert m.occupancy == pytest.approx(traffic / agents, rel=1e-6)
    assert m.abandon_probability < 1e-7


@pytest.mark.parametrize(("traffic", "agents", "patience"), [(10.0, 14, 300.0), (12.0, 9, 60.0), (40.0, 41, 900.0)])
def test_wait_abandon_and_littles_law_match_the_brute_force_chain(traffic, agents, patience):
    aht = 180.0
    p = stationary_queue(traffic, agents, aht, patience)
    queue = np.arange(p.size) - agents
    mean_queue = float((np.clip(queue, 0, None) * p).sum())
    m = erlang_a_metrics(traffic, agents, aht, patience, 20)
    assert m.wait_probability == pytest.approx(float(p[agents:].sum()), rel=1e-9)
    # Little: E[queue] = lambda * E[wait]; abandons leave at theta per waiting caller.
    assert mean_queue == pytest.approx(traffic / aht * m.asa_seconds, rel=1e-9)
    assert m.abandon_probability == pytest.approx(mean_queue / patience / (traffic / aht), rel=1e-9)


def test_more_agents_never_give_worse_service_even_below_the_load():
    metrics = [erlang_a_metrics(20.0, n, 240, 120, 30) for n in range(1, 40)]
    for worse, better in zip(metrics, metrics[1:], strict=False):
        assert better.service_level >= worse.service_level
        assert better.abandon_probability <= worse.abandon_probability
        assert better.wait_probability <= worse.wait_probability
        assert better.asa_seconds <= worse.asa_seconds
    assert metrics[0].service_level < 0.05 < 0.95 < metrics[-1].service_level


def test_erlang_a_needs_no_more_agents_than_erlang_c_at_the_golden_load():
    assert required_agents(100, 180, 1800, 0.8, 20, 0.85) == 14
    assert required_agents_erlang_a(10.0, 180, 300, 0.8, 20, 0.85) == 13
    # 13 agents meet 80/20 with abandons; 12 do not.
    thirteen, twelve = erlang_a_metrics(10.0, 13, 180, 300, 20), erlang_a_metrics(10.0, 12, 180, 300, 20)
    assert thirteen.service_level >= 0.8 > twelve.service_level


def test_abandon_target_binds_when_it_needs_more_agents():
    free = required_agents_erlang_a(3.0, 600, 60, 0.8, 20, 0.85)
    capped = required_agents_erlang_a(3.0, 600, 60, 0.8, 20, 0.85, max_abandon_rate=0.02)
    assert capped > free
    assert erlang_a_metrics(3.0, capped, 600, 60, 20).abandon_probability <= 0.02
    assert erlang_a_metrics(3.0, capped - 1, 600, 60, 20).abandon_probability > 0.02


@pytest.mark.parametrize(("asa", "abandon"), [(None, None), (15.0, 0.03)])
def test_vectorised_search_equals_the_scalar_search(asa, abandon):
    traffic = np.array([0.0, 0.01, 0.7, 3.0, 10.0, 24.5, 33.0])
    aht = np.array([0.0, 100.0, 400.0, 600.0, 180.0, 240.0, 300.0])
    patience = np.array([300.0, 1e8, 30.0, 60.0, 300.0, 120.0, 900.0])
    agents, level, abandoned, occupancy = _required_agents_erlang_a_array(
        traffic, aht, patience, 0.8, 20, 0.85, asa, abandon)
    expected = [required_agents_erlang_a(t, h, p, 0.8, 20, 0.85, asa, abandon)
                for t, h, p in zip(traffic, aht, patience, strict=True)]
    assert agents.tolist() == expected
    for i in range(1, traffic.size):
        m = erlang_a_metrics(traffic[i], int(agents[i]), aht[i], patience[i], 20)
        assert (level[i], abandoned[i], occupancy[i]) == pytest.approx(
            (m.service_level, m.abandon_probability, m.occupancy), rel=1e-9)


def test_thousands_of_erlangs_with_short_patience_do_not_overflow():
    agents, level, abandoned, _ = _required_agents_erlang_a_array(
        np.array([2000.0]), np.array([300.0]), np.array([30.0]), 0.8, 20, 0.85, None, None)
    m = erlang_a_metrics(2000.0, int(agents[0]), 300, 30, 20)
    assert np.isfinite([m.wait_probability, m.service_level]).all()
    assert level[0] >= 0.8 and 2000 / 0.85 <= agents[0] <= 2000 / 0.85 + 2
    assert erlang_a_metrics(2000.0, 1900, 300, 30, 20).abandon_probability > 0.04  # overloaded, yet finite


def test_bad_patience_and_abandon_target_are_refused():
    with pytest.raises(ValueError, match="patience_seconds"):
        erlang_a_metrics(10.0, 14, 180, 0.0, 20)
    with pytest.raises(ConfigError, match="staffing.max_abandon_rate"):
        required_agents_erlang_a(10.0, 180, 300, 0.8, 20, 0.85, max_abandon_rate=1.5)
