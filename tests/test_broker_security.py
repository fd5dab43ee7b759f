"""The broker as devices meet it: client ids bound to accounts, bounded sizes, TLS."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pisman import devices
from pisman.certs import BrokerCertificates, ensure_broker_certificates
from pisman.embedded import MAX_PACKET_SIZE, MESSAGE_SIZE_LIMIT
from pisman.settings import Settings
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

INGEST = "pisman-ingest-1"  # the account's username is ingest's client id
INGEST_PASSWORD = "ingest-pw"
OWN = "pisman/v1/bank-1/scale-bank-1/weighing"
PACKET_TOO_LARGE = 0x95


@dataclass
class World:
    """A seeded registry and a broker enforcing its generated files, plain and TLS listeners."""

    db_url: str
    broker: Mosquitto
    certs: BrokerCertificates

    def ingest_settings(self, *, tls: bool = False) -> Settings:
        """Settings for ingest with its own account, over plain MQTT or TLS."""
        if tls:
            assert self.broker.tls_port is not None
            url = f"mqtts://{INGEST}:{INGEST_PASSWORD}@127.0.0.1:{self.broker.tls_port}"
            return settings_for(self.db_url, url, MQTT_CA_FILE=self.certs.ca_file)
        return settings_for(
            self.db_url, f"mqtt://{INGEST}:{INGEST_PASSWORD}@127.0.0.1:{self.broker.port}"
        )


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Devices of each kind, the ingest account, and a private broker with generated TLS files."""
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        devices.set_service_account(conn, username=INGEST, role="ingest", password=INGEST_PASSWORD)
        conn.commit()
        devices.write_broker_files(
            conn, password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
        )
    certs = BrokerCertificates(tmp_path / "tls")
    ensure_broker_certificates(certs.folder)
    broker = Mosquitto(
        tmp_path,
        port=free_port(),
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        tls_port=free_port(),
        certs=certs,
    )
    broker.start()
    yield World(db_url, broker, certs)
    broker.stop()


@dataclass
class Attempt:
    """What the broker answered one connection that claimed ingest's client id."""

    reason: str
    session_present: bool


def _claim_ingest_session(port: int, username: str, password: str) -> Attempt | None:
    """Connect as a device with ingest's client id, resume "its" session and try to read."""
    answered = threading.Event()
    result: list[Attempt] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=INGEST, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, p: Any) -> None:
        result.append(Attempt(str(reason), bool(flags.session_present)))
        answered.set()
        if not reason.is_failure:
            c.subscribe("pisman/v1/#", qos=1)

    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 86400
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    answered.wait(10)
    time.sleep(0.05)  # hold the connection while readings flow
    client.disconnect()
    client.loop_stop()
    return result[0] if result else None


def test_a_device_using_ingests_client_id_cannot_take_its_session_and_nothing_is_lost(
    world: World,
) -> None:
    readings = 160
    attempts: list[Attempt | None] = []
    with running_ingest(world.ingest_settings(), client_id=INGEST) as service:
        assert service.client.generation == 1
        device = publisher(world.broker.port, username="scale-bank-1", password=PASSWORD)
        stop = threading.Event()

        def attack() -> None:
            while not stop.is_set():
                attempts.append(_claim_ingest_session(world.broker.port, "scale-depot-1", PASSWORD))

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        try:
            # Readings flow for the whole attack (about 1.5 s), acknowledged by the broker.
            for start in range(1, readings + 1, 10):
                publish_all(device, [(OWN, dumps(weighing(s))) for s in range(start, start + 10)])
                time.sleep(0.1)
            wait_for(lambda: len(attempts) >= 3, timeout=30, what="three takeover attempts")
        finally:
            stop.set()
            attacker.join(30)
        wait_for(
            lambda: scalar(world.db_url, "SELECT count(*) FROM weighing") == readings,
            timeout=30,
            what=f"all {readings} readings stored",
        )
        # Ingest was never pushed off its connection (a takeover forces a reconnect).
        assert service.client.generation == 1
    assert attempts and all(a is not None for a in attempts)
    # The broker let the device in as itself: at first a fresh session of its own (ingest's
    # existed, so taking it over would have answered "session present").
    assert attempts[0] is not None and not attempts[0].session_present
    assert scalar(world.db_url, "SELECT DISTINCT device_id FROM weighing") == "scale-bank-1"
    assert scalar(world.db_url, "SELECT count(*) FROM quarantine") == 0


def test_a_device_claiming_another_devices_client_id_does_not_disconnect_it(
    world: World,
) -> None:
    disconnected = threading.Event()
    victim = publisher(
        world.broker.port, username="scale-bank-1", password=PASSWORD, client_id="scale-bank-1"
    )
    victim.on_disconnect = lambda c, u, f, reason, p: disconnected.set()
    impostor = publisher(
        world.broker.port, username="scale-depot-1", password=PASSWORD, client_id="scale-bank-1"
    )
    assert not disconnected.wait(1.0)
    victim.disconnect()
    impostor.disconnect()
    victim.loop_stop()
    impostor.loop_stop()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet: (first byte, body); (0, b"") when the broker closed the connection."""
    head = sock.recv(1)
    if not head:
        return 0, b""
    length, shift = 0, 0
    while True:
        byte = sock.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return head[0], body


def _raw_mqtt5_device(port: int, username: str, password: str) -> socket.socket:
    """An MQTT 5 connection on a bare socket: paho (2.2) cannot parse a PUBACK carrying
    "packet too large" (0x95), so it cannot show what a device is told."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    variable = _utf8("MQTT") + bytes([5, 0xC2]) + struct.pack("!H", 60) + _varint(0)
    payload = _utf8(username) + _utf8(username) + _utf8(password)
    body = variable + payload
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    kind, connack = _read_packet(sock)
    assert kind == 0x20 and connack[1] == 0, f"connect refused: {connack!r}"
    return sock


def _publish_qos1(sock: socket.socket, topic: str, payload: bytes, mid: int) -> tuple[str, int]:
    """Publish at QoS 1; the broker's answer: ("puback" | "disconnect", reason) or ("closed", -1)."""
    body = _utf8(topic) + struct.pack("!H", mid) + _varint(0) + payload
    try:
        sock.sendall(b"\x32" + _varint(len(body)) + body)
        kind, answer = _read_packet(sock)
    except (ConnectionResetError, BrokenPipeError):
        return "closed", -1
    if kind == 0xE0:
        return "disconnect", answer[0] if answer else 0
    if kind == 0:
        return "closed", -1
    assert kind == 0x40 and struct.unpack("!H", answer[:2])[0] == mid
    return "puback", answer[2] if len(answer) > 2 else 0


def test_an_oversize_publish_is_refused_by_the_broker_and_ingest_goes_on(world: World) -> None:
    with running_ingest(world.ingest_settings(), client_id=INGEST) as service:
        device = _raw_mqtt5_device(world.broker.port, "scale-bank-1", PASSWORD)
        oversize = dumps(weighing(1, material="x" * MESSAGE_SIZE_LIMIT))
        assert _publish_qos1(device, OWN, oversize, 1) == ("puback", PACKET_TOO_LARGE)
        # The same connection goes on: the next reading is accepted and stored.
        assert _publish_qos1(device, OWN, dumps(weighing(2)), 2) == ("puback", 0)
        wait_for(lambda: scalar(world.db_url, "SELECT count(*) FROM weighing") == 1)
        # Far beyond the limit the broker hangs up before reading the packet into memory.
        flooder = _raw_mqtt5_device(world.broker.port, "scale-depot-1", PASSWORD)
        huge = b"0" * (2 * MAX_PACKET_SIZE)
        answer = _publish_qos1(flooder, "pisman/v1/depot-1/scale-depot-1/weighing", huge, 1)
        assert answer in {("disconnect", PACKET_TOO_LARGE), ("closed", -1)}
        flooder.close()
        assert _publish_qos1(device, OWN, dumps(weighing(3)), 3) == ("puback", 0)
        wait_for(lambda: scalar(world.db_url, "SELECT count(*) FROM weighing") == 2)
        device.close()
        assert service.client.generation == 1  # ingest never lost its connection
    assert scalar(world.db_url, "SELECT array_agg(seq ORDER BY seq) FROM weighing") == [2, 3]
    assert scalar(world.db_url, "SELECT count(*) FROM quarantine") == 0


def _tls_client(port: int, ca_file: Path | None, username: str, password: str) -> mqtt.Client:
    """A device connected over TLS, trusting ca_file (None: the system's CAs)."""
    return publisher(
        port,
        username=username,
        password=password,
        client_id=username,
        tls=True,
        ca_file=ca_file,
        timeout_s=10,
    )


def test_a_device_publishes_over_tls_and_ingest_reads_over_tls(world: World) -> None:
    assert world.broker.tls_port is not None
    with running_ingest(world.ingest_settings(tls=True), client_id=INGEST):
        device = _tls_client(world.broker.tls_port, world.certs.ca_file, "scale-bank-1", PASSWORD)
        publish_all(device, [(OWN, dumps(weighing(1, net_kg=42.5)))])
        wait_for(lambda: scalar(world.db_url, "SELECT count(*) FROM weighing") == 1)
        device.disconnect()
        device.loop_stop()
    assert float(scalar(world.db_url, "SELECT net_kg FROM weighing")) == 42.5
    # A client that does not trust our CA, or speaks plain MQTT to the TLS port, gets nowhere.
    with pytest.raises(ssl.SSLCertVerificationError):
        _tls_client(world.broker.tls_port, None, "scale-bank-1", PASSWORD)
    with pytest.raises(RuntimeError):
        publisher(world.broker.tls_port, username="scale-bank-1", password=PASSWORD)


def test_generated_certificates_are_made_once_renewed_for_new_names_and_never_replace_an_operators(
    tmp_path: Path,
) -> None:
    certs = BrokerCertificates(tmp_path / "tls")
    made = ensure_broker_certificates(certs.folder, ["mqtt.example.org"])
    assert made == [str(certs.ca_file), str(certs.cert_file)]
    assert certs.key_file.stat().st_mode & 0o777 == 0o600
    assert certs.ca_key_file.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(certs.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"mqtt.example.org", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert ensure_broker_certificates(certs.folder, ["mqtt.example.org"]) == []
    ca_before = certs.ca_file.read_bytes()
    # A new name: a new server certificate from the same CA (devices keep trusting it).
    assert ensure_broker_certificates(certs.folder, ["10.0.0.5"]) == [str(certs.cert_file)]
    assert certs.ca_file.read_bytes() == ca_before
    # An operator's own certificate (not signed by our CA) is left alone.
    other = BrokerCertificates(tmp_path / "other")
    ensure_broker_certificates(other.folder)
    certs.cert_file.write_bytes(other.cert_file.read_bytes())
    certs.key_file.write_bytes(other.key_file.read_bytes())
    assert ensure_broker_certificates(certs.folder, ["new.example.org"]) == []
    assert certs.cert_file.read_bytes() == other.cert_file.read_bytes()


def test_ingest_client_id_follows_the_mqtt_user_and_a_shared_group_needs_one_account_each() -> None:
    assert Settings(MQTT_URL="mqtt://pisman-ingest-2:pw@broker:1883").INGEST_CLIENT_ID == (
        "pisman-ingest-2"
    )
    assert Settings(MQTT_URL="mqtt://broker:1883").INGEST_CLIENT_ID == "pisman-ingest-1"
    with pytest.raises(ValueError, match="one broker account each"):
        Settings(
            MQTT_URL="mqtt://pisman-ingest:pw@broker:1883",
            INGEST_CLIENT_ID="pisman-ingest-2",
            INGEST_SHARE_GROUP="ingest",
        )


def test_a_device_cannot_take_a_service_accounts_name_nor_the_reverse(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        devices.set_service_account(conn, username=INGEST, role="ingest", password="x")
        with pytest.raises(devices.RegistryError, match="service account"):
            devices.add_device(conn, device_id=INGEST, site_id="bank-1", kind="platform_scale")
        with pytest.raises(devices.RegistryError, match="device id"):
            devices.set_service_account(conn, username="scale-bank-1", role="gateway", password="x")


def test_sync_broker_makes_the_tls_files_once_for_the_names_devices_use(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pisman.cli import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("PISMAN_BROKER_CERT_HOSTS", "broker mqtt.example.org")
    args = ["devices", "sync-broker", "--password-file", str(tmp_path / "passwd")]
    args += ["--acl-file", str(tmp_path / "acl"), "--tls-dir", str(tmp_path / "certs")]
    assert main(args) == 0
    certs = BrokerCertificates(tmp_path / "certs")
    cert = x509.load_pem_x509_certificate(certs.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"broker", "mqtt.example.org"} <= set(names.get_values_for_type(x509.DNSName))
    made_once = certs.cert_file.read_bytes()
    assert main(args) == 0
    assert certs.cert_file.read_bytes() == made_once
