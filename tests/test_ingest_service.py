"""The ingest service end to end: real Mosquitto, real PostgreSQL, readings in, rows and rollups out."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg

from ingest.validate import Validated, WeighingRow
from ingest.writer import Incoming, Writer
from pisman import devices
from tests.support.broker import Mosquitto, free_port
from tests.support.ingest_world import (
    bin_reading,
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

BANK = "pisman/v1/bank-1/scale-bank-1/weighing"
DEPOT = "pisman/v1/depot-1/scale-depot-1/weighing"
BIN = "pisman/v1/depot-1/bin-depot-1/bin"


def _seeded(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    return db_url


def _count(db_url: str, table: str = "weighing") -> int:
    return int(scalar(db_url, f"SELECT count(*) FROM {table}"))  # table names are literals above


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_readings_published_over_mqtt_are_stored_with_rollups_device_state_and_metrics(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    port = free_port()
    with running_ingest(settings_for(db_url, broker.url, INGEST_METRICS_PORT=port)):
        pub = publisher(broker.port)
        singles = [(BANK, dumps(weighing(i, net_kg=10))) for i in range(30)]
        batch = [(DEPOT, dumps([weighing(i, net_kg=2.5, stream="separated") for i in range(100)]))]
        bins = [(BIN, dumps(bin_reading(i, fill_pct=40 + i, battery_pct=90 - i))) for i in range(5)]
        publish_all(pub, singles + batch + bins)
        wait_for(
            lambda: _count(db_url) == 130 and _count(db_url, "bin_reading") == 5, what="all stored"
        )
        metrics = wait_for(
            lambda: (
                (t := httpx.get(f"http://127.0.0.1:{port}/metrics").text)
                and _metric(t, "pisman_ingest_readings_stored_total") == 135
                and t
            )
        )
    assert scalar(db_url, "SELECT sum(net_kg) FROM weighing_hourly WHERE site_id = 'bank-1'") == 300
    assert scalar(db_url, "SELECT sum(net_kg) FROM weighing_daily WHERE site_id = 'depot-1'") == 250
    assert scalar(db_url, "SELECT sum(readings) FROM bin_hourly") == 5
    assert scalar(
        db_url, "SELECT fill_ratio FROM device_state WHERE device_id = 'bin-depot-1'"
    ) == Decimal("0.44")
    assert (
        scalar(db_url, "SELECT battery_pct FROM device_state WHERE device_id = 'bin-depot-1'") == 86
    )
    assert (
        scalar(db_url, "SELECT readings_total FROM device_state WHERE device_id = 'scale-depot-1'")
        == 100
    )
    assert (
        scalar(db_url, "SELECT last_seq FROM device_state WHERE device_id = 'scale-bank-1'") == 29
    )
    assert _metric(metrics, "pisman_ingest_messages_received_total") == 36
    assert _metric(metrics, "pisman_ingest_readings_received_total") == 135
    assert _metric(metrics, "pisman_ingest_batch_seconds_count") >= 1
    assert "pisman_ingest_lag_seconds_bucket" in metrics


def test_duplicate_reading_is_stored_once_and_counted(db_url: str, broker: Mosquitto) -> None:
    _seeded(db_url)
    reading = dumps(weighing(7, net_kg=55))
    with running_ingest(settings_for(db_url, broker.url)) as ingest:
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, reading)])
        wait_for(lambda: _count(db_url) == 1)
        again = weighing(8, ts=datetime.now(UTC))
        publish_all(
            pub, [(BANK, reading), (BANK, dumps([again, again]))]
        )  # a resend, and a repeat in a batch
        wait_for(
            lambda: (
                scalar(
                    db_url,
                    "SELECT duplicates_total FROM device_state WHERE device_id = 'scale-bank-1'",
                )
                == 2
            )
        )
        assert ingest.metrics.duplicates._value.get() == 2
    assert _count(db_url) == 2
    assert scalar(db_url, "SELECT sum(net_kg) FROM weighing_hourly") == 155


def test_bad_readings_are_quarantined_with_reasons_and_the_good_ones_in_the_batch_stored(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    with running_ingest(settings_for(db_url, broker.url)):
        pub = publisher(broker.port)
        publish_all(
            pub,
            [
                (BANK, dumps([weighing(1), weighing(2, material="styrofoam"), weighing(3)])),
                (BANK, b"\xff\xfe not json"),
                ("pisman/v1/bank-1/ghost-7/weighing", dumps(weighing(1))),
                ("pisman/v1/tpa-1/scale-bank-1/weighing", dumps(weighing(9))),
                (BIN, dumps(bin_reading(1, fill_pct=140))),
                (BANK, dumps(weighing(4))),  # ingestion goes on after all that
            ],
        )
        wait_for(
            lambda: _count(db_url) == 3 and _count(db_url, "quarantine") == 5,
            what="3 stored, 5 quarantined",
        )
    with psycopg.connect(db_url) as conn:
        rows = dict(conn.execute("SELECT reason, topic FROM quarantine").fetchall())
        raw = conn.execute(
            "SELECT payload FROM quarantine WHERE reason LIKE 'not valid JSON%'"
        ).fetchone()
    reasons = " | ".join(rows)
    for expected in (
        "unknown material 'styrofoam'",
        "not valid JSON",
        "unknown device 'ghost-7'",
        "belongs to site 'bank-1', not 'tpa-1'",
        "fill_pct must be at most 100",
    ):
        assert expected in reasons
    assert raw is not None and bytes(raw[0]) == b"\xff\xfe not json"
    assert sorted(r[0] for r in psycopg.connect(db_url).execute("SELECT seq FROM weighing")) == [
        1,
        3,
        4,
    ]


def test_late_backlog_lands_in_its_local_hour_day_and_month_and_rollups_reflect_it(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    march_31_late = datetime(2025, 3, 31, 16, 30, tzinfo=UTC)  # 23:30 WIB, still March 31
    april_1_early = datetime(2025, 3, 31, 17, 30, tzinfo=UTC)  # 00:30 WIB, already April 1
    with running_ingest(settings_for(db_url, broker.url)):
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, dumps(weighing(100, ts=march_31_late, net_kg=1)))])
        wait_for(lambda: _count(db_url) == 1)
        # The device was offline; its backlog arrives days later, out of order, as one batch.
        backlog = [
            weighing(102, ts=april_1_early, net_kg=20),
            weighing(101, ts=march_31_late + timedelta(minutes=5), net_kg=4),
        ]
        publish_all(pub, [(BANK, dumps(backlog))])
        wait_for(lambda: _count(db_url) == 3)
    with psycopg.connect(db_url) as conn:
        hourly = dict(conn.execute("SELECT bucket, net_kg FROM weighing_hourly").fetchall())
        daily = dict(
            conn.execute(
                "SELECT (bucket AT TIME ZONE 'Asia/Jakarta')::date, net_kg FROM weighing_daily"
            ).fetchall()
        )
        monthly = dict(
            conn.execute(
                "SELECT to_char(bucket AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM'), sum(net_kg) FROM weighing_daily GROUP BY 1"
            ).fetchall()
        )
    assert hourly == {
        datetime(2025, 3, 31, 16, tzinfo=UTC): 5,
        datetime(2025, 3, 31, 17, tzinfo=UTC): 20,
    }
    assert daily == {datetime(2025, 3, 31).date(): 5, datetime(2025, 4, 1).date(): 20}
    assert monthly == {"2025-03": 5, "2025-04": 20}
    assert (
        scalar(db_url, "SELECT last_reading_ts FROM device_state WHERE device_id = 'scale-bank-1'")
        == april_1_early
    )


def test_status_online_and_last_will_offline_update_device_state(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    status_topic = "pisman/v1/depot-1/bin-depot-1/status"
    with running_ingest(settings_for(db_url, broker.url)):
        device = publisher(broker.port, will_topic=status_topic)
        publish_all(device, [(status_topic, b"online")])
        device.publish(status_topic, b"online", qos=1, retain=True).wait_for_publish(5)
        wait_for(
            lambda: (
                scalar(
                    db_url, "SELECT connection FROM device_state WHERE device_id = 'bin-depot-1'"
                )
                == "online"
            )
        )
        assert (
            scalar(db_url, "SELECT last_seen_at FROM device_state WHERE device_id = 'bin-depot-1'")
            is not None
        )
        sock = device.socket()
        assert sock is not None
        sock.close()  # the device drops off the network: the broker publishes its last will
        wait_for(
            lambda: (
                scalar(
                    db_url, "SELECT connection FROM device_state WHERE device_id = 'bin-depot-1'"
                )
                == "offline"
            ),
            what="last will applied",
        )
        device.loop_stop()


def test_quarantined_reading_marked_retry_is_stored_once_its_device_is_registered(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    with running_ingest(settings_for(db_url, broker.url)):
        pub = publisher(broker.port)
        publish_all(
            pub,
            [
                ("pisman/v1/bank-1/scale-new/weighing", dumps(weighing(1, net_kg=42))),
                (BANK, dumps(weighing(2, material="gold"))),
            ],
        )
        wait_for(lambda: _count(db_url, "quarantine") == 2)
        with psycopg.connect(db_url) as conn:
            devices.add_device(conn, device_id="scale-new", site_id="bank-1", kind="platform_scale")
            conn.execute(
                "UPDATE quarantine SET status = 'retry'"
            )  # what the API's reprocess endpoint does
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM quarantine WHERE status = 'retry'") == 0,
            timeout=20,
        )
    with psycopg.connect(db_url) as conn:
        statuses = dict(conn.execute("SELECT device_id, status FROM quarantine").fetchall())
        reason = conn.execute(
            "SELECT reason FROM quarantine WHERE device_id = 'scale-bank-1'"
        ).fetchone()
    assert statuses == {"scale-new": "reprocessed", "scale-bank-1": "new"}
    assert reason is not None and "unknown material 'gold'" in reason[0]
    assert scalar(db_url, "SELECT net_kg FROM weighing WHERE device_id = 'scale-new'") == 42
    assert scalar(db_url, "SELECT sum(net_kg) FROM weighing_daily") == 42


def test_two_ingest_processes_share_the_load_through_a_shared_subscription(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    settings = settings_for(db_url, broker.url)
    topics = [BANK, DEPOT, "pisman/v1/tpa-1/bridge-tpa-1/weighing"]
    with (
        running_ingest(settings, share_group="workers") as a,
        running_ingest(settings, share_group="workers") as b,
    ):
        pub = publisher(broker.port)
        publish_all(pub, [(topics[i % 3], dumps(weighing(i, net_kg=1))) for i in range(1500)])
        wait_for(lambda: _count(db_url) == 1500, timeout=30)
        assert a.metrics.messages._value.get() > 100
        assert b.metrics.messages._value.get() > 100
        assert a.metrics.messages._value.get() + b.metrics.messages._value.get() == 1500
    assert scalar(db_url, "SELECT sum(weighings) FROM weighing_daily") == 1500


def test_a_reading_the_database_refuses_is_quarantined_and_the_rest_of_the_batch_stored(
    db_url: str,
) -> None:
    _seeded(db_url)
    now = datetime.now(UTC)

    def row(seq: int, kg: str) -> Incoming:
        r = WeighingRow(
            now,
            "bandung",
            "bank-1",
            "scale-bank-1",
            seq,
            Decimal(kg),
            None,
            None,
            "paper",
            "deposit",
            None,
            None,
            False,
            None,
            False,
        )
        return Incoming(BANK, f'{{"seq": {seq}}}'.encode(), False, Validated([r], [], [], []))

    writer = Writer(db_url)
    # 70 t slipped past validation (a bug): the CHECK constraint refuses it; its neighbours are kept.
    outcome = writer.commit([row(1, "5"), row(2, "70000"), row(3, "6"), row(4, "7")])
    writer.close()
    assert (
        outcome is not None and outcome.stored_weighings == 3 and outcome.rejected_by_database == 1
    )
    assert scalar(db_url, "SELECT reason FROM quarantine").startswith(
        "database refused the message"
    )
    assert scalar(db_url, "SELECT sum(net_kg) FROM weighing_hourly") == 18


def test_cli_reports_an_unreachable_database_or_broker_in_one_line(
    db_url: str, broker: Mosquitto
) -> None:
    base = [sys.executable, "-m", "pisman", "ingest", "--metrics-port", "0"]
    env_db_down = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(base, env=env_db_down, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "cannot connect" in done.stderr
    env_broker_down = {
        "DATABASE_URL": db_url,
        "MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(base, env=env_broker_down, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "cannot connect to broker" in done.stderr and "Traceback" not in done.stderr
