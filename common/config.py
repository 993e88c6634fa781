"""Load and validate `config.yaml`: one typed object, errors that name the key.

Every setting lives in the YAML file (documented inline there); its keys, types and ranges are the models in
`common/config_schema.py` and `common/config_source.py`. Loading refuses a key given twice, applies `--set
key.path=value` overrides from the CLI, validates (unknown keys, types, ranges), turns pydantic's error into one line
naming the key (with `did you mean` for typos), and runs the checks that need other modules (opening hours,
holidays). The config file's folder becomes `base_dir`, against which relative paths resolve (so cron can run from
anywhere); env `WFM_DB_URL` overrides `database.url`. Secrets never sit in the file: only the *name* of the
environment variable that holds them (`database.password_env`, `report.smtp.password_env`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from common.config_schema import SAFE_NAME, Config
from common.config_source import KeyPathError
from common.errors import ConfigError


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: use KEY.PATH=VALUE, e.g. --set rules.interval_minutes=15")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _apply_override(data: dict, keys: list[str], value: Any, item: str) -> None:
    node = data
    for k in keys[:-1]:
        if not isinstance(node.setdefault(k, {}), dict):
            raise ConfigError(f"--set {item!r}: {k} is not a section")
        node = node[k]
    node[keys[-1]] = value


def _format_validation_error(name: str, exc: ValidationError, raw: dict) -> str:
    err = exc.errors(include_url=False)[0]
    loc = tuple(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-union")))
    # A union like `str | list | TimestampSpec` reports one error per branch: keep the one that is not about the type.
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, KeyPathError):
        prefix = loc[:1] if loc and loc[0] in ("source", "daily_history") else ()
        full = ".".join(("source", *ctx_err.loc) if not prefix else (*prefix, *ctx_err.loc))
        close = difflib.get_close_matches(str(ctx_err.loc[-1]), list(ctx_err.choices), n=1)
        hint = f"; did you mean {close[0]}?" if close else (
            f" (known: {', '.join(ctx_err.choices)})" if ctx_err.choices else "")
        return f"{name}: {full}: {ctx_err.msg}{hint}"
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(Config, loc[:-1])
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"; did you mean {'.'.join((*loc[:-1], close[0]))}?" if close else (
            f"; known keys here: {', '.join(k for k in known if k != 'base_dir')}" if known else "")
        return f"{name}: {key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{name}: {key}: required key is missing"
    value = _value_at(raw, loc)
    # A value given where the *name* of a secret's variable belongs may be the secret itself, and a URL may hold a
    # token or password (a chat webhook's path): never echoed.
    shown = f" (got {value!r})" if value is not _MISSING and not key.endswith(("_env", "url")) else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"{name}: {key}: {msg}{shown}"


_MISSING = object()


def _value_at(data: Any, loc: tuple) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping: plain YAML keeps the last one and silently
    drops the first (e.g. a second `rules:` section would discard the whole first one)."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201 - PyYAML's signature
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (also on line {seen[key] + 1}); the first one would be "
                    "silently ignored: keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read, override and validate the config file; raise ConfigError naming the key on any problem."""
    path = Path(path or os.environ.get("WFM_CONFIG") or "config.yaml")
    name = path.name
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; pass --config PATH or set WFM_CONFIG")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "'\\t'" in problem:
            problem += " (YAML indents with spaces, never tabs)"
        raise ConfigError(f"{path}:{where}: YAML syntax error: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (database:, source:, ...)")
    for item in overrides or []:
        keys, value = _parse_override(item)
        _apply_override(raw, keys, value, item)
    if "base_dir" in raw:
        raise ConfigError(f"{name}: base_dir: unknown key")
    try:
        cfg = Config.model_validate({**raw, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(name, exc, raw)) from None
    _check_rules(cfg, name)
    return cfg


def _check_rules(cfg: Config, name: str) -> None:
    """Checks that need other modules (opening hours, holidays): done at load so a bad config fails before any work."""
    from common.day_shape import parse_default_shape
    from common.opening_hours import parse_opening_hours

    try:
        hours = parse_opening_hours(cfg.rules.opening_hours.model_dump(), key="rules.opening_hours")
        parse_default_shape(cfg.intraday.default_shape, hours, cfg.rules.interval_minutes)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    for queue in cfg.rules.opening_hours.queues:
        if queue in cfg.rules.queue_aliases:
            current = cfg.rules.queue_aliases[queue]
            raise ConfigError(f"{name}: rules.opening_hours.queues.{queue}: {queue!r} is renamed to {current!r} by "
                              f"rules.queue_aliases; put its hours under {current!r}")
    country = cfg.rules.holidays.country
    if country:
        import holidays

        try:
            holidays.country_holidays(country, subdiv=cfg.rules.holidays.subdivision, years=[2000])
        except NotImplementedError:
            raise ConfigError(f"{name}: rules.holidays.country: {country!r} is not a country code the holidays package knows "
                              "(ISO 3166-1 alpha-2, e.g. SE, US)") from None
        except Exception as exc:  # holidays raises NotImplementedError or ValueError-like errors for subdivisions
            raise ConfigError(f"{name}: rules.holidays.subdivision: {cfg.rules.holidays.subdivision!r}: {exc}") from None


def safe_identifier(value: str, key: str) -> str:
    """A table or column name taken from config: letters, digits, underscore only (no SQL can ride in on it)."""
    if not SAFE_NAME.match(value):
        raise ConfigError(f"{key}: {value!r} is not a plain SQL identifier (letters, digits, _ ; max 63 chars)")
    return value
