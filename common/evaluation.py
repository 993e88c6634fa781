"""Step 4's logic: stored forecasts next to their actuals, the naive benchmark, accuracy summaries, backtest rows.

A forecast point is one (origin, queue, date) of `gold_forecast_daily` whose
date now has an actual in `silver_daily`. Each point is scored twice: as
published (method `lightgbm` or `seasonal_naive`, the fallback) and as the
weekly seasonal naive forecast would have been at that origin, recomputed from
silver before the origin (`naive_benchmark`), so "does the model still beat
naive?" is answered on exactly the same points every night.

Metrics use open days only (`silver_daily.is_open`): a closed day is 0 on both
sides and would flatter every ratio; MAPE also leaves out open days with a zero
actual (an outage), which wMAPE still counts in its numerator. A metric with
nothing to divide by is NaN, never inf. Definitions are `common.metrics`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np
import pandas as pd

from common import metrics
from common.baselines import seasonal_naive_forecast

STORED_METHODS = ("lightgbm", "ensemble", "seasonal_naive")
NAIVE_BENCHMARK = "naive_benchmark"
NIGHTLY_METHODS = (*STORED_METHODS, NAIVE_BENCHMARK)
BACKTEST_MODEL, BACKTEST_NAIVE = "backtest_lightgbm", "backtest_naive"
BACKTEST_METHODS = (BACKTEST_MODEL, BACKTEST_NAIVE)
FORECAST = "forecast"  # summary label of the published forecast, whichever method made each point
NIGHTLY_SCOPES = ("overall", "queue", "horizon_day", "weekday", "method")
BACKTEST_SCOPES = ("overall", "queue", "horizon_day", "weekday")
QCOLS = ("p10", "p50", "p90")
QUANTILES = (0.1, 0.5, 0.9)
# The naive point is the latest open same weekday; a year of history finds it for any weekday open in the last year.
NAIVE_HISTORY_DAYS = 371

ACCURACY_COLUMNS = ["forecast_origin", "queue", "date", "horizon_day", "weekday", "method", "model_version", "actual",
                    *QCOLS, "error", "abs_error", "is_open", "in_band"]
METRIC_COLUMNS = ["n_days", "wmape", "mape", "mae", "rmse", "bias", "total_volume_error",
                  *(f"pinball_{c}" for c in QCOLS), "coverage"]
SUMMARY_COLUMNS = ["scope", "scope_value", "method", *METRIC_COLUMNS, "wmape_naive", "beats_naive"]
_SCOPE_COLUMN = {"overall": None, "queue": "series", "horizon_day": "horizon_day", "weekday": "weekday",
                 "method": "method"}
_KEYS = ["origin", "series", "date"]


def origins_to_score(stored: Iterable[date], scored: Iterable[date], rescore_from: date, full: bool) -> list[date]:
    """The stored origins to (re-)score: all with `full`, else those on/after `rescore_from` or never scored yet.

    Recent origins gain actuals every night; older ones are complete and are
    scored once (re-score them with `full` after silver was rebuilt).
    """
    stored = sorted(set(stored))
    if full:
        return stored
    done = set(scored)
    return [o for o in stored if o >= rescore_from or o not in done]


def leaking_forecasts(used: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """The stored forecasts whose model saw their target days: one row per forecast_origin, model_version, train_last.

    A model trained on data up to or after a forecast's origin (its first date) knew the actuals it forecast, e.g.
    a backfill made with a later production model: scoring it would flatter the model and raise false alerts.
    `used`: distinct forecast_origin, model_version of stored forecasts; `windows`: version, train_last
    (`model_choice.training_windows`). A version whose window is unknown is not judged a leak.
    """
    merged = used.loc[:, ["forecast_origin", "model_version"]].merge(
        windows.loc[:, ["version", "train_last"]].rename(columns={"version": "model_version"}), on="model_version")
    leak = merged["train_last"].notna() & (merged["train_last"] >= merged["forecast_origin"])
    return merged.loc[leak].sort_values(["forecast_origin", "model_version"], kind="stable").reset_index(drop=True)


def split_leaking(forecasts: pd.DataFrame, leaks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, skipped): `forecasts` rows (gold_forecast_daily) without / with a model that saw their target days."""
    keys = ["forecast_origin", "model_version"]
    hit = forecasts.loc[:, keys].merge(leaks.loc[:, keys].assign(_leak=True), on=keys, how="left")["_leak"]
    hit = hit.fillna(False).astype(bool).to_numpy()
    return forecasts.loc[~hit].reset_index(drop=True), forecasts.loc[hit].reset_index(drop=True)


def describe_leaks(skipped: pd.DataFrame, leaks: pd.DataFrame, limit: int = 3) -> str:
    """'origin 2025-02-24 by v20250309-... (trained on data up to 2025-03-08), ...' for the skipped rows' pairs."""
    pairs = skipped.loc[:, ["forecast_origin", "model_version"]].drop_duplicates().merge(
        leaks, on=["forecast_origin", "model_version"])
    parts = [f"origin {r.forecast_origin:%Y-%m-%d} by {r.model_version} (trained on data up to {r.train_last:%Y-%m-%d})"
             for r in pairs.itertuples(index=False)]
    return ", ".join(parts[:limit]) + (f" and {len(parts) - limit} more" if len(parts) > limit else "")


def accuracy_rows(forecasts: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """Forecast points with their actual: one row per origin per queue per date per method (`ACCURACY_COLUMNS`).

    `forecasts`: `gold_forecast_daily` rows (forecast_origin, queue, date,
    horizon_day, p10, p50, p90, method, model_version); `actuals`:
    `silver_daily` rows (queue, date, offered, is_open). Points without an
    actual are left out.
    """
    f = forecasts.loc[:, ["forecast_origin", "queue", "date", "horizon_day", *QCOLS, "method", "model_version"]]
    a = actuals.loc[:, ["queue", "date", "offered", "is_open"]].rename(columns={"offered": "actual"})
    a = a.loc[a["actual"].notna()]
    merged = f.astype({"queue": "str"}).merge(a.astype({"queue": "str"}), on=["queue", "date"], how="inner",
                                              validate="many_to_one")
    return _finish(merged)


def naive_benchmark(history: pd.DataFrame, points: pd.DataFrame, tail_days: int = NAIVE_HISTORY_DAYS) -> pd.DataFrame:
    """Weekly seasonal naive as it would have been at each origin, on the given points.

    `history`: `silver_daily` rows (queue, date, offered, is_open), a complete
    calendar per queue; `points`: (forecast_origin, queue, date, horizon_day).
    At origin O a queue's forecast uses its silver rows in [O - tail_days, O);
    a queue whose silver does not reach O - 1 (or has gaps after O) gets no
    benchmark for the missing days. Grain: one row per origin per queue per
    date, in `gold_forecast_daily` columns with method `naive_benchmark`.
    """
    cols = ["forecast_origin", "queue", "date", "horizon_day", *QCOLS, "method", "model_version"]
    hist = history.loc[:, ["queue", "date", "offered", "is_open"]].astype({"queue": "str"})
    hist = hist.rename(columns={"queue": "series", "offered": "y"}).sort_values(["series", "date"], kind="stable")
    want = points.loc[:, ["forecast_origin", "queue", "date", "horizon_day"]].astype({"queue": "str"})
    parts = []
    for origin, rows in want.groupby("forecast_origin", sort=True):
        before = hist.loc[(hist["date"] < origin) & (hist["date"] >= origin - pd.Timedelta(days=tail_days))]
        last = before.groupby("series")["date"].max()
        ready = set(last.index[last == origin - pd.Timedelta(days=1)]) & set(rows["queue"])
        future = hist.loc[hist["series"].isin(ready) & (hist["date"] >= origin) & (hist["date"] <= rows["date"].max())]
        future = _consecutive_from(future, origin)
        if future.empty:
            continue
        fc = seasonal_naive_forecast(before.loc[before["series"].isin(set(future["series"]))],
                                     future.drop(columns="y"), QUANTILES)
        parts.append(fc.drop(columns="horizon_day").assign(forecast_origin=origin))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=points[c].dtype if c in points.columns else "float64") for c in cols})
    naive = pd.concat(parts, ignore_index=True).rename(columns={"series": "queue"})
    out = want.merge(naive, on=["forecast_origin", "queue", "date"], how="inner", validate="one_to_one")
    out = out.assign(method=NAIVE_BENCHMARK, model_version=None).astype({"model_version": "object"})
    return out.loc[:, cols].sort_values(["forecast_origin", "queue", "date"], kind="stable").reset_index(drop=True)


def backtest_accuracy(frame: pd.DataFrame, model_method: str, naive_method: str) -> pd.DataFrame:
    """Backtest rows (`training.rolling_backtest`) as accuracy rows with methods backtest_lightgbm / backtest_naive.

    `frame`: one row per method per origin per series per date with y,
    is_open, p10, p50, p90. Grain as `accuracy_rows`.
    """
    rename = {model_method: BACKTEST_MODEL, naive_method: BACKTEST_NAIVE}
    bt = frame.loc[frame["method"].isin(list(rename)) & frame["y"].notna()]
    bt = bt.rename(columns={"origin": "forecast_origin", "series": "queue", "y": "actual"})
    bt = bt.assign(method=bt["method"].map(rename), model_version=None).astype({"model_version": "object"})
    return _finish(bt)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows from points with actual: add weekday, error, abs_error, in_band; order the columns and rows."""
    actual = frame["actual"].astype(float)
    error = frame["p50"].astype(float) - actual
    out = frame.assign(
        weekday=frame["date"].dt.day_of_week.astype("int64"), actual=actual, error=error, abs_error=error.abs(),
        is_open=frame["is_open"].astype(bool), in_band=(actual >= frame["p10"]) & (actual <= frame["p90"]),
        horizon_day=frame["horizon_day"].astype("int64"), model_version=frame["model_version"].astype("object"),
    )
    return out.loc[:, ACCURACY_COLUMNS].sort_values(["forecast_origin", "queue", "date", "method"],
                                                    kind="stable").reset_index(drop=True)


def _consecutive_from(frame: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """Per series, the rows of consecutive days starting at `origin` (cut at the first gap)."""
    frame = frame.sort_values(["series", "date"], kind="stable")
    offset = ((frame["date"] - origin) // pd.Timedelta(days=1)).to_numpy()
    rank = frame.groupby("series").cumcount().to_numpy()
    ok = pd.Series(offset == rank, index=frame.index).groupby(frame["series"]).cummin()
    return frame.loc[ok.to_numpy()].reset_index(drop=True)


# --- summaries ---------------------------------------------------------------------------------------------

def summarize(accuracy: pd.DataFrame, model_methods: Sequence[str], naive_method: str, model_label: str,
              naive_label: str, scopes: Sequence[str]) -> pd.DataFrame:
    """Accuracy of the model rows and of the naive rows on the same points, per scope value (`SUMMARY_COLUMNS`).

    Grain: one row per scope per scope value per label (`model_label` for
    the rows of `model_methods`, `naive_label` for `naive_method` on the same
    points). `wmape_naive` is the naive wMAPE on those points; `beats_naive`
    compares with the model's wMAPE on the points both have (all of them
    unless a queue had no history before an origin); null on naive rows.
    Scope values with no open day are left out.
    """
    unknown = [s for s in scopes if s not in _SCOPE_COLUMN]
    if unknown:
        raise ValueError(f"summarize scopes {unknown}, must be among {list(_SCOPE_COLUMN)}")
    model = _metric_frame(accuracy.loc[accuracy["method"].isin(list(model_methods))])
    naive = _metric_frame(accuracy.loc[accuracy["method"] == naive_method])
    naive = naive.loc[:, [*_KEYS, *QCOLS]].rename(columns={c: f"naive_{c}" for c in QCOLS})
    paired = model.merge(naive, on=_KEYS, how="left", validate="one_to_one")
    rows = []
    for scope in scopes:
        col = _SCOPE_COLUMN[scope]
        groups = [("all", paired)] if col is None else paired.groupby(col, sort=True)
        for value, group in groups:
            if not group["is_open"].any():
                continue
            both = group.loc[group["naive_p50"].notna()]
            as_naive = both.drop(columns=list(QCOLS)).rename(columns={f"naive_{c}": c for c in QCOLS})
            got, bench = _metrics(group), _metrics(as_naive)
            same_points = metrics.wmape(both, "is_open")
            beats = (bool(same_points < bench["wmape"]) if np.isfinite(same_points) and np.isfinite(bench["wmape"])
                     else None)
            label = str(value.item() if isinstance(value, np.generic) else value)
            rows.append({"scope": scope, "scope_value": label, "method": model_label, **got,
                         "wmape_naive": bench["wmape"], "beats_naive": beats})
            if bench["n_days"]:
                rows.append({"scope": scope, "scope_value": label, "method": naive_label, **bench,
                             "wmape_naive": bench["wmape"], "beats_naive": None})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.astype({"n_days": "int64", "beats_naive": "object"})


def nightly_summary(accuracy: pd.DataFrame, as_of: date, window_days: int) -> pd.DataFrame:
    """The published forecast and the naive benchmark over origins in [as_of - window_days, as_of).

    Grain: one row per scope per scope value per method (forecast |
    naive_benchmark), with `as_of` and `window_days` columns.
    """
    end = pd.Timestamp(as_of)
    window = accuracy.loc[(accuracy["forecast_origin"] >= end - pd.Timedelta(days=window_days))
                          & (accuracy["forecast_origin"] < end)]
    out = summarize(window, STORED_METHODS, NAIVE_BENCHMARK, FORECAST, NAIVE_BENCHMARK, NIGHTLY_SCOPES)
    return out.assign(as_of=end, window_days=int(window_days))


def backtest_summary(accuracy: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The backtest's model and naive rows summarised for `as_of`; window_days reaches back to the earliest origin.

    Grain as `nightly_summary`, methods backtest_lightgbm | backtest_naive.
    """
    end = pd.Timestamp(as_of)
    first = accuracy["forecast_origin"].min() if len(accuracy) else end
    out = summarize(accuracy, [BACKTEST_MODEL], BACKTEST_NAIVE, BACKTEST_MODEL, BACKTEST_NAIVE, BACKTEST_SCOPES)
    return out.assign(as_of=end, window_days=int((end - first) // pd.Timedelta(days=1)))


def _metric_frame(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Accuracy rows under the names `common.metrics` reads (y, series, origin)."""
    return accuracy.rename(columns={"forecast_origin": "origin", "queue": "series", "actual": "y"})


def _metrics(frame: pd.DataFrame) -> dict[str, float]:
    """`METRIC_COLUMNS` of one group of points, on its open days."""
    m = metrics.open_mask(frame, "is_open")
    y = frame["y"].to_numpy(dtype=float)[m]
    return {
        "n_days": int(m.sum()), "wmape": metrics.wmape(frame, m), "mape": metrics.mape(frame, m),
        "mae": metrics.mae(frame, m), "rmse": metrics.rmse(frame, m), "bias": metrics.bias(frame, m),
        "total_volume_error": metrics.total_volume_error(frame, m, by=("series", "origin")),
        **{f"pinball_{c}": metrics.pinball_loss(y, frame[c].to_numpy(dtype=float)[m], q)
           for c, q in zip(QCOLS, QUANTILES)},
        "coverage": metrics.coverage(frame, m),
    }


def format_summary(summary: pd.DataFrame, scopes: Sequence[str] = ("overall", "queue", "method")) -> str:
    """A readable table of summary rows of `scopes`: one line per scope value per method."""
    rows = summary.loc[summary["scope"].isin(list(scopes))]
    if rows.empty:
        return "no forecast points with actuals in the window"
    numeric = pd.to_numeric(rows["scope_value"], errors="coerce")  # horizon days 1, 2, ..., 10, not 1, 10, 2
    rows = rows.assign(_order=rows["scope"].map({s: i for i, s in enumerate(scopes)}), _num=numeric)
    rows = rows.sort_values(["_order", "_num", "scope_value", "method"], kind="stable")
    head = ["scope", "value", "method", "days", "wMAPE", "naive", "beats", "MAPE", "MAE", "RMSE", "bias", "total",
            "pinb50", "p10-p90"]
    lines = []
    for r in rows.itertuples(index=False):
        beats = "" if r.beats_naive is None or pd.isna(r.beats_naive) else ("yes" if r.beats_naive else "NO")
        lines.append([r.scope, r.scope_value, r.method, str(r.n_days), _pct(r.wmape), _pct(r.wmape_naive), beats,
                      _pct(r.mape), _num(r.mae), _num(r.rmse), _pct(r.bias, signed=True),
                      _pct(r.total_volume_error), _num(r.pinball_p50), _pct(r.coverage)])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    left = 3  # scope, value, method read left-aligned; numbers right-aligned
    fmt = [(lambda s, w: s.ljust(w)) if i < left else (lambda s, w: s.rjust(w)) for i in range(len(head))]
    out = ["  ".join(fmt[i](h, widths[i]) for i, h in enumerate(head)).rstrip()]
    out += ["  ".join(fmt[i](v, widths[i]) for i, v in enumerate(line)).rstrip() for line in lines]
    return "\n".join(out)


def _pct(value: float, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"


def _num(value: float) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.1f}"
