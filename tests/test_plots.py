"""Charts render to valid PNGs from tiny frames (and from empty ones), and the frames behind them are right."""

from __future__ import annotations

import struct
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import plots, plots_accuracy

AS_OF = date(2025, 3, 12)  # a Wednesday


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file is a PNG."""
    data = Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _actuals(queues=("Billing", "Support"), days=56) -> pd.DataFrame:
    dates = pd.date_range(pd.Timestamp(AS_OF) - pd.Timedelta(days=days), periods=days)
    rows = [{"queue": q, "date": d, "offered": 0.0 if d.weekday() >= 5 else 100.0 * (i + 1) + d.weekday(),
             "is_open": d.weekday() < 5} for i, q in enumerate(queues) for d in dates]
    return pd.DataFrame(rows)


def _forecast(queues=("Billing", "Support"), horizon=14) -> pd.DataFrame:
    dates = pd.date_range(pd.Timestamp(AS_OF), periods=horizon)
    rows = [{"queue": q, "date": d, "horizon_day": h + 1, "p10": p50 * 0.8, "p50": p50, "p90": p50 * 1.2,
             "method": "lightgbm" if i == 0 else "seasonal_naive",
             "fallback_reason": None if i == 0 else "no production model"}
            for i, q in enumerate(queues) for h, d in enumerate(dates)
            for p50 in [0.0 if d.weekday() >= 5 else 100.0 * (i + 1)]]
    return pd.DataFrame(rows)


def _staffing(queues=("Billing", "Support")) -> pd.DataFrame:
    rows = []
    for i, q in enumerate(queues):
        for d in pd.date_range(pd.Timestamp(AS_OF), periods=7):
            for k in range(48):  # 30-minute intervals, open 08:00-12:00 on weekdays
                open_ = d.weekday() < 5 and 16 <= k < 24
                rows.append({"queue": q, "interval_start": d + pd.Timedelta(minutes=30 * k),
                             "staff_p50": (i + 2 + k % 3) if open_ else 0})
    return pd.DataFrame(rows)


def _accuracy_rows() -> pd.DataFrame:
    # Published same-night forecasts (horizon_day 1) for Mon 03-03 and Tue 03-04, plus rows that must be left out.
    r = [
        ("2025-03-03", "A", 1, "lightgbm", 100.0, 110.0, True),
        ("2025-03-03", "B", 1, "seasonal_naive", 50.0, 40.0, True),
        ("2025-03-04", "A", 1, "lightgbm", 100.0, 95.0, True),
        ("2025-03-04", "A", 1, "naive_benchmark", 100.0, 500.0, True),   # benchmark, not published
        ("2025-03-04", "B", 2, "lightgbm", 50.0, 500.0, True),           # made 2 days ahead
        ("2025-03-08", "A", 1, "lightgbm", 0.0, 0.0, False),             # closed Saturday
        ("2025-03-10", "A", 1, "lightgbm", 100.0, 300.0, True),          # this week (not complete) / in the daily trend
    ]
    df = pd.DataFrame(r, columns=["date", "queue", "horizon_day", "method", "actual", "p50", "is_open"])
    return df.assign(date=pd.to_datetime(df["date"]),
                     forecast_origin=pd.to_datetime(df["date"]) - pd.to_timedelta(df["horizon_day"] - 1, unit="D"))


def _all_charts(actuals: pd.DataFrame, forecast: pd.DataFrame, staffing: pd.DataFrame, rows: pd.DataFrame,
                folder: Path) -> list[Path]:
    """The report's four charts drawn from the given frames into `folder`."""
    return [
        plots.forecast_fan_chart(actuals, forecast, AS_OF, folder / "forecast.png"),
        plots.horizon_totals_chart(plots.horizon_totals(actuals, forecast, AS_OF), AS_OF, folder / "totals.png"),
        plots.staffing_heatmap_chart(staffing, AS_OF, folder / "staffing.png"),
        plots_accuracy.accuracy_trend_chart(plots_accuracy.accuracy_trend(rows, AS_OF), plots_accuracy.weekly_bias(rows, AS_OF), AS_OF,
                                   folder / "accuracy.png", 1, (0.10, 0.15), (0.03, 0.05)),
    ]


def test_every_chart_is_a_png_of_sensible_size_from_small_frames(tmp_path: Path) -> None:
    actuals, forecast, staffing = _actuals(), _forecast(), _staffing()
    rows = _accuracy_rows()
    paths = _all_charts(actuals, forecast, staffing, rows, tmp_path)
    for path in paths:
        width, height = png_size(path)
        # 110 dpi: 14 inches = 1540 px wide (9 inches = 990 for a one-column heatmap); never a sliver, never a poster.
        assert 900 <= width <= 1600, (path.name, width)
        assert 300 <= height <= 4000, (path.name, height)
        # IHDR colour type 3: a 256-colour palette, a third of the bytes of RGBA (6) for the email.
        assert path.read_bytes()[25] == 3, path.name


def test_charts_with_no_data_still_render_with_a_note(tmp_path: Path) -> None:
    empty_f = _forecast().iloc[:0]
    empty_rows = _accuracy_rows().iloc[:0]
    paths = [
        plots.forecast_fan_chart(_actuals().iloc[:0], empty_f, AS_OF, tmp_path / "f.png"),
        plots.horizon_totals_chart(plots.horizon_totals(_actuals(), empty_f, AS_OF), AS_OF, tmp_path / "t.png"),
        plots.staffing_heatmap_chart(_staffing().iloc[:0], AS_OF, tmp_path / "s.png"),
        plots_accuracy.accuracy_trend_chart(plots_accuracy.accuracy_trend(empty_rows, AS_OF), plots_accuracy.weekly_bias(empty_rows, AS_OF),
                                   AS_OF, tmp_path / "a.png", 1, (0.1, 0.15), None),
    ]
    for path in paths:
        assert png_size(path)[0] > 0


def test_re_rendering_overwrites_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "forecast.png"
    plots.forecast_fan_chart(_actuals(), _forecast(), AS_OF, path)
    plots.forecast_fan_chart(_actuals(queues=("Billing",)), _forecast(queues=("Billing",)), AS_OF, path)
    assert [p.name for p in path.parent.iterdir()] == ["forecast.png"]
    assert png_size(path)[1] < 1000  # one queue now: one panel


def test_horizon_totals_compare_the_forecast_with_complete_past_spans_only() -> None:
    # Horizon 2 days from Wed 03-12. Billing actuals 03-08..03-11 = 10, 20, 30, 40:
    #   span -1 (03-10..03-11) = 30 + 40 = 70, span -2 (03-08..03-09) = 10 + 20 = 30.
    # Support lacks 03-08, so its span -2 has 1 of 2 days and is left out (too low, not comparable).
    d = pd.to_datetime(["2025-03-08", "2025-03-09", "2025-03-10", "2025-03-11"])
    actuals = pd.DataFrame({"queue": ["Billing"] * 4 + ["Support"] * 3,
                            "date": [*d, *d[1:]], "offered": [10.0, 20, 30, 40, 5, 6, 7], "is_open": True})
    forecast = pd.DataFrame({"queue": ["Billing", "Billing", "Support", "Support"],
                             "date": pd.to_datetime(["2025-03-12", "2025-03-13"] * 2),
                             "p10": [4.0, 5, 1, 1], "p50": [5.0, 6, 2, 2], "p90": [7.0, 8, 3, 3]})
    before = actuals.copy()
    out = plots.horizon_totals(actuals, forecast, AS_OF, spans=2)
    pd.testing.assert_frame_equal(actuals, before)  # input untouched
    got = out[["queue", "span", "kind", "total", "p10", "p90"]]
    expect = pd.DataFrame({
        "queue": ["Billing", "Billing", "Billing", "Support", "Support"],
        "span": [-2, -1, 0, -1, 0],
        "kind": ["actual", "actual", "forecast", "actual", "forecast"],
        "total": [30.0, 70.0, 11.0, 13.0, 4.0],
        "p10": [np.nan, np.nan, 9.0, np.nan, 2.0],
        "p90": [np.nan, np.nan, 15.0, np.nan, 6.0],
    })
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expect, check_dtype=False)
    assert out.loc[out["span"] == 0, "last"].iloc[0] == pd.Timestamp("2025-03-13")


def test_accuracy_trend_scores_published_same_night_forecasts_on_open_days() -> None:
    trend = plots_accuracy.accuracy_trend(_accuracy_rows(), AS_OF)
    # 03-03: A |110-100|/100 = 0.10, bias +0.10; B |40-50|/50 = 0.20, bias -0.20;
    #        all queues (10 + 10) / 150 = 0.1333, bias (10 - 10) / 150 = 0.
    # 03-04: only A's lightgbm row counts (benchmark and 2-day-ahead rows are out): 5/100 = 0.05, bias -0.05.
    # 03-08 closed: out. 03-10: A 200/100 = 2.0.
    got = trend.set_index(["date", "queue"])
    assert got.loc[(pd.Timestamp("2025-03-03"), "A"), "wmape"] == pytest.approx(0.10)
    assert got.loc[(pd.Timestamp("2025-03-03"), "B"), "bias"] == pytest.approx(-0.20)
    assert got.loc[(pd.Timestamp("2025-03-03"), plots_accuracy.ALL_QUEUES), "wmape"] == pytest.approx(20 / 150)
    assert got.loc[(pd.Timestamp("2025-03-03"), plots_accuracy.ALL_QUEUES), "bias"] == pytest.approx(0.0)
    assert got.loc[(pd.Timestamp("2025-03-04"), "A"), "wmape"] == pytest.approx(0.05)
    assert got.loc[(pd.Timestamp("2025-03-10"), "A"), "wmape"] == pytest.approx(2.0)
    assert pd.Timestamp("2025-03-08") not in set(trend["date"])
    assert len(trend) == 7  # 03-03: A, B, all; 03-04: A, all; 03-10: A, all
    assert set(got.loc[pd.Timestamp("2025-03-04")].index) == {"A", plots_accuracy.ALL_QUEUES}


def test_weekly_bias_uses_complete_monday_to_sunday_weeks_before_the_as_of() -> None:
    weekly = plots_accuracy.weekly_bias(_accuracy_rows(), AS_OF, weeks=1)
    # As-of Wed 03-12: the last complete week is Mon 03-03..Sun 03-09. A: (10 - 5) / 200 = +0.025;
    # B: -10 / 50 = -0.20; all queues: (10 - 5 - 10) / 250 = -0.02. The 03-10 row is in the running week: out.
    got = weekly.set_index("queue")["bias"]
    assert set(weekly["week"]) == {pd.Timestamp("2025-03-03")}
    assert got["A"] == pytest.approx(0.025)
    assert got["B"] == pytest.approx(-0.20)
    assert got[plots_accuracy.ALL_QUEUES] == pytest.approx(-0.02)


DOLLARS = "Top-up $10 # $20"  # two '$' would be math text to matplotlib, and '#' is not valid math: a crash at save


def test_a_queue_name_with_dollar_signs_is_drawn_as_plain_text(tmp_path: Path) -> None:
    queues = (DOLLARS, "Support")
    actuals, forecast, staffing = _actuals(queues), _forecast(queues), _staffing(queues)
    rows = _accuracy_rows().replace({"queue": {"A": DOLLARS}})
    paths = _all_charts(actuals, forecast, staffing, rows, tmp_path)
    assert all(png_size(p)[0] > 0 for p in paths)


_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.test_plots import AS_OF, _actuals, _forecast
from common import plots
out, probe = Path(sys.argv[1]), Path(sys.argv[3])
size = plots.forecast_fan_chart(_actuals(), _forecast(), AS_OF, probe / "forecast.png").stat().st_size
# The disk fills a few bytes before the end: the last buffered bytes (the PNG's IEND chunk) fail at close, after
# the image library's own clean-up. A write past the limit fails with EFBIG, as on a full disk with ENOSPC.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (size - 6, size - 6))
try:
    plots.forecast_fan_chart(_actuals(), _forecast(), AS_OF, out / "forecast.png")
except OSError as exc:
    print("OSError", exc.errno)
"""


def test_a_chart_that_cannot_be_written_whole_leaves_no_file_behind(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    (tmp_path / "out").mkdir()
    (tmp_path / "probe").mkdir()
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path / "out"), str(REPO), str(tmp_path / "probe")],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("OSError"), done.stderr[-2000:]
    assert list((tmp_path / "out").iterdir()) == []  # no 0-byte or half forecast.png, no temporary file


def test_past_forecasts_keep_1_and_7_days_ahead_and_the_nearest_backtest_origin_summing_folded_queues() -> None:
    def row(queue, day, method, ahead, p50):
        return {"forecast_origin": pd.Timestamp(day) - pd.Timedelta(days=ahead - 1), "queue": queue,
                "date": pd.Timestamp(day), "horizon_day": ahead, "method": method, "actual": 100.0,
                "p10": p50 - 10, "p50": p50, "p90": p50 + 10, "is_open": True}
    rows = pd.DataFrame([row("A", "2025-03-07", "lightgbm", 1, 101.0), row("A", "2025-03-07", "lightgbm", 7, 107.0),
                         row("A", "2025-03-07", "lightgbm", 3, 103.0),           # 3 days ahead: not drawn
                         row("A", "2025-03-07", "naive_benchmark", 1, 90.0),     # a benchmark: not drawn
                         row("A", "2025-03-07", "backtest_lightgbm", 4, 94.0),   # nearest origin: drawn
                         row("A", "2025-03-07", "backtest_lightgbm", 11, 99.0),  # an older origin: not drawn
                         row("B", "2025-03-07", "backtest_lightgbm", 4, 6.0)])
    got = plots_accuracy.past_forecasts(rows).set_index(["queue", "line"])["p50"].to_dict()
    assert got == {("A", "1 day ahead"): 101.0, ("A", "7 days ahead"): 107.0, ("A", "backtest"): 94.0,
                   ("B", "backtest"): 6.0}
    folded = plots_accuracy.past_forecasts(rows.assign(queue="All other queues (2)"))
    assert folded.set_index("line").loc["backtest", "p50"] == 100.0  # 94 + 6: the folded queues' sum


def test_past_forecasts_chart_is_drawn_and_says_when_there_is_nothing_yet(tmp_path: Path) -> None:
    rows = _accuracy_rows().assign(p10=lambda f: f["p50"] * 0.9, p90=lambda f: f["p50"] * 1.1)
    path = plots_accuracy.past_forecasts_chart(_actuals(), plots_accuracy.past_forecasts(rows), AS_OF,
                                               tmp_path / "past.png")
    empty = plots_accuracy.past_forecasts_chart(_actuals(), plots_accuracy.past_forecasts(rows.iloc[:0]), AS_OF,
                                                tmp_path / "empty.png")
    assert png_size(path)[1] > png_size(empty)[1] > 0
