"""Tests for common.metrics, against hand-computed values; closed days have y = 0."""

import math

import numpy as np
import pandas as pd
import pytest

from common.metrics import (
    accuracy_table, bias, coverage, mae, mape, mase, pinball_loss, rmse, total_volume_error, wmape, with_naive,
)


def horizon() -> pd.DataFrame:
    """Series A: 3 open days and a closed day (y 0) that was forecast 5 by mistake.

    open rows: y 100, 50, 200; p50 110, 40, 180 -> |err| 10, 10, 20; p50 - y: +10, -10, -20
    """
    return pd.DataFrame({
        "series": "A", "origin": pd.Timestamp("2024-03-04"),
        "y": [100.0, 0.0, 50.0, 200.0],
        "p10": [90.0, 0.0, 45.0, 150.0],
        "p50": [110.0, 5.0, 40.0, 180.0],
        "p90": [120.0, 9.0, 60.0, 190.0],
        "naive_p50": [90.0, 0.0, 50.0, 210.0],
    })


def test_point_metrics_hand_computed_on_open_days_only():
    f = horizon()
    assert wmape(f) == pytest.approx(40 / 350)
    assert mape(f) == pytest.approx((0.1 + 0.2 + 0.1) / 3)
    assert mae(f) == pytest.approx(40 / 3)
    assert rmse(f) == pytest.approx(math.sqrt((100 + 100 + 400) / 3))
    assert bias(f) == pytest.approx(-20 / 350)


def test_a_given_mask_replaces_y_above_zero_but_mape_never_divides_by_zero():
    f = horizon()
    everything = np.ones(len(f), dtype=bool)
    assert wmape(f, everything) == pytest.approx(45 / 350)  # the closed day's 5 now counts
    assert mape(f, everything) == pytest.approx((0.1 + 0.2 + 0.1) / 3)
    assert mae(f, everything) == pytest.approx(45 / 4)
    assert wmape(f.assign(is_open=[True, False, True, False]), "is_open") == pytest.approx(20 / 150)


def test_zero_denominators_give_nan_not_inf():
    closed = pd.DataFrame({"y": [0.0, 0.0], "p10": [0.0, 0.0], "p50": [0.0, 1.0], "p90": [0.0, 2.0]})
    assert math.isnan(wmape(closed)) and math.isnan(mape(closed)) and math.isnan(bias(closed))
    assert math.isnan(mae(closed)) and math.isnan(coverage(closed)) and math.isnan(total_volume_error(closed))
    assert math.isnan(wmape(closed, np.array([True, True])))  # sum y = 0


def test_total_volume_error_is_averaged_over_series_and_origins():
    # A: |330 - 350| / 350; B: y 10 + 30 = 40, p50 20 + 30 = 50 -> 10 / 40
    b = pd.DataFrame({"series": "B", "origin": pd.Timestamp("2024-03-04"), "y": [10.0, 30.0], "p50": [20.0, 30.0]})
    f = pd.concat([horizon(), b], ignore_index=True)
    assert total_volume_error(f) == pytest.approx((20 / 350 + 10 / 40) / 2)


def test_pinball_loss_hand_computed():
    # q 0.9: y - p = 2 -> 0.9*2 = 1.8; y - p = -2 -> 0.1*2 = 0.2; mean 1.0
    assert pinball_loss([10.0, 10.0], [8.0, 12.0], 0.9) == pytest.approx(1.0)
    assert pinball_loss(np.array([100.0]), np.array([100.0]), 0.5) == 0.0


def test_coverage_counts_the_ends_and_skips_closed_days():
    # 100 in [90, 120], 50 in [45, 60], 200 not in [150, 190]; closed day ignored
    assert coverage(horizon()) == pytest.approx(2 / 3)
    edge = pd.DataFrame({"y": [10.0], "p10": [10.0], "p90": [10.0]})
    assert coverage(edge) == 1.0


def test_mase_against_naive_on_the_same_rows():
    # naive errors on open days 10, 0, 10 -> 20; model 40 -> 2.0
    assert mase(horizon()) == pytest.approx(2.0)


def test_accuracy_table_per_method_with_naive_rows_from_the_same_frame():
    model = horizon().drop(columns="naive_p50").assign(method="lightgbm", date=pd.date_range("2024-03-04", periods=4))
    naive = model.assign(method="seasonal_naive", p50=[90.0, 0.0, 50.0, 210.0])
    table = accuracy_table(pd.concat([model, naive], ignore_index=True), by=["method"])

    assert table["method"].tolist() == ["lightgbm", "seasonal_naive"]
    row = table.iloc[0]
    assert row["n_points"] == 3
    assert row["wmape"] == pytest.approx(40 / 350) and row["mase"] == pytest.approx(2.0)
    assert row["coverage"] == pytest.approx(2 / 3) and row["total_volume_error"] == pytest.approx(20 / 350)
    # pinball, y - p per open day: p10 +10, +5, +50 -> 0.1 * 65 / 3; p50 -10, +10, +20 -> 0.5 * 40 / 3;
    # p90 -20, -10, +10 -> (0.1 * 20 + 0.1 * 10 + 0.9 * 10) / 3 = 12 / 3
    p10, p50, p90 = 6.5 / 3, 20 / 3, 12 / 3
    assert row["pinball"] == pytest.approx((p10 + p50 + p90) / 3)
    assert table.iloc[1]["mase"] == pytest.approx(1.0)


def test_accuracy_table_without_groups_is_one_row():
    table = accuracy_table(horizon(), by=[])
    assert len(table) == 1 and table.loc[0, "wmape"] == pytest.approx(40 / 350)


def test_with_naive_leaves_frames_without_method_alone():
    f = horizon().drop(columns="naive_p50")
    assert with_naive(f) is f
