"""Step 4's orchestration: which days to read, the scoring, the alert rules, the backtest of the production setup.

`4_evaluate.py` reads with `accuracy_store`, calls these, and writes with `accuracy_store`. Everything here is pure
on its inputs (frames, the config, a model factory) except `backtest_setup`, which loads the production model. The
scoring itself is `evaluation`, the rules are `alerts`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from common import alerts, evaluation, registry, silver, training
from common.accuracy_store import NightInputs
from common.config_schema import Config
from common.errors import ConfigError, DataError, ModelError
from common.features import warmup_days
from common.forecaster import QuantileForecaster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NightWindow:
    """The dates a night reads from (each rule's look-back decides one)."""

    rescore_from: date   # origins from here on are re-scored
    daily_from: date     # silver_daily from here on (drift and the bias rule's weeks)
    drift_from: date     # open silver_interval rows from here on (drift)


def night_window(cfg: Config, as_of: date) -> NightWindow:
    """What a night reads; raise ConfigError when alerts.horizon_day lies beyond the forecast horizon."""
    a, horizon = cfg.alerts, cfg.forecast.horizon_days
    if a.horizon_day > horizon:
        raise ConfigError(f"alerts.horizon_day == {a.horizon_day}, must be <= forecast.horizon_days ({horizon})")
    # Every origin the summary and the alert rules read is re-scored, so they never see half-old rows.
    rescore_days = max(horizon, cfg.evaluation.window_days, a.naive_window_days,
                       7 * (a.bias_warning_weeks + 1) + a.horizon_day,
                       a.mape_warning_days + alerts.RECENT_DAYS + a.horizon_day)
    drift_from = as_of - timedelta(days=a.drift_recent_days + a.drift_reference_days)
    # silver_daily also says which days of the bias rule's weeks were open (a week is judged when complete).
    daily_from = min(drift_from, as_of - timedelta(days=7 * (a.bias_warning_weeks + 1)))
    return NightWindow(as_of - timedelta(days=rescore_days), daily_from, drift_from)


@dataclass(frozen=True)
class NightScore:
    """One night's outputs: accuracy rows (one per origin per queue per date per method), the trailing summary,
    the alerts raised, and the run's one-line message."""

    accuracy: pd.DataFrame
    summary: pd.DataFrame
    alert_rows: pd.DataFrame
    message: str


def score_night(cfg: Config, as_of: date, inputs: NightInputs) -> NightScore:
    """Score the night's forecast points and the naive benchmark on the same points, summarise, raise alerts."""
    leak_note = ""
    if len(inputs.skipped):
        skipped = inputs.skipped
        leak_note = (f"{len(skipped)} forecast rows of {skipped['forecast_origin'].nunique()} origins skipped, their "
                     f"model had seen the days they forecast: {evaluation.describe_leaks(skipped, inputs.leaks)}")
        log.warning("evaluate: %s; they are not scored, summarised or alerted on (a backfill made with a later model; "
                    "re-run 3_forecast.py --as-of ORIGIN to replace them)", leak_note)

    t0 = time.perf_counter()
    daily = inputs.daily
    scored_rows = evaluation.accuracy_rows(inputs.forecasts, daily)
    naive = evaluation.naive_benchmark(daily, scored_rows)
    missing = len(scored_rows) - len(naive)
    if missing:
        log.info("evaluate: %d points have no naive benchmark (their queue's silver does not reach the day before "
                 "the origin)", missing)
    accuracy = pd.concat([scored_rows, evaluation.accuracy_rows(naive, daily)], ignore_index=True)
    summary = evaluation.nightly_summary(accuracy, as_of, cfg.evaluation.window_days)
    log.info("evaluate: %d accuracy rows (%d points with actuals), %d summary rows (%.1fs)", len(accuracy),
             len(scored_rows), len(summary), time.perf_counter() - t0)

    alert_rows = alerts.alerts_frame(_alerts(cfg, as_of, accuracy, inputs))
    for row in alert_rows.itertuples(index=False):
        log.warning("alert %s %s%s: %s", row.severity, row.alert_rule, f" [{row.queue}]" if row.queue else "", row.message)

    overall = summary.loc[(summary["scope"] == "overall") & (summary["method"] == evaluation.FORECAST)]
    headline = ("no forecast points with actuals in the window" if overall.empty else
                f"wMAPE {100 * overall['wmape'].iloc[0]:.1f}% vs naive {100 * overall['wmape_naive'].iloc[0]:.1f}% "
                f"over {int(overall['n_days'].iloc[0])} open days")
    n_critical = int((alert_rows["severity"] == alerts.CRITICAL).sum())
    message = (f"{len(inputs.origins)} origins scored ({len(scored_rows)} points with actuals); {headline}; "
               f"{len(alert_rows)} alerts ({n_critical} critical)" + (f"; {leak_note}" if leak_note else ""))
    return NightScore(accuracy, summary, alert_rows, message)


def _alerts(cfg: Config, as_of: date, accuracy: pd.DataFrame, inputs: NightInputs) -> list[alerts.Alert]:
    """Every alert rule (thresholds: alerts.*) on the night's accuracy rows and inputs."""
    a, daily = cfg.alerts, inputs.daily
    closed = silver.closed_dates_for(cfg, as_of - timedelta(days=15), as_of)
    queues = sorted(daily["queue"].unique()) if len(daily) else []
    last_end = silver.last_open_end(cfg, queues, as_of, closed)
    return [
        *alerts.daily_mape_alerts(accuracy, as_of, horizon_day=a.horizon_day, warning=a.mape_warning,
                                  warning_days=a.mape_warning_days, critical=a.mape_critical,
                                  min_actual=a.mape_min_actual),
        *alerts.weekly_bias_alerts(accuracy, daily, as_of, horizon_day=a.horizon_day, warning=a.bias_warning,
                                   warning_weeks=a.bias_warning_weeks, critical=a.bias_critical,
                                   min_days=a.bias_min_days),
        *alerts.freshness_alerts(inputs.newest, last_end, warning_hours=a.freshness_warning_hours,
                                 critical_hours=a.freshness_critical_hours),
        *alerts.drift_alerts(inputs.intervals, daily, as_of, recent_days=a.drift_recent_days,
                             reference_days=a.drift_reference_days, bins=a.drift_bins, warning=a.drift_warning_psi,
                             critical=a.drift_critical_psi),
        *alerts.beats_naive_alerts(accuracy, as_of, window_days=a.naive_window_days, min_days=a.naive_min_days),
        *alerts.fallback_alerts(inputs.latest),
    ]


def format_night(night: NightScore, as_of: date, window_days: int) -> str:
    """The accuracy table and the alerts, as printed by the step."""
    return "\n".join([
        f"Forecast accuracy as of {as_of}, origins {as_of - timedelta(days=window_days)}..{as_of - timedelta(days=1)} "
        "(open days):",
        evaluation.format_summary(night.summary, ("overall", "queue", "method")),
        _format_alerts(night.alert_rows),
    ])


def _format_alerts(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "Alerts: none"
    lines = [f"Alerts ({len(frame)}):"]
    lines += [f"  {r.severity.upper():8} {r.alert_rule:17} {r.queue or '-':12} {r.message}"
              for r in frame.itertuples(index=False)]
    return "\n".join(lines)


def backtest_setup(engine: Engine, cfg: Config) -> tuple[Callable[[], QuantileForecaster], str]:
    """(make_model, description): the production model's parameters, else the configured training setup."""
    try:
        version, model = registry.load_production(engine, cfg)
    except ModelError as exc:
        log.info("backtest: no usable production model (%s); backtesting the configured training setup", exc)
        return (lambda: training.make_forecaster(cfg.training, cfg.forecast.quantiles)), "the configured training setup"

    def make_model() -> QuantileForecaster:
        return QuantileForecaster(**{**model.init_params(), "num_threads": cfg.training.num_threads})

    return make_model, f"production {version}'s setup"


@dataclass(frozen=True)
class BacktestRun:
    """A rolling-origin backtest: its origins, accuracy rows (methods backtest_lightgbm / backtest_naive) and
    summary."""

    origins: list[pd.Timestamp]
    accuracy: pd.DataFrame
    summary: pd.DataFrame


def backtest(cfg: Config, as_of: date, daily: pd.DataFrame, exogenous: pd.DataFrame | None,
             make_model: Callable[[], QuantileForecaster], n_origins: int, step_days: int) -> BacktestRun:
    """Backtest `make_model`'s setup on `daily` (training.read_daily_history before `as_of`), retrained at each of
    `n_origins` origins `step_days` apart; raise DataError when history is too short."""
    t, horizon = cfg.training, cfg.forecast.horizon_days
    history, left_out = training.split_by_history(daily, t.min_history_days)
    for row in left_out.itertuples(index=False):
        log.info("backtest: queue %s left out: %d open days < training.min_history_days %d", row.series, row.open_days,
                 t.min_history_days)
    if history.empty:
        raise DataError(f"backtest: no queue has >= training.min_history_days == {t.min_history_days} open days "
                        f"before {as_of}")
    blank = make_model()
    try:
        origins = training.backtest_origins(history["date"].min(), history["date"].max(), n_origins, horizon,
                                            step_days, min_train_days=warmup_days(blank.lags, blank.windows) + 28)
    except training.NotEnoughHistory as exc:
        raise DataError(f"--origins {n_origins} --step-days {step_days}: not enough history: {exc}") from None
    holidays = silver.closed_dates_for(cfg, history["date"].min().date(), as_of + timedelta(days=366))
    t0 = time.perf_counter()
    result = training.rolling_backtest(history, holidays, make_model, origins, horizon, retrain=True,
                                       exogenous=exogenous)
    accuracy = evaluation.backtest_accuracy(result.frame, training.CANDIDATE, training.NAIVE)
    summary = evaluation.backtest_summary(accuracy, as_of)
    log.info("backtest: %d origins %s..%s x %d days: %d accuracy rows (%.1fs)", len(origins), origins[0].date(),
             origins[-1].date(), horizon, len(accuracy), time.perf_counter() - t0)
    return BacktestRun(origins, accuracy, summary)


def format_backtest(run: BacktestRun, setup: str, step_days: int, horizon: int) -> str:
    """The backtest's accuracy table, as printed by the step."""
    return "\n".join([
        f"Backtest of {setup}: {len(run.origins)} origins {run.origins[0].date()}..{run.origins[-1].date()} "
        f"({step_days} days apart) x {horizon} days, retrained at each origin (open days):",
        evaluation.format_summary(run.summary, ("overall", "queue", "horizon_day")),
    ])


def backtest_message(run: BacktestRun, setup: str) -> str:
    """The run's one-line message: the setup, the origins and the headline wMAPE against naive."""
    overall = run.summary.loc[(run.summary["scope"] == "overall")
                              & (run.summary["method"] == evaluation.BACKTEST_MODEL)]
    headline = ("no backtest points with actuals" if overall.empty else
                f"wMAPE {100 * overall['wmape'].iloc[0]:.1f}% vs naive {100 * overall['wmape_naive'].iloc[0]:.1f}%")
    return f"backtest of {setup}, {len(run.origins)} origins: {headline}"
