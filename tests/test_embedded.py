"""Embedded servers for `pisman up` on a machine with none configured."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pisman import db, devices
from pisman.embedded import (
    MESSAGE_SIZE_LIMIT,
    EmbeddedBroker,
    start_embedded_postgres,
    stop_embedded_postgres,
)
from pisman.settings import PROJECT_ROOT
from tests.support.broker import free_port


@pytest.mark.slow
@pytest.mark.backend(
    "postgresql", reason="the embedded server (pgserver) is plain PostgreSQL, without TimescaleDB"
)
def test_embedded_postgres_starts_takes_the_schema_and_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    url = start_embedded_postgres(data_dir)
    try:
        assert db.ensure_database(url) is True
        applied = db.migrate(url, PROJECT_ROOT / "sql")
        assert applied
        with psycopg.connect(url) as conn:
            assert db.storage_kind(conn) == "postgresql"
        # A second start reuses the running server and its data.
        assert start_embedded_postgres(data_dir) == url
        assert db.migrate(url, PROJECT_ROOT / "sql") == []
    finally:
        assert stop_embedded_postgres(data_dir)


def _connect(port: int, username: str, password: str) -> mqtt.ReasonCode | int:
    result: dict[str, object] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
        result.setdefault("reason", reason)

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    for _ in range(50):
        if "reason" in result:
            break
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    return result.get("reason", -1)  # type: ignore[return-value]


def test_embedded_broker_admits_only_registered_accounts(db_url: str, tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "mosquitto", free_port())
    with psycopg.connect(db_url) as conn:
        devices.set_service_account(
            conn, username="pisman-ingest", role="ingest", password="ingest-pw"
        )
        devices.write_broker_files(
            conn, password_file=broker.password_file, acl_file=broker.acl_file
        )
    broker.start()
    try:
        assert not _connect(broker.port, "pisman-ingest", "ingest-pw").is_failure  # type: ignore[union-attr]
        wrong = _connect(broker.port, "pisman-ingest", "not-the-password")
        assert wrong == -1 or wrong.is_failure  # type: ignore[union-attr]
    finally:
        broker.stop()


def test_embedded_broker_serves_devices_over_tls_on_localhost_with_the_generated_ca(
    db_url: str, tmp_path: Path
) -> None:
    broker = EmbeddedBroker(tmp_path / "mosquitto", free_port(), tls_port=free_port())
    with psycopg.connect(db_url) as conn:
        devices.set_service_account(conn, username="gw", role="gateway", password="gw-pw")
        devices.write_broker_files(
            conn, password_file=broker.password_file, acl_file=broker.acl_file
        )
    broker.start()
    try:
        conf = broker.config_text().splitlines()
        assert f"listener {broker.tls_port} 127.0.0.1" in conf  # loopback unless told otherwise
        assert conf.count("use_username_as_clientid true") == 2  # on both listeners
        assert f"message_size_limit {MESSAGE_SIZE_LIMIT}" in conf
        assert broker.certs.ca_file.exists()
        answered = threading.Event()
        reasons: list[object] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw", protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=str(broker.certs.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        client.username_pw_set("gw", "gw-pw")

        def on_connect(c: mqtt.Client, u: object, f: object, reason: object, p: object) -> None:
            reasons.append(reason)
            answered.set()

        client.on_connect = on_connect
        assert broker.tls_port is not None
        client.connect("127.0.0.1", broker.tls_port)
        client.loop_start()
        assert answered.wait(10)
        client.disconnect()
        client.loop_stop()
        assert not reasons[0].is_failure  # type: ignore[attr-defined]
    finally:
        broker.stop()
