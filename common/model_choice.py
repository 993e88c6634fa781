"""Which model may forecast an as-of D: one trained only on data before D, so a backfill never leaks.

`choose_model` decides, `load_for` loads. Each version's training window is in its `training.json`
(`train_window`), else its `meta.json` (`train_end`), else its name
(`v<as-of>-...`: trained on data before that as-of).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.engine import Engine

from common.config_schema import Config
from common.errors import ModelError
from common.forecaster import QuantileForecaster
from common.registry import TRAINING_META_FILE, _decode, load_version, read_registry

log = logging.getLogger(__name__)

MODEL_META_FILE = "meta.json"


_VERSION_AS_OF = re.compile(r"^v(\d{8})-")


@dataclass(frozen=True)
class ModelChoice:
    """The model a forecast for one as-of may use: `version` (None: no model may) and `why`, in a planner's words."""

    version: str | None
    why: str
    is_production: bool = False  # the current production model (its load failure reads "production model ...")


def training_windows(cfg: Config, registry: pd.DataFrame) -> pd.DataFrame:
    """One row per version of `registry` (version, artifact_path: None without a registry row): version, train_first,
    train_last (the last day of data it was trained on; NaT: unknown), window_source (the file, or the version name)."""
    rows = []
    for row in registry.loc[:, ["version", "artifact_path"]].itertuples(index=False):
        folder = cfg.path(row.artifact_path) if isinstance(row.artifact_path, str) else None  # None: no registry row
        first, last, source = _window_of(folder, row.version)
        rows.append({"version": row.version, "train_first": first, "train_last": last, "window_source": source})
    frame = pd.DataFrame(rows, columns=["version", "train_first", "train_last", "window_source"])
    return frame.astype({"train_first": "datetime64[ns]", "train_last": "datetime64[ns]"})


def _window_of(directory: Path | None, version: str) -> tuple[pd.Timestamp, pd.Timestamp, str | None]:
    """(first, last, source) of one version's training window, read from its files, else from its name."""
    meta = {} if directory is None else _read_json(directory / TRAINING_META_FILE)
    window = meta.get("train_window") if isinstance(meta.get("train_window"), dict) else {}
    if window.get("last"):
        return pd.Timestamp(window.get("first")), pd.Timestamp(window["last"]), TRAINING_META_FILE
    train_end = None if directory is None else _read_json(directory / MODEL_META_FILE).get("train_end")
    if train_end:
        return pd.NaT, pd.Timestamp(train_end), MODEL_META_FILE
    named = _VERSION_AS_OF.match(version)
    if named:  # training.model_version: v<as-of>-..., trained on silver before that as-of
        return pd.NaT, pd.Timestamp(named.group(1)) - pd.Timedelta(days=1), "version name"
    return pd.NaT, pd.NaT, None


def _read_json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    return found if isinstance(found, dict) else {}


def choose_model(registry: pd.DataFrame, as_of: date, day_end_utc: datetime) -> ModelChoice:
    """Which version may forecast `as_of`: one trained only on data before it, or none (and why).

    `registry`: `read_registry` rows with `training_windows`' train_last; `day_end_utc`: the end of the local day
    `as_of` in naive UTC (promoted_at is UTC). In this order:
    1. the version that was production on `as_of` (the one promoted last before the day ended; the current
       production when no promotion time is recorded), if trained on data before `as_of`. For the nightly run
       that is production itself. A window that cannot be read is left to the load, which checks the files;
    2. else the version trained closest before `as_of` (latest window end, newest registration among equals),
       e.g. one `2_train.py --as-of D` registered; a staging version whose own backtest did not beat seasonal
       naive, or a what-if's (2_train.py --set without --publish), is never used;
    3. else none: every queue gets seasonal naive, with the reason.
    A registry that never had a production model has no model for any date, as before backfills were checked.
    """
    day = pd.Timestamp(as_of)
    frame = registry.assign(promoted_at=pd.to_datetime(registry["promoted_at"]),
                            created_at=pd.to_datetime(registry["created_at"]),
                            train_last=pd.to_datetime(registry["train_last"]))
    if not (frame["status"] == "production").any():
        return ModelChoice(None, "no production model in model_registry; run 2_train.py (or promote one with --promote)")
    current = frame.loc[frame["status"] == "production"].iloc[0]
    on_day = production_on(frame, day_end_utc)
    note = ""
    if on_day is not None:
        on_day = frame.loc[frame["version"] == on_day].iloc[0]
        last = on_day["train_last"]
        is_current = on_day["version"] == current["version"]
        role = "production" if is_current else f"production on {as_of}"
        if pd.isna(last):
            return ModelChoice(on_day["version"], f"{role} (training window unknown: checked when loaded)", is_current)
        if last < day:
            return ModelChoice(on_day["version"], f"{role}, trained on data up to {last.date()}", is_current)
        note = f"; {on_day['version']} ({role}) was trained on data up to {last.date()}"
    what_if = frame["status_reason"].fillna("").astype(str).str.startswith("what-if")  # 2_train.py --set, no --publish
    usable = frame["train_last"].notna() & (frame["train_last"] < day) & (
        (frame["status"] == "production") | ~(frame["metrics"].map(_lost_to_naive).astype(bool) | what_if))
    trained = frame.loc[usable].sort_values(["train_last", "created_at", "version"], kind="stable")
    if len(trained):
        best = trained.iloc[-1]
        return ModelChoice(best["version"], f"the newest model trained before {as_of} (data up to "
                                            f"{best['train_last'].date()}){note}",
                           best["version"] == current["version"])
    seen = current["train_last"]
    why = (f" (production {current['version']} was trained on data up to {seen.date()}, so it has seen the days "
           "it would forecast)" if pd.notna(seen) and seen >= day else "")
    return ModelChoice(None, f"no model trained before {as_of} exists{why}; run `2_train.py --as-of {as_of}` to "
                             "backfill with a model")


def production_on(registry: pd.DataFrame, day_end_utc: datetime) -> str | None:
    """The version that was production when a local day ended (`read_registry` rows; `day_end_utc` naive UTC).

    The one promoted last before then; when no promotion time is recorded, the current production; else None.
    """
    promoted_at = pd.to_datetime(registry["promoted_at"])
    promoted = registry.loc[promoted_at.notna() & (promoted_at < pd.Timestamp(day_end_utc))]
    if len(promoted):
        return promoted.assign(_at=promoted_at).sort_values(["_at", "version"], kind="stable")["version"].iloc[-1]
    current = registry.loc[(registry["status"] == "production") & promoted_at.isna()]
    return current["version"].iloc[0] if len(current) else None


def _lost_to_naive(metrics: object) -> bool:
    """True when a registry row's own backtest (metrics JSON) scored the candidate no better than seasonal naive."""
    try:
        overall = (json.loads(metrics) if isinstance(metrics, str) else metrics or {}).get("overall")
    except (ValueError, AttributeError):
        return False
    if not isinstance(overall, dict):
        return False  # nothing recorded: not known to have lost
    cand, naive = ((overall.get(m) or {}).get("wmape") for m in ("candidate", "seasonal_naive"))
    return cand is None or (naive is not None and not cand < naive)


def day_end_utc(as_of: date, timezone: str) -> datetime:
    """The end of the local day `as_of` (midnight after it) in naive UTC."""
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(timezone))
    return end.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def load_for(engine: Engine, cfg: Config, as_of: date) -> tuple[str, QuantileForecaster, str]:
    """(version, model, why it was chosen) of the model a forecast for `as_of` may use (`choose_model`).

    ModelError, in a planner's words, when no model may or the chosen one's files fail verification; a model
    whose files say it was trained on data from `as_of` on is refused too.
    """
    with engine.connect() as conn:
        registry = read_registry(conn)
    end = day_end_utc(as_of, cfg.timezone)
    # The nightly run needs one version's window (production's); the others' files are read only when it fails.
    on_day = production_on(registry, end)
    frame = registry.merge(training_windows(cfg, registry.loc[registry["version"] == on_day]), on="version", how="left")
    choice = choose_model(frame, as_of, end)
    if on_day is None or choice.version != on_day:
        frame = registry.merge(training_windows(cfg, registry), on="version", how="left")
        choice = choose_model(frame, as_of, end)
    if choice.version is None:
        raise ModelError(choice.why)
    row = _decode(frame.loc[frame["version"] == choice.version].iloc[0].to_dict())
    try:
        model = load_version(cfg, row)
    except ModelError as exc:
        what = "production model" if choice.is_production else f"model {choice.version} ({choice.why})"
        raise ModelError(f"{what} not usable: {exc}") from None
    if pd.Timestamp(model.train_end_) >= pd.Timestamp(as_of):
        raise ModelError(f"model {choice.version} was trained on data up to {model.train_end_}, not before {as_of}: "
                         f"it has seen the days it would forecast; run `2_train.py --as-of {as_of}`")
    return choice.version, model, choice.why


# --- listing ---------------------------------------------------------------------------------------------
