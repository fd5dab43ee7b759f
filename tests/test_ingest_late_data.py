"""Late data: a backlog older than the rollups' materialised range (and, on TimescaleDB, inside
compressed chunks) is stored once and reaches the rollups the API reads, with no scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from pisman.rollups import bring_rollups_up_to_date, uses_timescaledb
from tests.support.broker import Mosquitto
from tests.support.ingest_world import (
    dumps,
    publish_all,
    publisher,
    running_ingest,
    scalar,
    seed_city,
    settings_for,
    wait_for,
    weighing,
)

TPA = "pisman/v1/tpa-1/bridge-tpa-1/weighing"
# Stated in docs/operations.md: late rows reach the rollups before ingest takes its next batch.
LATE_DATA_BOUND_S = 10.0


def _daily_and_raw(db_url: str) -> tuple[Decimal | None, Decimal | None]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT sum(net_kg) FROM weighing_daily WHERE site_id = 'tpa-1'),"
            " (SELECT sum(net_kg) FROM weighing WHERE site_id = 'tpa-1')"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_backlog_below_the_materialised_range_is_stored_once_and_reaches_the_rollups(
    db_url: str, broker: Mosquitto
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old, older = now - timedelta(days=10), now - timedelta(days=20)
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    with running_ingest(settings_for(db_url, broker.url)):
        pub = publisher(broker.port)
        history = [weighing(i, ts=older + timedelta(minutes=i), net_kg=1000) for i in range(5)]
        history += [weighing(10 + i, ts=old + timedelta(minutes=i), net_kg=1000) for i in range(5)]
        publish_all(pub, [(TPA, dumps(history))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 10, what="history")

        # Materialise everything up to now (what a refresh policy does), and on TimescaleDB
        # compress the old chunks (what the columnstore policy does).
        with psycopg.connect(db_url) as conn:
            bring_rollups_up_to_date(conn, older - timedelta(days=1), now)
            conn.commit()
            if uses_timescaledb(conn):
                compressed = conn.execute(
                    "SELECT count(compress_chunk(c))"
                    " FROM show_chunks('weighing', older_than => INTERVAL '7 days') AS c"
                ).fetchone()
                conn.commit()
                assert compressed is not None and compressed[0] >= 1
        assert _daily_and_raw(db_url) == (Decimal(10000), Decimal(10000))

        # The backlog: new readings on both old days, and one resend of a stored reading.
        backlog = [weighing(100 + i, ts=older + timedelta(hours=2, minutes=i)) for i in range(3)]
        backlog += [weighing(200 + i, ts=old + timedelta(hours=3, minutes=i)) for i in range(3)]
        for reading in backlog:
            reading["net_kg"] = 250.5
        backlog.append(history[0])
        publish_all(pub, [(TPA, dumps(backlog))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 16, what="backlog")
        expected = Decimal(10000) + 6 * Decimal("250.5")
        wait_for(
            lambda: _daily_and_raw(db_url) == (expected, expected),
            timeout=LATE_DATA_BOUND_S,
            what="the backlog in weighing_daily",
        )
    assert scalar(db_url, "SELECT count(*) FROM weighing") == 16  # the resend stored once
    assert (
        scalar(db_url, "SELECT sum(net_kg) FROM weighing_hourly WHERE site_id = 'tpa-1'")
        == expected
    )
