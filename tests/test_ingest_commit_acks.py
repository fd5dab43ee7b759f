"""Commit acks: a device hears which readings are stored (or quarantined, with a code) only after
the commit, on its own ack topic, which no one else reads and it cannot write."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from ingest.acks import epoch_ms, expand_runs, message_digest, reason_code, runs
from pisman import db, devices
from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port
from tests.support.databases import Backend, lock_waiters
from tests.support.ingest_world import (
    PASSWORD,
    dumps,
    running_ingest,
    scalar,
    seed_city,
    settings_for,
    wait_for,
    weighing,
)
from tests.support.pgcluster import PG_BIN, PrivatePostgres

INGEST = "pisman-ingest-1"
INGEST_PASSWORD = "ingest-pw"
GATEWAY = "field-gateway"
SCALE = ("bank-1", "scale-bank-1")
OTHER = ("depot-1", "scale-depot-1")
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def topic(device: tuple[str, str], kind: str) -> str:
    """A device's topic of one kind."""
    return f"pisman/v1/{device[0]}/{device[1]}/{kind}"


@dataclass
class World:
    db_url: str
    broker: Mosquitto

    def ingest_settings(self, **extra: Any) -> Any:
        url = f"mqtt://{INGEST}:{INGEST_PASSWORD}@127.0.0.1:{self.broker.port}"
        return settings_for(self.db_url, url, **extra)


def _world(db_url: str, tmp_path: Path) -> Iterator[World]:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        devices.set_service_account(conn, username=INGEST, role="ingest", password=INGEST_PASSWORD)
        devices.set_service_account(conn, username=GATEWAY, role="gateway", password=PASSWORD)
        conn.commit()
        devices.write_broker_files(
            conn, password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
        )
    broker = Mosquitto(
        tmp_path, port=free_port(), password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
    )
    broker.start()
    try:
        yield World(db_url, broker)
    finally:
        broker.stop()


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """The seeded registry and a broker enforcing the generated password and ACL files."""
    yield from _world(db_url, tmp_path)


@pytest.fixture
def private_world(backend: Backend, tmp_path: Path) -> Iterator[tuple[World, PrivatePostgres]]:
    """The same on a PostgreSQL cluster of our own, to stop and start."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    pg = PrivatePostgres(timescaledb=backend.is_timescaledb)
    try:
        pg.init()
        db.ensure_database(pg.url)
        db.migrate(pg.url, PROJECT_ROOT / "sql")
        for world in _world(pg.url, tmp_path):
            yield world, pg
    finally:
        pg.destroy()


class Device:
    """A device account on MQTT 5: publishes, and collects what arrives on what it subscribed."""

    def __init__(
        self,
        port: int,
        device: tuple[str, str],
        subscribe: str | None = None,
        *,
        username: str | None = None,
    ) -> None:
        self.device = device
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.suback: list[int] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        user = username or device[1]
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        c.username_pw_set(user, PASSWORD)
        want = subscribe or topic(device, "ack")

        def on_connect(cl: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            cl.subscribe(want, qos=1)

        def on_subscribe(cl: mqtt.Client, u: Any, mid: int, codes: Any, p: Any) -> None:
            self.suback.extend(int(rc.value) for rc in codes)
            ready.set()

        def on_message(cl: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.received.append((msg.topic, json.loads(msg.payload)))

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(10), "no SUBACK"
        self.client = c

    def publish(self, kind: str, payload: bytes) -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        codes: list[int] = []
        done = threading.Event()

        def on_publish(cl: mqtt.Client, u: Any, mid: int, rc: Any, p: Any) -> None:
            codes.append(int(rc.value))
            done.set()

        self.client.on_publish = on_publish
        self.client.publish(topic(self.device, kind), payload, qos=1)
        assert done.wait(10), "no PUBACK"
        return codes[0]

    def acks(self) -> list[dict[str, Any]]:
        """Every ack received so far, decoded."""
        with self.lock:
            return [body for _, body in self.received]

    def stored_keys(self) -> set[tuple[int, int]]:
        """The (seq, ts_ms) keys all "ok" runs received so far name."""
        return {k for body in self.acks() for k in expand_runs(body.get("ok", []))}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the ack format --------------------------------------------------------------------------


@given(
    st.sets(
        st.tuples(st.integers(0, 3000), st.integers(946_684_800_000, 4_102_444_800_000)),
        max_size=200,
    )
)
def test_ack_runs_name_exactly_the_committed_keys(keys: set[tuple[int, int]]) -> None:
    assert expand_runs(runs(keys)) == keys


def test_a_seq_restarted_after_a_reboot_is_acknowledged_only_at_its_own_time() -> None:
    before = {(s, epoch_ms(T0) + s * 60_000) for s in range(1, 6)}
    after = {(s, epoch_ms(T0 + timedelta(hours=2)) + s * 60_000) for s in range(1, 3)}
    encoded = runs(after)
    assert expand_runs(encoded) == after
    assert not expand_runs(encoded) & before  # the pending seq 1..2 of the old boot stay pending
    assert len(json.dumps(runs(before | after), separators=(",", ":"))) < 100


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("unknown device 'x'", "unknown_device"),
        ("device 'a' belongs to site 'b', not 'c'", "wrong_site"),
        ("device 'a' is deactivated", "deactivated"),
        ("a bin_sensor does not send weighing messages", "wrong_kind"),
        ("message of 300000 bytes: the limit is 262144 bytes per message", "too_large"),
        ("2000 readings in one message: the limit is 1000 per message", "too_many"),
        ("empty array: a batch must hold at least one reading", "empty"),
        ("not valid JSON: Expecting value", "not_json"),
        ("timestamp 2030-01-01T00:00:00+00:00 is more than 300 s in the future", "future_ts"),
        ("timestamp 1999-01-01T00:00:00+00:00 is before 2000: the device clock", "clock_unset"),
        ("net_kg is missing", "invalid"),
        (
            "reading 2 of 5: timestamp 2030-01-01T00:00:00+00:00 is more than 300 s in the future",
            "future_ts",
        ),
        ("unknown material 'not valid JSON' (expected 'food', …)", "invalid"),
        ("database refused the message: value too long", "db_refused"),
    ],
)
def test_every_reason_class_has_its_short_code(reason: str, code: str) -> None:
    assert reason_code(reason) == code


def test_the_reasons_validation_actually_gives_map_to_their_codes() -> None:
    """The codes follow validate.py's own wording: a reworded reason fails here, not in the field."""
    from ingest.registry import KnownDevice, RegistrySnapshot
    from ingest.validate import validate_message

    registry = RegistrySnapshot(
        {
            "s1": KnownDevice("s1", "c", "a", "platform_scale", True),
            "off": KnownDevice("off", "c", "a", "platform_scale", False),
            "b1": KnownDevice("b1", "c", "a", "bin_sensor", True),
        },
        {"a": "c"},
    )
    now = T0 + timedelta(days=1)
    ok = weighing(1, ts=T0)
    cases = {
        ("a", "ghost", "weighing", dumps(ok)): "unknown_device",
        ("z", "s1", "weighing", dumps(ok)): "wrong_site",
        ("a", "off", "weighing", dumps(ok)): "deactivated",
        ("a", "b1", "weighing", dumps(ok)): "wrong_kind",
        ("a", "s1", "weighing", b" " * 300_000): "too_large",
        ("a", "s1", "weighing", dumps([ok] * 1001)): "too_many",
        ("a", "s1", "weighing", b"[]"): "empty",
        ("a", "s1", "weighing", b'{"seq": 1, "ts": '): "not_json",
        ("a", "s1", "weighing", dumps(weighing(1, ts=now + timedelta(hours=1)))): "future_ts",
        ("a", "s1", "weighing", dumps(weighing(1, ts=datetime(1999, 1, 1, tzinfo=UTC)))): (
            "clock_unset"
        ),
        ("a", "s1", "weighing", dumps(weighing(1, ts=T0, material="banana"))): "invalid",
        ("a", "s1", "status", b"sleepy"): "bad_status",
    }
    for (site, device, kind, payload), code in cases.items():
        validated = validate_message(f"pisman/v1/{site}/{device}/{kind}", payload, registry, now)
        assert [reason_code(r.reason) for r in validated.rejections] == [code], (
            code,
            validated.rejections[0].reason[:120] if validated.rejections else None,
        )


# --- through the broker ----------------------------------------------------------------------


def test_stored_and_quarantined_readings_are_acknowledged_to_their_device_only(
    world: World,
) -> None:
    good = [weighing(s, ts=T0 + timedelta(minutes=s)) for s in (10, 11, 12)]
    bad_value = weighing(13, ts=T0, material="banana")
    not_json = b'{"ts": "2026-11-20T08:00:00Z", "seq": 14, "net_'
    scale = Device(world.broker.port, SCALE)
    other = Device(world.broker.port, OTHER)
    try:
        with running_ingest(world.ingest_settings(), client_id=INGEST) as service:
            assert scale.publish("weighing", dumps(good)) == 0
            assert scale.publish("weighing", dumps(bad_value)) == 0
            assert scale.publish("weighing", not_json) == 0
            want = {(r["seq"], epoch_ms(datetime.fromisoformat(r["ts"]))) for r in good}
            wait_for(lambda: scale.stored_keys() == want, timeout=30, what="ok acks")
            wait_for(
                lambda: len([b for a in scale.acks() for b in a.get("bad", [])]) == 2,
                timeout=30,
                what="bad acks",
            )
            time.sleep(0.5)
            # Operators see the ack traffic: one ack per device per batch, as published.
            sent = service.metrics.registry.get_sample_value("pisman_ingest_commit_acks_total")
            assert sent == len(scale.acks())
        bad = sorted((b for a in scale.acks() for b in a.get("bad", [])), key=str)
        assert ["invalid", 13, epoch_ms(T0), message_digest(dumps(bad_value))] in bad
        assert ["not_json", None, None, message_digest(not_json)] in bad
        assert other.acks() == []  # another device hears nothing of it
        # Ingest read its own acks on pisman/v1/# and neither stored nor quarantined them.
        assert scalar(world.db_url, "SELECT count(*) FROM quarantine") == 2
        assert scalar(world.db_url, "SELECT count(*) FROM weighing") == 3
    finally:
        scale.close()
        other.close()


def test_an_ack_arrives_only_after_the_commit(world: World) -> None:
    scale = Device(world.broker.port, SCALE)
    blocker = psycopg.connect(world.db_url)
    try:
        with running_ingest(world.ingest_settings(), client_id=INGEST):
            # The database cannot take the reading: the batch waits on the table lock.
            blocker.execute("LOCK TABLE weighing IN ACCESS EXCLUSIVE MODE")
            assert scale.publish("weighing", dumps(weighing(1, ts=T0))) == 0
            # Ingest's write waits on the lock: its transaction cannot commit. Then give an
            # ack that would come too early time to arrive.
            wait_for(
                lambda: lock_waiters(world.db_url) >= 1, timeout=30, what="ingest's write blocked"
            )
            time.sleep(0.5)
            assert scale.acks() == [], "acknowledged before the reading was committed"
            blocker.rollback()  # the database is back
            wait_for(lambda: scale.stored_keys() == {(1, epoch_ms(T0))}, timeout=30)
            assert scalar(world.db_url, "SELECT count(*) FROM weighing") == 1
    finally:
        blocker.close()
        scale.close()


def test_no_ack_while_the_database_is_down_and_the_ack_once_it_is_back(
    private_world: tuple[World, PrivatePostgres],
) -> None:
    world, pg = private_world
    scale = Device(world.broker.port, SCALE)
    try:
        with running_ingest(world.ingest_settings(), client_id=INGEST) as ingest:
            pg.stop("immediate")
            try:
                assert scale.publish("weighing", dumps(weighing(1, ts=T0))) == 0
                # Ingest took the message into a batch and its write failed: it holds the
                # batch and retries. Then time for a few retries and for an early ack.
                sample = ingest.metrics.registry.get_sample_value
                wait_for(
                    lambda: (
                        sample("pisman_ingest_messages_received_total") == 1
                        and sample("pisman_ingest_database_connected") == 0
                    ),
                    timeout=30,
                    what="ingest's write failing while the database is down",
                )
                time.sleep(1.5)
                assert scale.acks() == [], "acknowledged while the database was down"
            finally:
                pg.start()
            wait_for(lambda: scale.stored_keys() == {(1, epoch_ms(T0))}, timeout=60)
        assert scalar(world.db_url, "SELECT count(*) FROM weighing") == 1
    finally:
        scale.close()


def test_readings_of_a_rebooted_device_with_restarted_seq_are_each_acknowledged(
    world: World,
) -> None:
    first_boot = [weighing(s, ts=T0 + timedelta(minutes=s)) for s in (1, 2, 3)]
    second_boot = [weighing(s, ts=T0 + timedelta(hours=3, minutes=s)) for s in (1, 2)]
    scale = Device(world.broker.port, SCALE)
    try:
        with running_ingest(world.ingest_settings(), client_id=INGEST):
            assert scale.publish("weighing", dumps(first_boot + second_boot)) == 0
            want = {
                (r["seq"], epoch_ms(datetime.fromisoformat(r["ts"])))
                for r in first_boot + second_boot
            }
            wait_for(lambda: scale.stored_keys() == want, timeout=30)
        assert scalar(world.db_url, "SELECT count(*) FROM weighing") == 5
    finally:
        scale.close()


def test_a_device_cannot_forge_its_acks_nor_read_another_devices(world: World) -> None:
    spy = Device(world.broker.port, SCALE, subscribe=topic(OTHER, "ack"))
    other = Device(world.broker.port, OTHER)
    try:
        with running_ingest(world.ingest_settings(), client_id=INGEST):
            not_authorized = 0x87
            assert spy.publish("ack", b'{"ok": [[1, 0]]}') == not_authorized
            assert other.publish("weighing", dumps(weighing(5, ts=T0))) == 0
            wait_for(lambda: other.stored_keys() == {(5, epoch_ms(T0))}, timeout=30)
            time.sleep(0.5)
        assert spy.acks() == []
        assert scalar(world.db_url, "SELECT count(*) FROM quarantine") == 0
    finally:
        spy.close()
        other.close()


def test_acks_can_be_switched_off(world: World) -> None:
    scale = Device(world.broker.port, SCALE)
    try:
        settings = world.ingest_settings(INGEST_COMMIT_ACKS=False)
        with running_ingest(settings, client_id=INGEST):
            assert scale.publish("weighing", dumps(weighing(1, ts=T0))) == 0
            wait_for(lambda: scalar(world.db_url, "SELECT count(*) FROM weighing") == 1)
            time.sleep(0.5)
        assert scale.acks() == []
    finally:
        scale.close()


def test_a_message_the_database_refuses_is_acknowledged_as_quarantined_not_stored(
    db_url: str,
) -> None:
    """The ack reports what was committed: a reading validation let through but a constraint
    refused went to quarantine, and its device hears so (db_refused), not "stored"."""
    from decimal import Decimal

    from ingest.acks import build_acks
    from ingest.registry import load_snapshot
    from ingest.validate import now_utc, validate_message
    from ingest.writer import Incoming, Writer

    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        snapshot = load_snapshot(conn)
    where = topic(SCALE, "weighing")
    messages = []
    for seq in (1, 2):
        raw = dumps(weighing(seq, ts=T0 + timedelta(minutes=seq)))
        messages.append(
            Incoming(where, raw, False, validate_message(where, raw, snapshot, now_utc()))
        )
    # A bug in validation, simulated: an impossible mass reaches the database.
    bad = messages[1].validated.weighings[0]._replace(net_kg=Decimal(-5))
    messages[1].validated.weighings[0] = bad
    writer = Writer(db_url)
    outcome = writer.commit(messages)
    writer.close()
    assert outcome is not None and outcome.rejected_by_database == 1
    [(ack_to, payload)] = build_acks((m.topic, m.payload, m.validated) for m in outcome.written)
    body = json.loads(payload)
    assert ack_to == topic(SCALE, "ack")
    assert expand_runs(body["ok"]) == {(1, epoch_ms(T0 + timedelta(minutes=1)))}
    assert [b[0] for b in body["bad"]] == ["db_refused"]
    assert body["bad"][0][3] == message_digest(messages[1].payload)


def test_a_shared_group_worker_skips_the_acks_it_receives_without_quarantining_them(
    world: World,
) -> None:
    """MQTT 5 forbids No Local on a shared subscription: the acks come back to the group."""
    scale = Device(world.broker.port, SCALE)
    try:
        settings = world.ingest_settings(INGEST_SHARE_GROUP="workers", INGEST_CLIENT_ID=INGEST)
        with running_ingest(settings, client_id=INGEST, share_group="workers") as ingest:
            for seq in range(1, 6):
                assert scale.publish("weighing", dumps(weighing(seq, ts=T0))) == 0
            wait_for(lambda: len(scale.stored_keys()) == 5, timeout=30)
            time.sleep(1)
            assert ingest.metrics.messages._value.get() == 5
        assert scalar(world.db_url, "SELECT count(*) FROM quarantine") == 0
    finally:
        scale.close()


def test_a_gateway_publishes_for_its_devices_and_reads_their_acks_but_cannot_forge_one(
    world: World,
) -> None:
    gateway = Device(world.broker.port, SCALE, "pisman/v1/+/+/ack", username=GATEWAY)
    try:
        with running_ingest(world.ingest_settings(), client_id=INGEST):
            not_authorized = 0x87
            assert gateway.publish("ack", b'{"ok": [[1, 0]]}') == not_authorized
            assert gateway.publish("weighing", dumps(weighing(7, ts=T0))) == 0
            wait_for(lambda: gateway.stored_keys() == {(7, epoch_ms(T0))}, timeout=30)
        assert [t for t, _ in gateway.received] == [topic(SCALE, "ack")]
    finally:
        gateway.close()
