"""Step 2's promotion rule: does the candidate become production, and why (one line for the registry).

Reads backtest wMAPEs (`Scores`), on open days as everywhere (`common.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    """Backtest wMAPEs the promotion rule reads (fractions, e.g. 0.081)."""

    candidate: float                              # candidate, all backtest points
    naive: float                                  # seasonal naive, the same points
    production: float | None = None               # production, on the points it was scored on
    candidate_on_production: float | None = None  # candidate, on those same points
    production_version: str | None = None
    production_note: str = ""                     # why production was not scored, or the in-sample caveat
    production_in_sample: bool = False            # production was scored on days it was trained on (optimistic)
    is_refresh: bool = False                      # same parameters and features as production, trained on newer data


@dataclass(frozen=True)
class Decision:
    """What to do with the candidate: status `production` or `staging`, and why (one line)."""

    status: str
    reason: str


def decide_promotion(scores: Scores, margin: float) -> Decision:
    """Promote when the candidate beats seasonal naive and beats production's wMAPE by `margin` (relative).

    Without a scored production model (none, or unusable: see
    `production_note`), beating naive is enough. NaN scores never promote.
    """
    cand, naive = scores.candidate, scores.naive
    if not np.isfinite(cand):
        return Decision("staging", "no backtest points with actuals: the candidate could not be scored")
    if not (np.isfinite(naive) and cand < naive):
        return Decision("staging", f"candidate wMAPE {_pct(cand)} does not beat seasonal naive {_pct(naive)}")
    beats_naive = f"candidate wMAPE {_pct(cand)} beats seasonal naive {_pct(naive)}"
    if scores.production is None:
        why = f"; {scores.production_note}" if scores.production_note else "; no production model"
        return Decision("production", beats_naive + why)
    prod, same = scores.production, scores.candidate_on_production
    note = f" ({scores.production_note})" if scores.production_note else ""
    if same is None or not np.isfinite(same) or not np.isfinite(prod) or prod <= 0:
        return Decision("staging", f"{beats_naive}, but could not be compared with production "
                                   f"{scores.production_version}{note}")
    gain = 1 - same / prod
    versus = (f"candidate wMAPE {_pct(same)} vs production {scores.production_version} {_pct(prod)} on the same "
              f"points: {_pct(abs(gain))} {'better' if gain >= 0 else 'worse'}")
    if same < prod * (1 - margin):
        return Decision("production", f"{beats_naive}; {versus} (training.promotion_margin {_pct(margin)}){note}")
    if scores.production_in_sample and scores.is_refresh:
        # Production has seen the backtest days, so the margin rule would keep a stale model forever; with the same
        # setup the candidate differs only in having newer data: a refresh, promoted when it still beats naive.
        return Decision("production", f"{beats_naive}; refresh of the production setup on newer data ({versus}; "
                                      "production scored in-sample, so the margin rule does not apply)")
    return Decision("staging", f"{versus}, needs more than {_pct(margin)} (training.promotion_margin){note}")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"
