"""Prometheus metrics of one ingest process (own registry, so several can live in one test process)."""

from __future__ import annotations

from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ingest.writer import BatchOutcome

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class IngestMetrics:
    """Counters of messages and readings, batch latency and lag."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "pisman_ingest_messages_received", "MQTT messages received.", registry=r
        )
        self.received = Counter(
            "pisman_ingest_readings_received", "Readings received (good or bad).", registry=r
        )
        self.stored = Counter(
            "pisman_ingest_readings_stored", "Readings newly stored.", ["kind"], registry=r
        )
        self.duplicates = Counter(
            "pisman_ingest_readings_duplicate",
            "Readings already stored (same device, timestamp and sequence).",
            registry=r,
        )
        self.quarantined = Counter(
            "pisman_ingest_quarantined", "Payloads or readings sent to quarantine.", registry=r
        )
        self.reprocessed = Counter(
            "pisman_ingest_quarantine_reprocessed",
            "Quarantined payloads stored after a retry.",
            registry=r,
        )
        self.statuses = Counter(
            "pisman_ingest_status_messages", "Online/offline messages applied.", registry=r
        )
        self.commit_acks = Counter(
            "pisman_ingest_commit_acks",
            "Commit acknowledgements published to devices (one per device per batch).",
            registry=r,
        )
        self.db_errors = Counter(
            "pisman_ingest_database_errors", "Failed attempts to write a batch.", registry=r
        )
        self.batch_seconds = Histogram(
            "pisman_ingest_batch_seconds",
            "Database time per committed batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_readings = Histogram(
            "pisman_ingest_batch_readings",
            "Readings per committed batch.",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.lag_seconds = Histogram(
            "pisman_ingest_lag_seconds",
            "From receipt of a batch's oldest message to its commit.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.last_commit = Gauge(
            "pisman_ingest_last_commit_timestamp_seconds",
            "Unix time of the last committed batch.",
            registry=r,
        )
        self.pending = Gauge(
            "pisman_ingest_pending_messages",
            "Messages received but not yet committed and acknowledged.",
            registry=r,
        )
        # For alerting: a stalled commit shows nowhere else while the outage lasts.
        self.broker_connected = Gauge(
            "pisman_ingest_broker_connected",
            "1 while ingest is connected to the broker, else 0.",
            registry=r,
        )
        self.database_connected = Gauge(
            "pisman_ingest_database_connected",
            "1 while ingest holds a working database connection (tried every few seconds), else 0.",
            registry=r,
        )

    def observe_batch(
        self, outcome: BatchOutcome, *, readings: int, lag_s: float, now: float
    ) -> None:
        """Record one committed batch."""
        self.stored.labels("weighing").inc(outcome.stored_weighings)
        self.stored.labels("bin").inc(outcome.stored_bins)
        self.duplicates.inc(outcome.duplicates)
        self.quarantined.inc(outcome.quarantined)
        self.statuses.inc(outcome.statuses)
        self.reprocessed.inc(outcome.reprocessed)
        self.batch_seconds.observe(outcome.seconds)
        self.batch_readings.observe(readings)
        self.lag_seconds.observe(lag_s)
        self.last_commit.set(now)

    def track_pending(self, depth: Callable[[], float]) -> None:
        """Report the queue depth from a callable at scrape time."""
        self.pending.set_function(depth)

    def track_connections(
        self, *, broker: Callable[[], bool], database: Callable[[], bool]
    ) -> None:
        """Report broker and database reachability from callables at scrape time."""
        self.broker_connected.set_function(lambda: float(broker()))
        self.database_connected.set_function(lambda: float(database()))

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose /metrics on addr:port (0: do not serve); loopback unless told otherwise."""
        self._server: WSGIServer | None = None
        if port:
            self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        """Stop serving /metrics."""
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
