"""The FastAPI application: lifespan (pools, heavy gate), error answers, headers, limits, routers."""

from __future__ import annotations

import functools
import gc
import importlib.resources
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import errors
from api.deps import RateLimited
from api.limits import HeavyGate, RateLimiter
from api.metrics import ApiMetrics
from api.routes import (
    admin,
    alerts,
    auth,
    bins,
    collection,
    devices,
    districts,
    exports,
    forecast,
    health,
    meta,
    progress,
    reports,
    sites,
    tonnage,
)
from api.security import SecurityHeaders, with_docs_csp
from pisman import __version__
from pisman.db import make_async_pool
from pisman.logs import log_event
from pisman.settings import Settings, get_settings

log = logging.getLogger(__name__)
# Connections beyond the heavy-query bound, for every other request.
SPARE_CONNECTIONS = 4
GIL_SWITCH_INTERVAL_S = 0.001
GC_THRESHOLDS = (20_000, 20, 100)
# Swagger UI as fastapi-offline packages it (pinned in pyproject.toml): the docs page loads
# nothing from outside, so it works on a city network without internet. No /redoc: the packaged
# ReDoc fetches its logo from its vendor's CDN and needs inline styles.
DOCS_ASSETS = importlib.resources.files("fastapi_offline") / "static"
DOCS_ASSETS_URL = "/static/docs"

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
* 429 (with `Retry-After`): too many requests for the key, or too many heavy queries at once.
* 503 (with `Retry-After`): the database cannot be reached, or a query ran past the statement timeout.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the connection pools and the heavy-query gate for the app's life."""
    settings: Settings = app.state.settings
    # Heavy requests sum and encode in worker threads; with a 1 ms GIL switch interval (5 ms by
    # default) the event loop gets the interpreter back sooner for health checks and labels.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # A long tonnage answer allocates ~10^5 objects; with the default thresholds (700, 10, 10)
    # the survivors set off full collections of 170-590 ms (measured under bench/api_flood.py)
    # that stop every thread. Rarer young collections, and full ones only after 100 of them.
    gc.set_threshold(*GC_THRESHOLDS)
    timeouts = functools.partial(
        make_async_pool,
        timeout_s=settings.API_POOL_TIMEOUT_S,
        statement_timeout_s=settings.API_STATEMENT_TIMEOUT_S,
    )
    # Heavy requests can hold at most API_MAX_HEAVY_QUERIES connections: the rest stay free.
    pool = timeouts(
        settings.DATABASE_URL,
        min_size=1,
        max_size=settings.API_MAX_HEAVY_QUERIES + SPARE_CONNECTIONS,
    )
    light_pool = timeouts(settings.DATABASE_URL, min_size=1, max_size=2, name="pisman-api-light")
    await pool.open(wait=False)
    await light_pool.open(wait=False)
    app.state.pool = pool
    app.state.light_pool = light_pool
    app.state.heavy_gate = HeavyGate(settings.API_MAX_HEAVY_QUERIES, settings.API_HEAVY_QUEUE_S)
    log_event(log, logging.INFO, "api_started", version=__version__)
    try:
        yield
    finally:
        await light_pool.close()
        await pool.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application (the pool opens when the lifespan starts); settings default to the environment."""
    app = FastAPI(
        title="Kang PisMan tracker API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Keys go in a header, never through OAuth2: no redirect page to serve.
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings = settings or get_settings()
    app.state.rate_limiter = RateLimiter(settings.API_RATE_LIMIT_PER_MIN)
    metrics = ApiMetrics()
    app.state.metrics = metrics
    app.middleware("http")(metrics.middleware)
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    install_docs(app)

    app.include_router(health.router)
    for module in (
        tonnage,
        progress,
        meta,
        sites,
        devices,
        bins,
        alerts,
        exports,
        reports,
        admin,
        forecast,
        collection,
        auth,
        districts,
    ):
        app.include_router(module.router, dependencies=[RateLimited])
    return app


def install_docs(app: FastAPI) -> None:
    """Serve /docs (Swagger UI) with every asset from this server."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{DOCS_ASSETS_URL}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return with_docs_csp(
            get_swagger_ui_html(
                openapi_url=openapi_url(request),
                title=f"{app.title} - Swagger UI",
                swagger_js_url=asset(request, "swagger-ui-bundle.js"),
                swagger_css_url=asset(request, "swagger-ui.css"),
                swagger_favicon_url=asset(request, "favicon.png"),
                oauth2_redirect_url=None,
                # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )
