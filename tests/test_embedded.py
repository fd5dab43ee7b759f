"""Embedded servers for `pisman up` on a machine with none configured."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pisman import db, devices
from pisman.embedded import EmbeddedBroker, start_embedded_postgres, stop_embedded_postgres
from pisman.settings import PROJECT_ROOT
from tests.support.broker import free_port


@pytest.mark.slow
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
    client.on_connect = lambda c, u, f, reason, p: result.setdefault("reason", reason)
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
