"""Hostile and broken input through the real broker and database: ingest stays up, every bad
message becomes one bounded quarantine row with a reason, repeats are counted, not repeated."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from ingest.validate import validate_message
from ingest.writer import QUARANTINE_KEEP_BYTES, Incoming, Writer
from tests.support.broker import Mosquitto
from tests.support.ingest_world import (
    IngestProcess,
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
POISON = b'{"ts": "2025-06-01T11:59:00Z", "seq": ' + b"7" * 5000 + b', "net_kg": 1}'


def _seeded(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    return db_url


def _quarantine(db_url: str) -> list[tuple[str, str, int, int, int]]:
    """(topic, reason, times_seen, stored payload bytes, payload_size) per row, oldest first."""
    with psycopg.connect(db_url) as conn:
        return [
            (r[0], r[1], r[2], r[3], r[4])
            for r in conn.execute(
                "SELECT topic, reason, times_seen, length(payload), payload_size"
                " FROM quarantine ORDER BY quarantine_id"
            )
        ]


def _stored(db_url: str) -> int:
    return int(scalar(db_url, "SELECT count(*) FROM weighing"))


def test_poison_integer_is_quarantined_once_and_ingest_goes_on(
    db_url: str, broker: Mosquitto
) -> None:
    """Regression: a >4,300-digit integer made ingest exit; unacknowledged, it crash-looped."""
    _seeded(db_url)
    with running_ingest(settings_for(db_url, broker.url)) as ingest:
        pub = publisher(broker.port)
        publish_all(
            pub,
            [
                (BANK, dumps(weighing(1))),
                (BANK, POISON),
                (BANK, b"[" + POISON + b"]"),
                (BANK, dumps(weighing(2))),
            ],
        )
        wait_for(lambda: _stored(db_url) == 2 and len(_quarantine(db_url)) == 2, timeout=30)
        publish_all(pub, [(BANK, dumps(weighing(3)))])  # still listening
        wait_for(lambda: _stored(db_url) == 3, timeout=30)
        assert not ingest.stop_event.is_set() and ingest.writer_error is None
        pub.loop_stop()
    reasons = [row[1] for row in _quarantine(db_url)]
    assert all(r.startswith("not valid JSON: number out of range") for r in reasons), reasons


def test_poison_integer_leaves_the_ingest_process_running_and_acknowledged(
    db_url: str, broker: Mosquitto
) -> None:
    """The same regression as `pisman ingest` runs it: the process neither exits nor sees the
    message again after a restart (it was acknowledged once quarantined)."""
    _seeded(db_url)
    env = {"DATABASE_URL": db_url, "MQTT_URL": broker.url, "INGEST_CLIENT_ID": "ingest-poison"}
    first = IngestProcess(env)
    second: IngestProcess | None = None
    try:
        first.wait_ready()
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, POISON), (BANK, dumps(weighing(1)))])
        wait_for(lambda: _stored(db_url) == 1 and len(_quarantine(db_url)) == 1, timeout=30)
        pub.loop_stop()
        assert first.proc.poll() is None, first.tail()
        assert first.terminate() == 0, first.tail()
        second = IngestProcess(env)  # same session: nothing unacknowledged is waiting
        second.wait_ready()
        publish_all(publisher(broker.port), [(BANK, dumps(weighing(2)))])
        wait_for(lambda: _stored(db_url) == 2, timeout=30)
        assert [r[2] for r in _quarantine(db_url)] == [1], "the poison message came back"
        assert second.terminate() == 0, second.tail()
    finally:
        for proc in (first, second):
            if proc is not None and proc.proc.poll() is None:
                proc.kill()


def test_messages_on_topics_of_the_wrong_depth_reach_quarantine(
    db_url: str, broker: Mosquitto
) -> None:
    """An account allowed more than the generated ACL's exact topics (a hand-written ACL, this
    anonymous test broker) may publish any depth under pisman/v1/: nothing under it may vanish."""
    _seeded(db_url)
    topics = [
        "pisman/v1/bank-1/scale-bank-1",
        "pisman/v1/bank-1/scale-bank-1/weighing/extra",
        "pisman/v1/bank-1/scale-bank-1/weighing/",
        "pisman/v1/bank-1",
    ]
    with running_ingest(settings_for(db_url, broker.url)):
        pub = publisher(broker.port)
        publish_all(pub, [(t, dumps(weighing(i))) for i, t in enumerate(topics)])
        wait_for(lambda: len(_quarantine(db_url)) == len(topics), timeout=30)
        pub.loop_stop()
    rows = _quarantine(db_url)
    assert sorted(r[0] for r in rows) == sorted(topics)
    assert all("topic must be pisman/v1/<site_id>/<device_id>/<kind>" in r[1] for r in rows)
    assert _stored(db_url) == 0


def test_empty_array_and_numbers_as_strings_are_quarantined_not_stored(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    bad = [
        b"[]",
        dumps(weighing(1) | {"net_kg": "12.5"}),
        dumps(weighing(2) | {"seq": "2"}),
        dumps(weighing(3) | {"ts": "1748779140"}),
        dumps(weighing(4, vehicle_plate="D 1\x00 AB")),
    ]
    with running_ingest(settings_for(db_url, broker.url)) as ingest:
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, b) for b in bad] + [(BANK, dumps(weighing(5)))])
        wait_for(lambda: len(_quarantine(db_url)) == len(bad), timeout=30)
        wait_for(lambda: _stored(db_url) == 1)
        pub.loop_stop()
        quarantined = ingest.metrics.quarantined._value.get()
    reasons = " | ".join(r[1] for r in _quarantine(db_url))
    for expected in (
        "empty array",
        "net_kg must be a JSON number, not a string",
        "seq: Input should be a valid integer",
        "ts must be an ISO-8601 string",
        "vehicle_plate must not contain control characters",
    ):
        assert expected in reasons
    assert "database refused" not in reasons  # validation caught the NUL, not PostgreSQL
    assert quarantined == len(bad)


def test_same_bad_message_redelivered_or_retained_is_one_row_with_a_count(
    db_url: str, broker: Mosquitto
) -> None:
    """Same topic + same bytes = one row, whether redelivered, retained or sent again by the
    device; times_seen counts the deliveries."""
    _seeded(db_url)
    bad = dumps(weighing(1, material="kaca"))
    other = dumps(weighing(2, material="kaca"))
    settings = settings_for(db_url, broker.url)
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    with running_ingest(settings, client_id=client_id):
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, bad)] * 5 + [(BANK, other)])  # most likely one batch
        wait_for(lambda: sum(r[2] for r in _quarantine(db_url)) == 6, timeout=30)
        publish_all(pub, [(BANK, bad)] * 2)  # later batches
        wait_for(lambda: sum(r[2] for r in _quarantine(db_url)) == 8, timeout=30)
        retained = "pisman/v1/bank-1/scale-bank-1/status"
        pub.publish(retained, b"asleep", qos=1, retain=True).wait_for_publish(10)
        wait_for(lambda: len(_quarantine(db_url)) == 3, timeout=30)
    # A restarted ingest subscribes again: the broker hands it the retained message again.
    with running_ingest(settings, client_id=client_id):
        wait_for(lambda: [r[2] for r in _quarantine(db_url) if r[0] == retained] == [2], timeout=30)
    pub.loop_stop()
    with psycopg.connect(db_url) as conn:
        seen = {
            (topic, bytes(sha)): (times, first, last)
            for topic, sha, times, first, last in conn.execute(
                "SELECT topic, payload_sha256, times_seen, received_at, last_seen_at FROM quarantine"
            )
        }
    sha = {raw: hashlib.sha256(raw).digest() for raw in (bad, other, b"asleep")}
    assert {key: v[0] for key, v in seen.items()} == {
        (BANK, sha[bad]): 7,
        (BANK, sha[other]): 1,
        (retained, sha[b"asleep"]): 2,
    }
    _, first, last = seen[BANK, sha[bad]]
    assert last > first


def test_an_oversized_message_keeps_an_excerpt_its_size_and_hash_and_is_not_reprocessed(
    db_url: str, broker: Mosquitto
) -> None:
    _seeded(db_url)
    batch = [weighing(i, vehicle_plate="D 1234 AB") for i in range(1500)]  # ~170 KB
    big = dumps(batch)
    assert QUARANTINE_KEEP_BYTES < len(big) < 262_144
    settings = settings_for(db_url, broker.url, INGEST_MAX_MESSAGE_BYTES=100_000)
    with running_ingest(settings):
        pub = publisher(broker.port)
        publish_all(pub, [(BANK, big)])
        wait_for(lambda: len(_quarantine(db_url)) == 1, timeout=30)
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT reason, payload, payload_size, payload_sha256 FROM quarantine"
            ).fetchone()
            assert row is not None
            assert row[0] == f"message of {len(big)} bytes: the limit is 100000 bytes per message"
            assert bytes(row[1]) == big[:QUARANTINE_KEEP_BYTES]
            assert row[2] == len(big)
            assert bytes(row[3]) == hashlib.sha256(big).digest()
            conn.execute("UPDATE quarantine SET status = 'retry'")  # what the API's retry does
        wait_for(lambda: scalar(db_url, "SELECT status FROM quarantine") == "discarded", timeout=30)
        pub.loop_stop()
    resolution = scalar(db_url, "SELECT resolution FROM quarantine")
    assert resolution == (
        f"cannot reprocess: only the first {QUARANTINE_KEEP_BYTES} of {len(big)} bytes were kept"
    )
    assert _stored(db_url) == 0


def test_too_many_readings_in_one_message_is_one_row(db_url: str, broker: Mosquitto) -> None:
    _seeded(db_url)
    with running_ingest(settings_for(db_url, broker.url, INGEST_MAX_READINGS=50)):
        pub = publisher(broker.port)
        publish_all(
            pub,
            [
                (BANK, dumps([weighing(i) for i in range(51)])),
                (BANK, dumps([weighing(100 + i) for i in range(50)])),
            ],
        )
        wait_for(lambda: _stored(db_url) == 50 and len(_quarantine(db_url)) == 1, timeout=30)
        pub.loop_stop()
    assert _quarantine(db_url)[0][1] == "51 readings in one message: the limit is 50 per message"


def test_quarantine_listing_stays_small_after_a_megabyte_payload(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 MB bad payload (with a 1 MB value the reason used to echo) is one short row."""
    from ingest.registry import load_snapshot
    from ingest.validate import now_utc
    from tests.support.api_seed import api_client
    from tests.support.api_seed import seed_city as seed_api_city

    with psycopg.connect(db_url) as conn:
        seed_api_city(conn)
        conn.commit()
        snapshot = load_snapshot(conn)
    huge = json.dumps(weighing(1, material="m" * 1_000_000)).encode()
    topic = "pisman/v1/nowhere/ghost/weighing"
    messages = []
    for raw in (huge, huge + b" ", b"[" + huge + b"]"):
        # As if the broker had no size limit and ingest's were raised to 10 MB.
        validated = validate_message(topic, raw, snapshot, now_utc(), max_message_bytes=10**7)
        messages.append(Incoming(topic, raw, False, validated))
    writer = Writer(db_url)
    assert writer.commit(messages) is not None
    writer.close()
    with api_client(db_url, monkeypatch, role="admin") as (client, _):
        response = client.get("/v1/quarantine", params={"limit": 5})
    assert response.status_code == 200
    assert len(response.content) < 40_000, len(response.content)
    rows = response.json()
    assert len(rows) == 3
    assert all(len(r["reason"]) <= 500 for r in rows)
    assert all(r["payload_bytes"] > 1_000_000 and r["times_seen"] == 1 for r in rows)
    assert all(len(r["payload"]) <= 4000 for r in rows)
    with psycopg.connect(db_url) as conn:
        sizes = conn.execute(
            "SELECT length(payload), payload_size FROM quarantine ORDER BY payload_size"
        ).fetchall()
    assert [kept for kept, _ in sizes] == [QUARANTINE_KEEP_BYTES] * 3
    assert all(size > 1_000_000 for _, size in sizes)


def test_upgrading_folds_repeated_quarantine_rows_into_one_with_a_count(
    empty_db_url: str, tmp_path: Path
) -> None:
    """sql/022 on a database that already holds repeats (ingest restarts before the fix)."""
    from pisman import db
    from pisman.settings import PROJECT_ROOT

    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    for path in sorted((PROJECT_ROOT / "sql").glob("*.sql")):
        if path.name < "022":
            shutil.copy(path, sql_dir)
    db.migrate(empty_db_url, sql_dir)
    with psycopg.connect(empty_db_url) as conn:
        for topic, payload, at in (
            ("t/a", b"bad", "2025-06-01T00:00:00Z"),
            ("t/a", b"bad", "2025-06-01T00:05:00Z"),
            ("t/a", b"bad", "2025-06-01T00:09:00Z"),
            ("t/b", b"bad", "2025-06-01T00:01:00Z"),
            ("t/a", b"other", "2025-06-01T00:02:00Z"),
        ):
            conn.execute(
                "INSERT INTO quarantine (topic, payload, reason, received_at)"
                " VALUES (%s, %s, 'r', %s)",
                (topic, payload, at),
            )
    for path in sorted((PROJECT_ROOT / "sql").glob("*.sql")):
        if path.name >= "022":
            shutil.copy(path, sql_dir)
    db.migrate(empty_db_url, sql_dir)
    with psycopg.connect(empty_db_url) as conn:
        rows = conn.execute(
            "SELECT topic, payload, times_seen, received_at = '2025-06-01T00:00:00Z',"
            " last_seen_at = '2025-06-01T00:09:00Z', payload_size, payload_sha256"
            " FROM quarantine ORDER BY quarantine_id"
        ).fetchall()
    assert [(r[0], bytes(r[1]), r[2]) for r in rows] == [
        ("t/a", b"bad", 3),
        ("t/b", b"bad", 1),
        ("t/a", b"other", 1),
    ]
    assert rows[0][3] and rows[0][4]
    assert [(r[5], bytes(r[6])) for r in rows] == [
        (len(p), hashlib.sha256(p).digest()) for p in (b"bad", b"bad", b"other")
    ]
