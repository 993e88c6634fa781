"""Model registry: versioned artifacts on disk, one `model_registry` row per version, promotion and rollback.

A version's artifacts live in `<training.model_dir>/<version>/`: one LightGBM
text model per quantile and `meta.json` (written by `QuantileForecaster.to_files`)
plus `training.json` (data hash, features, params, backtest metrics, feature
importance, library versions). Every file's sha256 is recorded in the row
(`artifact_sha256`, JSON {file name: sha256}), and a model is loaded only after
every recorded file is found with that hash; models are read from LightGBM text,
never unpickled.

Status life cycle: a new version is `staging` or, when promoted, `production`;
the production model it replaces becomes `archived` and keeps its `promoted_at`,
which is how `rollback` finds "the previous production". A model rolled away
from is archived with `promoted_at` cleared, so it is never a rollback target
again (a manual `promote` can still bring it back).

"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from common import db, ensemble, tables
from common.config_schema import Config
from common.errors import ConfigError, ModelError
from common.forecaster import QuantileForecaster

log = logging.getLogger(__name__)

TRAINING_META_FILE = "training.json"
STATUSES = ("staging", "production", "archived")
_JSON_COLUMNS = ("params", "metrics", "feature_importance", "artifact_sha256")


# --- artifacts on disk -----------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(obj: object) -> str:
    """JSON with sorted keys and NaN/inf as null: the same object always gives the same text."""
    return json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"


def _finite(obj: object) -> object:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_artifacts(directory: Path, model: QuantileForecaster, training_meta: dict) -> dict[str, str]:
    """Write the model files and `training.json` into `directory`; return {file name: sha256}.

    Files are written to a scratch folder next to it and moved in one by one
    (`os.replace`), so a reader never sees half a file; re-writing the same
    version with the same bytes changes nothing.
    """
    directory = Path(directory)
    scratch = directory.parent / f".tmp-{directory.name}-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        paths = model.to_files(scratch)
        meta_path = scratch / TRAINING_META_FILE
        meta_path.write_bytes(canonical_json(training_meta).encode("utf-8"))
        directory.mkdir(parents=True, exist_ok=True)
        shas = {}
        for path in [*paths, meta_path]:
            shas[path.name] = file_sha256(path)
            os.replace(path, directory / path.name)
    finally:
        for leftover in scratch.glob("*"):
            leftover.unlink()
        scratch.rmdir()
    return dict(sorted(shas.items()))


def artifact_dir(cfg: Config, row: dict) -> Path:
    """The folder of a registry row's artifacts (relative paths resolve against the config file's folder)."""
    return cfg.path(row["artifact_path"])


def verify_artifacts(directory: Path, expected: dict[str, str], version: str) -> None:
    """Raise ModelError naming the file if any recorded artifact is missing or its sha256 differs."""
    if not expected:
        raise ModelError(f"model {version}: model_registry.artifact_sha256 lists no files; refusing to load it")
    for name, sha in sorted(expected.items()):
        if Path(name).name != name:  # the name comes from the database: never let it leave the folder
            raise ModelError(f"model {version}: artifact name {name!r} is not a plain file name; refusing to load it")
        path = Path(directory) / name
        if not path.is_file():
            raise ModelError(f"model {version}: artifact file {path} is missing; "
                             f"restore it or promote/roll back to another version (2_train.py --list)")
        actual = file_sha256(path)
        if actual != sha:
            raise ModelError(f"model {version}: artifact file {path} has sha256 {actual[:12]}..., the registry "
                             f"recorded {sha[:12]}...; the file changed or is corrupt, refusing to load it")


# --- registry rows ---------------------------------------------------------------------------------------

def _decode(row: dict) -> dict:
    out = dict(row)
    for col in _JSON_COLUMNS:
        if isinstance(out.get(col), str):
            out[col] = json.loads(out[col])
    return out


def read_registry(conn: Connection) -> pd.DataFrame:
    """One row per model version (JSON columns as text), newest first."""
    frame = db.read_table(conn, tables.model_registry)
    return frame.sort_values(["created_at", "version"], ascending=False, kind="stable").reset_index(drop=True)


def get_version(conn: Connection, version: str) -> dict | None:
    """The registry row of `version` with its JSON columns decoded, or None."""
    t = tables.model_registry
    row = conn.execute(select(t).where(t.c.version == version)).mappings().first()
    return _decode(dict(row)) if row else None


def production_row(conn: Connection) -> dict | None:
    """The production row (JSON decoded), or None; ModelError if the table holds more than one."""
    t = tables.model_registry
    rows = conn.execute(select(t).where(t.c.status == "production")).mappings().all()
    if len(rows) > 1:
        raise ModelError(f"model_registry has {len(rows)} production rows ({', '.join(r['version'] for r in rows)}); "
                         "fix it with 2_train.py --promote VERSION")
    return _decode(dict(rows[0])) if rows else None


def save_version(conn: Connection, entry: dict, status: str, reason: str, now: datetime | None = None) -> str:
    """Insert or replace `entry`'s row; `status` 'production' archives the current production. Returns the status.

    `entry` has the registry columns except status/status_reason/promoted_at
    (JSON columns as objects). Re-saving an existing version refreshes its row;
    its status only changes when this save promotes it (a re-trained archived
    version stays archived, a production one stays production).
    """
    if status not in ("staging", "production"):
        raise ValueError(f"save_version status {status!r}, must be staging or production")
    now = now or db.utc_now()
    version = entry["version"]
    existing = get_version(conn, version)
    promoted_at = existing["promoted_at"] if existing else None
    if status == "production":
        _archive_production(conn, except_version=version, reason=f"replaced by {version} at {now:%Y-%m-%d %H:%M} UTC")
        if not existing or existing["status"] != "production":
            promoted_at = now
    elif existing:
        status = existing["status"]
    t = tables.model_registry
    conn.execute(delete(t).where(t.c.version == version))
    values = {k: (canonical_json(v) if k in _JSON_COLUMNS and not isinstance(v, str) else v) for k, v in entry.items()}
    conn.execute(insert(t).values(**values, status=status, status_reason=reason, promoted_at=promoted_at))
    return status


def _archive_production(conn: Connection, except_version: str, reason: str) -> str | None:
    current = production_row(conn)
    if current is None or current["version"] == except_version:
        return None
    t = tables.model_registry
    conn.execute(update(t).where(t.c.version == current["version"]).values(status="archived", status_reason=reason))
    return current["version"]


def promote(conn: Connection, cfg: Config, version: str, reason: str, now: datetime | None = None) -> str | None:
    """Make `version` production after verifying its files; the current production is archived. Returns it."""
    now = now or db.utc_now()
    row = get_version(conn, version)
    if row is None:
        known = read_registry(conn)["version"].tolist()
        raise ConfigError(f"--promote {version!r}: no such version in model_registry; known: {', '.join(known) or 'none'}")
    if row["status"] == "production":
        return None
    verify_artifacts(artifact_dir(cfg, row), row["artifact_sha256"], version)
    previous = _archive_production(conn, except_version=version,
                                   reason=f"replaced by {version} at {now:%Y-%m-%d %H:%M} UTC ({reason})")
    t = tables.model_registry
    conn.execute(update(t).where(t.c.version == version).values(status="production", status_reason=reason,
                                                                 promoted_at=now))
    log.info("registry: %s promoted to production (%s)%s", version, reason,
             f"; {previous} archived" if previous else "")
    return previous


def rollback(conn: Connection, cfg: Config, now: datetime | None = None) -> tuple[str, str]:
    """Put the previous production back and archive the current one; returns (rolled back, restored).

    The previous production is the archived version promoted most recently.
    ModelError when there is no production or no earlier one, or when the
    earlier one's files fail verification.
    """
    now = now or db.utc_now()
    current = production_row(conn)
    if current is None:
        raise ModelError("--rollback: there is no production model to roll back from (2_train.py --list)")
    t = tables.model_registry
    candidates = conn.execute(
        select(t).where((t.c.status == "archived") & t.c.promoted_at.is_not(None))
        .order_by(t.c.promoted_at.desc(), t.c.version.desc())).mappings().all()
    if not candidates:
        raise ModelError(f"--rollback: {current['version']} is production and no earlier production model exists "
                         "to go back to; promote a specific version with --promote VERSION")
    target = _decode(dict(candidates[0]))
    verify_artifacts(artifact_dir(cfg, target), target["artifact_sha256"], target["version"])
    since = "?" if current["promoted_at"] is None else f"{current['promoted_at']:%Y-%m-%d %H:%M}"
    conn.execute(update(t).where(t.c.version == current["version"]).values(
        status="archived", promoted_at=None,
        status_reason=f"rolled back at {now:%Y-%m-%d %H:%M} UTC (production since {since} UTC); "
                      f"{target['version']} restored"))
    conn.execute(update(t).where(t.c.version == target["version"]).values(
        status="production", status_reason=f"restored by rollback at {now:%Y-%m-%d %H:%M} UTC, "
                                           f"replacing {current['version']}"))
    log.info("registry: rolled back %s -> %s", current["version"], target["version"])
    return current["version"], target["version"]


# --- loading ---------------------------------------------------------------------------------------------

def load_version(cfg: Config, row: dict) -> QuantileForecaster:
    """The model of a registry row (JSON decoded), after verifying every recorded file's sha256."""
    directory = artifact_dir(cfg, row)
    verify_artifacts(directory, row["artifact_sha256"], row["version"])
    model = QuantileForecaster.from_files(directory)
    wanted = tuple(sorted(cfg.forecast.quantiles))
    if tuple(model.quantiles_) != wanted:
        raise ModelError(f"model {row['version']} forecasts quantiles {list(model.quantiles_)}, but "
                         f"forecast.quantiles is {list(wanted)}; retrain with 2_train.py --force")
    return model


def load_production(engine: Engine, cfg: Config) -> tuple[str, QuantileForecaster]:
    """(version, model) of the production model; ModelError if there is none or its files fail verification."""
    with engine.connect() as conn:
        row = production_row(conn)
    if row is None:
        raise ModelError("no production model in model_registry; run 2_train.py (or promote one with --promote)")
    return row["version"], load_version(cfg, row)


def format_versions(registry: pd.DataFrame) -> str:
    """A readable table of `read_registry` rows: status, dates, backtest wMAPE of candidate / naive / production.

    `prod` is production's backtest wMAPE and how it was scored: `retrained` (its setup retrained per origin, out of
    sample), `same setup` (a refresh: the candidate's own backtest); rows written before that say `in-sample` or
    `loaded` (its fitted model, on days it had or had not seen).
    """
    if registry.empty:
        return "model_registry is empty: no model has been trained yet (run 2_train.py)"
    lines = []
    for _, row in registry.iterrows():
        metrics = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else (row["metrics"] or {})
        overall = metrics.get("overall", {})
        lines.append({
            "version": row["version"], "status": row["status"],
            "created (UTC)": _stamp(row["created_at"]), "promoted (UTC)": _stamp(row["promoted_at"]),
            "wMAPE": _pct(overall.get("candidate", {}).get("wmape")),
            "naive": _pct(overall.get("seasonal_naive", {}).get("wmape")),
            "prod": _production_cell(metrics.get("production") or {}),
            "reason": _clip(row["status_reason"] or "", 90),
        })
    frame = pd.DataFrame(lines)
    widths = {c: max(len(c), *(len(str(v)) for v in frame[c])) for c in frame.columns}
    header = "  ".join(c.ljust(widths[c]) for c in frame.columns).rstrip()
    body = ["  ".join(str(v).ljust(widths[c]) for c, v in zip(frame.columns, r)).rstrip()
            for r in frame.itertuples(index=False)]
    table = "\n".join([header, "  ".join("-" * widths[c] for c in frame.columns), *body])
    return "\n".join([table, *_weights_lines(registry)])


def _weights_lines(registry: pd.DataFrame, newest: int = 3) -> list[str]:
    """The ensemble weights per queue of production and the `newest` versions (learnt on the inner backtest)."""
    shown = registry.loc[registry["status"] == "production"]
    shown = pd.concat([shown, registry.sort_values("created_at", ascending=False).head(newest)])
    lines = []
    for _, row in shown.drop_duplicates("version").iterrows():
        metrics = json.loads(row["metrics"]) if isinstance(row["metrics"], str) else (row["metrics"] or {})
        weights = metrics.get("ensemble")
        if weights:
            lines += ["", f"ensemble weights of {row['version']} ({row['status']}), learnt per queue on the backtest:",
                      *(f"  {line}" for line in ensemble.format_weights(weights).splitlines())]
    return lines


def _production_cell(section: dict) -> str:
    wmape = (section.get("overall") or {}).get("production", {}).get("wmape")
    if wmape is None:
        return "-"
    if section.get("retrained"):
        how = "same setup" if section.get("same_setup") else "retrained"
    else:  # before production's setup was retrained: its fitted model was scored
        how = "in-sample" if section.get("in_sample") else "loaded"
    return f"{_pct(wmape)} {how}"


def _stamp(value: object) -> str:
    return "-" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _pct(value: object) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
