"""MQTT plumbing for the simulators: per-device or gateway connections, QoS 1, waiting for every PUBACK."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pisman.logs import log_event

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 15.0


class PublishError(Exception):
    """The broker refused us or went away; str() says which account and why."""


@dataclass(frozen=True, slots=True)
class Account:
    """One MQTT connection's identity."""

    client_id: str
    username: str
    password: str
    will_topic: str | None = None  # per-device connections: the broker says "offline" if we vanish


class _Connection:
    def __init__(
        self, publisher: Publisher, account: Account, host: str, port: int, max_inflight: int
    ) -> None:
        self.publisher = publisher
        self.account = account
        self.connected = threading.Event()
        self.refused: str | None = None
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=account.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        c.username_pw_set(account.username, account.password)
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        if account.will_topic:
            c.will_set(account.will_topic, b"offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_publish = self._on_publish
        c.on_disconnect = self._on_disconnect
        self.client = c
        self.host, self.port = host, port

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=60)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
            self.connected.set()
            return
        self.connected.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        self.publisher._acked()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log_event(
                log,
                logging.WARNING,
                "mqtt_disconnected",
                client_id=self.account.client_id,
                reason=str(reason),
            )


class Publisher:
    """Publishes at QoS 1 on many connections, keeping up to max_inflight messages unacknowledged."""

    def __init__(self, host: str, port: int, *, max_inflight: int = 2000) -> None:
        self.host, self.port = host, port
        self.max_inflight = max_inflight
        self._cond = threading.Condition()
        self._outstanding = 0
        self.acked = 0
        self.sent = 0
        self._connections: list[_Connection] = []
        self._route: dict[str, _Connection] = {}

    def connect(
        self, accounts: list[tuple[Account, list[str]]], *, per_connection_inflight: int = 1000
    ) -> None:
        """Open one connection per account, each carrying the listed devices; wait for all CONNACKs."""
        for account, device_ids in accounts:
            conn = _Connection(self, account, self.host, self.port, per_connection_inflight)
            self._connections.append(conn)
            for d in device_ids:
                self._route[d] = conn
            conn.start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        for conn in self._connections:
            if not conn.connected.wait(max(0.1, deadline - time.monotonic())):
                self.close()
                raise PublishError(
                    f"no answer from the broker at {self.host}:{self.port} for {conn.account.username}"
                )
            if conn.refused:
                self.close()
                raise PublishError(f"broker refused {conn.account.username!r}: {conn.refused}")

    def _acked(self) -> None:
        with self._cond:
            self._outstanding -= 1
            self.acked += 1
            self._cond.notify_all()

    def publish(self, device_id: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 on the device's connection; blocks while too many await their PUBACK."""
        conn = self._route[device_id]
        with self._cond:
            while self._outstanding >= self.max_inflight:
                if not self._cond.wait(30):
                    raise PublishError(
                        f"no PUBACK from the broker for 30 s ({self._outstanding} waiting)"
                    )
            self._outstanding += 1
            self.sent += 1
        info = conn.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish on {topic} failed: {mqtt.error_string(info.rc)}")

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until the broker acknowledged everything published so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishError(
                        f"{self._outstanding} message(s) still without PUBACK after {timeout:.0f} s"
                    )
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        """Disconnect cleanly (no last will) and stop the network threads."""
        for conn in self._connections:
            try:
                conn.client.disconnect()
            finally:
                conn.client.loop_stop()
        self._connections.clear()


class NullPublisher(Publisher):
    """Counts what would be published without a broker (for --dry-run and measurements)."""

    def __init__(self) -> None:
        super().__init__("-", 0)

    def connect(
        self, accounts: list[tuple[Account, list[str]]], *, per_connection_inflight: int = 1000
    ) -> None:
        """Nothing to connect to."""

    def publish(self, device_id: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Count the message as sent and acknowledged."""
        self.sent += 1
        self.acked += 1

    def flush(self, timeout: float = 120.0) -> None:
        """Nothing outstanding."""

    def close(self) -> None:
        """Nothing to close."""
