"""Liveness, readiness (database and broker reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


async def _database_ok(request: Request) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            async with request.app.state.light_pool.connection() as conn:
                await conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()


async def _broker_ok(request: Request) -> str | None:
    endpoint = request.app.state.settings.mqtt
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            _, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        writer.close()
        return None
    except (OSError, TimeoutError) as exc:
        return f"cannot reach {endpoint.host}:{endpoint.port}: {type(exc).__name__}"


@router.get("/readyz", summary="The database and the broker are reachable")
async def readyz(request: Request) -> JSONResponse:
    """200 when both answer; 503 with the failing checks otherwise."""
    db_error, broker_error = await asyncio.gather(_database_ok(request), _broker_ok(request))
    checks = {"database": db_error or "ok", "broker": broker_error or "ok"}
    ready = db_error is None and broker_error is None
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "not ready", "checks": checks},
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Request counts and latency in the Prometheus text format."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
