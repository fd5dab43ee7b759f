"""Late data: a backlog older than the rollups' materialised range (and, on TimescaleDB, inside
compressed chunks) is stored once and reaches the rollups the API reads, with no scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

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


BANK = "pisman/v1/bank-1/scale-bank-1/weighing"
JAKARTA = ZoneInfo("Asia/Jakarta")


@contextmanager
def _api(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The API (lifespan on) for the ingest world's city, with a viewer key."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from pisman import keys
    from pisman.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("PISMAN_CITY", "bandung")
    monkeypatch.setenv("MQTT_URL", "mqtt://127.0.0.1:1")
    get_settings.cache_clear()
    with psycopg.connect(db_url) as conn:
        key = keys.create_key(conn, role="viewer", name="late-data")
    with TestClient(create_app()) as client:
        client.headers["X-API-Key"] = key
        yield client
    get_settings.cache_clear()


def _bank_days_from_api(client: Any, start: date, end: date) -> dict[str, float]:
    """Tonnes of bank-1 per local day, as /v1/tonnage answers."""
    r = client.get(
        "/v1/tonnage",
        params={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "bucket": "day",
            "group_by": "site",
        },
    )
    assert r.status_code == 200, r.text
    return {
        row["bucket_start"][:10]: row["tonnes"]
        for row in r.json()["rows"]
        if row["site"] == "bank-1"
    }


def _bank_days_from_raw(db_url: str) -> dict[str, float]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT (ts AT TIME ZONE 'Asia/Jakarta')::date, sum(net_kg) FROM weighing"
            " WHERE site_id = 'bank-1' GROUP BY 1"
        ).fetchall()
    return {day.isoformat(): round(float(kg) / 1000, 3) for day, kg in rows}


def test_backlog_of_many_days_in_compressed_chunks_reaches_v1_tonnage_within_the_bound(
    db_url: str, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weeks of backlog, below every aggregate's materialised range and inside compressed
    chunks, with every TimescaleDB job paused (so no scheduler helps): stored once, and
    /v1/tonnage shows each day's new total within LATE_DATA_BOUND_S of the publish."""
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(JAKARTA).date()
    # 31 days, 15 to 45 days old, at 09:00 local: older than the 7-day compression horizon
    # (chunks of 7 days), and a backlog reading 2 hours later stays on the same local day.
    days = [
        datetime.combine(today - timedelta(days=d), datetime.min.time(), JAKARTA)
        + timedelta(hours=9)
        for d in range(45, 14, -1)
    ]
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        timescaledb = uses_timescaledb(conn)
        if timescaledb:
            for (job_id,) in conn.execute("SELECT job_id FROM timescaledb_information.jobs"):
                conn.execute("SELECT alter_job(%s, scheduled => false)", (job_id,))
            conn.commit()
    with running_ingest(settings_for(db_url, broker.url)), _api(db_url, monkeypatch) as client:
        pub = publisher(broker.port)
        history = [weighing(i, ts=day, net_kg=1000) for i, day in enumerate(days)]
        # A live reading: the aggregates' materialised range then reaches up to this hour.
        live = weighing(999, ts=now - timedelta(hours=2), net_kg=1000)
        publish_all(pub, [(BANK, dumps([*history, live]))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 32, what="history")
        with psycopg.connect(db_url) as conn:
            bring_rollups_up_to_date(conn, days[0] - timedelta(days=1), now)
            conn.commit()
            if timescaledb:
                conn.execute(
                    "SELECT count(compress_chunk(c))"
                    " FROM show_chunks('weighing', older_than => INTERVAL '7 days') AS c"
                )
                conn.commit()
                # Every backlog day lies in a compressed chunk and below every watermark.
                uncovered = conn.execute(
                    "SELECT count(*) FROM unnest(%s::timestamptz[]) AS t(ts) WHERE NOT EXISTS ("
                    " SELECT 1 FROM timescaledb_information.chunks c"
                    " WHERE c.hypertable_name = 'weighing' AND c.is_compressed"
                    " AND t.ts >= c.range_start AND t.ts < c.range_end)",
                    (days,),
                ).fetchone()
                assert uncovered == (0,)
                above = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE _timescaledb_functions.to_timestamp("
                    "_timescaledb_functions.cagg_watermark(mat_hypertable_id)) > %s)"
                    " FROM _timescaledb_catalog.continuous_agg WHERE user_view_name NOT LIKE 'bin%%'",
                    (days[-1] + timedelta(hours=3),),
                ).fetchone()
                assert above is not None and above[0] >= 2 and above[0] == above[1]
        start, end = days[0].date(), today + timedelta(days=1)
        before = _bank_days_from_api(client, start, end)
        assert before == _bank_days_from_raw(db_url) and len(before) == 32

        # The backlog: two new readings on each of the 31 days, and five resends, in 4 messages.
        backlog = [
            weighing(1000 + 2 * i + k, ts=day + timedelta(hours=2, minutes=k), net_kg=250.5)
            for i, day in enumerate(days)
            for k in range(2)
        ]
        backlog += history[:5]
        published = time.monotonic()
        publish_all(pub, [(BANK, dumps(backlog[i::4])) for i in range(4)])
        late_days = {day.date().isoformat() for day in days}
        expected = {
            day: round(tonnes + 0.501, 3) if day in late_days else tonnes
            for day, tonnes in before.items()
        }
        wait_for(
            lambda: _bank_days_from_api(client, start, end) == expected,
            timeout=LATE_DATA_BOUND_S,
            interval=0.1,
            what="every backlog day in /v1/tonnage",
        )
        elapsed = time.monotonic() - published
        pub.loop_stop()
        pub.disconnect()
    assert scalar(db_url, "SELECT count(*) FROM weighing") == 32 + 62  # resends stored once
    assert _bank_days_from_raw(db_url) == expected
    print(f"backlog of 62 readings over 31 days in /v1/tonnage after {elapsed:.2f} s")
