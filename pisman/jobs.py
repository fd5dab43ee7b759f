"""Health of TimescaleDB's background jobs (refresh and compression policies), so a failing one is seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# Whether there are TimescaleDB jobs at all: plain PostgreSQL has none ("not applicable").
APPLICABLE_SQL = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
# One row per job, from TimescaleDB's public information views only. A job is failing when its
# last run failed; consecutive failures are the errors recorded since its last success (the
# history is kept a month by TimescaleDB's own retention job). A scheduled job is overdue when
# its next start passed more than OVERDUE_AFTER ago: the scheduler did not start it (it is not
# running, or out of background workers), which no failure records. A job that never ran has
# no next start recorded and cannot be judged overdue.
OVERDUE_AFTER = "1 hour"
JOBS_SQL = """
SELECT j.job_id,
       format('%%I.%%I', j.proc_schema, j.proc_name) AS proc,
       CASE WHEN j.hypertable_name IS NOT NULL
            THEN format('%%I.%%I', j.hypertable_schema, j.hypertable_name) END AS hypertable,
       j.scheduled,
       s.last_run_status,
       CASE WHEN s.last_successful_finish > '-infinity' THEN s.last_successful_finish END,
       coalesce(s.total_runs, 0),
       coalesce(s.total_failures, 0),
       (SELECT count(*) FROM timescaledb_information.job_errors e
        WHERE e.job_id = j.job_id
          AND e.start_time > coalesce(s.last_successful_finish, '-infinity')),
       s.next_start,
       last_error.err_message,
       last_error.start_time,
       coalesce(j.scheduled AND s.next_start < now() - %(overdue_after)s::interval, false)
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN LATERAL (
  SELECT e.err_message, e.start_time FROM timescaledb_information.job_errors e
  WHERE e.job_id = j.job_id ORDER BY e.start_time DESC LIMIT 1
) AS last_error ON true
ORDER BY j.job_id
"""
JOBS_PARAMS = {"overdue_after": OVERDUE_AFTER}
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class JobHealth:
    """One TimescaleDB job and how its runs went."""

    job_id: int
    proc: str
    hypertable: str | None
    scheduled: bool
    last_run_status: str | None  # 'Success', 'Failed', or None before the first run
    last_successful_finish: datetime | None
    total_runs: int
    total_failures: int
    consecutive_failures: int
    next_start: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    overdue: bool  # scheduled, and its next start passed over OVERDUE_AFTER ago

    @property
    def failing(self) -> bool:
        """Its last run failed (it stays failing until a run succeeds)."""
        return self.last_run_status == "Failed"

    @property
    def degraded(self) -> bool:
        """Failing or overdue: the job's work is not being done."""
        return self.failing or self.overdue


def _job(row: tuple[Any, ...]) -> JobHealth:
    error = row[10]
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    return JobHealth(
        job_id=int(row[0]),
        proc=str(row[1]),
        hypertable=row[2],
        scheduled=bool(row[3]),
        last_run_status=row[4],
        last_successful_finish=row[5],
        total_runs=int(row[6]),
        total_failures=int(row[7]),
        consecutive_failures=int(row[8]),
        next_start=row[9],
        last_error=error,
        last_error_at=row[11],
        overdue=bool(row[12]),
    )


def list_jobs(conn: psycopg.Connection) -> list[JobHealth] | None:
    """Every TimescaleDB job with its health; None when the database has no TimescaleDB."""
    row = conn.execute(APPLICABLE_SQL).fetchone()
    if not (row and row[0]):
        return None
    return [_job(r) for r in conn.execute(JOBS_SQL, JOBS_PARAMS).fetchall()]


async def list_jobs_async(conn: psycopg.AsyncConnection) -> list[JobHealth] | None:
    """list_jobs for the API's async connections."""
    cur = await conn.execute(APPLICABLE_SQL)
    row = await cur.fetchone()
    if not (row and row[0]):
        return None
    cur = await conn.execute(JOBS_SQL, JOBS_PARAMS)
    return [_job(r) for r in await cur.fetchall()]
