"""Error answers of the API: 422 for bad input, 503 with Retry-After when the database cannot answer."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from pisman.contract import ErrorAnswer
from pisman.logs import log_event

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "Basis data tidak dapat dihubungi / database unavailable, retry later"
DATABASE_BUSY = (
    "Basis data sedang sibuk / database busy: no connection came free in time, retry later"
)
QUERY_TIMEOUT = (
    "Kueri terlalu lama / query took longer than {seconds:g} s and was stopped; "
    "ask for a shorter range or retry later"
)
# Seconds a client should wait: a restarting database is usually back within a few seconds,
# an overlong query will not get shorter soon.
RETRY_UNAVAILABLE_S = 5
RETRY_TIMEOUT_S = 30

# What every route may answer besides success, each with the body {"detail": "..."}: declared on
# the routers so the schema says so (FastAPI's own 422 schema, a list of errors, is not ours).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorAnswer, "description": "Missing, unknown or revoked API key."},
    403: {"model": ErrorAnswer, "description": "The key's role or city does not allow this."},
    404: {"model": ErrorAnswer, "description": "Unknown city (or the item asked for)."},
    422: {"model": ErrorAnswer, "description": "Bad input; `detail` says what to fix."},
    429: {"model": ErrorAnswer, "description": "Too many requests (see Retry-After)."},
    503: {
        "model": ErrorAnswer,
        "description": "Database unavailable or too slow (see Retry-After).",
    },
}


def describe_validation(exc: RequestValidationError) -> str:
    """One line naming each bad field and what is wrong with it."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _unavailable(detail: str, retry_after_s: int) -> JSONResponse:
    return JSONResponse(
        status_code=503, content={"detail": detail}, headers={"Retry-After": str(retry_after_s)}
    )


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": describe_validation(exc)})

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def query_timeout(request: Request, exc: psycopg.errors.QueryCanceled) -> JSONResponse:
        seconds = request.app.state.settings.API_STATEMENT_TIMEOUT_S
        log_event(log, logging.WARNING, "api_query_timeout", path=request.url.path)
        return _unavailable(QUERY_TIMEOUT.format(seconds=seconds), RETRY_TIMEOUT_S)

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        # Either every connection is busy or none can be opened: tell which when we can.
        stats = request.app.state.pool.get_stats()
        busy = stats.get("pool_size", 0) > 0 and stats.get("pool_available", 0) == 0
        log_event(log, logging.WARNING, "api_pool_timeout", path=request.url.path, busy=busy)
        return _unavailable(DATABASE_BUSY if busy else DATABASE_UNAVAILABLE, RETRY_UNAVAILABLE_S)

    # A connection lost mid-request (server restarted or crashed) or none to be had.
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    # The server ended the session itself (class 25, not an OperationalError).
    @app.exception_handler(psycopg.errors.IdleInTransactionSessionTimeout)
    async def database_unavailable(request: Request, exc: psycopg.Error) -> JSONResponse:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log_event(
            log, logging.WARNING, "api_database_unavailable", path=request.url.path, reason=reason
        )
        return _unavailable(DATABASE_UNAVAILABLE, RETRY_UNAVAILABLE_S)
