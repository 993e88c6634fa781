"""Tests for common.ensemble (weights, combination, the vendor read as-of) and the forecaster's ensemble."""

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from test_forecaster import FAST, HOLIDAYS, synthetic

from common import ensemble
from common.errors import ConfigError, DataError
from common.forecaster import QuantileForecaster
from common.vendor import read_vendor


def test_simplex_grid_lists_every_weight_vector_on_the_grid():
    grid = ensemble.simplex_grid(3, 0.5)
    expected = {(1, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 1, 0), (0, 0.5, 0.5), (0, 0, 1)}
    assert {tuple(r) for r in grid} == expected and len(grid) == 6
    assert len(ensemble.simplex_grid(5, 0.05)) == 10626  # C(24, 4)


def points(n: int = 28) -> pd.DataFrame:
    y = np.arange(100.0, 100.0 + n)
    return pd.DataFrame({"series": "A", "y": y, "is_open": True, "member_lightgbm": 1.2 * y,
                         "member_same_weekday_mean": y, "member_seasonal_naive": 0.7 * y})


def test_the_member_that_is_exactly_right_gets_all_the_learnt_weight():
    learnt = ensemble.learn_weights(points(), shrink_origins=0)  # no pull toward the prior
    assert learnt["weights"]["A"] == {"lightgbm": 0.0, "same_weekday_mean": 1.0, "seasonal_naive": 0.0}
    assert learnt["wmape"]["A"]["ensemble"] == 0.0 and learnt["points"]["A"] == 28


def test_thin_evidence_shrinks_the_weights_toward_equal():
    # 28 points without an origin (each its own) and 28 pseudo-origins: half the learnt weights (0, 1, 0) and half
    # equal (1/3 each)
    w = ensemble.learn_weights(points(28), shrink_origins=28, prior="equal")["weights"]["A"]
    assert w == pytest.approx({"lightgbm": 1 / 6, "same_weekday_mean": 0.5 + 1 / 6, "seasonal_naive": 1 / 6},
                              abs=1e-4)
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-3)


def test_thin_evidence_shrinks_toward_lightgbm_by_default():
    # 28 points, 28 pseudo-origins, prior lightgbm: half of (0, 1, 0) and half of (1, 0, 0); it beats LightGBM alone
    # (error 0.5 x 0.2 y vs 0.2 y): kept
    w = ensemble.learn_weights(points(28), shrink_origins=28)["weights"]["A"]
    assert w == pytest.approx({"lightgbm": 0.5, "same_weekday_mean": 0.5, "seasonal_naive": 0.0}, abs=1e-4)


def test_a_combination_not_clearly_better_than_lightgbm_leaves_lightgbm_alone():
    # both over by 5% and 4.9%: the best mix is the mean alone, 2% less error than LightGBM's (1 - 4.9 / 5), under
    # min_gain 5% -> LightGBM alone
    pts = points(28).assign(member_lightgbm=lambda f: 1.05 * f["y"], member_same_weekday_mean=lambda f: 1.049 * f["y"])
    learnt = ensemble.learn_weights(pts.drop(columns="member_seasonal_naive"), shrink_origins=0, min_gain=0.05)
    assert learnt["weights"]["A"] == {"lightgbm": 1.0, "same_weekday_mean": 0.0}
    assert "A" in learnt["kept_lightgbm"] and learnt["gain"]["A"] == pytest.approx(0.02, abs=1e-3)


def test_closed_days_and_zero_actuals_do_not_count_as_evidence():
    pts = points(10)
    pts.loc[:4, "is_open"] = False
    pts.loc[5, "y"] = 0.0
    assert ensemble.learn_weights(pts, shrink_origins=0)["points"]["A"] == 4


def two_origins() -> pd.DataFrame:
    """The older origin: lightgbm exact, same_weekday_mean 20 over; the latest: lightgbm 20 under, the mean exact."""
    old = pd.DataFrame({"origin": pd.Timestamp("2025-03-03"), "member_lightgbm": 100.0,
                        "member_same_weekday_mean": 120.0}, index=range(4))
    new = pd.DataFrame({"origin": pd.Timestamp("2025-03-10"), "member_lightgbm": 80.0,
                        "member_same_weekday_mean": 100.0}, index=range(4, 8))
    return pd.concat([old, new]).assign(series="A", y=100.0, is_open=True)


def test_recent_origins_count_more_and_ties_go_to_lightgbm():
    # half-life 1 origin: the older origin weighs 0.5. Weight w on lightgbm costs 4 x 20 x (1 - w) x 0.5 on the
    # older origin and 4 x 20 x w on the latest: 40 + 40 w, least at w = 0
    recent = ensemble.learn_weights(two_origins(), shrink_origins=0, half_life_origins=1)
    assert recent["weights"]["A"] == {"lightgbm": 0.0, "same_weekday_mean": 1.0}
    # no decay: 80 (1 - w) + 80 w is 80 for every w, a tie, which goes to lightgbm
    flat = ensemble.learn_weights(two_origins(), shrink_origins=0, half_life_origins=0)
    assert flat["weights"]["A"] == {"lightgbm": 1.0, "same_weekday_mean": 0.0}
    # effective origins: (1 + 0.5)^2 / (1 + 0.25) = 1.8; shrunk by 1.8 / (1.8 + 1) toward (0.5, 0.5)
    shrunk = ensemble.learn_weights(two_origins(), shrink_origins=1, half_life_origins=1, prior="equal")
    assert shrunk["origins"]["A"] == pytest.approx(1.8)
    assert shrunk["weights"]["A"]["lightgbm"] == pytest.approx(0.5 * 1 / 2.8, abs=1e-4)


def test_a_member_missing_on_a_day_gives_its_weight_to_the_others():
    frame = pd.DataFrame({"series": ["A", "A"], "member_lightgbm": [100.0, 100.0], "member_vendor": [200.0, np.nan]})
    weights = {"weights": {"A": {"lightgbm": 0.5, "vendor": 0.5}}}
    assert ensemble.combine(frame, weights).tolist() == [150.0, 100.0]


def test_a_series_without_weights_of_its_own_gets_the_pooled_ones():
    frame = pd.DataFrame({"series": ["B"], "member_lightgbm": [100.0], "member_same_weekday_mean": [50.0]})
    weights = {"weights": {"A": {"lightgbm": 1.0}, ensemble.POOLED: {"lightgbm": 0.2, "same_weekday_mean": 0.8}}}
    assert ensemble.combine(frame, weights).tolist() == [60.0]


def test_the_vendor_forecast_is_read_as_issued_before_the_origin():
    vendor = pd.DataFrame({
        "series": "A", "date": pd.Timestamp("2025-03-12"), "forecast": [100.0, 120.0, 999.0],
        "issued_at": pd.to_datetime(["2025-03-01 08:00", "2025-03-09 20:00", "2025-03-10 06:00"])})
    asof = ensemble.vendor_as_of(vendor, pd.Timestamp("2025-03-10"))
    assert asof["vendor"].tolist() == [120.0]  # the revision issued on the origin day is ignored
    assert ensemble.vendor_as_of(vendor, pd.Timestamp("2025-03-01")).empty


def test_read_vendor_names_the_key_when_the_table_is_missing_or_lacks_columns(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'v.db'}")
    with engine.begin() as conn:
        with pytest.raises(ConfigError, match="forecast.vendor_table: table 'vendor_fc' does not exist"):
            read_vendor(conn, "vendor_fc", pd.Timestamp("2025-03-10").date())
        conn.execute(text("CREATE TABLE vendor_fc (queue TEXT, date TEXT, forecast REAL)"))
        with pytest.raises(DataError, match="lacks column\\(s\\) issued_at"):
            read_vendor(conn, "vendor_fc", pd.Timestamp("2025-03-10").date())
        conn.execute(text("DROP TABLE vendor_fc"))
        conn.execute(text("CREATE TABLE vendor_fc (queue TEXT, date TEXT, forecast REAL, issued_at TEXT)"))
        conn.execute(text("INSERT INTO vendor_fc VALUES ('A', '2025-03-12', 120, '2025-03-09T20:00:00'),"
                          "('A', '2025-03-12', 999, '2025-03-10 06:00:00'), ('A', '2025-03-13', -5, '2025-03-01')"))
        got = read_vendor(conn, "vendor_fc", pd.Timestamp("2025-03-10").date())
    assert got["forecast"].tolist() == [120.0] and got.attrs["dropped"] == 1


def vendor_issued(history: pd.DataFrame, future: pd.DataFrame, days_before: int) -> pd.DataFrame:
    """A vendor that knew the real y (the synthetic truth of history, 1.0 x) and issued it `days_before` each day."""
    truth = history.loc[:, ["series", "date", "y"]]
    rows = pd.concat([truth, future.loc[:, ["series", "date"]].assign(y=100.0)], ignore_index=True)
    return rows.rename(columns={"y": "forecast"}).assign(
        issued_at=rows["date"] - pd.Timedelta(days=days_before)).astype({"series": "str"})


@pytest.fixture(scope="module")
def data():
    return synthetic(n_days=300)


def test_a_vendor_issued_in_time_that_was_exact_earns_most_of_the_weight(data):
    history, future = data
    vendor = vendor_issued(history, future, days_before=15)  # every backtest day was issued before its origin
    model = QuantileForecaster(params=FAST, ensemble=True).fit(history, HOLIDAYS, vendor=vendor)
    weights = model.adjustments_["ensemble"]["weights"]
    # learnt 1.0, shrunk toward lightgbm by 5.1 effective origins / (5.1 + 1)
    assert weights["A"]["vendor"] > 0.8 and weights["B"]["vendor"] > 0.8
    fc = model.forecast(history, future, HOLIDAYS, vendor=vendor)
    assert (fc.loc[fc["member_vendor"].notna() & (fc["p50"] > 0), "member_vendor"] == 100.0).all()


def test_a_vendor_revised_after_the_origin_never_reaches_the_backtest(data):
    history, future = data
    vendor = vendor_issued(history, future, days_before=0)  # issued on the day itself: after every origin
    model = QuantileForecaster(params=FAST, ensemble=True).fit(history, HOLIDAYS, vendor=vendor)
    assert "vendor" not in model.adjustments_["ensemble"]["weights"]["A"]
    fc = model.forecast(history, future, HOLIDAYS, vendor=vendor)
    assert fc.loc[fc["p50"] > 0, "member_vendor"].isna().all()  # closed days are 0 by rule, whatever was issued


def test_an_ensemble_model_round_trips_through_its_files(data, tmp_path):
    history, future = data
    model = QuantileForecaster(params=FAST, ensemble=True).fit(history, HOLIDAYS)
    model.to_files(tmp_path)
    again = QuantileForecaster.from_files(tmp_path)
    pd.testing.assert_frame_equal(model.forecast(history, future, HOLIDAYS), again.forecast(history, future, HOLIDAYS))
    assert model.forecast(history, future, HOLIDAYS)["member_linear"].gt(0).any()
