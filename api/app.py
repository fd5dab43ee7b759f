"""The FastAPI application: lifespan (async pool), error shapes, metrics and the v1 routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.metrics import ApiMetrics
from api.routes import (
    admin,
    alerts,
    bins,
    devices,
    exports,
    health,
    meta,
    progress,
    reports,
    sites,
    tonnage,
)
from pisman import __version__
from pisman.db import make_async_pool
from pisman.logs import log_event
from pisman.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Tonnage for the Kang PisMan categories (reduce, separate, utilize, residual), progress
against the city's daily generation and targets, monthly exports for planners, sites,
devices, bins and alerts.

* Authenticate with `X-API-Key: <key>` (or `Authorization: Bearer <key>`); create keys with
  `pisman keys add --role viewer|planner|admin --name NAME`.
* Roles: **viewer** reads, **planner** also exports, **admin** does everything.
* Dates are local dates of the city's zone (Asia/Jakarta); `from` is inclusive, `to` exclusive.
* Masses are tonnes rounded to 3 decimals. `separate` overlaps the fates and is never added into totals.
* Bad input gets a 422 whose `detail` says what to fix.
"""


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the async connection pool for the app's life."""
    settings: Settings = app.state.settings
    pool = make_async_pool(settings.DATABASE_URL, min_size=1, max_size=8)
    await pool.open(wait=False)
    app.state.pool = pool
    log_event(log, logging.INFO, "api_started", version=__version__)
    try:
        yield
    finally:
        await pool.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application (the pool opens when the lifespan starts); settings default to the environment."""
    app = FastAPI(
        title="Kang PisMan tracker API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    metrics = ApiMetrics()
    app.state.metrics = metrics
    app.middleware("http")(metrics.middleware)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _describe_validation(exc)})

    app.include_router(health.router)
    for module in (tonnage, progress, meta, sites, devices, bins, alerts, exports, reports, admin):
        app.include_router(module.router)
    return app
