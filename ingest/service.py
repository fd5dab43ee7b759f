"""The ingest service: broker → validate → batch → commit → ack, until told to stop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import psycopg

from ingest.acks import build_acks
from ingest.client import Delivery, IngestClient
from ingest.metrics import IngestMetrics
from ingest.registry import Registry, RegistrySnapshot
from ingest.topics import is_ack_topic, subscription
from ingest.validate import Validated, now_utc, validate_message
from ingest.writer import BatchOutcome, Incoming, Writer
from pisman import db
from pisman.logs import log_event
from pisman.settings import Settings

log = logging.getLogger(__name__)

REGISTRY_MAX_AGE_S = 30.0
QUARANTINE_RETRY_EVERY_S = 3.0
IDLE_WAIT_S = 0.25
# While a batch is open and no message waits, look again after this long (adds at most this
# much latency to a batch; see IngestService._next).
COLLECT_NAP_S = 0.002
# Commit acks wait in paho's queue while the broker is away; more in flight keeps up with bursts.
ACK_MAX_INFLIGHT = 1000
NOT_DEVICE_DATA = Validated([], [], [], [])


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How one ingest process runs (defaults from settings; the CLI may override)."""

    client_id: str
    share_group: str | None
    batch_size: int
    flush_ms: int
    session_expiry_s: int
    metrics_port: int
    max_future_s: int
    max_message_bytes: int
    max_readings: int
    commit_acks: bool = True

    @classmethod
    def from_settings(cls, s: Settings, **overrides: object) -> IngestOptions:
        """Options from settings, with non-None overrides applied."""
        values: dict[str, object] = {
            "client_id": s.INGEST_CLIENT_ID,
            "share_group": s.INGEST_SHARE_GROUP,
            "batch_size": s.INGEST_BATCH_SIZE,
            "flush_ms": s.INGEST_FLUSH_MS,
            "session_expiry_s": s.INGEST_SESSION_EXPIRY_S,
            "metrics_port": s.INGEST_METRICS_PORT,
            "max_future_s": s.INGEST_MAX_FUTURE_S,
            "max_message_bytes": s.INGEST_MAX_MESSAGE_BYTES,
            "max_readings": s.INGEST_MAX_READINGS,
            "commit_acks": s.INGEST_COMMIT_ACKS,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def receive_maximum(self) -> int:
        """How many unacknowledged messages the broker may send us: one batch committing, one
        waiting for it and one being collected."""
        return min(65535, max(1000, 3 * self.batch_size))


class WriterFailed(Exception):
    """The writer thread died of an unexpected error (a bug): the process must stop."""


@dataclass(slots=True)
class _Pending:
    """A validated batch handed from the collecting loop to the writer thread."""

    batch: list[tuple[Delivery, Validated]]
    stopping: bool


_STOP = _Pending([], stopping=True)  # tells the writer thread to finish


class IngestService:
    """One ingest process: paho's network thread feeds a queue; this loop validates and batches;
    a writer thread commits each batch and only then acknowledges it, in arrival order.

    The writer's database round trips overlap with receiving and validating the next batch.
    Everything touching the writer's connection runs on the writer thread; a registry lookup
    after a miss uses its own connection.
    """

    def __init__(self, settings: Settings, options: IngestOptions) -> None:
        self.settings = settings
        self.options = options
        self.metrics = IngestMetrics()
        registry = Registry(max_age_s=REGISTRY_MAX_AGE_S)
        self.writer = Writer(settings.DATABASE_URL, registry)
        self.lookup = Writer(settings.DATABASE_URL, registry)  # registry misses, collector thread
        self.inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        # One batch may wait while another commits: the collector stays one batch ahead.
        self.to_writer: queue.Queue[_Pending | None] = queue.Queue(maxsize=1)
        self.writer_gave_up = threading.Event()  # a commit was abandoned while stopping
        self.writer_error: BaseException | None = None
        self.stop_event = threading.Event()
        self.client = IngestClient(
            settings.mqtt,
            client_id=options.client_id,
            topic_filter=subscription(options.share_group),
            on_delivery=self.inbox.put,
            session_expiry_s=options.session_expiry_s,
            receive_maximum=options.receive_maximum,
            ca_file=settings.MQTT_CA_FILE,
        )
        self.client.client.max_inflight_messages_set(ACK_MAX_INFLIGHT)
        self.metrics.track_pending(self.inbox.qsize)
        self.metrics.track_connections(
            broker=self.client.client.is_connected, database=self._database_connected
        )

    def _database_connected(self) -> bool:
        """Whether the writer holds a working connection (closed on failure, retried every few s)."""
        conn = self.writer.conn
        return conn is not None and not conn.closed and not conn.broken

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Check the database, load the registry, connect and subscribe (raises on failure)."""
        # DatabaseUnavailable / MigrationError propagate: the CLI prints their one line.
        db.require_current_schema(self.settings.DATABASE_URL, self.settings.PISMAN_SQL_DIR)
        conn = self.writer.connect()
        self.writer.registry.refresh(conn)
        self.metrics.serve(self.options.metrics_port, self.settings.INGEST_METRICS_HOST)
        self.client.start()

    def run(self) -> None:
        """Process until stop() is called, then flush, acknowledge and disconnect."""
        writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        writer.start()
        try:
            while not self.stop_event.is_set():
                batch = self._collect(block=True)
                if batch:
                    self._hand_over(_Pending(batch, stopping=False))
                else:
                    self._hand_over(None, idle=True)
            # Graceful stop: what has arrived is committed and acknowledged before we leave.
            while (
                self.writer_error is None
                and not self.writer_gave_up.is_set()
                and (batch := self._collect(block=False))
            ):
                self._hand_over(_Pending(batch, stopping=True))
        finally:
            self._finish_writer(writer)
            self.client.stop()
            self.writer.close()
            self.lookup.close()
            self.metrics.close()
            log_event(log, logging.INFO, "ingest_stopped", client_id=self.options.client_id)
        if self.writer_error is not None:
            raise WriterFailed(str(self.writer_error)) from self.writer_error

    def _hand_over(self, pending: _Pending | None, *, idle: bool = False) -> None:
        """Queue a batch for the writer (waiting while it is a batch behind); idle: a tick."""
        if idle:
            if self.to_writer.empty():
                # Lets the writer do its periodic work even when no messages come.
                self.to_writer.put(None)
            return
        while self.writer_error is None:
            try:
                self.to_writer.put(pending, timeout=IDLE_WAIT_S)
                return
            except queue.Full:
                continue
        self.stop_event.set()

    def _finish_writer(self, writer: threading.Thread) -> None:
        """Let the writer commit what it holds, then end it."""
        while writer.is_alive():
            try:
                self.to_writer.put(_STOP, timeout=IDLE_WAIT_S)
                break
            except queue.Full:
                continue
        writer.join()

    def _write_loop(self) -> None:
        """The writer thread: commit and acknowledge batches in order; periodic database chores."""
        last_retry_check = time.monotonic()
        try:
            while True:
                pending = self.to_writer.get()
                if pending is _STOP:
                    return
                if (
                    pending is not None
                    and not self.writer_gave_up.is_set()
                    and not self._commit(pending.batch, stopping=pending.stopping)
                ):
                    self.writer_gave_up.set()
                if (
                    not self.stop_event.is_set()
                    and time.monotonic() - last_retry_check >= QUARANTINE_RETRY_EVERY_S
                ):
                    last_retry_check = time.monotonic()
                    self._reprocess_quarantine()
                    self.writer.refresh_registry()
        except BaseException as exc:  # a bug: stop the process rather than go on without acks
            log_event(log, logging.ERROR, "writer_failed", error=repr(exc))
            self.writer_error = exc
            self.stop_event.set()

    def stop(self) -> None:
        """Ask run() to finish (safe from signal handlers and other threads)."""
        self.stop_event.set()

    # --- the loop -----------------------------------------------------------------------------
    def _collect(self, *, block: bool) -> list[tuple[Delivery, Validated]]:
        """Gather messages until the batch is full or the flush time has passed since the first."""
        batch: list[tuple[Delivery, Validated]] = []
        readings = 0
        try:
            first = self.inbox.get(timeout=IDLE_WAIT_S) if block else self.inbox.get_nowait()
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.options.flush_ms / 1000
        delivery: Delivery | None = first
        while delivery is not None:
            validated = self._validate(delivery)
            batch.append((delivery, validated))
            readings += max(1, validated.reading_count)
            if readings >= self.options.batch_size:
                break
            delivery = self._next(deadline, block=block)
        return batch

    def _next(self, deadline: float, *, block: bool) -> Delivery | None:
        """The next message for this batch: one waiting now, else (when blocking) one that
        arrives before the deadline, looked for after short naps.

        Napping rather than waiting on the queue: a thread waiting there is woken, and takes the
        GIL from paho's thread, for every single message, which costs more than the message;
        after a nap the collector takes a whole run of messages at once.
        """
        while True:
            try:
                return self.inbox.get_nowait()
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if not block or remaining <= 0:
                return None
            time.sleep(min(COLLECT_NAP_S, remaining))

    def _validate(self, d: Delivery) -> Validated:
        """Rows and rejections of one message (validate_message never raises on its content)."""
        if is_ack_topic(d.topic):
            return NOT_DEVICE_DATA  # our own (or another worker's) commit ack: acknowledged, unused
        snapshot = self.writer.registry.snapshot
        validated = self._validate_with(d, snapshot)
        missing = validated.rejections[0].device_id if validated.rejections else None
        if missing is not None and missing not in snapshot.devices:
            # Perhaps provisioned a moment ago: look again before quarantining (always when the
            # snapshot is older than the message, else rate-limited).
            self.lookup.refresh_registry(missed=True, received_at=d.received_at)
            if self.lookup.registry.snapshot is not snapshot:
                validated = self._validate_with(d, self.lookup.registry.snapshot)
        return validated

    def _validate_with(self, d: Delivery, snapshot: RegistrySnapshot) -> Validated:
        return validate_message(
            d.topic,
            d.payload,
            snapshot,
            now_utc(),
            max_future_s=self.options.max_future_s,
            max_message_bytes=self.options.max_message_bytes,
            max_readings=self.options.max_readings,
        )

    def _commit(self, batch: list[tuple[Delivery, Validated]], *, stopping: bool = False) -> bool:
        incoming = [Incoming(d.topic, d.payload, d.retained, v) for d, v in batch]
        readings = sum(v.reading_count for _, v in batch)
        # Commit acks another worker of a shared group published are not device messages.
        self.metrics.messages.inc(sum(1 for _, v in batch if v is not NOT_DEVICE_DATA))
        self.metrics.received.inc(readings)
        attempts_before = time.monotonic()
        outcome = self.writer.commit(
            incoming, should_stop=lambda: stopping or self.stop_event.is_set()
        )
        if outcome is None:
            log_event(
                log,
                logging.WARNING,
                "batch_abandoned_unacknowledged",
                messages=len(batch),
                note="the broker will deliver these again",
            )
            return False
        if outcome.seconds < time.monotonic() - attempts_before - 0.5:
            self.metrics.db_errors.inc()
        self.client.ack([d for d, _ in batch])
        acks = self._publish_commit_acks(outcome) if self.options.commit_acks else 0
        self.metrics.commit_acks.inc(acks)
        now = time.time()
        lag = now - min(d.received_at for d, _ in batch)
        self.metrics.observe_batch(outcome, readings=readings, lag_s=lag, now=now)
        if outcome.quarantined or outcome.rejected_by_database:
            log_event(
                log,
                logging.INFO,
                "batch_quarantined",
                quarantined=outcome.quarantined,
                refused_by_database=outcome.rejected_by_database,
            )
        log_event(
            log,
            logging.DEBUG,
            "batch_committed",
            messages=len(batch),
            readings=readings,
            stored=outcome.stored_weighings + outcome.stored_bins,
            duplicates=outcome.duplicates,
            ms=round(outcome.seconds * 1000, 1),
            lag_ms=round(lag * 1000, 1),
            commit_acks=acks,
        )
        return True

    def _publish_commit_acks(self, outcome: BatchOutcome) -> int:
        """Tell each device of the batch what is now stored or quarantined (QoS 1, not retained).

        Best effort by design: an ack lost with a crash or a broker outage only makes the device
        resend after its timeout, and the dedupe key makes that harmless.
        """
        # outcome.written: a message the database refused is reported as quarantined.
        acks = build_acks((m.topic, m.payload, m.validated) for m in outcome.written)
        for topic, payload in acks:
            self.client.client.publish(topic, payload, qos=1)
        return len(acks)

    def _reprocess_quarantine(self) -> None:
        try:
            outcome = self.writer.reprocess_quarantine(
                max_future_s=self.options.max_future_s,
                max_message_bytes=self.options.max_message_bytes,
                max_readings=self.options.max_readings,
            )
        except (psycopg.Error, db.DatabaseUnavailable) as exc:
            log_event(
                log,
                logging.WARNING,
                "quarantine_retry_failed",
                error=str(exc).splitlines()[0] if str(exc) else "",
            )
            self.writer.close()
            return
        if outcome.reprocessed or outcome.stored_weighings or outcome.stored_bins:
            self.metrics.observe_batch(
                outcome,
                readings=outcome.stored_weighings + outcome.stored_bins,
                lag_s=0.0,
                now=time.time(),
            )
            log_event(
                log,
                logging.INFO,
                "quarantine_reprocessed",
                reprocessed=outcome.reprocessed,
                stored=outcome.stored_weighings + outcome.stored_bins,
            )
