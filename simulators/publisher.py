"""MQTT plumbing for the simulators: per-device or gateway connections, QoS 1, waiting for every
PUBACK, and store-and-forward: each reading is kept until ingest's commit ack names it."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pisman.devices import ACK_KIND
from pisman.domain import TOPIC_ROOT
from pisman.logs import log_event

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 15.0
RESEND_CHECK_S = 0.5
# A message resent on timeout waits twice as long before the next try (ingest may be down for a
# while, or not sending acks at all): the backlog is not sent again every ack_timeout_s.
MAX_RESEND_WAIT_S = 600.0
# A reading's key in a commit ack: (seq, ts in ms since 1970) (docs/protocol.md).
Key = tuple[int, int]


@dataclass(frozen=True, slots=True)
class StoreAndForward:
    """The device rule of docs/protocol.md: keep every reading until its commit ack arrives;
    resend what is unconfirmed after a reconnect or ack_timeout_s; hold at most backlog_limit."""

    ack_timeout_s: float = 30.0
    backlog_limit: int = 20_000  # readings per device; publishing waits while it is full
    full_wait_s: float = 600.0  # a device whose backlog stays full this long gives up


def ack_topic_of(topic: str) -> str:
    """The commit ack topic of the device publishing on `topic` (pisman/v1/<site>/<device>/<kind>)."""
    return topic.rsplit("/", 1)[0] + "/ack"


def message_digest(payload: bytes) -> str:
    """How a commit ack names a whole message: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(payload).digest()[:8].hex()


def decode_runs(runs: Any) -> list[Key]:
    """The keys of an ack's "ok" runs: [first_seq, first_ts_ms, Δts_ms, ...], seq counting up."""
    keys: list[Key] = []
    for run in runs:
        seq, ts = int(run[0]), int(run[1])
        keys.append((seq, ts))
        for delta in run[2:]:
            seq, ts = seq + 1, ts + int(delta)
            keys.append((seq, ts))
    return keys


@dataclass(slots=True)
class _Held:
    """A message a device keeps until every reading in it is confirmed."""

    device_id: str
    topic: str
    payload: bytes
    digest: str
    unconfirmed: set[Key]  # empty for a message with no valid reading (kept by its digest)
    sent_at: float
    wait_s: float  # until the next resend: doubles with each timeout, up to MAX_RESEND_WAIT_S


@dataclass(slots=True)
class _Backlog:
    """One device's unconfirmed messages, indexed by reading key and message digest."""

    held: dict[int, _Held] = field(default_factory=dict)
    by_key: dict[Key, set[int]] = field(default_factory=dict)
    by_digest: dict[str, set[int]] = field(default_factory=dict)
    confirmed_stored: int = 0
    confirmed_quarantined: int = 0
    resent: int = 0

    def pending(self) -> int:
        """Readings still unconfirmed (a message with no valid reading counts as one)."""
        return len(self.by_key) + sum(1 for h in self.held.values() if not h.unconfirmed)

    def add(self, ident: int, held: _Held) -> None:
        """Hold a message just published."""
        self.held[ident] = held
        for key in held.unconfirmed:
            self.by_key.setdefault(key, set()).add(ident)
        self.by_digest.setdefault(held.digest, set()).add(ident)

    def _drop(self, ident: int) -> None:
        """Forget a message every reading of which is confirmed."""
        held = self.held.pop(ident)
        idents = self.by_digest.get(held.digest)
        if idents is not None:
            idents.discard(ident)
            if not idents:
                del self.by_digest[held.digest]

    def confirm_key(self, key: Key, *, stored: bool) -> None:
        """A commit ack named this reading (stored, or quarantined): forget it everywhere."""
        idents = self.by_key.pop(key, None)
        if idents is None:
            return  # confirmed before (a duplicate), or not ours
        if stored:
            self.confirmed_stored += 1
        else:
            self.confirmed_quarantined += 1
        for ident in idents:
            held = self.held[ident]
            held.unconfirmed.discard(key)
            if not held.unconfirmed:
                self._drop(ident)

    def confirm_message(self, digest: str) -> None:
        """A commit ack named the whole message: every reading in it was committed."""
        for ident in list(self.by_digest.get(digest, ())):
            held = self.held.get(ident)
            if held is None:
                continue
            if not held.unconfirmed:
                self.confirmed_quarantined += 1
                self._drop(ident)
            for key in list(held.unconfirmed):
                self.confirm_key(key, stored=False)


class PublishError(Exception):
    """The broker refused us or went away; str() says which account and why."""


@dataclass(frozen=True, slots=True)
class Account:
    """One MQTT connection's identity."""

    client_id: str
    username: str
    password: str
    will_topic: str | None = None  # per-device connections: the broker says "offline" if we vanish
    # Where its commit acks arrive: a device's own ack topic, or GATEWAY_ACKS for a gateway.
    ack_topic: str | None = None


GATEWAY_ACKS = f"{TOPIC_ROOT}/+/+/{ACK_KIND}"


class _Connection:
    def __init__(
        self,
        publisher: Publisher,
        account: Account,
        host: str,
        port: int,
        max_inflight: int,
        ack_topics: list[str],
    ) -> None:
        self.publisher = publisher
        self.account = account
        self.ack_topics = ack_topics  # subscribed on every connect (clean sessions forget them)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connects = 0
        self.reconnected = False  # the backlog goes out again once the acks are subscribed
        self.acks_refused = False
        self.refused: str | None = None
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=account.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        c.username_pw_set(account.username, account.password)
        c.max_inflight_messages_set(max_inflight)
        c.reconnect_delay_set(min_delay=1, max_delay=5)  # back soon after a broker restart
        c.max_queued_messages_set(0)
        if account.will_topic:
            c.will_set(account.will_topic, b"offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_publish = self._on_publish
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
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
        self.connects += 1
        if self.ack_topics:
            self.subscribed.clear()
            self.reconnected = self.connects > 1
            client.subscribe([(t, 1) for t in self.ack_topics])
        self.connected.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: object, props: object
    ) -> None:
        if isinstance(codes, list) and codes and all(c.is_failure for c in codes):
            # The broker's ACL does not let this account read its acks: a legacy device then.
            self.acks_refused = True
            log_event(
                log,
                logging.WARNING,
                "commit_acks_refused",
                client_id=self.account.client_id,
                note="publishing without store-and-forward",
            )
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.publisher._commit_ack(msg.topic, bytes(msg.payload))

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
    """Publishes at QoS 1 on many connections, keeping up to max_inflight messages unacknowledged.

    With store_and_forward, each device also keeps every reading until ingest's commit ack names
    it, resends what stays unconfirmed, and waits while its backlog is full.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_inflight: int = 2000,
        store_and_forward: StoreAndForward | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.max_inflight = max_inflight
        self.saf = store_and_forward
        self._cond = threading.Condition()
        self._outstanding = 0
        self.acked = 0
        self.sent = 0
        self._connections: list[_Connection] = []
        self._route: dict[str, _Connection] = {}
        self._backlogs: dict[str, _Backlog] = {}
        self._next_ident = 0
        self._stop = threading.Event()
        self._resender: threading.Thread | None = None

    def connect(
        self, accounts: list[tuple[Account, list[str]]], *, per_connection_inflight: int = 1000
    ) -> None:
        """Open one connection per account, each carrying the listed devices; wait for all CONNACKs
        (and, with store-and-forward, for the subscriptions to the devices' commit acks)."""
        for account, device_ids in accounts:
            ack_topics = [account.ack_topic] if self.saf is not None and account.ack_topic else []
            conn = _Connection(
                self, account, self.host, self.port, per_connection_inflight, ack_topics
            )
            self._connections.append(conn)
            for d in device_ids:
                self._route[d] = conn
                self._backlogs.setdefault(d, _Backlog())
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
            if conn.ack_topics and not conn.subscribed.wait(max(0.1, deadline - time.monotonic())):
                self.close()
                raise PublishError(f"no SUBACK for the commit acks of {conn.account.username}")
        if self.saf is not None and self._resender is None:
            self._resender = threading.Thread(
                target=self._resend_loop, name="sim-resend", daemon=True
            )
            self._resender.start()

    def _acked(self) -> None:
        with self._cond:
            self._outstanding -= 1
            self.acked += 1
            self._cond.notify_all()

    def publish(
        self,
        device_id: str,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        keys: list[Key] | None = None,
    ) -> None:
        """Publish at QoS 1 on the device's connection; blocks while too many await their PUBACK.

        keys: the (seq, ts_ms) of the valid readings inside (an empty list for a message with
        none): with store-and-forward the device keeps the message until they are confirmed.
        """
        conn = self._route[device_id]
        with self._cond:
            if self.saf is not None and keys is not None and not conn.acks_refused:
                self._wait_for_room(device_id)
                self._next_ident += 1
                held = _Held(
                    device_id,
                    topic,
                    payload,
                    message_digest(payload),
                    set(keys),
                    time.monotonic(),
                    self.saf.ack_timeout_s,
                )
                self._backlogs[device_id].add(self._next_ident, held)
            self._wait_inflight()
            self._outstanding += 1
            self.sent += 1
        info = conn.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish on {topic} failed: {mqtt.error_string(info.rc)}")

    def _wait_inflight(self) -> None:
        while self._outstanding >= self.max_inflight:
            if not self._cond.wait(30):
                raise PublishError(
                    f"no PUBACK from the broker for 30 s ({self._outstanding} waiting)"
                )

    def _wait_for_room(self, device_id: str) -> None:
        """A full backlog: the device waits for commit acks (the resend loop keeps trying)."""
        assert self.saf is not None
        backlog = self._backlogs[device_id]
        deadline = time.monotonic() + self.saf.full_wait_s
        while backlog.pending() >= self.saf.backlog_limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PublishError(
                    f"{device_id}: {backlog.pending()} readings without a commit ack for"
                    f" {self.saf.full_wait_s:.0f} s (backlog full): is ingest sending acks?"
                )
            self._cond.wait(min(left, 1.0))

    # --- store-and-forward ------------------------------------------------------------------
    def _commit_ack(self, topic: str, payload: bytes) -> None:
        """A commit ack arrived (network thread): forget what it names."""
        parts = topic.split("/")
        backlog = self._backlogs.get(parts[3]) if len(parts) == 5 else None
        if backlog is None:
            return
        try:
            body = json.loads(payload)
            stored = decode_runs(body.get("ok", []))
            bad = [(e[1], e[2], str(e[3])) for e in body.get("bad", [])]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            log_event(log, logging.WARNING, "commit_ack_unreadable", topic=topic)
            return
        with self._cond:
            for key in stored:
                backlog.confirm_key(key, stored=True)
            for seq, ts, digest in bad:
                if isinstance(seq, int) and isinstance(ts, int) and (seq, ts) in backlog.by_key:
                    backlog.confirm_key((seq, ts), stored=False)
                else:
                    backlog.confirm_message(digest)
            self._cond.notify_all()

    def _resend_loop(self) -> None:
        """After a reconnect (once subscribed again) or the ack timeout: send again what is held."""
        assert self.saf is not None
        while not self._stop.wait(RESEND_CHECK_S):
            now = time.monotonic()
            again: list[tuple[_Connection, _Held]] = []
            with self._cond:
                fresh = {
                    id(c) for c in self._connections if c.reconnected and c.subscribed.is_set()
                }
                for c in self._connections:
                    if id(c) in fresh:
                        c.reconnected = False
                for device_id, backlog in self._backlogs.items():
                    conn = self._route[device_id]
                    if not conn.client.is_connected():
                        continue
                    for held in backlog.held.values():
                        timed_out = now - held.sent_at >= held.wait_s
                        if id(conn) in fresh or timed_out:
                            if timed_out:
                                held.wait_s = min(held.wait_s * 2, MAX_RESEND_WAIT_S)
                            held.sent_at = now
                            backlog.resent += max(1, len(held.unconfirmed))
                            again.append((conn, held))
                self._outstanding += len(again)
                self.sent += len(again)
            for conn, held in again:
                conn.client.publish(held.topic, held.payload, qos=1)
            if again:
                log_event(log, logging.INFO, "store_and_forward_resent", messages=len(again))

    def pending(self) -> int:
        """Readings no commit ack has named yet, over every device."""
        with self._cond:
            return sum(b.pending() for b in self._backlogs.values())

    def wait_confirmed(self, timeout: float) -> int:
        """Wait until every device's backlog is confirmed (resending meanwhile); the readings still
        pending when the time is up (0: all confirmed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (left := sum(b.pending() for b in self._backlogs.values())) > 0:
                if time.monotonic() >= deadline:
                    return left
                self._cond.wait(min(1.0, max(0.01, deadline - time.monotonic())))
        return 0

    def delivery(self) -> dict[str, dict[str, int]]:
        """Per device: readings confirmed stored, confirmed quarantined, resent and still pending."""
        with self._cond:
            return {
                device_id: {
                    "confirmed": b.confirmed_stored,
                    "confirmed_quarantined": b.confirmed_quarantined,
                    "resent": b.resent,
                    "pending": b.pending(),
                }
                for device_id, b in self._backlogs.items()
            }

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
        self._stop.set()
        if self._resender is not None:
            self._resender.join(5)
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

    def publish(
        self,
        device_id: str,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        keys: list[Key] | None = None,
    ) -> None:
        """Count the message as sent and acknowledged."""
        self.sent += 1
        self.acked += 1

    def flush(self, timeout: float = 120.0) -> None:
        """Nothing outstanding."""

    def close(self) -> None:
        """Nothing to close."""
