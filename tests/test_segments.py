"""Tests for common.segments and 1_5_segment_customers.py: features by hand, clean splits, stable labels, the step."""

import importlib
import json
import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from common import db, tables
from common.config import load_config
from common.errors import ConfigError, DataError
from common.segments import (
    CustomerSegmenter, add_tallies, customer_features, customer_tallies, features_from_tallies, segment_labels,
    segment_rows, week_blocks,
)
from tests.conftest import write_config

AS_OF = date(2025, 3, 15)  # a Saturday; a 14-day window is [Sat 2025-03-01, Sat 2025-03-15)


def calls_frame(rows: list[tuple]) -> pd.DataFrame:
    """silver_calls-like rows from (customer_id, queue, start_time, outcome, handle_seconds, attempts)."""
    df = pd.DataFrame(rows, columns=["customer_id", "queue", "start_time", "outcome", "handle_seconds", "attempts"])
    df["start_time"] = pd.to_datetime(df["start_time"])
    df["date"] = df["start_time"].dt.normalize()
    df["handle_seconds"] = df["handle_seconds"].astype("float64")
    return df


TINY_CALLS = calls_frame([
    # A: 3 contacts in the weeks of Mon 03-03 (two) and Mon 03-10 (one) -> 3 / 2 weeks = 1.5 per active week.
    ("A", "Sales", "2025-03-03 09:30", "answered", 100, 1),        # peak
    ("A", "Support", "2025-03-04 14:00", "abandoned", None, 2),    # abandon, redial chain
    ("A", "Sales", "2025-03-12 11:59", "answered", 300, 1),        # peak (11:59 < 12:00)
    # B: 2 contacts, both in the week of Mon 03-03 -> 2.0 per active week; never answered -> median handle.
    ("B", "Sales", "2025-03-05 12:00", "short_abandon", None, 1),  # not peak: the window ends at 12:00
    ("B", "Sales", "2025-03-06 08:59", "other", None, 3),          # redial chain
    ("B", "Sales", "2025-03-15 10:00", "answered", 999, 1),        # on as_of: outside the window
    ("B", "Sales", "2025-02-28 10:00", "answered", 999, 1),        # before the window
    # D: Sun 03-09 and Mon 03-10 are in different Monday-weeks -> 2 / 2 = 1.0 per active week.
    ("D", "Billing", "2025-03-09 09:00", "answered", 60, 1),       # peak (the window starts at 09:00)
    ("D", "Billing", "2025-03-10 12:30", "answered", 120, 1),
    ("C", "Returns", "2025-03-05 10:00", "answered", 50, 1),       # one contact: below min_contacts, Returns unused
    (None, "Sales", "2025-03-05 10:00", "answered", 50, 1),        # no customer id: ignored
])


def test_customer_features_match_hand_computed_values():
    got = customer_features(TINY_CALLS, AS_OF, window_days=14, peak_hours="09:00-12:00", min_contacts=2)
    # handle: A = (100 + 300) / 2 = 200, D = (60 + 120) / 2 = 90, B has no answered contact -> median(200, 90) = 145.
    expect = pd.DataFrame({
        "customer_id": pd.Series(["A", "B", "D"], dtype="str"),
        "contacts": np.array([3, 2, 2], dtype="int64"),
        "contacts_per_active_week": [1.5, 2.0, 1.0],
        "peak_share": [2 / 3, 0.0, 0.5],
        "mean_handle_seconds": [200.0, 145.0, 90.0],
        "abandon_rate": [1 / 3, 0.5, 0.0],
        "redial_rate": [1 / 3, 0.5, 0.0],
        "queue_share__Billing": [0.0, 0.0, 1.0],
        "queue_share__Sales": [2 / 3, 1.0, 0.0],
        "queue_share__Support": [1 / 3, 0.0, 0.0],
    })
    pd.testing.assert_frame_equal(got, expect)


def test_customer_features_min_contacts_one_keeps_single_contact_customers():
    got = customer_features(TINY_CALLS, AS_OF, window_days=14, min_contacts=1)
    assert got["customer_id"].tolist() == ["A", "B", "C", "D"]
    assert got.loc[2, "queue_share__Returns"] == 1.0


def test_customer_features_do_not_modify_their_input():
    before = TINY_CALLS.copy()
    customer_features(TINY_CALLS, AS_OF, window_days=14)
    pd.testing.assert_frame_equal(TINY_CALLS, before)


@pytest.mark.parametrize("peak", ["12:00-09:00", "9-12", "09:00-25:00"])
def test_bad_peak_hours_is_a_config_error_naming_the_key(peak):
    with pytest.raises(ConfigError, match="segmentation.peak_hours"):
        customer_features(TINY_CALLS, AS_OF, window_days=14, peak_hours=peak)


def two_groups(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """40 frequent long-call customers (30-40 contacts, 10-15 min) and 60 rare short-call ones (2-4, 1-2 min).

    Everything else has the same distribution in both groups, so only contacts and handle time separate them.
    """
    rng = np.random.default_rng(seed)
    frequent = np.r_[np.ones(40, bool), np.zeros(60, bool)]
    features = pd.DataFrame({
        "customer_id": pd.Series([f"C{i:03d}" for i in range(100)], dtype="str"),
        "contacts": np.where(frequent, rng.integers(30, 41, 100), rng.integers(2, 5, 100)),
        "contacts_per_active_week": rng.uniform(1.0, 1.3, 100),
        "peak_share": rng.uniform(0.3, 0.4, 100),
        "mean_handle_seconds": np.where(frequent, rng.uniform(600, 900, 100), rng.uniform(60, 120, 100)),
        "abandon_rate": 0.0,
        "redial_rate": 0.0,
        "queue_share__Sales": 1.0,
    })
    return features, frequent


def test_two_obvious_groups_are_split_exactly_with_sensible_labels():
    features, frequent = two_groups()
    seg = CustomerSegmenter(k=2, seed=1).fit(features)
    # Segments are numbered by centroid contacts, fewest first: the rare group is 0.
    assert (seg.labels_ == np.where(frequent, 1, 0)).all()
    assert seg.segment_labels_ == ["rare · short calls", "frequent · long calls"]
    assert seg.centroids_.loc[1, "contacts"] > 30 and seg.centroids_.loc[0, "mean_handle_seconds"] < 120


def test_silhouette_chooses_two_segments_for_two_obvious_groups():
    features, frequent = two_groups(seed=3)
    seg = CustomerSegmenter(k=None, k_range=(2, 6), seed=7).fit(features)
    assert seg.k_ == 2
    assert sorted(seg.silhouette_by_k_) == [2, 3, 4, 5, 6]
    assert seg.silhouette_ == pytest.approx(seg.silhouette_by_k_[2], abs=0.05)
    assert (seg.labels_ == np.where(frequent, 1, 0)).all()


def test_segment_numbers_follow_centroids_not_row_order():
    features, frequent = two_groups()
    shuffled = features.sample(frac=1.0, random_state=5).reset_index(drop=True)
    seg = CustomerSegmenter(k=2, seed=11).fit(shuffled)
    by_id = dict(zip(shuffled["customer_id"], seg.labels_))
    assert [by_id[f"C{i:03d}"] for i in range(100)] == np.where(frequent, 1, 0).tolist()


def test_labels_come_from_the_centroid_and_are_made_unique():
    z = pd.DataFrame({
        "contacts": [-1.0, -1.0, 0.1, 0.0],
        "mean_handle_seconds": [-1.2, -1.1, 0.2, 0.0],
        "abandon_rate": [0.9, -0.6, 1.5, 0.0],
        "queue_share__Sales": [0.0, 0.0, 0.0, 0.3],
    })
    # Rows 0 and 1 would both be "rare · short calls": each gets its next most distinctive phrase.
    assert segment_labels(z) == ["rare · short calls · abandons often", "rare · short calls · rarely abandons",
                                 "occasional · abandons often", "occasional"]
    twins = pd.DataFrame({"contacts": [2.0, 2.0], "peak_share": [1.0, 1.0]})
    assert segment_labels(twins) == ["frequent · peak hours (0)", "frequent · peak hours (1)"]


def test_fit_on_fewer_distinct_customers_than_segments_plus_one_is_a_data_error():
    features, _ = two_groups()
    with pytest.raises(DataError, match="need at least 4 distinct customers"):
        CustomerSegmenter(k=3).fit(features.iloc[:3])


def test_predict_before_fit_says_so():
    with pytest.raises(NotFittedError, match="call fit"):
        CustomerSegmenter().predict(two_groups()[0])


def test_segment_rows_hold_one_row_per_customer_with_json_features():
    features, _ = two_groups()
    seg = CustomerSegmenter(k=2, seed=1).fit(features)
    rows = segment_rows(features, seg)
    assert list(rows.columns) == ["customer_id", "segment", "segment_label", "features"]
    assert rows["customer_id"].tolist() == features["customer_id"].tolist()
    assert rows["segment"].tolist() == seg.labels_.tolist()
    first = json.loads(rows.loc[0, "features"])
    assert first["contacts"] == int(features.loc[0, "contacts"])
    assert first["mean_handle_seconds"] == round(features.loc[0, "mean_handle_seconds"], 3)
    assert set(first) == set(features.columns) - {"customer_id"}


# --- generated calls: three kinds of customer over half a year ---------------------------------------------

KINDS = {  # calls per week, handle mean s, abandon prob, redial prob, peak prob, queue probs (Sales, Support)
    "heavy": (2.0, 700, 0.05, 0.05, 0.4, (0.2, 0.8)),
    "abandoner": (0.6, 200, 0.5, 0.4, 0.4, (0.5, 0.5)),
    "rare_peak": (0.15, 200, 0.05, 0.05, 0.95, (0.9, 0.1)),
}


def generated_calls(start: date, days: int, per_kind: int = 80, seed: int = 0) -> pd.DataFrame:
    """silver_calls-like contacts of 3 x `per_kind` customers, one kind each, uniform over `days` days."""
    rng = np.random.default_rng(seed)
    parts = []
    for kind, (per_week, handle, p_abandon, p_redial, p_peak, queue_p) in KINDS.items():
        for i in range(per_kind):
            n = max(2, rng.poisson(per_week * days / 7))
            day = rng.integers(0, days, n)
            peak = rng.random(n) < p_peak
            minute = np.where(peak, rng.integers(9 * 60, 12 * 60, n), rng.integers(12 * 60, 18 * 60, n))
            outcome = np.where(rng.random(n) < p_abandon, "abandoned", "answered")
            parts.append(pd.DataFrame({
                "customer_id": f"{kind}-{i:03d}",
                "queue": rng.choice(["Sales", "Support"], n, p=queue_p),
                "start_time": pd.Timestamp(start) + pd.to_timedelta(day, "D") + pd.to_timedelta(minute, "min"),
                "outcome": outcome,
                "handle_seconds": np.where(outcome == "answered", rng.lognormal(np.log(handle), 0.3, n), np.nan),
                "attempts": np.where(rng.random(n) < p_redial, 2, 1),
            }))
    calls = pd.concat(parts, ignore_index=True)
    calls["date"] = calls["start_time"].dt.normalize()
    return calls


def test_rerun_with_one_more_day_keeps_labels_and_segments():
    start = date(2024, 9, 1)
    calls = generated_calls(start, days=181, seed=4)
    as_of = start + timedelta(days=180)
    first_features = customer_features(calls, as_of, window_days=180)
    second_features = customer_features(calls, as_of + timedelta(days=1), window_days=180)
    first = CustomerSegmenter(k=None, k_range=(2, 6), seed=42).fit(first_features)
    second = CustomerSegmenter(k=None, k_range=(2, 6), seed=42).fit(second_features)
    assert first.k_ == second.k_ == 3
    assert first.segment_labels_ == second.segment_labels_
    a = pd.Series(first.labels_, index=first_features["customer_id"])
    b = pd.Series(second.labels_, index=second_features["customer_id"])
    common = a.index.intersection(b.index)
    assert len(common) >= 235 and (a[common] == b[common]).mean() >= 0.98
    # Each kind lands in its own segment: the labels describe what was generated.
    kind_of = a.groupby(a.index.str.split("-").str[0]).agg(lambda s: s.mode()[0])
    labels = {k: first.segment_labels_[s] for k, s in kind_of.items()}
    assert labels == {"heavy": "frequent · long calls", "abandoner": "occasional · abandons often",
                      "rare_peak": "rare · peak hours"}



def test_week_blocks_break_only_on_mondays_and_cover_the_window():
    # Sat 03-01 .. Sat 03-29 (exclusive), two weeks a block: Sat+Sun and the week of Mon 03-03 (9 days), then
    # Mon 03-10 .. Mon 03-24, then the rest.
    assert week_blocks(date(2025, 3, 1), date(2025, 3, 29), weeks=2) == [
        (date(2025, 3, 1), date(2025, 3, 10)), (date(2025, 3, 10), date(2025, 3, 24)),
        (date(2025, 3, 24), date(2025, 3, 29))]
    # Starting on a Monday: whole blocks from the start.
    assert week_blocks(date(2025, 3, 3), date(2025, 3, 10), weeks=1) == [(date(2025, 3, 3), date(2025, 3, 10))]
    assert week_blocks(date(2025, 3, 3), date(2025, 3, 3), weeks=4) == []
    with pytest.raises(ConfigError, match="weeks == 0"):
        week_blocks(date(2025, 3, 3), date(2025, 3, 10), weeks=0)


@pytest.mark.parametrize("weeks", [1, 3])
def test_tallies_added_block_by_block_give_the_whole_window_features(weeks):
    start = date(2024, 9, 1)
    calls = generated_calls(start, days=120, seed=5)
    as_of, window = start + timedelta(days=120), 100
    whole = customer_features(calls, as_of, window_days=window)
    day = calls["date"].dt.date
    tallies = None
    for lo, hi in week_blocks(as_of - timedelta(days=window), as_of, weeks):
        block = customer_tallies(calls.loc[(day >= lo) & (day < hi)])
        tallies = block if tallies is None else add_tallies(tallies, block)
    pd.testing.assert_frame_equal(features_from_tallies(tallies), whole)


def test_a_block_without_contacts_adds_nothing():
    empty = customer_tallies(TINY_CALLS.iloc[:0])
    assert len(empty[0]) == 0 and len(empty[1]) == 0
    window = TINY_CALLS[TINY_CALLS["date"] < pd.Timestamp(AS_OF)]
    both = add_tallies(empty, customer_tallies(window))
    pd.testing.assert_frame_equal(features_from_tallies(both),
                                  customer_features(TINY_CALLS, AS_OF, window_days=60))

# --- the step end to end ----------------------------------------------------------------------------------

STEP = importlib.import_module("1_5_segment_customers")
STEP_AS_OF = date(2025, 3, 1)


def write_silver_calls(config_path, calls: pd.DataFrame) -> None:
    """Insert silver_calls rows directly (steps 0 and 1 are tested elsewhere)."""
    engine = db.make_engine(load_config(config_path).database_url)
    db.ensure_schema(engine)
    rows = calls.assign(
        contact_id=[f"c{i}" for i in range(len(calls))], start_time_utc=calls["start_time"],
        interval_start=calls["start_time"].dt.floor("30min"), interval_start_utc=calls["start_time"].dt.floor("30min"),
        caller_id=None, wait_seconds=10.0, legs=1, is_open_hours=True, is_holiday=False, holiday_name=None,
        counts_as_offered=True)
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_calls, rows)
    engine.dispose()


def read(config_path, table) -> pd.DataFrame:
    engine = db.make_engine(load_config(config_path).database_url)
    with engine.connect() as conn:
        df = db.read_table(conn, table)
    engine.dispose()
    return df


def test_step_writes_segments_and_a_rerun_replaces_them(tmp_path):
    config = write_config(tmp_path, segmentation__run_weekdays=None)  # nightly, so the re-run is not skipped
    calls = generated_calls(STEP_AS_OF - timedelta(days=200), days=200, per_kind=15, seed=2)
    write_silver_calls(config, calls)
    assert STEP.main(["--config", str(config), "--as-of", str(STEP_AS_OF)]) == 0
    first = read(config, tables.gold_dim_customer_behavior)
    assert STEP.main(["--config", str(config), "--as-of", str(STEP_AS_OF)]) == 0
    second = read(config, tables.gold_dim_customer_behavior)

    expected = customer_features(calls, STEP_AS_OF, window_days=180)
    assert sorted(first["customer_id"]) == expected["customer_id"].tolist()
    assert first["as_of"].eq(pd.Timestamp(STEP_AS_OF)).all() and first["run_id"].nunique() == 1
    keep = ["customer_id", "segment", "segment_label", "features"]
    pd.testing.assert_frame_equal(first[keep].sort_values("customer_id").reset_index(drop=True),
                                  second[keep].sort_values("customer_id").reset_index(drop=True))
    assert first["run_id"].iloc[0] != second["run_id"].iloc[0]
    runs = read(config, tables.pipeline_runs)
    assert runs["status"].tolist() == ["success", "success"]
    assert runs["rows_written"].tolist() == [len(expected)] * 2


@pytest.mark.parametrize("settings, calls, reason", [
    ({"source__kind": "interval", "source__columns": {"queue": "Q", "interval_start": "T", "offered": "N"},
      "source__outcome_map": {}}, None, "source.kind is interval"),
    ({"segmentation__enabled": False}, None, "segmentation.enabled is false"),
    ({}, None, "no contact with a customer id"),
    ({}, "few", "need at least 20"),
])
def test_step_skips_with_one_info_line_and_exit_0(tmp_path, caplog, settings, calls, reason):
    config = write_config(tmp_path, **settings)
    if calls == "few":  # 15 customers < 10 per segment x k_range low of 2
        write_silver_calls(config, generated_calls(STEP_AS_OF - timedelta(days=60), days=60, per_kind=5, seed=1))
    with caplog.at_level(logging.INFO):
        assert STEP.main(["--config", str(config), "--as-of", str(STEP_AS_OF)]) == 0
    lines = [r for r in caplog.records if reason in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert read(config, tables.pipeline_runs)["status"].tolist() == ["skipped"]
    assert read(config, tables.gold_dim_customer_behavior).empty


def test_step_help_explains_the_step(capsys):
    with pytest.raises(SystemExit) as exit_info:
        STEP.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "gold_dim_customer_behavior" in out and "--as-of" in out and "skipped" in out.lower()


def test_outside_run_weekdays_the_step_skips_once_segments_exist(tmp_path):
    config = write_config(tmp_path, segmentation__run_weekdays=["sun"])  # STEP_AS_OF 2025-03-01 is a Saturday
    write_silver_calls(config, generated_calls(STEP_AS_OF - timedelta(days=200), days=200, per_kind=15, seed=2))
    args = ["--config", str(config), "--as-of", str(STEP_AS_OF)]
    assert STEP.main(args) == 0  # an empty table: segments anyway
    first = read(config, tables.gold_dim_customer_behavior)
    assert len(first) > 0
    assert STEP.main(args) == 0  # now a Saturday outside [sun]: skipped, the table untouched
    runs = read(config, tables.pipeline_runs).sort_values("started_at")
    assert runs["status"].tolist() == ["success", "skipped"]
    assert "is a sat, segmentation.run_weekdays is [sun]" in runs["message"].iloc[-1]
    assert read(config, tables.gold_dim_customer_behavior)["run_id"].eq(first["run_id"].iloc[0]).all()
    assert STEP.main([*args, "--force"]) == 0
    assert read(config, tables.pipeline_runs).sort_values("started_at")["status"].iloc[-1] == "success"


def test_centroids_from_a_sample_segment_almost_everyone_as_the_full_fit_does():
    features = customer_features(generated_calls(date(2024, 9, 1), days=180, per_kind=150, seed=9),
                                 date(2025, 2, 28), window_days=180)
    full = CustomerSegmenter(k=3, seed=42).fit(features)
    sampled = CustomerSegmenter(k=3, seed=42, fit_sample=300).fit(features)  # two thirds of the 450 customers
    assert len(features) == 450
    # Centroids within 0.1 standard deviations of the full fit's (measured: 0.05), so the same names and every
    # customer in the same segment. (A third of the customers moves them 0.12, enough to swap two near-equal
    # phrases of one label: the sample is meant for hundreds of thousands of customers, not hundreds.)
    assert float((sampled.centroid_z_ - full.centroid_z_).abs().max().max()) < 0.1
    assert sampled.segment_labels_ == full.segment_labels_
    assert (sampled.labels_ == full.labels_).mean() >= 0.98
    with pytest.raises(ConfigError, match="fit_sample == 99"):
        CustomerSegmenter(k=3, fit_sample=99).fit(features)
