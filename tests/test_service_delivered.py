"""The service delivered in a hand-made interval: service level, ASA and abandon rate against the queue's target."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from common.service_delivered import daily_delivered, delivered_sentence, service_delivered

DEFAULTS = {"service_level": 0.8, "answer_seconds": 20, "max_occupancy": 0.85, "asa_target_seconds": None,
            "max_abandon_rate": None, "shrinkage": 0.3}


def _calls() -> pd.DataFrame:
    # sales 09:00: answered after 5, 20 and 45 s, one abandon after 60 s -> 2 of 4 within 20 s (50%),
    # ASA (5 + 20 + 45) / 3 = 23.33 s, abandon rate 1/4. sales 09:30: one answered after 10 s.
    # vip 09:00 (target 10 s): answered after 15 s and 5 s -> 1 of 2 (50%); a short abandon is not offered.
    start = pd.to_datetime(["2025-03-10 09:00"] * 4 + ["2025-03-10 09:30"] + ["2025-03-10 09:00"] * 3)
    return pd.DataFrame({
        "queue": ["sales"] * 5 + ["vip"] * 3,
        "date": pd.to_datetime(["2025-03-10"] * 8),
        "interval_start": start, "interval_start_utc": start - pd.Timedelta(hours=1),
        "outcome": ["answered", "answered", "answered", "abandoned", "answered", "answered", "answered",
                    "short_abandon"],
        "wait_seconds": [5.0, 20.0, 45.0, 60.0, 10.0, 15.0, 5.0, 2.0],
    })


def test_delivered_service_of_a_hand_made_interval():
    got = service_delivered(_calls(), DEFAULTS, {"vip": {"answer_seconds": 10, "service_level": 0.9}})
    sales = got.iloc[0]
    assert (sales["offered"], sales["answered"], sales["answered_in_target"], sales["abandoned"]) == (4, 3, 2, 1)
    assert sales["service_level"] == 0.5 and sales["abandon_rate"] == 0.25
    assert sales["asa_seconds"] == pytest.approx(70 / 3)
    assert got["queue"].tolist() == ["sales", "sales", "vip"]
    vip = got.iloc[2]
    assert (vip["offered"], vip["service_level"], vip["target_answer_seconds"], vip["target_service_level"]) == (
        2, 0.5, 10, 0.9)


def test_a_day_is_the_ratio_of_its_sums():
    day = daily_delivered(service_delivered(_calls(), DEFAULTS)).set_index("queue")
    # sales: 3 of 5 within 20 s, ASA (5 + 20 + 45 + 10) / 4 = 20 s, 1 abandon of 5.
    assert day.loc["sales", ["service_level", "asa_seconds", "abandon_rate"]].tolist() == [0.6, 20.0, 0.2]
    assert day.loc["vip", "service_level"] == 1.0  # 15 and 5 s are both within the global 20 s


def test_no_calls_give_no_rows():
    assert service_delivered(_calls().iloc[:0], DEFAULTS).empty
    assert np.isnan(service_delivered(_calls().iloc[3:4], DEFAULTS)["asa_seconds"].iloc[0])  # only an abandon


def test_the_email_sentence_gives_yesterday_and_the_past_weeks_against_the_target():
    rows = service_delivered(_calls(), DEFAULTS)
    earlier = rows.assign(date=pd.Timestamp("2025-03-03"), answered_in_target=rows["answered"],
                          interval_start_utc=rows["interval_start_utc"] - pd.Timedelta(days=7))
    got = delivered_sentence(pd.concat([rows, earlier]), date(2025, 3, 11))
    # Yesterday (Mon 10 Mar): 3 of 7 offered within 20 s... vip's 15 and 5 s are within 20 s too: 5 of 7 = 71%,
    # 1 abandon of 7 = 14.3%, ASA (5+20+45+10+15+5) / 6 = 17 s. The week before: every answered call within target.
    # By queue: sales 3 of 5 yesterday, (3 + 4) of 10 over the weeks; vip 2 of 2 and 4 of 4.
    assert got == ("Service delivered (target 80%): yesterday 71% answered within target, 14.3% abandoned, ASA 17 s; "
                   "last 4 weeks 79% answered within target, 14.3% abandoned, ASA 17 s. By queue, answered within "
                   "target yesterday / last 4 weeks: sales 60% / 70% (target 80%), vip 100% / 100% (target 80%).")
    # A closed yesterday says so; the weeks still count.
    assert delivered_sentence(earlier, date(2025, 3, 11)).startswith("Service delivered (target 80%): no calls "
                                                                     "yesterday; last 4 weeks 86% answered")  # 6 of 7
    assert delivered_sentence(rows.iloc[:0], date(2025, 3, 11)) == ""
