"""The read-only REST API over the gold tables: `wfm-api --config config.yaml` (or `python -m common.api ...`).

FastAPI app served by uvicorn. Every endpoint only reads (the database is opened read-only where the backend allows
it); every list is paged; every response names its time zone and units (`common.api_models`). API keys come from the
environment variable WFM_API_KEYS (comma-separated), sent as `X-API-Key: KEY` or `Authorization: Bearer KEY`; they
are compared in constant time and never logged. Without a key the server only starts on a loopback address.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

try:
    from fastapi import Depends, FastAPI, HTTPException, Request, Security
    from fastapi.responses import JSONResponse
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
except ModuleNotFoundError as missing:  # the api extra is optional: the nightly pipeline does not need it
    raise SystemExit(f"wfm-api: {missing.name} is not installed; install the api extra: "
                     "pip install \"wfm-forecast[api]\" (in a clone: .venv/bin/pip install \".[api]\")") from None
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from common import __version__
from common import api_models as m
from common import api_queries as q
from common.api_routes import add_routes
from common.redact import redact

log = logging.getLogger(__name__)

KEYS_ENV = "WFM_API_KEYS"
API_VERSION = "1.0.0"  # the REST contract's own version (docs/openapi.json), not the package's
STALE_AFTER_SECONDS = 36 * 3600  # a nightly run older than a night and a half: the nightly job has missed a night


def _digest(key: str) -> bytes:
    # Keys are compared as SHA-256 digests: equal lengths, so the comparison's time says nothing of a key's length.
    return hashlib.sha256(key.encode()).digest()


def api_keys(environ: dict | os._Environ = os.environ) -> tuple[bytes, ...]:
    """The configured keys (WFM_API_KEYS, comma-separated, blanks ignored) as digests; the keys are not kept."""
    return tuple(_digest(k.strip()) for k in environ.get(KEYS_ENV, "").split(",") if k.strip())


def key_matches(given: str, keys: tuple[bytes, ...]) -> bool:
    """Whether `given` is one of the keys `api_keys` read; every one is compared (no early exit), in constant time."""
    found = False
    given_digest = _digest(given)
    for key in keys:
        found |= hmac.compare_digest(given_digest, key)
    return found


def is_loopback(host: str) -> bool:
    """Whether binding `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="one of WFM_API_KEYS")
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <one of WFM_API_KEYS>")


def require_key(request: Request, key: Annotated[str | None, Security(_key_header)] = None,
                bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> None:
    """401 unless the request carries a configured key (no keys configured: the loopback-only server is open)."""
    keys = request.app.state.keys
    if not keys:
        return
    given = key if key is not None else (bearer.credentials if bearer is not None else None)
    if given is None or not key_matches(given, keys):
        raise HTTPException(401, "missing or wrong API key: send it as X-API-Key: KEY or Authorization: Bearer KEY",
                            headers={"WWW-Authenticate": "Bearer"})


def create_app(engine: Engine | None, tz: str = "UTC", interval_minutes: int = 15,
               keys: tuple[bytes, ...] = ()) -> FastAPI:
    """The app over `engine` (None: only to render the OpenAPI schema). `tz` names the local dates' time zone."""
    app = FastAPI(
        title="wfm-forecast API", version=API_VERSION,
        description="Read-only access to wfm-forecast's gold tables: forecasts, staffing, accuracy, alerts, runs. "
                    "Local dates and times are in the `timezone` each response names; `*_utc` times end in Z. "
                    f"Authenticate with `X-API-Key: KEY` or `Authorization: Bearer KEY` (keys from {KEYS_ENV}).",
        responses={401: {"model": m.ErrorBody, "description": "missing or wrong API key"}},
    )
    app.state.engine, app.state.tz, app.state.keys = engine, tz, keys
    app.state.interval_minutes = interval_minutes
    app.state.columns = q.ColumnCache()

    @app.exception_handler(SQLAlchemyError)
    def _database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # The driver's first line goes to the server's log, the password masked; the client learns what to do.
        url = engine.url.render_as_string(hide_password=False) if engine is not None else None
        reason = redact((str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0][:300], url)
        log.error("database error: %s: %s", type(exc).__name__, reason)
        return JSONResponse({"detail": "the database is unavailable or its schema is older than this version "
                                       "(run the nightly pipeline once); see the server log"}, status_code=503)

    @app.get("/v1/health", response_model=m.Health, tags=["runs"], summary="database reachable, last nightly run",
             responses={503: {"model": m.Health, "description": "database unreachable"}})
    def health() -> JSONResponse | dict:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        body = {"version": __version__, "timezone": tz, "now_utc": m.utc_iso(now)}
        try:
            with app.state.engine.connect() as conn:
                q.ping(conn)
                nightly = q.last_success(conn, q.NIGHTLY_LAST_STEP)
                forecast = q.last_success(conn, q.FORECAST_STEP)
        except SQLAlchemyError as exc:
            log.error("health: database unreachable (%s)", type(exc).__name__)
            return JSONResponse({**body, "status": "unavailable", "database": "unreachable"}, status_code=503)
        nightly_info, forecast_info = _run_info(nightly, now), _run_info(forecast, now)
        age = nightly_info["age_seconds"] if nightly_info else None
        status = "ok" if age is not None and age <= STALE_AFTER_SECONDS else "stale"
        return {**body, "status": status, "database": "reachable", "last_nightly_run": nightly_info,
                "last_forecast_run": forecast_info}

    add_routes(app, Depends(require_key))
    return app


def _run_info(run: dict | None, now: datetime) -> dict | None:
    if run is None:
        return None
    finished = run["finished_at"]
    return {"run_id": run["run_id"], "step": run["step"], "as_of": run["as_of"],
            "finished_at_utc": m.utc_iso(finished),
            "age_seconds": round((now - finished).total_seconds(), 1) if finished else None}


def openapi_text(app: FastAPI | None = None) -> str:
    """The app's OpenAPI schema as the committed docs/openapi.json holds it (sorted keys, 2-space indent)."""
    return json.dumps((app or create_app(None)).openapi(), indent=2, sort_keys=True) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="wfm-api", description="Serve the gold tables read-only over HTTP (JSON, OpenAPI at /docs). "
        f"API keys: environment variable {KEYS_ENV} (comma-separated); without one the server binds loopback only.")
    parser.add_argument("--config", help="config file (default: $WFM_CONFIG or config.yaml)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--write-openapi", metavar="PATH", type=Path,
                        help="write the OpenAPI schema to PATH (e.g. docs/openapi.json) and exit")
    parser.add_argument("--version", action="version", version=f"wfm-api (wfm-forecast {__version__})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.write_openapi:
        args.write_openapi.write_text(openapi_text(), encoding="utf-8")
        print(f"wfm-api: wrote {args.write_openapi}")
        return 0
    from common.config import load_config
    from common.db import make_read_only_engine
    from common.errors import PipelineError

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = api_keys()
    if not keys and not is_loopback(args.host):
        print(f"wfm-api: no API key configured ({KEYS_ENV} is empty) and --host {args.host} is not a loopback "
              f"address: set {KEYS_ENV}=KEY1,KEY2 or bind --host 127.0.0.1", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
        engine = make_read_only_engine(cfg.database_url)
    except PipelineError as exc:
        print(f"wfm-api: {exc}", file=sys.stderr)
        return exc.exit_code
    if not keys:
        log.warning("no API key configured (%s): serving without authentication on loopback %s only",
                    KEYS_ENV, args.host)
    import uvicorn

    app = create_app(engine, cfg.timezone, cfg.rules.interval_minutes, keys)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
