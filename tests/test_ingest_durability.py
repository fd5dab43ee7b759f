"""Nothing lost, nothing doubled: ingest killed with SIGKILL mid-stream, PostgreSQL stopped for 30 s."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pisman import db
from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port
from tests.support.databases import Backend
from tests.support.ingest_world import (
    IngestProcess,
    dumps,
    publisher,
    scalar,
    seed_city,
    wait_for,
    weighing,
)
from tests.support.pgcluster import PG_BIN, PrivatePostgres

TOPICS = (
    "pisman/v1/bank-1/scale-bank-1/weighing",
    "pisman/v1/depot-1/scale-depot-1/weighing",
    "pisman/v1/tpa-1/bridge-tpa-1/weighing",
)
OUTAGE_S = float(os.environ.get("PISMAN_TEST_DB_OUTAGE_S", "30"))


@pytest.fixture
def private_pg(backend: Backend) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL (preloading TimescaleDB on that backend), migrated, with a seeded city."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    pg = PrivatePostgres(timescaledb=backend.is_timescaledb)
    try:
        pg.init()
        db.ensure_database(pg.url)
        db.migrate(pg.url, PROJECT_ROOT / "sql")
        with psycopg.connect(pg.url) as conn:
            seed_city(conn)
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private broker that keeps sessions and queues (persistence on, big queues)."""
    m = Mosquitto(tmp_path, port=free_port())
    m.start()
    yield m
    m.stop()


class StreamPublisher:
    """Publishes numbered weighings round-robin over three devices, in a background thread."""

    def __init__(self, port: int, *, start_ts: datetime) -> None:
        self.client = publisher(port)
        self.start_ts = start_ts
        self.sent = 0
        self.expected_kg = 0
        self._thread: threading.Thread | None = None

    def publish(self, count: int, *, per_second: float) -> None:
        """Publish `count` more readings at about `per_second`, waiting for each broker ack."""
        infos = []
        begin = time.monotonic()
        for _ in range(count):
            i = self.sent
            # 15 s apart from a day or two ago: many hour and day buckets, none in the future.
            ts = self.start_ts + timedelta(seconds=15 * i)
            kg = 10 + i % 50
            infos.append(
                self.client.publish(TOPICS[i % 3], dumps(weighing(i // 3, ts=ts, net_kg=kg)), qos=1)
            )
            self.sent += 1
            self.expected_kg += kg
            delay = begin + (i + 1 - (self.sent - count)) / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for info in infos:
            info.wait_for_publish(30)

    def publish_in_background(self, count: int, *, per_second: float) -> None:
        """Like publish(), in a thread; join() waits for it."""
        self._thread = threading.Thread(
            target=self.publish, args=(count,), kwargs={"per_second": per_second}
        )
        self._thread.start()

    def join(self) -> None:
        """Wait for the background publishing to finish."""
        if self._thread:
            self._thread.join(120)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _assert_exactly_once(url: str, stream: StreamPublisher) -> None:
    assert scalar(url, "SELECT count(*) FROM quarantine") == 0
    assert scalar(url, "SELECT count(*) FROM weighing") == stream.sent
    assert scalar(url, "SELECT count(DISTINCT (device_id, seq)) FROM weighing") == stream.sent
    assert scalar(url, "SELECT sum(net_kg) FROM weighing") == stream.expected_kg
    # The rollups agree with the raw rows, hour by hour and day by day.
    assert scalar(url, "SELECT sum(weighings) FROM weighing_hourly") == stream.sent
    assert scalar(url, "SELECT sum(net_kg) FROM weighing_hourly") == stream.expected_kg
    assert scalar(url, "SELECT sum(weighings) FROM weighing_daily") == stream.sent
    assert scalar(url, "SELECT sum(readings_total) FROM device_state") == stream.sent


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    db_url: str, persistent_broker: Mosquitto
) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    env = {
        "DATABASE_URL": db_url,
        "MQTT_URL": persistent_broker.url,
        "INGEST_CLIENT_ID": "ingest-durable",
        "INGEST_BATCH_SIZE": "200",
        "INGEST_FLUSH_MS": "20",
    }
    first = IngestProcess(env)
    first.wait_ready()
    stream = StreamPublisher(persistent_broker.port, start_ts=datetime.now(UTC) - timedelta(days=2))
    try:
        stream.publish_in_background(4000, per_second=2000)
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM weighing") >= 800,
            what="a first part stored",
        )
        first.kill()
        killed_at = scalar(db_url, "SELECT count(*) FROM weighing")
        assert killed_at < 4000, "the kill should land mid-stream"
        stream.join()
        second = IngestProcess(env)  # same client id: resumes the session the broker kept
        second.wait_ready()
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM weighing") == stream.sent,
            timeout=30,
            what="every reading stored after the restart",
        )
        time.sleep(0.5)  # anything re-delivered late would show up as an extra row now
        assert second.terminate() == 0
        _assert_exactly_once(db_url, stream)
    finally:
        stream.close()
        for proc in (first, locals().get("second")):
            if proc is not None and proc.proc.poll() is None:
                proc.kill()


@pytest.mark.slow
def test_database_outage_of_30_seconds_loses_nothing_and_stores_nothing_twice(
    private_pg: PrivatePostgres, persistent_broker: Mosquitto
) -> None:
    env = {
        "DATABASE_URL": private_pg.url,
        "MQTT_URL": persistent_broker.url,
        "INGEST_CLIENT_ID": "ingest-outage",
        "INGEST_BATCH_SIZE": "200",
        "INGEST_FLUSH_MS": "20",
    }
    ingest = IngestProcess(env)
    ingest.wait_ready()
    stream = StreamPublisher(persistent_broker.port, start_ts=datetime.now(UTC) - timedelta(days=1))
    try:
        stream.publish(600, per_second=1000)
        wait_for(
            lambda: scalar(private_pg.url, "SELECT count(*) FROM weighing") == 600,
            what="before the outage",
        )

        private_pg.stop()
        down_since = time.monotonic()
        # Devices keep publishing through the outage: more than ingest's receive window.
        stream.publish(3000, per_second=3000 / (OUTAGE_S * 0.8))
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))
        assert ingest.proc.poll() is None, "ingest must ride out the outage, not exit"
        assert ingest.logged("database_unavailable")
        private_pg.start()

        stream.publish(400, per_second=1000)
        wait_for(
            lambda: scalar(private_pg.url, "SELECT count(*) FROM weighing") == stream.sent,
            timeout=60,
            what=f"every reading stored after the outage; ingest log:\n{ingest.tail()}",
        )
        time.sleep(0.5)
        assert ingest.terminate() == 0
        _assert_exactly_once(private_pg.url, stream)
    finally:
        stream.close()
        if ingest.proc.poll() is None:
            ingest.kill()
