"""A fitted QuantileForecaster on disk: one LightGBM text model per quantile and `meta.json` (everything else).

Text, not pickles: a model folder can be read, diffed and verified (model_registry stores every file's sha256), and
loads on another machine with the same LightGBM. Format versions: 1 no adjustments, 2 conformal band factors and the
seasonal level's shape, 3 the ensemble's linear member and weights (older models load as they were trained).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common import ensemble
from common.calibration import NO_ADJUSTMENT
from common.errors import ModelError
from common.forecast_frame import quantile_column
from common.seasonality import SeasonalShape

META_FILE = "meta.json"
FORMAT_VERSION = 3


def write_model(model: Any, directory: Path) -> list[Path]:
    """Write `model`'s files into `directory`; return the paths (the boosters first, meta.json last)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for q, booster in model.models_.items():
        path = directory / f"model_{quantile_column(q)}.txt"
        path.write_bytes(booster.model_to_string().encode("utf-8"))
        paths.append(path)
    linear = getattr(model, "linear_", None)
    meta = {
        "format_version": FORMAT_VERSION,
        "init": model.init_params(),
        "seasonal_shape": None if model.shape_ is None else model.shape_.to_dict(),
        "adjustments": model.adjustments_,
        "linear_member": None if linear is None else linear.to_dict(),
        "feature_names": model.feature_names_, "categories": model.categories_,
        "lightgbm_params": model.lightgbm_params_, "lookback_days": model.lookback_,
        "n_train_rows": model.n_train_rows_, "train_end": model.train_end_,
        "model_files": {quantile_column(q): p.name for q, p in zip(model.models_, paths)},
    }
    meta_path = directory / META_FILE
    meta_path.write_bytes((json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return [*paths, meta_path]


def read_model(cls: type, directory: Path) -> Any:
    """A fitted `cls` (QuantileForecaster) from the files `write_model` wrote; ModelError if one is missing/unreadable."""
    import lightgbm as lgb  # on use: a step's --help must not wait for LightGBM to load

    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        model = cls(**{"level": "window", **meta["init"]})  # models from before the seasonal level
        model.quantiles_ = tuple(float(q) for q in meta["init"]["quantiles"])
        model.models_ = {
            q: lgb.Booster(model_str=(directory / meta["model_files"][quantile_column(q)]).read_text("utf-8"))
            for q in model.quantiles_
        }
        shape = meta.get("seasonal_shape")  # format 2 models before the seasonal level had none
        model.shape_ = None if shape is None else SeasonalShape.from_dict(shape)
        linear = meta.get("linear_member")  # format 3
        model.linear_ = None if linear is None else ensemble.LinearMember.from_dict(linear)
    except (OSError, KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as exc:
        raise ModelError(f"cannot load model from {directory}: {exc}") from exc
    model.feature_names_ = list(meta["feature_names"])
    model.categories_ = list(meta["categories"])
    model.lookback_ = int(meta["lookback_days"])
    model.lightgbm_params_ = meta["lightgbm_params"]
    model.n_train_rows_ = int(meta["n_train_rows"])
    model.train_end_ = meta["train_end"]
    model.adjustments_ = meta.get("adjustments") or NO_ADJUSTMENT  # format 1 models had none
    if any(m.feature_name() != model.feature_names_ for m in model.models_.values()):
        raise ModelError(f"cannot load model from {directory}: model files and meta.json disagree on features")
    return model
