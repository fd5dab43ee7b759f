"""Fuzzing ingest through a real broker: whatever devices publish, ingest stays up and every
message ends stored, quarantined, ignored by design (an empty status) or refused by the broker
with a PUBACK reason code: counted, none lost."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ingest.registry import load_snapshot
from ingest.validate import validate_message
from pisman import devices
from tests.support.broker import Mosquitto, free_port
from tests.support.ingest_world import (
    PASSWORD,
    publisher,
    running_ingest,
    seed_city,
    settings_for,
    wait_for,
)

MAX_MESSAGE_BYTES = 20_000  # ingest's limit, low so that oversized messages are cheap to make
SCALE = ("bank-1", "scale-bank-1")
BIN = ("depot-1", "bin-depot-1")
OTHER_DEVICE_TOPIC = "pisman/v1/depot-1/scale-depot-1/weighing"  # the ACL refuses it

# Topic text the broker takes: no wildcards, no NUL or control characters (malformed UTF-8 for
# MQTT: the broker closes the connection), no surrogates or non-characters.
level = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co"), blacklist_characters="+#/"),
    max_size=12,
)
suffix = st.lists(level, min_size=0, max_size=4).map(lambda levels: "/".join(levels))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±Infinity become NaN/Infinity literals
    | st.text(max_size=10)  # any unicode, NUL included
    | st.sampled_from(["12.5", "1748779140", "2025-06-01T11:59:00Z", "plastic", "deposit", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def _reading(kind: str, seq: int, day: int, fields: dict[str, Any]) -> dict[str, Any]:
    ts = datetime(2025, 5, 1 + day, 8, seq % 60, tzinfo=UTC).isoformat()
    base: dict[str, Any] = (
        {"ts": ts, "seq": seq, "net_kg": 12.5, "material": "plastic", "stream": "deposit"}
        if kind == "weighing"
        else {"ts": ts, "seq": seq, "fill_pct": 40}
    )
    return {**base, **fields}


def readings(kind: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid readings of a kind, half of them with a field or two replaced by anything."""
    return st.builds(
        _reading,
        kind,
        st.integers(0, 2**63 - 1) | st.integers(0, 50),
        st.integers(0, 29),
        st.just({})
        | st.dictionaries(
            st.sampled_from(["ts", "seq", "net_kg", "vehicle_plate", "fill_pct", "material", "x"]),
            json_values,
            max_size=2,
        ),
    )


def _encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(_encoded),
    readings(st.sampled_from(["weighing", "bin"])).map(_encoded),
    st.lists(readings(st.sampled_from(["weighing", "bin"])), max_size=6).map(_encoded),
    st.sampled_from([b"online", b"offline", b"", b"[]", b'{"status": "online"}']),
    st.integers(4_000, 6_000).map(lambda n: b'{"seq": ' + b"9" * n + b"}"),  # poison integer
    st.integers(1, 3_000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.integers(MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES + 5_000).map(lambda n: b" " * n),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[int, str, bytes]:
    """(publishing device index, topic, payload)."""
    device = draw(st.sampled_from([0, 1]))
    site, device_id = (SCALE, BIN)[device]
    kind = ("weighing", "bin")[device]
    own = f"pisman/v1/{site}/{device_id}"
    right = f"{own}/{kind}"
    topic = draw(
        st.one_of(
            st.just(right),
            st.just(right),
            st.sampled_from([f"{own}/weighing", f"{own}/bin", f"{own}/status"]),
            suffix.map(lambda s: f"{own}/{s}" if s else own),
            st.just(OTHER_DEVICE_TOPIC),
            suffix.map(lambda s: f"pisman/v1/{s}"),
        )
    )
    if topic == right:
        mostly_readings = st.one_of(
            readings(st.just(kind)).map(_encoded),
            st.lists(readings(st.just(kind)), min_size=1, max_size=6).map(_encoded),
            payloads,
        )
        return device, topic, draw(mostly_readings)
    return device, topic, draw(payloads)


@dataclass
class Expected:
    """What ingest must have done with everything the broker accepted so far."""

    readings: int = 0  # stored or counted as duplicates in device_state
    rejections: int = 0  # sum of quarantine.times_seen
    accepted: int = 0
    refused: int = 0


class Publisher:
    """A device's MQTT connection that records each PUBACK's reason code."""

    def __init__(self, port: int, username: str) -> None:
        self.codes: dict[int, int] = {}
        self.acked = threading.Condition()
        self.client = publisher(port, username=username, password=PASSWORD)
        self.client.on_publish = self._on_publish

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self.acked:
            self.codes[mid] = rc.value
            self.acked.notify_all()

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1 and return the broker's reason code (0 or 16 accepted, >= 128 refused)."""
        info = self.client.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.codes, timeout=30), topic
            return self.codes.pop(info.mid)


@pytest.fixture
def secured(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Mosquitto]]:
    """A seeded registry and a broker enforcing the generated password and ACL files."""
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        devices.set_service_account(conn, username="ingest", role="ingest", password="ingest-pw")
        devices.write_broker_files(
            conn, password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
        )
    broker = Mosquitto(
        tmp_path, port=free_port(), password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
    )
    broker.start()
    yield db_url, broker
    broker.stop()


def _totals(db_url: str) -> tuple[int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT COALESCE(sum(readings_total + duplicates_total), 0) FROM device_state),"
            " (SELECT COALESCE(sum(times_seen), 0) FROM quarantine)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_whatever_devices_publish_ends_stored_quarantined_or_refused_and_ingest_stays_up(
    secured: tuple[str, Mosquitto],
) -> None:
    db_url, broker = secured
    with psycopg.connect(db_url) as conn:
        snapshot = load_snapshot(conn)
    ingest_settings = settings_for(
        db_url,
        f"mqtt://ingest:ingest-pw@127.0.0.1:{broker.port}",
        INGEST_MAX_MESSAGE_BYTES=MAX_MESSAGE_BYTES,
    )
    expected = Expected()
    with running_ingest(ingest_settings, client_id="ingest") as ingest:
        publishers = [Publisher(broker.port, SCALE[1]), Publisher(broker.port, BIN[1])]

        @settings(
            max_examples=60,
            deadline=None,
            phases=[
                Phase.explicit,
                Phase.reuse,
                Phase.generate,
            ],  # the state accumulates: no shrinking
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(messages(), min_size=1, max_size=6))
        def publish_and_account(batch: list[tuple[int, str, bytes]]) -> None:
            for device, topic, payload in batch:
                own = "pisman/v1/" + "/".join((SCALE, BIN)[device])
                code = publishers[device].publish(topic, payload)
                # The ACL: a device publishes its own message kinds under its own site and id.
                allowed = {f"{own}/{kind}" for kind in devices.DEVICE_WRITES}
                assert (code < 0x80) == (topic in allowed), (topic, code)
                if code >= 0x80:
                    expected.refused += 1
                    continue
                assert code == 0, f"accepted but no subscriber for {topic!r}: ingest missed it"
                expected.accepted += 1
                # What ingest must make of it: the same pure validation, same registry and limits.
                outcome = validate_message(
                    topic,
                    payload,
                    snapshot,
                    datetime.now(UTC),
                    max_message_bytes=MAX_MESSAGE_BYTES,
                )
                expected.readings += len(outcome.weighings) + len(outcome.bins)
                expected.rejections += len(outcome.rejections)
            want = (expected.readings, expected.rejections)
            wait_for(lambda: _totals(db_url) == want, timeout=30, what=f"totals {want}")
            assert not ingest.stop_event.is_set() and ingest.writer_error is None

        publish_and_account()
        for p in publishers:
            p.client.disconnect()
            p.client.loop_stop()
        wait_for(
            lambda: ingest.metrics.messages._value.get() == expected.accepted,
            what=f"{expected.accepted} messages committed",
        )
    assert expected.refused > 0 and expected.rejections > 0 and expected.readings > 0, expected
    with psycopg.connect(db_url) as conn:
        longest = conn.execute("SELECT COALESCE(max(length(reason)), 0) FROM quarantine").fetchone()
        refused_by_db = conn.execute(
            "SELECT count(*) FROM quarantine WHERE reason LIKE 'database refused%'"
        ).fetchone()
    assert longest is not None and longest[0] <= 500
    assert refused_by_db == (0,)  # validation, not PostgreSQL, caught every bad value
