"""Batch writer: COPY into staging, insert with conflict handling (rollups included), then commit."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import psycopg
from psycopg import sql

from ingest.reasons import bounded
from ingest.registry import Registry
from ingest.validate import (
    MAX_MESSAGE_BYTES,
    MAX_READINGS,
    BinRow,
    Rejection,
    Validated,
    WeighingRow,
    now_utc,
    validate_message,
)
from pisman import db, rollups
from pisman.logs import log_event

log = logging.getLogger(__name__)

WEIGHING_COLUMNS = WeighingRow._fields
BIN_COLUMNS = BinRow._fields
WEIGHING_TYPES = [
    "timestamptz",
    "text",
    "text",
    "text",
    "int8",
    "numeric",
    "numeric",
    "numeric",
    "text",
    "text",
    "text",
    "text",
    "bool",
    "numeric",
    "bool",
]
BIN_TYPES = [
    "timestamptz",
    "text",
    "text",
    "text",
    "int8",
    "numeric",
    "numeric",
    "numeric",
    "bool",
    "bool",
    "bool",
]
# A quarantine row keeps this much of the payload (every message of a realistic device fits:
# a 500-reading batch is about 60 KB), with the original size and a hash of all of it. A row
# whose payload was cut cannot be reprocessed.
QUARANTINE_KEEP_BYTES = 65_536
# Topics are bounded by MQTT only (64 KiB); a valid one is under 220 characters.
MAX_TOPIC_CHARS = 1000
MAX_ID_CHARS = 200
STAGE_QUARANTINE_COLUMNS = (
    "arrival",
    "city_id",
    "topic",
    "payload",
    "payload_size",
    "payload_sha256",
    "reason",
    "site_id",
    "device_id",
    "kind",
)
STAGE_QUARANTINE_TYPES = [
    "int4",
    "text",
    "text",
    "bytea",
    "int4",
    "bytea",
    "text",
    "text",
    "text",
    "text",
]

# Staging tables live as long as the connection and empty themselves at each commit: the same
# effect as a temp table per batch (ON COMMIT DROP) without catalog churn on every batch.
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_weighing (LIKE weighing INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_bin_reading (LIKE bin_reading INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_quarantine (
  arrival int4, city_id text, topic text, payload bytea, payload_size int4, payload_sha256 bytea,
  reason text, site_id text, device_id text, kind text
) ON COMMIT DELETE ROWS;
"""


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


COPY_STAGE_WEIGHING = sql.SQL("COPY stage_weighing ({}) FROM STDIN (FORMAT BINARY)").format(
    _columns(WEIGHING_COLUMNS)
)
COPY_STAGE_BIN = sql.SQL("COPY stage_bin_reading ({}) FROM STDIN (FORMAT BINARY)").format(
    _columns(BIN_COLUMNS)
)
# Insert the staged rows, skipping re-deliveries (on plain PostgreSQL the same statement adds
# exactly the inserted rows to the rollups, sql/004_rollups.sql), and fold the batch into
# device_state, all in one statement and one round trip: PostgreSQL counts what each device had
# stored and finds its newest reading from the staging tables, so only three numbers come back.
INSERTED_WEIGHINGS = (
    "SELECT device_id, count(*) AS n FROM pisman_insert_staged_weighings() GROUP BY 1"
)
INSERTED_BINS = "SELECT device_id, count(*) AS n FROM pisman_insert_staged_bins() GROUP BY 1"
NOTHING_INSERTED = "SELECT NULL::text AS device_id, 0::bigint AS n WHERE false"
# TimescaleDB: the time span of a batch's readings, read before the commit empties the staging
# tables, to find the continuous aggregates whose materialised range hides some of them.
STAGED_SPAN = (
    "SELECT min(ts), max(ts) FROM"
    " (SELECT ts FROM stage_weighing UNION ALL SELECT ts FROM stage_bin_reading) AS s"
)
STAGED_WEIGHINGS = (
    "SELECT device_id, ts, seq, NULL::numeric AS battery_pct, NULL::numeric AS fill_ratio"
    " FROM stage_weighing"
)
STAGED_BINS = "SELECT device_id, ts, seq, battery_pct, fill_ratio FROM stage_bin_reading"
# One row per device per batch; the newest reading wins, counters add up.
STORE_STAGED = """
WITH w AS ({weighings}), b AS ({bins}),
staged AS ({staged}),
per_device AS (
  SELECT DISTINCT ON (st.device_id) st.device_id, st.ts, st.seq, st.battery_pct, st.fill_ratio,
         count(*) OVER (PARTITION BY st.device_id) AS seen
  FROM staged AS st
  ORDER BY st.device_id, st.ts DESC, st.seq DESC
),
upsert AS (
  INSERT INTO device_state AS s (device_id, city_id, last_seen_at, last_reading_ts, last_seq,
                                 battery_pct, fill_ratio, readings_total, duplicates_total)
  SELECT u.device_id, d.city_id, now(), u.ts, u.seq, u.battery_pct, u.fill_ratio,
         u.stored, u.seen - u.stored
  FROM (SELECT p.*, COALESCE(w.n, 0) + COALESCE(b.n, 0) AS stored
        FROM per_device AS p
        LEFT JOIN w ON w.device_id = p.device_id
        LEFT JOIN b ON b.device_id = p.device_id) AS u
  JOIN device d USING (device_id)
  ORDER BY u.device_id  -- one lock order for every writer
  ON CONFLICT (device_id) DO UPDATE SET
    last_seen_at = EXCLUDED.last_seen_at,
    last_reading_ts = GREATEST(s.last_reading_ts, EXCLUDED.last_reading_ts),
    last_seq = CASE WHEN s.last_reading_ts IS NULL OR EXCLUDED.last_reading_ts >= s.last_reading_ts
                    THEN EXCLUDED.last_seq ELSE s.last_seq END,
    battery_pct = CASE WHEN EXCLUDED.battery_pct IS NOT NULL
                        AND (s.last_reading_ts IS NULL OR EXCLUDED.last_reading_ts >= s.last_reading_ts)
                       THEN EXCLUDED.battery_pct ELSE s.battery_pct END,
    fill_ratio = CASE WHEN EXCLUDED.fill_ratio IS NOT NULL
                       AND (s.last_reading_ts IS NULL OR EXCLUDED.last_reading_ts >= s.last_reading_ts)
                      THEN EXCLUDED.fill_ratio ELSE s.fill_ratio END,
    readings_total = s.readings_total + EXCLUDED.readings_total,
    duplicates_total = s.duplicates_total + EXCLUDED.duplicates_total
  RETURNING 1
)
SELECT (SELECT COALESCE(sum(n), 0) FROM w)::bigint, (SELECT COALESCE(sum(n), 0) FROM b)::bigint,
       (SELECT count(*) FROM upsert)
"""


def _store_staged(weighings: bool, bins: bool) -> str:
    """The one-statement store for a batch holding weighings, bins or both."""
    staged = " UNION ALL ".join(
        q for q, present in ((STAGED_WEIGHINGS, weighings), (STAGED_BINS, bins)) if present
    )
    return STORE_STAGED.format(
        weighings=INSERTED_WEIGHINGS if weighings else NOTHING_INSERTED,
        bins=INSERTED_BINS if bins else NOTHING_INSERTED,
        staged=staged,
    )


STORE_STAGED_BY_KINDS = {
    (w, b): _store_staged(w, b) for w in (False, True) for b in (False, True) if w or b
}
COPY_STAGE_QUARANTINE = sql.SQL("COPY stage_quarantine ({}) FROM STDIN (FORMAT BINARY)").format(
    _columns(STAGE_QUARANTINE_COLUMNS)
)
# One row per message (topic + bytes, sql/022_quarantine_bounded.sql): a repeat within the batch
# or of an earlier batch adds to times_seen. Repeats within the batch are folded here because
# ON CONFLICT DO UPDATE may touch a row only once per statement; the first arrival's row wins.
# The latest reason replaces the old one (a device deactivated since says so); the status stays.
INSERT_QUARANTINE = """
INSERT INTO quarantine AS q (city_id, topic, payload, payload_size, payload_sha256, reason,
                             site_id, device_id, kind, times_seen)
SELECT DISTINCT ON (md5(s.topic), s.payload_sha256)
       s.city_id, s.topic, s.payload, s.payload_size, s.payload_sha256, s.reason,
       s.site_id, s.device_id, s.kind,
       count(*) OVER (PARTITION BY md5(s.topic), s.payload_sha256)
FROM stage_quarantine AS s
ORDER BY md5(s.topic), s.payload_sha256, s.arrival  -- also one lock order for every writer
ON CONFLICT (md5(topic), payload_sha256) DO UPDATE SET
  times_seen = q.times_seen + EXCLUDED.times_seen,
  last_seen_at = EXCLUDED.last_seen_at,
  reason = EXCLUDED.reason
"""

# A retained status replayed by the broker says nothing about when the device was last seen.
UPSERT_DEVICE_STATUS = """
INSERT INTO device_state AS s (device_id, city_id, last_seen_at, connection, connection_changed_at)
SELECT u.device_id, d.city_id, CASE WHEN u.connection = 'online' AND NOT u.retained THEN now() END,
       u.connection, now()
FROM unnest(%s::text[], %s::text[], %s::boolean[]) AS u(device_id, connection, retained)
JOIN device d USING (device_id)
ON CONFLICT (device_id) DO UPDATE SET
  last_seen_at = COALESCE(EXCLUDED.last_seen_at, s.last_seen_at),
  connection = EXCLUDED.connection,
  connection_changed_at = CASE WHEN s.connection IS DISTINCT FROM EXCLUDED.connection
                               THEN EXCLUDED.connection_changed_at ELSE s.connection_changed_at END
"""

CLAIM_RETRIES = """
SELECT quarantine_id, topic, payload, payload_size FROM quarantine
WHERE status = 'retry' ORDER BY quarantine_id LIMIT %s FOR UPDATE SKIP LOCKED
"""
# Only the first bytes were kept: validating them would quarantine a fragment under a new reason.
MARK_CANNOT_REPROCESS = """
UPDATE quarantine SET status = 'discarded', resolved_at = now(), resolution = %s
WHERE quarantine_id = %s
"""
MARK_REPROCESSED = """
UPDATE quarantine SET status = 'reprocessed', resolved_at = now(), resolution = %s
WHERE quarantine_id = %s
"""
MARK_STILL_BAD = """
UPDATE quarantine SET status = 'new', reason = %s, resolved_at = NULL, resolution = NULL
WHERE quarantine_id = %s
"""


class Incoming(NamedTuple):
    """One received MQTT message after validation (one per message: a tuple is cheapest)."""

    topic: str
    payload: bytes
    retained: bool
    validated: Validated


@dataclass(slots=True)
class BatchOutcome:
    """What one committed batch did."""

    stored_weighings: int = 0
    stored_bins: int = 0
    duplicates: int = 0
    quarantined: int = 0
    statuses: int = 0
    seconds: float = 0.0
    reprocessed: int = 0
    rejected_by_database: int = 0
    # The messages as committed (one the database refused replaced by its quarantine row): what
    # the commit acks to the devices report. add() concatenates the lists.
    written: list[Incoming] = field(default_factory=list)

    def add(self, other: BatchOutcome) -> None:
        """Fold another outcome into this one."""
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _is_transient(exc: psycopg.Error, conn: psycopg.Connection | None) -> bool:
    """A lost connection or a lost race: retrying the same batch is right."""
    return (
        isinstance(exc, psycopg.OperationalError | psycopg.errors.TransactionRollback)
        or conn is None
        or conn.broken
        or conn.closed
    )


@dataclass
class Writer:
    """Owns the database connection of one ingest process and writes batches in one transaction."""

    database_url: str
    registry: Registry = field(default_factory=Registry)
    max_backoff_s: float = 5.0
    conn: psycopg.Connection | None = None
    # TimescaleDB: the span of committed rows not yet checked against the continuous
    # aggregates' materialised ranges (rows below one reach the API only once it is refreshed).
    # Kept until the check and any refresh succeed.
    late_span: tuple[datetime, datetime] | None = None
    timescaledb: bool | None = None

    # --- connection -------------------------------------------------------------------------
    def connect(self) -> psycopg.Connection:
        """The open connection (reconnecting if needed), with staging tables ready."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        self.close()
        conn = db.connect(self.database_url)
        conn.execute(CREATE_STAGING)
        conn.commit()
        self.conn = conn
        return conn

    def close(self) -> None:
        """Close the connection, ignoring errors (it may already be dead)."""
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None

    def refresh_registry(self, *, missed: bool = False, received_at: float | None = None) -> None:
        """Reload the device snapshot when due; keep the old one if the database is away."""
        try:
            conn = self.connect()
            self.registry.refresh_if_stale(conn, missed=missed, received_at=received_at)
        except (psycopg.Error, db.DatabaseUnavailable) as exc:
            log_event(log, logging.WARNING, "registry_refresh_failed", error=_first_line(exc))
            self.close()

    # --- batches ----------------------------------------------------------------------------
    def commit(
        self, batch: list[Incoming], *, should_stop: Callable[[], bool] = lambda: False
    ) -> BatchOutcome | None:
        """Write the batch durably, retrying through outages; None only if told to stop first.

        A batch the database refuses for its content (a bug in validation, say) is split, and
        the offending messages are quarantined, so one bad message never blocks the stream.
        """
        backoff = 0.1
        while True:
            try:
                conn = self.connect()
                outcome = self._write_splitting(conn, batch)
                self._refresh_late_rows(conn)
                return outcome
            except (psycopg.Error, db.DatabaseUnavailable) as exc:
                if isinstance(exc, psycopg.Error) and not _is_transient(exc, self.conn):
                    raise  # _write_splitting handles content errors; anything else is a bug
                log_event(
                    log,
                    logging.WARNING,
                    "database_unavailable",
                    error=_first_line(exc),
                    retry_in_s=round(backoff, 2),
                    messages=len(batch),
                )
                self.close()
                if should_stop():
                    return None
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _write_splitting(self, conn: psycopg.Connection, batch: list[Incoming]) -> BatchOutcome:
        try:
            return self._write_once(conn, batch)
        except psycopg.Error as exc:
            if _is_transient(exc, conn):
                raise
            conn.rollback()
            if len(batch) > 1:
                total = BatchOutcome()
                half = len(batch) // 2
                total.add(self._write_splitting(conn, batch[:half]))
                total.add(self._write_splitting(conn, batch[half:]))
                return total
            bad = batch[0]
            reason = f"database refused the message: {_first_line(exc)}"
            log_event(
                log, logging.WARNING, "message_refused_by_database", topic=bad.topic, reason=reason
            )
            where = next(iter(bad.validated.weighings or bad.validated.bins or []), None)
            rejection = Rejection(
                reason,
                bad.payload,
                getattr(where, "city_id", None),
                getattr(where, "site_id", None),
                getattr(where, "device_id", None),
                bad.topic.rsplit("/", 1)[-1],
            )
            refused = Incoming(
                bad.topic, bad.payload, bad.retained, Validated([], [], [], [rejection])
            )
            outcome = self._write_once(conn, [refused])
            outcome.rejected_by_database = 1
            return outcome

    def _write_once(self, conn: psycopg.Connection, batch: list[Incoming]) -> BatchOutcome:
        started = time.monotonic()
        with conn.cursor() as cur:
            outcome = write_rows(cur, batch)
            late = self._late_span(cur, outcome)
        conn.commit()
        self._remember_late(late)
        outcome.seconds = time.monotonic() - started
        outcome.written = batch
        return outcome

    def _remember_late(self, span: tuple[datetime, datetime] | None) -> None:
        """Add a committed batch's span to what _refresh_late_rows must check."""
        if span is not None:
            lo, hi = self.late_span or span
            self.late_span = (min(lo, span[0]), max(hi, span[1]))

    def _late_span(
        self, cur: psycopg.Cursor, outcome: BatchOutcome
    ) -> tuple[datetime, datetime] | None:
        """TimescaleDB: the time span of this batch's staged readings (before the commit)."""
        if not (outcome.stored_weighings or outcome.stored_bins):
            return None
        if self.timescaledb is None:
            self.timescaledb = rollups.uses_timescaledb(cur.connection)
        if not self.timescaledb:
            return None
        span = cur.execute(STAGED_SPAN).fetchone()
        if span is None or span[0] is None:
            return None
        return span[0], span[1]

    def _refresh_late_rows(self, conn: psycopg.Connection) -> None:
        """TimescaleDB: refresh the aggregates over committed rows that lie below their
        materialised range, so a backlog reaches the API now rather than at a policy run that
        may never come. Runs in the writer thread before the next batch: a backlog that touches
        many buckets slows intake (back-pressure) instead of piling up stale ranges. A failed
        refresh is kept for the next batch; the rows themselves are already committed."""
        if self.late_span is None:
            return
        started = time.monotonic()
        lo, hi = self.late_span
        try:
            refreshed = rollups.refresh_late_rows(conn, lo, hi)
        except psycopg.Error as exc:
            log_event(log, logging.WARNING, "late_rows_refresh_failed", error=_first_line(exc))
            if conn.broken:
                self.close()
            return
        self.late_span = None
        if not refreshed:  # live rows: real-time aggregation shows them already
            return
        log_event(
            log,
            logging.INFO,
            "late_rows_refreshed",
            aggregates=",".join(refreshed),
            since=lo.isoformat(),
            until=hi.isoformat(),
            seconds=round(time.monotonic() - started, 3),
        )

    # --- quarantine reprocessing ------------------------------------------------------------
    def reprocess_quarantine(
        self,
        *,
        max_future_s: int,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_readings: int = MAX_READINGS,
        limit: int = 500,
    ) -> BatchOutcome:
        """Re-validate quarantine rows marked 'retry': store them, or put them back with the new reason.

        A row that kept only the start of its payload is discarded with a resolution saying so.
        """
        conn = self.connect()
        self.registry.refresh(conn)  # a retry usually follows a registry fix
        started = time.monotonic()
        outcome = BatchOutcome()
        with conn.cursor() as cur:
            claimed = cur.execute(CLAIM_RETRIES, (limit,)).fetchall()
            if not claimed:
                conn.rollback()
                return outcome
            now = now_utc()
            good: list[Incoming] = []
            for quarantine_id, topic, payload, payload_size in claimed:
                payload = bytes(payload)
                if payload_size > len(payload):
                    resolution = (
                        f"cannot reprocess: only the first {len(payload)} of {payload_size}"
                        " bytes were kept"
                    )
                    cur.execute(MARK_CANNOT_REPROCESS, (resolution, quarantine_id))
                    continue
                validated = validate_message(
                    topic,
                    payload,
                    self.registry.snapshot,
                    now,
                    max_future_s=max_future_s,
                    max_message_bytes=max_message_bytes,
                    max_readings=max_readings,
                )
                if validated.rejections:
                    reasons = bounded("; ".join(r.reason for r in validated.rejections))
                    cur.execute(MARK_STILL_BAD, (reasons, quarantine_id))
                else:
                    cur.execute(MARK_REPROCESSED, ("stored by ingest", quarantine_id))
                    outcome.reprocessed += 1
                # Readings that are valid now are stored even when others in the same payload are not.
                stored = Validated(validated.weighings, validated.bins, validated.statuses, [])
                good.append(Incoming(topic, payload, False, stored))
            outcome.add(write_rows(cur, good))
            late = self._late_span(cur, outcome)
        conn.commit()
        self._remember_late(late)
        self._refresh_late_rows(conn)  # quarantined readings are late by nature
        outcome.seconds = time.monotonic() - started
        return outcome


def write_rows(cur: psycopg.Cursor, batch: Sequence[Incoming]) -> BatchOutcome:
    """Stage, insert (rollups follow in the same statement), upsert device state, quarantine rejects (no commit)."""
    outcome = BatchOutcome()
    weighings = [w for item in batch for w in item.validated.weighings]
    bins = [b for item in batch for b in item.validated.bins]
    rejections = [(item.topic, r) for item in batch for r in item.validated.rejections]

    if weighings:
        with cur.copy(COPY_STAGE_WEIGHING) as copy:
            copy.set_types(WEIGHING_TYPES)
            for w in weighings:
                copy.write_row(w)
    if bins:
        with cur.copy(COPY_STAGE_BIN) as copy:
            copy.set_types(BIN_TYPES)
            for b in bins:
                copy.write_row(b)
    if weighings or bins:
        row = cur.execute(STORE_STAGED_BY_KINDS[bool(weighings), bool(bins)]).fetchone()
        assert row is not None
        outcome.stored_weighings, outcome.stored_bins = int(row[0]), int(row[1])
    outcome.duplicates = len(weighings) + len(bins) - outcome.stored_weighings - outcome.stored_bins

    statuses: dict[str, tuple[str, bool]] = {}
    for item in batch:
        for s in item.validated.statuses:
            statuses[s.device_id] = (s.connection, item.retained)  # the last one wins
    if statuses:
        ids = list(statuses)
        cur.execute(
            UPSERT_DEVICE_STATUS,
            (ids, [statuses[i][0] for i in ids], [statuses[i][1] for i in ids]),
        )
        outcome.statuses = len(statuses)

    if rejections:
        with cur.copy(COPY_STAGE_QUARANTINE) as copy:
            copy.set_types(STAGE_QUARANTINE_TYPES)
            for arrival, (topic, r) in enumerate(rejections):
                copy.write_row(_quarantine_row(arrival, topic, r))
        cur.execute(INSERT_QUARANTINE)
        outcome.quarantined = len(rejections)
    return outcome


def _quarantine_row(arrival: int, topic: str, r: Rejection) -> tuple[object, ...]:
    """A staged quarantine row: bounded, storable text; the payload cut, its size and hash kept."""
    return (
        arrival,
        _id_text(r.city_id),
        bounded(topic, MAX_TOPIC_CHARS),
        r.payload[:QUARANTINE_KEEP_BYTES],
        len(r.payload),
        hashlib.sha256(r.payload).digest(),
        bounded(r.reason),
        _id_text(r.site_id),
        _id_text(r.device_id),
        _id_text(r.kind),
    )


def _id_text(value: str | None) -> str | None:
    return None if value is None else bounded(value, MAX_ID_CHARS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
