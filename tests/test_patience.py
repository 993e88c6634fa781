"""Mean patience per queue from waits and abandons (abandons / seconds waited, served or not)."""

import numpy as np
import pandas as pd

from common.patience import estimate_patience, patience_map


def _calls() -> pd.DataFrame:
    # sales: 3 abandons after 30, 60, 90 s; 2 answered after 10 and 50 s; one short abandon is not demand
    # (read_waits keeps only offered calls; an 'other' outcome is ignored). Total waited 240 s / 3 = 80 s.
    # support: one abandon only, below min_abandons.
    return pd.DataFrame({
        "queue": ["sales"] * 6 + ["support"] * 2,
        "outcome": ["abandoned", "abandoned", "abandoned", "answered", "answered", "other", "abandoned", "answered"],
        "wait_seconds": [30.0, 60.0, 90.0, 10.0, 50.0, 500.0, 20.0, np.nan],
    })


def test_patience_is_seconds_waited_over_abandons_with_its_sample():
    got = estimate_patience(_calls(), ["sales", "support", "vip"], days=28, min_abandons=2, default_seconds=None)
    sales = got.set_index("queue").loc["sales"]
    assert sales["patience_seconds"] == 80.0
    assert (sales["abandons"], sales["calls"], sales["wait_seconds_total"], sales["source"]) == (3, 5, 240.0,
                                                                                                  "estimated")
    # Too few abandons and no calls at all: no patience, so Erlang C.
    assert got.set_index("queue").loc[["support", "vip"], "source"].tolist() == ["none", "none"]
    assert got["patience_seconds"].isna().tolist() == [False, True, True]
    assert patience_map(got) == {"sales": 80.0}


def test_queues_without_enough_abandons_get_the_configured_default():
    got = estimate_patience(_calls(), ["sales", "support"], days=28, min_abandons=5, default_seconds=120.0)
    assert got["patience_seconds"].tolist() == [120.0, 120.0]
    assert got["source"].tolist() == ["default", "default"]
    assert got["window_days"].tolist() == [28, 28]
