"""bench/bench_erlang_sim.py's queue replay on calls worked out by hand."""

from pathlib import Path

import numpy as np

from tests.conftest import bench_script

REPO = Path(__file__).resolve().parents[1]


def _sim():
    return bench_script("bench_erlang_sim.py")


def test_one_agent_serves_fcfs_and_an_impatient_caller_hangs_up():
    # One agent in the first half hour. Call 0 at 0 s talks 100 s; call 1 at 10 s waits until 100 (90 s);
    # call 2 at 20 s would start at 150 but gives up after 30 s; call 3 at 30 s starts when call 1 ends, 150.
    arrival = np.array([0.0, 10.0, 20.0, 30.0])
    talk = np.array([100.0, 50.0, 40.0, 60.0])
    patience = np.array([1e9, 1e9, 30.0, 1e9])
    waits = _sim().simulate_day(arrival, talk, patience, np.array([1, 0, 0]))
    np.testing.assert_array_equal(waits, [0.0, 90.0, np.nan, 120.0])


def test_a_call_waits_for_the_next_agent_on_shift_and_nobody_after_the_last_one():
    # No agent before 1800 s, two from then; a call at 1000 s starts at 1800; a second agent takes the next call
    # at once. After the last staffed interval nobody answers: the call abandons.
    arrival = np.array([1000.0, 1900.0, 3700.0])
    waits = _sim().simulate_day(arrival, np.array([500.0, 10.0, 10.0]), np.array([1e9, 1e9, 1e9]),
                                np.array([0, 2, 0]))
    np.testing.assert_array_equal(waits, [800.0, 0.0, np.nan])
