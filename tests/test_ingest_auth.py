"""Device authentication: provisioned credentials, generated broker files, per-device topic ACLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pisman import devices
from pisman.cli import main
from tests.support.broker import Mosquitto, free_port
from tests.support.ingest_world import (
    PASSWORD,
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

OWN = "pisman/v1/bank-1/scale-bank-1/weighing"
OTHER = "pisman/v1/depot-1/scale-depot-1/weighing"


@pytest.fixture
def secured(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Mosquitto]]:
    """A seeded registry with service accounts, and a broker that enforces its generated files."""
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        devices.set_service_account(conn, username="ingest", role="ingest", password="ingest-pw")
        devices.set_service_account(conn, username="gateway", role="gateway", password="gateway-pw")
        devices.write_broker_files(
            conn, password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
        )
    broker = Mosquitto(
        tmp_path, port=free_port(), password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
    )
    broker.start()
    yield db_url, broker
    broker.stop()


def test_device_publishes_only_under_its_own_topics_and_ingest_reads_all(
    secured: tuple[str, Mosquitto],
) -> None:
    db_url, broker = secured
    ingest_url = f"mqtt://ingest:ingest-pw@127.0.0.1:{broker.port}"
    with running_ingest(settings_for(db_url, ingest_url)):
        device = publisher(broker.port, username="scale-bank-1", password=PASSWORD)
        publish_all(
            device, [(OTHER, dumps(weighing(1, net_kg=999)))]
        )  # another device's topic: denied
        publish_all(device, [(OWN, dumps(weighing(2, net_kg=5)))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 1)
    assert scalar(db_url, "SELECT device_id FROM weighing") == "scale-bank-1"
    assert (
        scalar(db_url, "SELECT count(*) FROM quarantine") == 0
    )  # the broker dropped it, ingest never saw it


def test_wrong_password_and_unknown_user_are_refused_by_the_broker(
    secured: tuple[str, Mosquitto],
) -> None:
    _, broker = secured
    with pytest.raises(RuntimeError):
        publisher(broker.port, username="scale-bank-1", password="guess")
    with pytest.raises(RuntimeError):
        publisher(broker.port, username="nobody", password=PASSWORD)
    with pytest.raises(RuntimeError):
        publisher(broker.port)  # anonymous


def test_gateway_publishing_for_a_device_at_another_site_is_quarantined(
    secured: tuple[str, Mosquitto],
) -> None:
    db_url, broker = secured
    with running_ingest(settings_for(db_url, f"mqtt://ingest:ingest-pw@127.0.0.1:{broker.port}")):
        gateway = publisher(broker.port, username="gateway", password="gateway-pw")
        publish_all(
            gateway,
            [
                ("pisman/v1/tpa-1/scale-bank-1/weighing", dumps(weighing(1))),
                (OWN, dumps(weighing(2))),
            ],
        )
        wait_for(
            lambda: (
                scalar(db_url, "SELECT count(*) FROM quarantine") == 1
                and scalar(db_url, "SELECT count(*) FROM weighing") == 1
            )
        )
    assert "belongs to site 'bank-1', not 'tpa-1'" in scalar(
        db_url, "SELECT reason FROM quarantine"
    )


def test_ingest_with_wrong_credentials_exits_with_one_line(secured: tuple[str, Mosquitto]) -> None:
    from ingest.client import BrokerUnavailable
    from ingest.service import IngestOptions, IngestService

    db_url, broker = secured
    settings = settings_for(db_url, f"mqtt://ingest:wrong@127.0.0.1:{broker.port}")
    service = IngestService(settings, IngestOptions.from_settings(settings))
    with pytest.raises(BrokerUnavailable, match="refused ingest"):
        service.start()
    service.writer.close()


def test_devices_add_prints_the_password_once_and_stores_only_a_hash(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MOSQUITTO_PASSWORD_FILE", str(tmp_path / "passwd"))
    monkeypatch.setenv("MOSQUITTO_ACL_FILE", str(tmp_path / "acl"))
    assert main(["devices", "add", "scale-9", "--site", "depot-1", "--kind", "platform_scale"]) == 0
    out = capsys.readouterr().out
    password = next(
        line.split(":", 1)[1].split()[0] for line in out.splitlines() if "MQTT password" in line
    )
    stored = scalar(db_url, "SELECT password_hash FROM device WHERE device_id = 'scale-9'")
    assert password not in stored and stored.startswith("$7$")
    assert devices.verify_password(password, stored)
    # The generated files let the new device in (proves the hash format is Mosquitto's).
    assert "scale-9:$7$" in (tmp_path / "passwd").read_text()
    acl = (tmp_path / "acl").read_text()
    assert "topic write pisman/v1/depot-1/scale-9/weighing" in acl
    assert "topic read pisman/v1/depot-1/scale-9/ack" in acl
    broker = Mosquitto(
        tmp_path, port=free_port(), password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
    )
    broker.start()
    try:
        client = publisher(broker.port, username="scale-9", password=password)
        client.disconnect()
        client.loop_stop()
    finally:
        broker.stop()
