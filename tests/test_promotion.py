"""Tests for common.promotion: the rule that makes a candidate production or keeps it staging."""

from common import promotion


def test_candidate_beating_production_by_the_margin_is_promoted():
    # 0.080 < 0.100 * (1 - 0.02) = 0.098, and 0.085 < naive 0.120
    scores = promotion.Scores(candidate=0.085, naive=0.120, production=0.100, candidate_on_production=0.080,
                              production_version="v1")
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision.status == "production"
    assert "20.0% better" in decision.reason  # 1 - 0.080 / 0.100


def test_candidate_better_but_not_by_the_margin_stays_staging_with_the_reason():
    # 0.099 >= 0.098: 1.0% better, the margin asks for more than 2.0%
    scores = promotion.Scores(candidate=0.095, naive=0.120, production=0.100, candidate_on_production=0.099,
                              production_version="v1")
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision.status == "staging"
    assert "1.0% better, needs more than 2.0% (training.promotion_margin)" in decision.reason


def test_candidate_worse_than_seasonal_naive_stays_staging_even_without_production():
    decision = promotion.decide_promotion(promotion.Scores(candidate=0.13, naive=0.12), margin=0.02)
    assert decision == promotion.Decision("staging", "candidate wMAPE 13.0% does not beat seasonal naive 12.0%")


def test_candidate_worse_than_naive_stays_staging_even_if_it_beats_production():
    scores = promotion.Scores(candidate=0.13, naive=0.12, production=0.20, candidate_on_production=0.13,
                              production_version="v1")
    assert promotion.decide_promotion(scores, margin=0.02).status == "staging"


def test_without_production_beating_naive_is_enough():
    decision = promotion.decide_promotion(promotion.Scores(candidate=0.08, naive=0.10), margin=0.02)
    assert decision.status == "production" and decision.reason.endswith("no production model")


def test_an_unusable_production_does_not_block_a_candidate_that_beats_naive():
    scores = promotion.Scores(candidate=0.08, naive=0.10, production_note="production v1 is not usable: missing file")
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision.status == "production" and "not usable" in decision.reason


def test_a_candidate_without_scored_points_is_never_promoted():
    assert promotion.decide_promotion(promotion.Scores(float("nan"), 0.1), 0.02).status == "staging"


def test_is_refresh_refresh_is_promoted_when_production_could_only_be_scored_in_sample():
    # Production trained after the origins looks better than it is (it has seen those days); a candidate with the same
    # parameters and features on newer data is a refresh: promoted when it beats naive, even short of the margin.
    scores = promotion.Scores(candidate=0.095, naive=0.120, production=0.090, candidate_on_production=0.095,
                              production_version="v1", production_in_sample=True, is_refresh=True)
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision.status == "production" and "refresh" in decision.reason


def test_a_different_setup_scored_against_in_sample_production_stays_staging():
    scores = promotion.Scores(candidate=0.095, naive=0.120, production=0.090, candidate_on_production=0.095,
                              production_version="v1", production_in_sample=True, is_refresh=False)
    assert promotion.decide_promotion(scores, margin=0.02).status == "staging"
