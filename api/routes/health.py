"""Liveness, readiness (database and broker reachable), TimescaleDB job health and Prometheus metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.metrics import TimescaleJobsCollector, jobs_exposition
from pisman.jobs import JobHealth, list_jobs_async
from pisman.logs import log_event

log = logging.getLogger(__name__)
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
    """Request counts and latency, and TimescaleDB job health read at scrape time (bounded by
    CHECK_TIMEOUT_S; a failed read is pisman_timescaledb_jobs_check_success 0, never a failed
    scrape), in the Prometheus text format."""
    try:
        collector = TimescaleJobsCollector(await fetch_jobs(request), ok=True)
    except Exception as exc:  # the scrape must not fail with the database
        log_event(log, logging.WARNING, "jobs_check_failed", error=_one_line(exc))
        collector = TimescaleJobsCollector(None, ok=False)
    return Response(
        generate_latest(request.app.state.metrics.registry) + jobs_exposition(collector),
        media_type=CONTENT_TYPE_LATEST,
    )


class JobState(BaseModel):
    """One TimescaleDB background job (a refresh or compression policy, or TimescaleDB's own)."""

    job_id: int
    proc: str
    hypertable: str | None
    scheduled: bool
    failing: bool
    last_run_status: str | None
    last_successful_finish: datetime | None
    total_runs: int
    total_failures: int
    consecutive_failures: int
    next_start: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    overdue: bool


class JobsHealth(BaseModel):
    """TimescaleDB job health. `degraded`: some job's last run failed, or a scheduled job was not
    started over an hour after it was due (the API still serves)."""

    status: Literal["ok", "degraded", "not_applicable", "unknown"]
    degraded: bool
    message: str
    failing: int
    overdue: int
    jobs: list[JobState]


async def fetch_jobs(request: Request) -> list[JobHealth] | None:
    """The jobs' health within CHECK_TIMEOUT_S; None on plain PostgreSQL. Raises on any failure."""
    async with asyncio.timeout(CHECK_TIMEOUT_S):
        async with request.app.state.light_pool.connection() as conn:
            return await list_jobs_async(conn)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".strip().rstrip(":")


@router.get(
    "/healthz/jobs",
    summary="TimescaleDB background jobs: failing policies (degraded), not readiness",
    response_model=JobsHealth,
    responses={503: {"model": JobsHealth, "description": "the jobs could not be read"}},
)
async def jobs_health(request: Request) -> JSONResponse:
    """200 with `degraded: true` and the failing jobs when a refresh or compression policy's last
    run failed, or a scheduled job was not started over an hour after it was due: the API keeps serving (readiness is /readyz), but late data and compression wait
    for those jobs. `not_applicable` on plain PostgreSQL. 503 when the jobs cannot be read."""
    try:
        jobs = await fetch_jobs(request)
    except Exception as exc:  # whatever the database or TimescaleDB's views raise: reported
        body = JobsHealth(
            status="unknown",
            degraded=True,
            message=f"cannot read TimescaleDB jobs: {_one_line(exc)}",
            failing=0,
            overdue=0,
            jobs=[],
        )
        log_event(log, logging.WARNING, "jobs_check_failed", error=_one_line(exc))
        return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
    if jobs is None:
        body = JobsHealth(
            status="not_applicable",
            degraded=False,
            message="plain PostgreSQL: no TimescaleDB background jobs",
            failing=0,
            overdue=0,
            jobs=[],
        )
    else:
        failing = [j for j in jobs if j.failing]
        overdue = [j for j in jobs if j.overdue]
        problems = []
        if failing:
            problems.append(
                f"{len(failing)} failing: " + ", ".join(f"{j.job_id} {j.proc}" for j in failing)
            )
        if overdue:
            problems.append(
                f"{len(overdue)} overdue (not started by the scheduler): "
                + ", ".join(f"{j.job_id} {j.proc}" for j in overdue)
            )
        body = JobsHealth(
            status="degraded" if problems else "ok",
            degraded=bool(problems),
            message=(
                f"{len(jobs)} TimescaleDB jobs; " + "; ".join(problems)
                if problems
                else f"{len(jobs)} TimescaleDB jobs, none failing or overdue"
            ),
            failing=len(failing),
            overdue=len(overdue),
            jobs=[JobState(failing=j.failing, **_fields(j)) for j in jobs],
        )
    return JSONResponse(status_code=200, content=body.model_dump(mode="json"))


def _fields(job: JobHealth) -> dict[str, object]:
    return {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
