"""Helpers for ingest tests: seed a city with sites and devices, run ingest, publish, wait."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import IngestOptions, IngestService
from pisman.settings import Settings
from tests.support.city_seed import DeviceRow, SiteRow, insert_city

SITES = (
    ("bank-1", "waste_bank", None),
    ("depot-1", "depot", None),
    ("tps3r-1", "processing", "compost"),
    ("tpa-1", "landfill", None),
)
DEVICES = (
    ("scale-bank-1", "bank-1", "platform_scale"),
    ("scale-depot-1", "depot-1", "platform_scale"),
    ("bridge-tpa-1", "tpa-1", "weighbridge"),
    ("bin-depot-1", "depot-1", "bin_sensor"),
)
PASSWORD = "test-password"


def seed_city(conn: psycopg.Connection, city_id: str = "bandung", *, prefix: str = "") -> None:
    """A city with one district, the four site types and one device of each kind, each device
    with a broker account (PASSWORD); committed. prefix: another such set in the same city."""
    insert_city(
        conn,
        city_id,
        districts=[("coblong", "Coblong")],
        sites=[
            SiteRow(prefix + site_id, "coblong", site_type, process, name=site_id)
            for site_id, site_type, process in SITES
        ],
        devices_=[
            DeviceRow(prefix + device_id, prefix + site_id, kind, password=PASSWORD)
            for device_id, site_id, kind in DEVICES
        ],
    )
    conn.commit()


def settings_for(db_url: str, mqtt_url: str, **extra: Any) -> Settings:
    """Settings pointing at a test database and broker, metrics off unless asked."""
    values: dict[str, Any] = {
        "DATABASE_URL": db_url,
        "MQTT_URL": mqtt_url,
        "INGEST_METRICS_PORT": 0,
    }
    values.update(extra)
    return Settings(**values)


@contextmanager
def running_ingest(settings: Settings, **options: Any) -> Iterator[IngestService]:
    """An ingest service running in a thread of this process until the block ends."""
    options.setdefault("client_id", f"ingest-{uuid.uuid4().hex[:8]}")
    options.setdefault("flush_ms", 20)
    service = IngestService(settings, IngestOptions.from_settings(settings, **options))
    service.start()
    thread = threading.Thread(target=service.run, name="ingest", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(15)


def publisher(
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    client_id: str | None = None,
    will_topic: str | None = None,
    tls: bool = False,
    ca_file: Path | None = None,
    timeout_s: float = 5,
) -> mqtt.Client:
    """A connected MQTT 5 client with its network loop running (over TLS trusting ca_file,
    or the system's CAs when it is None, if tls)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    if tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
    if username:
        client.username_pw_set(username, password)
    if will_topic:
        client.will_set(will_topic, b"offline", qos=1, retain=True)
    answered = threading.Event()
    refusal: list[str] = []

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            refusal.append(str(rc))
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not answered.wait(timeout_s) or refusal:
        client.loop_stop()
        raise RuntimeError(f"publisher could not connect: {refusal or 'no answer'}")
    return client


def publish_all(
    client: mqtt.Client, messages: Sequence[tuple[str, bytes | str]], *, qos: int = 1
) -> None:
    """Publish and wait until the broker has acknowledged every message."""
    infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(10)


def weighing(
    seq: int,
    *,
    ts: datetime | None = None,
    net_kg: float = 100.0,
    material: str = "plastic",
    stream: str = "deposit",
    **extra: Any,
) -> dict[str, Any]:
    """A valid weighing payload."""
    return {
        "ts": (ts or datetime.now(UTC)).isoformat(),
        "seq": seq,
        "net_kg": net_kg,
        "material": material,
        "stream": stream,
        **extra,
    }


def bin_reading(
    seq: int, *, ts: datetime | None = None, fill_pct: float = 50.0, **extra: Any
) -> dict[str, Any]:
    """A valid bin payload."""
    return {"ts": (ts or datetime.now(UTC)).isoformat(), "seq": seq, "fill_pct": fill_pct, **extra}


def dumps(obj: Any) -> bytes:
    """JSON bytes."""
    return json.dumps(obj).encode()


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll until the predicate is truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or predicate} (last: {last!r})")


def scalar(db_url: str, query: str, params: Sequence[Any] = ()) -> Any:
    """One value from the database."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


class IngestProcess:
    """`pisman ingest` as a child process, its log lines collected."""

    def __init__(self, env: dict[str, str]) -> None:
        import os
        import subprocess
        import sys

        self.lines: list[str] = []
        full_env = {**os.environ, "INGEST_METRICS_PORT": "0", **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pisman", "ingest"],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait for the `ingest_ready` log line."""
        wait_for(
            lambda: (
                any("ingest_ready" in line for line in self.lines) or self.proc.poll() is not None
            ),
            timeout=timeout,
            what="ingest_ready",
        )
        if self.proc.poll() is not None:
            raise AssertionError("ingest exited early:\n" + "\n".join(self.lines))

    def tail(self, lines: int = 40) -> str:
        """The last log lines, for failure messages."""
        return "\n".join(self.lines[-lines:])

    def logged(self, event: str) -> bool:
        """Whether an event name appeared in the log."""
        return any(f" {event}" in line for line in self.lines)

    def kill(self) -> None:
        """SIGKILL, no goodbye."""
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit; return the exit status."""
        self.proc.terminate()
        return self.proc.wait(timeout)
