"""Tests for common.promotion: the rule that makes a candidate production or keeps it staging."""

from common import promotion


def test_candidate_beating_production_by_the_margin_is_promoted():
    # 0.080 < 0.100 * (1 - 0.02) = 0.098, and 0.080 < naive 0.120
    scores = promotion.Scores(candidate=0.080, naive=0.120, production=0.100, production_version="v1",
                              setup_changes=("level",))
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision == promotion.Decision(
        "production", "candidate wMAPE 8.0% beats seasonal naive 12.0%; candidate wMAPE 8.0% vs production v1's setup "
                      "(changed: level) 10.0%, each retrained per origin on the same out-of-sample points: 20.0% "
                      "better (training.promotion_margin 2.0%)")


def test_candidate_better_but_not_by_the_margin_stays_staging_with_the_reason():
    # 0.099 >= 0.098: 1.0% better, the margin asks for more than 2.0%
    scores = promotion.Scores(candidate=0.099, naive=0.120, production=0.100, production_version="v1")
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision.status == "staging"
    assert decision.reason.endswith("1.0% better, needs more than 2.0% (training.promotion_margin)")


def test_candidate_worse_than_seasonal_naive_stays_staging_even_without_production():
    decision = promotion.decide_promotion(promotion.Scores(candidate=0.13, naive=0.12), margin=0.02)
    assert decision == promotion.Decision("staging", "candidate wMAPE 13.0% does not beat seasonal naive 12.0%")


def test_candidate_worse_than_naive_stays_staging_even_if_it_beats_production():
    scores = promotion.Scores(candidate=0.13, naive=0.12, production=0.20, production_version="v1")
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


def test_a_refresh_of_productions_setup_is_promoted_when_it_beats_naive_although_it_cannot_beat_the_margin():
    # Retrained per origin, the same setup makes the same models: 0.095 vs 0.095, never 2% better.
    scores = promotion.Scores(candidate=0.095, naive=0.120, production=0.095, production_version="v1",
                              same_setup=True, newer_data=True)
    assert promotion.decide_promotion(scores, margin=0.02) == promotion.Decision(
        "production", "candidate wMAPE 9.5% beats seasonal naive 12.0%; a refresh of production v1's setup: retrained "
                      "per origin it scores the same out-of-sample 9.5%, identical by construction")


def test_productions_setup_on_older_data_stays_staging():
    scores = promotion.Scores(candidate=0.095, naive=0.120, production=0.095, production_version="v1",
                              same_setup=True, newer_data=False)
    decision = promotion.decide_promotion(scores, margin=0.02)
    assert decision.status == "staging" and decision.reason.endswith("trained on older data: nothing to gain")
