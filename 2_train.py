#!/usr/bin/env python3
"""Step 2: train the forecaster (quantile LightGBM + the learnt ensemble), backtest it, register it, promote it.

One global LightGBM per quantile across queues on the open days of silver_daily before the as-of (shorter queues
than training.min_history_days are left to step 3's seasonal naive), the ensemble's weights per queue learnt on
its inner backtest (common/ensemble.py). A rolling-origin backtest scores it against seasonal naive and
production's setup retrained at every origin. Saved under training.model_dir/<version>/ and registered in
model_registry, it becomes production when it beats naive and production's setup by training.promotion_margin (a
refresh of the same setup only needs to beat naive), else it stays staging with the reason; its backtest is
published as the track record (gold_forecast_accuracy methods backtest_*). Same data and config, same version and
bytes. Nights not in training.retrain_weekdays are skipped (--force trains anyway). A run with --set (other than
database.*, source.*, report.*, training.model_dir) is a what-if unless --publish: staging, no track record.

Examples:
  python 2_train.py --as-of 2025-03-10
  python 2_train.py --list | --promote v20250310-1a2b3c4d | --rollback
"""

from __future__ import annotations

import logging
import sys
import time

from common import cli, registry, train_step, training
from common.cli import StepContext, StepResult, run_step, step_parser
from common.errors import DataError
from common.vendor import read_vendor

log = logging.getLogger(__name__)

def body(ctx: StepContext) -> StepResult:
    if ctx.args.promote:
        return _promote(ctx)
    if ctx.args.rollback:
        return _rollback(ctx)
    return _train(ctx)


def _train(ctx: StepContext) -> StepResult:
    cfg, as_of = ctx.cfg, ctx.as_of
    skipped = train_step.check_night(cfg, as_of, ctx.args.force)
    if skipped:
        log.info(skipped)
        return StepResult(0, skipped, "skipped")
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        daily = training.read_daily_history(conn, as_of)
        exogenous = (training.read_exogenous(conn, cfg.training.exogenous_table, as_of)
                     if cfg.training.exogenous_table else None)
        vendor = read_vendor(conn, cfg.forecast.vendor_table, as_of) if cfg.forecast.vendor_table else None
        prod_row = registry.production_row(conn)
    if daily.empty:
        raise DataError(f"silver_daily has no rows before as-of {as_of}; run 1_build_silver.py first")
    production = train_step.usable_production(cfg, prod_row)
    log.info("train: read %d silver_daily rows (%d queues)%s, production %s (%.1fs)", len(daily),
             daily["series"].nunique(), "" if exogenous is None else f", {len(exogenous)} exogenous rows",
             prod_row["version"] if prod_row else "none", time.perf_counter() - started)

    # Process data
    what_if = cli.what_if_overrides(ctx.args.overrides)
    what_if_text = (" ".join(cli.recorded_overrides(what_if, cfg.database_url))
                    if what_if and not ctx.args.publish else None)
    try:
        outcome = train_step.train_candidate(cfg, as_of, daily, exogenous, production, what_if_text, vendor)
    except training.NotEnoughHistory as exc:
        # A young installation must not break the nightly chain: step 3 forecasts every queue with seasonal naive.
        message = f"training skipped: not enough history yet: {exc}; step 3 uses seasonal naive"
        log.warning(message)
        return StepResult(0, message, "skipped")

    # Save outputs: files first (a crash before the commit leaves an unregistered folder, never a row without files)
    version, decision = outcome.version, outcome.decision
    shas = registry.write_artifacts(cfg.path(cfg.training.model_dir) / version, outcome.model, outcome.training_meta)
    with ctx.engine.begin() as conn:
        status = registry.save_version(conn, {**outcome.entry, "artifact_sha256": shas}, decision.status,
                                       decision.reason)
        written, published = train_step.publish_track_record(conn, outcome.track_record, as_of, ctx.run_id)
    log.info("train: %s registered as %s: %s; %s", version, status, decision.reason, published)
    return StepResult(1 + written, f"{version} {status}: {decision.reason}; {outcome.summary}; {published}")


def _promote(ctx: StepContext) -> StepResult:
    version = ctx.args.promote
    with ctx.engine.begin() as conn:
        previous = registry.promote(conn, ctx.cfg, version, reason=f"manual promotion (--promote, run {ctx.run_id})")
    message = f"{version} is production" + (f"; {previous} archived" if previous else "")
    return StepResult(1, message)


def _rollback(ctx: StepContext) -> StepResult:
    with ctx.engine.begin() as conn:
        rolled_back, restored = registry.rollback(conn, ctx.cfg)
    return StepResult(2, f"rolled back: {restored} is production again, {rolled_back} archived")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("2_train.py", __doc__)
    parser.add_argument("--force", action="store_true",
                        help="train even when training.retrain_weekdays excludes the as-of's weekday")
    parser.add_argument("--publish", action="store_true",
                        help="with --set: let the model be promoted (without it, a run with --set is a what-if: "
                             "its model is registered as staging, never promoted)")
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument("--list", action="store_true", help="print the model versions and exit (no training)")
    admin.add_argument("--promote", metavar="VERSION", default=None,
                       help="make VERSION production (its files are verified first); the current one is archived")
    admin.add_argument("--rollback", action="store_true",
                       help="put the previous production model back; the current one is archived")
    args = parser.parse_args(argv)
    if args.list:
        return train_step.list_versions(args)
    return run_step("2_train", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
