"""Ingest benchmark: N readings from M devices through a real broker into PostgreSQL, vs a naive baseline.

Run: .venv/bin/python -m bench.ingest [--messages 100000] [--devices 50] [--commit-acks both]
Prints sustained stored readings/s, end-to-end latency (device ts → stored) p50/p99, the
naive one-INSERT-per-message baseline in the same run, and the ingest process's peak memory;
with commit acks on, the ack messages and bytes per reading that reach a subscriber of every
device's ack topic (as the devices would receive them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from pisman import db
from pisman.devices import hash_password
from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port

WINDOW = 20_000  # unacknowledged QoS 1 messages per publisher (below the 65,535 packet ids)
MATERIALS = ("food", "plastic", "paper", "metal", "glass")
CLEAR = "TRUNCATE weighing, weighing_hourly, weighing_daily, device_state"
COUNT = "SELECT count(*) FROM weighing"
LATENCY = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts))
FROM weighing
"""
NAIVE_INSERT = """
INSERT INTO weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream)
VALUES (%s, 'benchcity', %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""


def seed(url: str, devices: int) -> list[tuple[str, str]]:
    """One city, one depot per 10 devices, M platform scales; returns (site, device) pairs."""
    pairs = [(f"depot-{i // 10}", f"scale-{i}") for i in range(devices)]
    pw = hash_password("bench")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO city (city_id, name) VALUES ('benchcity', 'Bench')")
        conn.execute(
            "INSERT INTO district (city_id, district_id, name) VALUES ('benchcity', 'd', 'D')"
        )
        for site in sorted({s for s, _ in pairs}):
            conn.execute(
                "INSERT INTO site (site_id, city_id, district_id, name, site_type)"
                " VALUES (%s, 'benchcity', 'd', %s, 'depot')",
                (site, site),
            )
        for site, device in pairs:
            conn.execute(
                "INSERT INTO device (device_id, city_id, site_id, kind, password_hash)"
                " VALUES (%s, 'benchcity', %s, 'platform_scale', %s)",
                (device, site, pw),
            )
    return pairs


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_connect(port: int, client_id: str) -> socket.socket:
    """A raw MQTT 3.1.1 connection (clean session, no keepalive), CONNACK checked."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    ack = b""
    while len(ack) < 4:
        chunk = sock.recv(4 - len(ack))
        if not chunk:
            raise SystemExit("broker closed the publisher connection")
        ack += chunk
    if ack[0] != 0x20 or ack[3] != 0:
        raise SystemExit(f"broker refused the publisher: {ack!r}")
    return sock


TS_PLACEHOLDER = "2000-01-01T00:00:00.000000+00:00"  # same width as every timestamp sent


def _packet_templates(
    pairs: list[tuple[str, str]], messages: int, per_message: int, seq_base: int
) -> list[list[bytes]]:
    """Each message as QoS 1 PUBLISH bytes split where its timestamps go (filled at send time)."""
    topics = [f"pisman/v1/{s}/{d}/weighing".encode() for s, d in pairs]
    seqs = [seq_base] * len(pairs)
    templates: list[list[bytes]] = []
    for i in range(messages):
        k = i % len(pairs)
        readings = []
        for _ in range(per_message):
            readings.append(
                {
                    "ts": TS_PLACEHOLDER,
                    "seq": seqs[k],
                    "net_kg": 1 + seqs[k] % 90,
                    "material": MATERIALS[seqs[k] % 5],
                    "stream": "mixed",
                }
            )
            seqs[k] += 1
        payload = json.dumps(readings[0] if per_message == 1 else readings).encode()
        mid = i % 65535 + 1
        variable = struct.pack("!H", len(topics[k])) + topics[k] + struct.pack("!H", mid)
        packet = b"\x32" + _varint(len(variable) + len(payload)) + variable + payload
        templates.append(packet.split(TS_PLACEHOLDER.encode()))
    return templates


def publish_worker(
    port: int,
    pairs: list[tuple[str, str]],
    messages: int,
    per_message: int,
    rate: float,
    seq_base: int,
    ready: mp.Queue,  # type: ignore[type-arg]
    go: mp.Event,  # type: ignore[type-arg]
    done: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """One publisher process: real QoS 1 PUBLISH packets, pre-encoded, written in chunks.

    A reader thread counts PUBACKs; at most WINDOW messages are unacknowledged (packet ids
    never collide). Timestamps are stamped into the pre-built packets as each chunk is sent,
    so latency is measured from the moment of sending. Paced when rate > 0.
    """
    templates = _packet_templates(pairs, messages, per_message, seq_base)
    sock = _mqtt_connect(port, f"bench-pub-{uuid.uuid4().hex[:6]}")
    acked = 0

    def count_acks() -> None:
        nonlocal acked
        pending = 0
        while acked < messages:
            data = sock.recv(65536)
            if not data:
                return
            pending += len(data)  # only PUBACKs (4 bytes) come to a publisher without subscriptions
            acked += pending // 4
            pending %= 4

    reader = threading.Thread(target=count_acks, daemon=True)
    reader.start()
    ready.put(os.getpid())
    go.wait()
    chunk = max(1, min(200, int(rate / 200))) if rate > 0 else max(1, 2000 // per_message)
    started = time.monotonic()
    sent = 0
    while sent < messages:
        while sent - acked > WINDOW:
            time.sleep(0.0005)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").encode()
        end = min(messages, sent + chunk)
        sock.sendall(b"".join(stamp.join(t) for t in templates[sent:end]))
        sent = end
        if rate > 0:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    reader.join(600)
    elapsed = time.monotonic() - started
    sock.sendall(b"\xe0\x00")
    sock.close()
    done.put(elapsed)


def publish(
    port: int,
    pairs: list[tuple[str, str]],
    *,
    messages: int,
    per_message: int,
    rate: float,
    processes: int,
    seq_base: int,
) -> tuple[float, float]:
    """Publish from several processes once all are connected with their packets built.

    Returns (monotonic time of the go signal, seconds the slowest publisher took).
    """
    ready: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    done: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    go = mp.Event()
    procs = []
    for p in range(processes):
        share = pairs[p::processes]
        count = messages // processes + (1 if p < messages % processes else 0)
        procs.append(
            mp.Process(
                target=publish_worker,
                args=(port, share, count, per_message, rate / processes, seq_base, ready, go, done),
            )
        )
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    started = time.monotonic()
    go.set()
    took = max(done.get() for _ in procs)
    for proc in procs:
        proc.join()
    return started, took


def stored_from_metrics(metrics_port: int) -> int:
    """Readings ingest has stored, from its own /metrics (cheaper for everyone than count(*))."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pisman_ingest_readings_stored_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def wait_stored(
    url: str, expected: int, *, timeout: float, metrics_port: int | None = None
) -> float:
    """Seconds (monotonic) at which the stored count reached `expected`."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if metrics_port is not None:
                count = stored_from_metrics(metrics_port)
            else:
                row = conn.execute(COUNT).fetchone()
                count = row[0] if row else 0
            if count >= expected:
                return time.monotonic()
            time.sleep(0.05)
        row = conn.execute(COUNT).fetchone()
    raise SystemExit(
        f"only {row[0] if row else 0} of {expected} readings stored after {timeout:.0f} s"
    )


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(COUNT).fetchone()
    return int(row[0]) if row else 0


def latency(url: str) -> tuple[float, float]:
    """p50 and p99 of received_at - ts in seconds (received_at is the storing transaction's start)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(LATENCY).fetchone()
        assert row is not None
        conn.execute(CLEAR)
    return float(row[0]), float(row[1])


class AckCounter:
    """Subscribes to every device's commit-ack topic (standing in for the devices) and counts."""

    def __init__(self, port: int) -> None:
        self.messages = 0
        self.bytes = 0
        ready = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-acks", protocol=mqtt.MQTTv5
        )

        def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            self.messages += 1
            self.bytes += len(msg.payload)

        client.on_message = on_message
        client.on_subscribe = lambda c, u, mid, rc, p: ready.set()
        client.on_connect = lambda c, u, f, rc, p: c.subscribe("pisman/v1/+/+/ack", qos=1)
        client.connect("127.0.0.1", port)
        client.loop_start()
        if not ready.wait(10):
            raise SystemExit("the ack counter could not subscribe")
        self.client = client

    def settle(self, quiet_s: float = 1.0, timeout: float = 60.0) -> None:
        """Wait until no ack arrived for quiet_s (the last batch's acks are on their way)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline and self.messages != last:
            last = self.messages
            time.sleep(quiet_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_ingest(
    url: str, broker: Mosquitto, metrics_port: int, args: argparse.Namespace, *, acks: bool
) -> subprocess.Popen[bytes]:
    """`pisman ingest` as a child process; returns once it logs ingest_ready."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MQTT_URL": broker.url,
        "INGEST_CLIENT_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "INGEST_METRICS_PORT": str(metrics_port),
        "INGEST_BATCH_SIZE": str(args.batch_size),
        "INGEST_FLUSH_MS": str(args.flush_ms),
        "INGEST_COMMIT_ACKS": "true" if acks else "false",
        "LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "ingest"], env=env, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"ingest_ready" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc
    raise SystemExit("ingest did not start")


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a running process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def naive_worker(url: str, port: int, expected: int, ready: mp.Event) -> None:  # type: ignore[type-arg]
    """Baseline: on each message, one INSERT and one COMMIT, auto-ack."""
    conn = psycopg.connect(url, autocommit=True)
    seen = 0
    finished = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal seen
        _, _, site, device, _ = msg.topic.split("/")
        r = json.loads(msg.payload)
        conn.execute(
            NAIVE_INSERT, (r["ts"], site, device, r["seq"], r["net_kg"], r["material"], r["stream"])
        )
        seen += 1
        if seen >= expected:
            finished.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: (c.subscribe("pisman/v1/+/+/+", qos=1), ready.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    finished.wait(600)
    client.loop_stop()


def scenario(
    name: str,
    url: str,
    broker: Mosquitto,
    pairs: list[tuple[str, str]],
    args: argparse.Namespace,
    *,
    messages: int,
    per_message: int,
    rate: float,
    seq_base: int,
    acks: bool,
) -> dict[str, float]:
    """Run one scenario against a fresh ingest process; print and return its figures."""
    metrics_port = free_port()
    ingest = start_ingest(url, broker, metrics_port, args, acks=acks)
    counter = AckCounter(broker.port) if acks else None
    try:
        started, pub_s = publish(
            broker.port,
            pairs,
            messages=messages,
            per_message=per_message,
            rate=rate,
            processes=args.publishers,
            seq_base=seq_base,
        )
        readings = messages * per_message
        stored_at = wait_stored(url, readings, timeout=600, metrics_port=metrics_port)
        assert _count(url) == readings, "ingest's stored counter disagrees with the table"
        p50, p99 = latency(url)
        memory = peak_rss_mib(ingest.pid)
        if counter is not None:
            counter.settle()
    finally:
        ingest.terminate()
        ingest.wait(30)
        if counter is not None:
            counter.close()
    elapsed = stored_at - started
    figures = {
        "readings": readings,
        "seconds": elapsed,
        "stored_per_s": readings / elapsed,
        "published_per_s": messages / pub_s,
        "p50_s": p50,
        "p99_s": p99,
        "ingest_peak_mib": memory,
        "ack_messages": counter.messages if counter else 0,
        "ack_bytes_per_reading": counter.bytes / readings if counter else 0.0,
    }
    ack_note = (
        f" acks {counter.messages:,} msgs, {counter.bytes / readings:.1f} B/reading"
        if counter
        else " acks off"
    )
    print(
        f"{name:<44} {readings:>9} readings in {elapsed:6.1f} s = {readings / elapsed:>9,.0f} readings/s "
        f"(publish {messages / pub_s:,.0f} msg/s) latency p50 {p50 * 1000:6.0f} ms p99 {p99 * 1000:6.0f} ms "
        f"ingest peak RSS {memory:.0f} MiB{ack_note}",
        flush=True,
    )
    return figures


def naive(
    url: str,
    broker: Mosquitto,
    pairs: list[tuple[str, str]],
    args: argparse.Namespace,
    seq_base: int,
) -> float:
    """The baseline's sustained readings/s."""
    ready = mp.Event()
    worker = mp.Process(target=naive_worker, args=(url, broker.port, args.baseline_messages, ready))
    worker.start()
    ready.wait(10)
    started, _took = publish(
        broker.port,
        pairs,
        messages=args.baseline_messages,
        per_message=1,
        rate=0,
        processes=args.publishers,
        seq_base=seq_base,
    )
    stored_at = wait_stored(url, args.baseline_messages, timeout=600)
    worker.join(30)
    if worker.is_alive():
        worker.kill()
    elapsed = stored_at - started
    p50, p99 = latency(url)
    rate = args.baseline_messages / elapsed
    print(
        f"{'naive baseline (INSERT+COMMIT per message)':<44} {args.baseline_messages:>9} readings in "
        f"{elapsed:6.1f} s = {rate:>9,.0f} readings/s latency p50 {p50 * 1000:6.0f} ms p99 {p99 * 1000:6.0f} ms",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and the baseline; print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--messages", type=int, default=100_000, help="single-reading messages at full speed"
    )
    parser.add_argument(
        "--batched-messages", type=int, default=10_000, help="messages of --per-batch readings"
    )
    parser.add_argument("--per-batch", type=int, default=100, help="readings per batched message")
    parser.add_argument(
        "--baseline-messages", type=int, default=10_000, help="messages for the naive baseline"
    )
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--publishers", type=int, default=1, help="publisher processes")
    parser.add_argument("--batch-size", type=int, default=2000, help="INGEST_BATCH_SIZE")
    parser.add_argument("--flush-ms", type=int, default=50, help="INGEST_FLUSH_MS")
    parser.add_argument(
        "--half-rate",
        type=float,
        default=0.0,
        help="msg/s for the latency run (default: half the measured full-speed rate)",
    )
    parser.add_argument(
        "--commit-acks",
        choices=("on", "off", "both"),
        default="on",
        help="INGEST_COMMIT_ACKS for the ingest scenarios; both: each scenario off, then on",
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.commit_acks]

    url = args.admin_url.rsplit("/", 1)[0] + f"/pisman_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="pisman-bench-"))
    broker = Mosquitto(folder, port=free_port())
    db.ensure_database(url)
    try:
        db.migrate(url, PROJECT_ROOT / "sql")
        pairs = seed(url, args.devices)
        broker.start()
        print(
            f"ingest benchmark: {args.devices} devices, {args.publishers} publisher processes, "
            f"batch {args.batch_size} / {args.flush_ms} ms, {os.cpu_count()} cores",
            flush=True,
        )
        results: dict[str, dict[str, float]] = {}
        for n, acks in enumerate(modes):
            label = "acks on" if acks else "acks off"
            base_seq = n * 100_000_000
            full = results[f"full_{label}"] = scenario(
                f"single-reading messages, full speed, {label}",
                url,
                broker,
                pairs,
                args,
                messages=args.messages,
                per_message=1,
                rate=0,
                seq_base=base_seq,
                acks=acks,
            )
            # One rate for every mode, so that their latencies compare.
            half_rate = args.half_rate = args.half_rate or full["stored_per_s"] / 2
            results[f"half_{label}"] = scenario(
                f"single readings at {half_rate:,.0f} msg/s, {label}",
                url,
                broker,
                pairs,
                args,
                messages=int(half_rate * 20),
                per_message=1,
                rate=half_rate,
                seq_base=base_seq + 10_000_000,
                acks=acks,
            )
            batched = results[f"batched_{label}"] = scenario(
                f"batches of {args.per_batch} readings, full speed, {label}",
                url,
                broker,
                pairs,
                args,
                messages=args.batched_messages,
                per_message=args.per_batch,
                rate=0,
                seq_base=base_seq + 20_000_000,
                acks=acks,
            )
        base = naive(url, broker, pairs, args, seq_base=900_000_000)
        print(
            f"speed-up over the naive baseline: {full['stored_per_s'] / base:.1f}x (single readings), "
            f"{batched['stored_per_s'] / base:.1f}x (batched)"
        )
        print(json.dumps({**results, "baseline_per_s": base}))
    finally:
        broker.stop()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
