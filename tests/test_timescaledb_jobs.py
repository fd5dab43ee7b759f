"""Failing TimescaleDB background jobs are surfaced: GET /healthz/jobs, /metrics and `pisman jobs`.

TimescaleDB records a job's runs only when its scheduler runs it (a foreground `CALL run_job`
records nothing), and the test cluster's scheduler is kept to 2 workers and, on this machine's
PostgreSQL 15.20, fails every job at start (../shared/vendor/README.md). So the tests pause every
job, run the failing procedure in the foreground to get its real error, and write the records
the scheduler writes after a run (bgw_job_stat, bgw_job_stat_history) themselves.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pisman.settings import PROJECT_ROOT
from tests.support.api_seed import api_client

TIMESCALEDB_ONLY = pytest.mark.backend(
    "timescaledb", reason="background jobs exist only on TimescaleDB"
)
FAILING_PROC = """
CREATE PROCEDURE pisman_test_failing_job(job_id int, config jsonb) LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'deliberate failure of job %', job_id USING ERRCODE = 'P0001';
END $$
"""
# What TimescaleDB's scheduler writes when a run ends (ok or not).
RECORD_STAT = """
INSERT INTO _timescaledb_internal.bgw_job_stat AS s
  (job_id, last_start, last_finish, next_start, last_successful_finish, last_run_success,
   total_runs, total_duration, total_duration_failures, total_successes, total_failures,
   total_crashes, consecutive_failures, consecutive_crashes, flags)
VALUES (%(job)s, clock_timestamp(), clock_timestamp(), clock_timestamp() + INTERVAL '1 hour',
        CASE WHEN %(ok)s THEN clock_timestamp() ELSE '-infinity' END, %(ok)s, 1,
        INTERVAL '1 ms', CASE WHEN %(ok)s THEN INTERVAL '0' ELSE INTERVAL '1 ms' END,
        %(ok)s::int, (NOT %(ok)s)::int, 0, (NOT %(ok)s)::int, 0, 0)
ON CONFLICT (job_id) DO UPDATE SET
  last_start = clock_timestamp(), last_finish = clock_timestamp(),
  next_start = clock_timestamp() + INTERVAL '1 hour',
  last_successful_finish = CASE WHEN %(ok)s THEN clock_timestamp() ELSE s.last_successful_finish END,
  last_run_success = %(ok)s, total_runs = s.total_runs + 1,
  total_successes = s.total_successes + %(ok)s::int,
  total_failures = s.total_failures + (NOT %(ok)s)::int,
  consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE s.consecutive_failures + 1 END
"""
RECORD_HISTORY = """
INSERT INTO _timescaledb_internal.bgw_job_stat_history
  (job_id, pid, execution_start, execution_finish, succeeded, data)
VALUES (%(job)s, pg_backend_pid(), clock_timestamp(), clock_timestamp(), %(ok)s,
        jsonb_build_object(
          'job', jsonb_build_object('proc_schema', 'public', 'proc_name', 'pisman_test_failing_job'),
          'error_data', CASE WHEN %(ok)s THEN NULL
                        ELSE jsonb_build_object('message', %(message)s::text, 'sqlerrcode', %(code)s::text) END))
"""


def _pause_all_jobs(conn: psycopg.Connection) -> list[int]:
    """Pause every job and forget any run the scheduler may have tried meanwhile."""
    ids = [r[0] for r in conn.execute("SELECT job_id FROM timescaledb_information.jobs")]
    for job_id in ids:
        conn.execute("SELECT alter_job(%s, scheduled => false)", (job_id,))
    conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat")
    conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat_history")
    conn.commit()
    return ids


def _run_failing_job(conn: psycopg.Connection, job_id: int) -> None:
    """Run the job in the foreground, then record its real failure as the scheduler does."""
    conn.autocommit = True
    try:
        with pytest.raises(psycopg.errors.RaiseException) as raised:
            conn.execute("CALL run_job(%s)", (job_id,))
    finally:
        conn.autocommit = False
    error = raised.value.diag
    params = {"job": job_id, "ok": False, "message": error.message_primary, "code": error.sqlstate}
    conn.execute(RECORD_STAT, params)
    conn.execute(RECORD_HISTORY, params)
    conn.commit()


def _record_success(conn: psycopg.Connection, job_id: int) -> None:
    params = {"job": job_id, "ok": True, "message": None, "code": None}
    conn.execute(RECORD_STAT, params)
    conn.execute(RECORD_HISTORY, params)
    conn.commit()


def _series(exposition: str, name: str) -> dict[str, float]:
    """job_id -> value of one metric (the check gauge under '')."""
    return {
        sample.labels.get("job_id", ""): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


def _pisman_jobs(db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pisman", "jobs"],
        env={"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )


@contextmanager
def _failing_job(db_url: str) -> Iterator[int]:
    with psycopg.connect(db_url) as conn:
        _pause_all_jobs(conn)
        conn.execute(FAILING_PROC)
        row = conn.execute(
            "SELECT add_job('pisman_test_failing_job', INTERVAL '1 hour', scheduled => false)"
        ).fetchone()
        conn.commit()
        assert row is not None
        job_id = int(row[0])
        _run_failing_job(conn, job_id)
        _run_failing_job(conn, job_id)
        yield job_id


@TIMESCALEDB_ONLY
def test_a_failing_job_is_reported_by_the_endpoint_the_metrics_and_the_cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _failing_job(db_url) as job_id, api_client(db_url, monkeypatch) as (client, _):
        health = client.get("/healthz/jobs")
        ready = client.get("/readyz")
        exposition = client.get("/metrics").text
        cli = _pisman_jobs(db_url)

        with psycopg.connect(db_url) as conn:
            _record_success(conn, job_id)
        healed = client.get("/healthz/jobs").json()
        healed_metrics = client.get("/metrics").text

    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded" and body["degraded"] is True and body["failing"] == 1
    failing = [j for j in body["jobs"] if j["failing"]]
    assert [j["job_id"] for j in failing] == [job_id]
    job = failing[0]
    assert job["proc"] == "public.pisman_test_failing_job"
    assert job["last_run_status"] == "Failed"
    assert job["total_failures"] == 2 and job["consecutive_failures"] == 2
    assert job["last_successful_finish"] is None
    assert job["last_error"] == f"deliberate failure of job {job_id}"
    policies = {j["proc"] for j in body["jobs"] if not j["failing"]}
    assert "_timescaledb_functions.policy_refresh_continuous_aggregate" in policies
    assert str(job_id) in body["message"]
    # Readiness is about serving: failing jobs do not take the API out of the load balancer
    # (the broker is unreachable in this client, so /readyz is 503 for that reason only).
    assert "jobs" not in ready.json()["checks"]

    assert _series(exposition, "pisman_timescaledb_jobs_check_success") == {"": 1.0}
    failing_series = _series(exposition, "pisman_timescaledb_job_failing")
    assert failing_series[str(job_id)] == 1.0
    assert sum(failing_series.values()) == 1.0 and len(failing_series) >= 6
    assert _series(exposition, "pisman_timescaledb_job_failures_total")[str(job_id)] == 2.0
    assert _series(exposition, "pisman_timescaledb_job_consecutive_failures")[str(job_id)] == 2.0
    last_success = _series(exposition, "pisman_timescaledb_job_last_success_timestamp_seconds")
    assert last_success[str(job_id)] == 0.0

    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert f"deliberate failure of job {job_id}" in cli.stdout and "FAILING" in cli.stderr

    assert healed["status"] == "ok" and healed["failing"] == 0
    healed_job = next(j for j in healed["jobs"] if j["job_id"] == job_id)
    assert healed_job["consecutive_failures"] == 0 and healed_job["total_failures"] == 2
    assert healed_job["last_successful_finish"] is not None
    assert _series(healed_metrics, "pisman_timescaledb_job_failing")[str(job_id)] == 0.0
    assert (
        _series(healed_metrics, "pisman_timescaledb_job_last_success_timestamp_seconds")[
            str(job_id)
        ]
        > 1.7e9
    )


@TIMESCALEDB_ONLY
def test_a_database_whose_jobs_have_not_failed_reports_none(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(db_url) as conn:
        ids = _pause_all_jobs(conn)
    with api_client(db_url, monkeypatch) as (client, _):
        body = client.get("/healthz/jobs").json()
        exposition = client.get("/metrics").text
    assert body["status"] == "ok" and body["degraded"] is False and body["failing"] == 0
    assert body["overdue"] == 0
    assert sorted(j["job_id"] for j in body["jobs"]) == sorted(ids)
    assert len(ids) >= 5  # 3 refresh and 2 compression policies, plus TimescaleDB's own
    assert set(_series(exposition, "pisman_timescaledb_job_failing").values()) == {0.0}
    assert _pisman_jobs(db_url).returncode == 0


@TIMESCALEDB_ONLY
def test_a_job_the_scheduler_no_longer_starts_is_reported_overdue(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler stopped (as when it is out of background workers): nothing fails, nothing
    runs. A scheduled job due three hours ago is overdue."""
    with psycopg.connect(db_url) as conn:
        _pause_all_jobs(conn)
        conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
        row = conn.execute(
            "SELECT min(job_id) FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchone()
        assert row is not None and row[0] is not None
        job_id = int(row[0])
        conn.execute("SELECT alter_job(%s, scheduled => true)", (job_id,))
        _record_success(conn, job_id)
        conn.execute(
            "UPDATE _timescaledb_internal.bgw_job_stat SET next_start = now() - INTERVAL '3 hours'"
            " WHERE job_id = %s",
            (job_id,),
        )
        conn.commit()
    with api_client(db_url, monkeypatch) as (client, _):
        body = client.get("/healthz/jobs").json()
        exposition = client.get("/metrics").text
    cli = _pisman_jobs(db_url)
    assert body["status"] == "degraded" and body["overdue"] == 1 and body["failing"] == 0
    assert [j["job_id"] for j in body["jobs"] if j["overdue"]] == [job_id]
    assert "overdue" in body["message"] and str(job_id) in body["message"]
    overdue = _series(exposition, "pisman_timescaledb_job_overdue")
    assert overdue[str(job_id)] == 1.0 and sum(overdue.values()) == 1.0
    assert cli.returncode == 1 and "OVERDUE" in cli.stdout


@pytest.mark.backend("postgresql", reason="plain PostgreSQL has no background jobs")
def test_plain_postgresql_says_not_applicable_and_exposes_no_job_series(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(db_url, monkeypatch) as (client, _):
        health = client.get("/healthz/jobs")
        exposition = client.get("/metrics").text
    assert health.status_code == 200
    assert health.json()["status"] == "not_applicable" and health.json()["degraded"] is False
    assert "pisman_timescaledb" not in exposition
    assert "pisman_api_requests_total" in exposition
    cli = _pisman_jobs(db_url)
    assert cli.returncode == 0 and "not applicable" in cli.stdout


@TIMESCALEDB_ONLY
def test_broken_job_views_are_a_503_and_a_zero_gauge_never_a_500(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(db_url, monkeypatch) as (client, _):
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ALTER VIEW timescaledb_information.job_errors RENAME TO job_errors_x")
            try:
                health = client.get("/healthz/jobs")
                metrics = client.get("/metrics")
            finally:
                conn.execute("ALTER VIEW timescaledb_information.job_errors_x RENAME TO job_errors")
        after = client.get("/healthz/jobs")
    assert health.status_code == 503
    body: dict[str, Any] = health.json()
    assert body["status"] == "unknown" and "job_errors" in body["message"]
    assert metrics.status_code == 200
    assert _series(metrics.text, "pisman_timescaledb_jobs_check_success") == {"": 0.0}
    assert "pisman_timescaledb_job_failing" not in metrics.text
    assert "pisman_api_requests_total" in metrics.text
    assert after.status_code == 200


def test_unreachable_database_is_a_503_and_the_scrape_still_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with api_client_without_database(monkeypatch) as client:
        health = client.get("/healthz/jobs")
        metrics = client.get("/metrics")
    assert health.status_code == 503 and health.json()["status"] == "unknown"
    assert metrics.status_code == 200
    assert _series(metrics.text, "pisman_timescaledb_jobs_check_success") == {"": 0.0}


@contextmanager
def api_client_without_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The API with a database that cannot be reached (nothing listens on port 1)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from pisman.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/pisman")
    monkeypatch.setenv("MQTT_URL", "mqtt://127.0.0.1:1")
    monkeypatch.setenv("API_POOL_TIMEOUT_S", "1")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        yield client
