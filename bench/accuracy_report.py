"""bench/accuracy.py's Markdown and JSON: the per-data-set tables and notes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from bench.accuracy_metrics import GOAL_COVERAGE, MEMBER_PREFIX, METHOD_LABELS, OURS
from common.forecast_frame import MODEL_METHODS


def pct(value: float, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{100 * value:+.1f}%" if signed else f"{100 * value:.1f}%"


def num(value: float, digits: int = 2) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:,.{digits}f}"


def method_label(method: str) -> str:
    """The table's name for a method; an ensemble member scored alone is named after its column."""
    if method in METHOD_LABELS:
        return METHOD_LABELS[method]
    if method.startswith(MEMBER_PREFIX):
        return f"wfm-forecast member `{method[len(MEMBER_PREFIX):]}` alone (p50)"
    if method.endswith(" x seasonal_naive"):
        return method.replace("seasonal_naive", METHOD_LABELS["seasonal_naive"])
    return method


def metrics_markdown(metrics: pd.DataFrame, interval_wmape: dict[str, float] | None = None) -> str:
    """The per-data-set table: one line per method, ours first, then by daily wMAPE."""
    order = metrics.assign(_ours=metrics["method"] != OURS).sort_values(["_ours", "wmape"], kind="stable")
    has_int = "interval_wmape" in order.columns and order["interval_wmape"].notna().any()
    head = ["method", "daily wMAPE", "14-day total error", "bias", "MASE", "pinball", "p10–p90 coverage"]
    head += ["30-min wMAPE"] if has_int else []
    head += ["fit+predict s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in order.itertuples(index=False):
        cells = [method_label(r.method), pct(r.wmape), pct(r.total_error), pct(r.bias, True),
                 num(r.mase), num(r.pinball, 0), pct(r.coverage)]
        cells += [pct(r.interval_wmape)] if has_int else []
        cells += [num(r.seconds, 1)]
        lines.append("| " + " | ".join(cells) + " |")
    if has_int and interval_wmape and "actual daily x profile" in interval_wmape:
        lines.append(f"\nProfile applied to the actual daily totals (the split's own error): "
                     f"{pct(interval_wmape['actual daily x profile'])} interval wMAPE.")
    return "\n".join(lines)


def goal_markdown(goal: dict) -> str:
    """One line: issue 16's goal on this data set (bench.accuracy_metrics.goal_check), met or not and why."""
    if not goal:
        return "Goal: not judged (no forecast of ours was scored)."
    lo, hi = GOAL_COVERAGE
    who = "published p50" if goal["method"] == "published" else "our p50 (nothing published)"
    tick = {True: "✔", False: "✘"}
    bar = (f"the bar {pct(goal['bar'])} ({method_label(goal['bar_from'])}; best of "
           + ", ".join(f"{method_label(k)} {pct(v)}" for k, v in goal["candidates"].items()) + ")"
           if goal["bar_from"] else "no bar (no baseline scored)")
    peers = "" if goal["peers_run"] else " Peers were not run (--no-peers): the bar leaves them out."
    return (f"Goal (issue 16): {who} daily wMAPE {pct(goal['wmape'])} vs {bar} {tick[goal['wmape_ok']]}; "
            f"p10–p90 coverage {pct(goal['coverage'])} (target {lo:.0%}–{hi:.0%}) {tick[goal['coverage_ok']]}: "
            f"**{'met' if goal['met'] else 'not met'}**.{peers}")


def fallback_markdown(table: pd.DataFrame) -> str:
    head = ["queue", "method", "why", "open days", "actual", "p50 total", "daily wMAPE", "p10–p90 coverage"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.queue} | {r.method} | {r.fallback_reason} | {r.open_days} | {r.actual:,.0f} | "
                     f"{r.p50:,.0f} | {pct(r.wmape)} | {pct(r.coverage)} |")
    return "\n".join(lines)


def published_markdown(why: pd.DataFrame) -> str:
    """How many queue-origins the published forecast kept the model for, why the others fell back, and which
    weekdays' intraday profiles were replaced."""
    if why.empty:
        return ""
    fell = why.loc[~why["method"].isin(MODEL_METHODS)]
    lines = [f"Published: the model was kept on {len(why) - len(fell)} of {len(why)} queue-origins"
             + ("." if fell.empty else f"; {len(fell)} fell back:")]
    for r in fell.itertuples(index=False):
        lines.append(f"- {r.origin:%Y-%m-%d} {r.queue}: {r.fallback_reason}")
    robust = why.loc[why["profiles"] != ""]
    if len(robust):
        counts = robust.groupby("queue")["profiles"].agg(lambda v: ", ".join(sorted(set(", ".join(v).split(", ")))))
        lines.append("Intraday profiles replaced by a robust one (at some origins): "
                     + "; ".join(f"{q}: {p}" for q, p in counts.items()))
    return "\n".join(lines)


def profiles_markdown(table: pd.DataFrame) -> str:
    cols = [c for c in table.columns if c != "profile"]
    lines = ["| intraday profile | " + " | ".join(METHOD_LABELS.get(c, c) for c in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for r in table.itertuples(index=False):
        lines.append(f"| {r[0]} | " + " | ".join(pct(v) for v in r[1:]) + " |")
    return "\n".join(lines)


def critical_markdown(rates: dict[str, float]) -> str:
    n = max(rates["points"], 1)
    return (f"Critical `daily_mape` rule on the published forecast's open days with >= 50 calls (every horizon, "
            f"{rates['points']} days): off by more than 15% on {rates['above_threshold']} "
            f"({rates['above_threshold'] / n:.1%}); of those, beyond chance of their own band (the rule since issue "
            f"15) {rates['beyond_chance']} ({rates['beyond_chance'] / n:.1%}).")


def json_ready(obj):
    if isinstance(obj, pd.DataFrame):
        return [json_ready(r) for r in obj.to_dict("records")]
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, pd.Timestamp | date):
        return str(obj.date() if isinstance(obj, pd.Timestamp) else obj)
    if isinstance(obj, float | np.floating):
        return round(float(obj), 6) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
