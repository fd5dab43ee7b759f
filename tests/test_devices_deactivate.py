"""`pisman devices deactivate` / `activate`: the broker shuts the device out, ingest quarantines."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

DEVICE = "scale-bank-1"
TOPIC = f"pisman/v1/bank-1/{DEVICE}/weighing"
INGEST_ID = "ingest-deactivate-test"


@pytest.fixture
def registry_broker(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Mosquitto]]:
    """A seeded registry and a broker enforcing the files `pisman devices` writes and reloads."""
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Mosquitto(
        folder, port=free_port(), password_file=folder / "passwd", acl_file=folder / "acl"
    )
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        devices.set_service_account(conn, username=INGEST_ID, role="ingest", password="ingest-pw")
        devices.set_service_account(conn, username="gateway", role="gateway", password="gw-pw")
        devices.write_broker_files(conn, password_file=folder / "passwd", acl_file=folder / "acl")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MOSQUITTO_PASSWORD_FILE", str(folder / "passwd"))
    monkeypatch.setenv("MOSQUITTO_ACL_FILE", str(folder / "acl"))
    monkeypatch.setenv("MOSQUITTO_PID_FILE", str(broker.pid_file))
    broker.start()
    yield db_url, broker
    broker.stop()


def _watch_disconnect(client: Any) -> threading.Event:
    gone = threading.Event()
    client.on_disconnect = lambda *args: gone.set()
    return gone


def test_deactivated_device_is_refused_by_the_broker_and_its_queued_readings_are_quarantined(
    registry_broker: tuple[str, Mosquitto], capsys: pytest.CaptureFixture[str]
) -> None:
    db_url, broker = registry_broker
    ingest_settings = settings_for(db_url, f"mqtt://{INGEST_ID}:ingest-pw@127.0.0.1:{broker.port}")
    device = publisher(broker.port, username=DEVICE, password=PASSWORD, client_id=DEVICE)
    with running_ingest(ingest_settings, client_id=INGEST_ID):
        publish_all(device, [(TOPIC, dumps(weighing(1, net_kg=10)))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 1, what="stored")

    # Ingest is away: what the device sends now waits in ingest's session on the broker.
    publish_all(device, [(TOPIC, dumps(weighing(seq, net_kg=10))) for seq in (2, 3, 4)])
    disconnected = _watch_disconnect(device)

    assert main(["devices", "deactivate", DEVICE]) == 0
    out = capsys.readouterr().out
    assert "deactivated" in out and "broker reloaded" in out, out
    assert DEVICE not in (broker.folder / "passwd").read_text()
    assert DEVICE not in (broker.folder / "acl").read_text()
    assert scalar(db_url, "SELECT active FROM device WHERE device_id = %s", (DEVICE,)) is False

    # The reloaded broker drops its connection and refuses a new one.
    assert disconnected.wait(10), broker.log_text()
    device.loop_stop()
    with pytest.raises(RuntimeError, match=r"[Nn]ot authori[sz]ed|[Bb]ad user name or password"):
        publisher(broker.port, username=DEVICE, password=PASSWORD, client_id=DEVICE)

    # The queued readings reach ingest and are quarantined, each with the reason.
    with running_ingest(ingest_settings, client_id=INGEST_ID):
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM quarantine") == 3, what="3 quarantined"
        )
    assert scalar(db_url, "SELECT count(*) FROM weighing") == 1
    with psycopg.connect(db_url) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM quarantine")]
    assert reasons == [f"device {DEVICE!r} is deactivated"] * 3

    # Activated again: it connects with the same password and its readings are stored.
    assert main(["devices", "activate", DEVICE]) == 0
    assert "activated" in capsys.readouterr().out
    assert f"user {DEVICE}" in (broker.folder / "acl").read_text()
    back = wait_for(
        lambda: _try_publisher(broker.port), what="the device connects again after the reload"
    )
    with running_ingest(ingest_settings, client_id=INGEST_ID):
        publish_all(back, [(TOPIC, dumps(weighing(5, net_kg=10)))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 2, what="stored")
    back.loop_stop()
    back.disconnect()


def test_a_running_ingest_quarantines_a_device_within_seconds_of_its_deactivation(
    registry_broker: tuple[str, Mosquitto],
) -> None:
    db_url, broker = registry_broker
    ingest_settings = settings_for(db_url, f"mqtt://{INGEST_ID}:ingest-pw@127.0.0.1:{broker.port}")
    # A gateway account relays for the device, so its readings still reach the broker.
    gateway = publisher(broker.port, username="gateway", password="gw-pw")
    with running_ingest(ingest_settings, client_id=INGEST_ID):
        publish_all(gateway, [(TOPIC, dumps(weighing(1, net_kg=10)))])
        wait_for(lambda: scalar(db_url, "SELECT count(*) FROM weighing") == 1, what="stored")
        assert main(["devices", "deactivate", DEVICE]) == 0
        deactivated_at = time.monotonic()
        publish_all(gateway, [(TOPIC, dumps(weighing(2, net_kg=10)))])
        # Sent right away it may still be stored; keep sending until ingest has noticed.
        seq = 3
        while scalar(db_url, "SELECT count(*) FROM quarantine") == 0:
            assert time.monotonic() - deactivated_at < 15, "still storing after 15 s"
            publish_all(gateway, [(TOPIC, dumps(weighing(seq, net_kg=10)))])
            seq += 1
            time.sleep(0.5)
    assert scalar(db_url, "SELECT reason FROM quarantine") == f"device {DEVICE!r} is deactivated"
    gateway.loop_stop()
    gateway.disconnect()


def _try_publisher(port: int) -> Any:
    try:
        return publisher(port, username=DEVICE, password=PASSWORD, client_id=DEVICE)
    except RuntimeError:
        return None


def test_deactivating_an_unknown_device_says_so(
    registry_broker: tuple[str, Mosquitto], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["devices", "deactivate", "no-such-device"]) == 2
    assert "no device 'no-such-device'" in capsys.readouterr().err
