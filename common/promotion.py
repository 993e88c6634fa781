"""Step 2's promotion rule and its record: does the candidate become production, and why (one line).

The candidate is compared with production's *setup*, retrained at every backtest origin exactly like the candidate
(`training.rolling_backtest`): both out of sample, on the same points. It becomes production when it beats weekly
seasonal naive and beats production's setup by `training.promotion_margin` (relative wMAPE). A refresh (the same
setup on newer data) only needs to beat naive: its comparison with production's setup is identical by construction.
Without a production setup to compare with (none, unusable files, drivers it needs gone), beating naive is enough.
Every wMAPE is on open days (y > 0), as in `common.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from common import training


@dataclass(frozen=True)
class Scores:
    """Backtest wMAPEs the promotion rule reads (fractions, e.g. 0.081)."""

    candidate: float                        # candidate, all backtest points
    naive: float                            # seasonal naive, the same points
    production: float | None = None         # production's setup retrained per origin, the same points; None: not scored
    production_version: str | None = None
    production_note: str = ""               # why production was not compared
    setup_changes: tuple[str, ...] = ()     # what differs from production's setup (names); () with same_setup
    same_setup: bool = False                # the candidate's setup is production's
    newer_data: bool = True                 # the candidate was trained on data up to a day >= production's


@dataclass(frozen=True)
class Decision:
    """What to do with the candidate: status `production` or `staging`, and why (one line)."""

    status: str
    reason: str


def decide_promotion(scores: Scores, margin: float) -> Decision:
    """Promote when the candidate beats seasonal naive and beats production's setup by `margin` (relative wMAPE),
    or beats naive and is a refresh of production's setup (see module doc). NaN scores never promote."""
    cand, naive = scores.candidate, scores.naive
    if not np.isfinite(cand):
        return Decision("staging", "no backtest points with actuals: the candidate could not be scored")
    if not (np.isfinite(naive) and cand < naive):
        return Decision("staging", f"candidate wMAPE {_pct(cand)} does not beat seasonal naive {_pct(naive)}")
    beats_naive = f"candidate wMAPE {_pct(cand)} beats seasonal naive {_pct(naive)}"
    if scores.production is None:
        why = f"; {scores.production_note}" if scores.production_note else "; no production model"
        return Decision("production", beats_naive + why)
    prod, version = scores.production, scores.production_version
    if scores.same_setup:
        identical = (f"production {version}'s setup: retrained per origin it scores the same out-of-sample "
                     f"{_pct(prod)}, identical by construction")
        if scores.newer_data:
            return Decision("production", f"{beats_naive}; a refresh of {identical}")
        return Decision("staging", f"the same setup as {identical}, and trained on older data: nothing to gain")
    if not np.isfinite(prod) or prod <= 0:
        return Decision("staging", f"{beats_naive}, but could not be compared with production {version}'s setup")
    gain = 1 - cand / prod
    changed = f" (changed: {', '.join(scores.setup_changes)})" if scores.setup_changes else ""
    versus = (f"candidate wMAPE {_pct(cand)} vs production {version}'s setup{changed} {_pct(prod)}, each retrained "
              f"per origin on the same out-of-sample points: {_pct(abs(gain))} {'better' if gain >= 0 else 'worse'}")
    if cand < prod * (1 - margin):
        return Decision("production", f"{beats_naive}; {versus} (training.promotion_margin {_pct(margin)})")
    return Decision("staging", f"{versus}, needs more than {_pct(margin)} (training.promotion_margin)")


def compare_with_production(result: training.BacktestResult, metrics: dict, version: str | None,
                            setup: training.ProductionSetup | None, note: str = "", newer_data: bool = True,
                            retrain: bool = True) -> tuple[dict | None, Scores]:
    """The `metrics["production"]` registry entry (None without a production model) and the scores to decide on.

    `metrics`: `training.backtest_metrics` of the candidate and naive rows. `setup`: production's setup, None when
    it could not be rebuilt (`note` says why); a `result.production_error` also leaves production unscored.
    """
    overall = metrics["overall"]
    base = Scores(candidate=_num(overall[training.CANDIDATE]["wmape"]), naive=_num(overall[training.NAIVE]["wmape"]))
    if version is None:
        return None, base
    frame = result.frame
    compared = frame.loc[frame["method"].isin([training.CANDIDATE, training.PRODUCTION])]
    note = note or result.production_error or ""
    if not note and not (compared["method"].eq(training.PRODUCTION) & (compared["y"] > 0)).any():
        note = f"production {version}'s setup has no backtest points with actuals"
    if setup is None or note:
        return ({"version": version, "scored": False, "note": note},
                Scores(base.candidate, base.naive, production_note=note, production_version=version))
    trained = result.models.loc[result.models["method"] == training.PRODUCTION]
    train_ends = {str(o.date()): str(end) for o, end in zip(trained["origin"], trained["train_end"])}
    section = {
        "version": version, "scored": True, "note": "",
        # production's setup retrained on the days before each origin, never the fitted production model
        "retrained": True, "retrain_per_origin": retrain,
        "out_of_sample": all(pd.Timestamp(end) < pd.Timestamp(o) for o, end in train_ends.items()),
        "same_setup": setup.same_as_candidate, "setup_changes": setup.changes,
        "exogenous_columns": list(setup.exogenous_columns),
        "origins": sorted(train_ends), "train_ends": train_ends,
        **training.backtest_metrics(compared),
    }
    return section, Scores(base.candidate, base.naive,
                           production=_num(section["overall"][training.PRODUCTION]["wmape"]),
                           production_version=version, setup_changes=tuple(setup.changes),
                           same_setup=setup.same_as_candidate, newer_data=newer_data)


def accuracy_rows(metrics: dict, section: dict | None) -> dict[str, dict]:
    """Rows of `training.format_accuracy` for the log: candidate, seasonal naive and production's setup if scored."""
    rows = {"candidate": metrics["overall"][training.CANDIDATE], "seasonal_naive": metrics["overall"][training.NAIVE]}
    if section and section.get("scored"):
        how = "the same setup" if section["same_setup"] else "retrained per origin"
        rows[f"production {section['version']}'s setup ({how})"] = section["overall"][training.PRODUCTION]
    return rows


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"
