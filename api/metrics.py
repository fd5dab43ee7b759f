"""Prometheus metrics of the API: requests (a registry per app, so tests can build many apps) and
TimescaleDB job health read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pisman.jobs import JobHealth

# Labels of a job's series. Not "job": Prometheus gives that name to the scrape job.
JOB_LABELS = ("job_id", "proc", "hypertable")


class ApiMetrics:
    """Request counts and latency by route template and status."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pisman_api_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pisman_api_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Time each request; label by the matched route template, not the raw path."""
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        self.requests.labels(request.method, template, str(response.status_code)).inc()
        self.latency.labels(request.method, template).observe(time.perf_counter() - started)
        return response


class TimescaleJobsCollector(Collector):
    """One scrape's TimescaleDB job series (none on plain PostgreSQL, where `jobs` is None).

    `ok` False means the jobs could not be read this scrape: only the check gauge is exposed.
    """

    def __init__(self, jobs: Sequence[JobHealth] | None, *, ok: bool) -> None:
        self.jobs = jobs
        self.ok = ok

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The series, built from the snapshot taken for this scrape."""
        check = GaugeMetricFamily(
            "pisman_timescaledb_jobs_check_success",
            "1 when the API could read TimescaleDB's job health at this scrape, else 0",
        )
        if not self.ok:
            check.add_metric([], 0)
            yield check
            return
        if self.jobs is None:  # plain PostgreSQL: not applicable, no series at all
            return
        check.add_metric([], 1)
        yield check
        failing = GaugeMetricFamily(
            "pisman_timescaledb_job_failing",
            "1 when the job's last run failed (until a run succeeds)",
            labels=JOB_LABELS,
        )
        failures = CounterMetricFamily(
            "pisman_timescaledb_job_failures",
            "Failed runs of the job recorded by TimescaleDB",
            labels=JOB_LABELS,
        )
        consecutive = GaugeMetricFamily(
            "pisman_timescaledb_job_consecutive_failures",
            "Failed runs of the job since its last success",
            labels=JOB_LABELS,
        )
        overdue = GaugeMetricFamily(
            "pisman_timescaledb_job_overdue",
            "1 when the job is scheduled and was due over an hour ago but not started",
            labels=JOB_LABELS,
        )
        last_success = GaugeMetricFamily(
            "pisman_timescaledb_job_last_success_timestamp_seconds",
            "When the job last finished successfully (0: never)",
            labels=JOB_LABELS,
        )
        for job in self.jobs:
            labels = [str(job.job_id), job.proc, job.hypertable or ""]
            failing.add_metric(labels, 1 if job.failing else 0)
            overdue.add_metric(labels, 1 if job.overdue else 0)
            failures.add_metric(labels, job.total_failures)
            consecutive.add_metric(labels, job.consecutive_failures)
            finished = job.last_successful_finish
            last_success.add_metric(labels, finished.timestamp() if finished else 0)
        yield from (failing, overdue, failures, consecutive, last_success)


def jobs_exposition(collector: TimescaleJobsCollector) -> bytes:
    """The collector's series in the text format, to append to the app registry's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
